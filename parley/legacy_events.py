"""Events as release 0.1 wrote them, read once at an upgrade.

Release 0.1 keyed events `{phone_number_id}:{wa_id}` and carried Meta's message as sent;
records still on the topic when the new engine starts are read here and turned into
this release's envelope, so the tail of an upgrade is applied, not skipped.
"""

from typing import Any

import msgspec

from parley.events import (
    AddNote,
    AddTag,
    AddTopic,
    AgentReply,
    Assign,
    CustomerMessage,
    Event,
    Identity,
    MessageStatus,
    Move,
    Payload,
    Unassign,
)
from parley.meta_text import message_text, status_error


class _Message(msgspec.Struct, frozen=True, tag="customer.message", tag_field="kind"):
    wamid: str
    wa_id: str
    type: str
    profile_name: str | None = None
    context_wamid: str | None = None
    forwarded: bool = False
    message: dict[str, Any] = {}


class _Status(msgspec.Struct, frozen=True, tag="message.status", tag_field="kind"):
    wamid: str
    recipient_id: str
    status: str
    errors: list[dict[str, Any]] = []
    pricing_category: str | None = None


class _Event(msgspec.Struct, frozen=True):
    id: str
    conversation: str
    channel: str
    occurred_at: float
    received_at: float
    payload: (
        _Message | _Status | AgentReply | Move | Assign | Unassign | AddTag | AddNote | AddTopic
    )


_decoder = msgspec.json.Decoder(_Event)


def decode_legacy(data: bytes) -> Event:
    """Raises msgspec.DecodeError / ValidationError for what release 0.1 did not write."""
    old = _decoder.decode(data)
    _, _, wa_id = old.conversation.partition(":")
    payload: Payload
    match old.payload:
        case _Message() as message:
            payload = CustomerMessage(
                wamid=message.wamid,
                type=message.type,
                text=message_text(message.type, message.message),
                context_wamid=message.context_wamid,
                forwarded=message.forwarded,
            )
            identity = Identity(phone=message.wa_id, name=message.profile_name)
        case _Status() as status:
            payload = MessageStatus(
                wamid=status.wamid,
                status=status.status,
                error=status_error(status.errors),
                pricing_category=status.pricing_category,
            )
            identity = Identity(phone=status.recipient_id)
        case action:
            payload = action
            identity = Identity(phone=wa_id)
    return Event(
        id=old.id,
        channel=old.channel,
        identity=identity,
        occurred_at=old.occurred_at,
        received_at=old.received_at,
        payload=payload,
    )
