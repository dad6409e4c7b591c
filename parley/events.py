"""The conversation event: the one message format on the events topic.

Every change to a conversation travels as an `Event` keyed by its conversation
(`{phone_number_id}:{wa_id}`), so one partition holds a conversation's whole order.
The payload is a tagged union: its `kind` tag says what happened. New fields get
defaults (msgspec schema evolution); readers ignore fields they do not know.
"""

from enum import StrEnum
from typing import Any

import msgspec

SCHEMA_VERSION = 1


class Role(StrEnum):
    """A user's role on a channel, lowest first; admins manage everything."""

    VIEWER = "viewer"
    CONTRIBUTOR = "contributor"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class Actor(msgspec.Struct, frozen=True):
    """Who asked for an agent action, with the role the producer resolved for them."""

    user: str
    role: Role


class _Payload(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    """Base of every payload: the `kind` tag names what happened."""


class CustomerMessage(_Payload, frozen=True, tag="customer.message"):
    """A message from the customer. `message` is the object as Meta sent it."""

    wamid: str
    wa_id: str
    type: str
    profile_name: str | None = None
    context_wamid: str | None = None
    forwarded: bool = False
    message: dict[str, Any] = msgspec.field(default_factory=dict)


class MessageStatus(_Payload, frozen=True, tag="message.status"):
    """A delivery status of a message we sent: sent, delivered, read, failed (or newer)."""

    wamid: str
    recipient_id: str
    status: str
    errors: list[dict[str, Any]] = msgspec.field(default_factory=list)
    conversation_id: str | None = None
    pricing_category: str | None = None


class AgentReply(_Payload, frozen=True, tag="agent.reply"):
    """An agent's reply: free-form text, or an approved template by name."""

    actor: Actor
    text: str | None = None
    template: str | None = None
    language: str | None = None  # the template's language code, e.g. "en_US"


class Move(_Payload, frozen=True, tag="agent.move"):
    """Move to a queue by hand (the API allows pending and resolved)."""

    actor: Actor
    queue: str


class Assign(_Payload, frozen=True, tag="agent.assign"):
    actor: Actor
    assignee: str


class Unassign(_Payload, frozen=True, tag="agent.unassign"):
    actor: Actor


class AddTag(_Payload, frozen=True, tag="agent.tag"):
    actor: Actor
    tag: str


class AddNote(_Payload, frozen=True, tag="agent.note"):
    actor: Actor
    text: str


class AddTopic(_Payload, frozen=True, tag="agent.topic"):
    actor: Actor
    topic: str


# What agents ask for through the API; each carries its actor.
AGENT_ACTIONS = (AgentReply, Move, Assign, Unassign, AddTag, AddNote, AddTopic)

Payload = (
    CustomerMessage
    | MessageStatus
    | AgentReply
    | Move
    | Assign
    | Unassign
    | AddTag
    | AddNote
    | AddTopic
)


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """The envelope. `id` is the event's own id, used to apply it once: the `wamid` of a
    customer message, `{wamid}:{status}` of a status, a random id for agent actions.
    Times are Unix seconds: `occurred_at` when it happened (Meta's timestamp or the
    agent's request), `received_at` when Parley took it.
    """

    v: int = SCHEMA_VERSION
    id: str
    conversation: str
    channel: str
    occurred_at: float
    received_at: float
    payload: Payload

    @property
    def kind(self) -> str:
        return type(self.payload).__struct_config__.tag  # type: ignore[return-value]


def conversation_key(phone_number_id: str, wa_id: str) -> str:
    """The Kafka key and conversation id: one partition holds a conversation's order."""
    return f"{phone_number_id}:{wa_id}"


def split_conversation_key(key: str) -> tuple[str, str]:
    """(phone_number_id, wa_id) of a conversation key; raises ValueError when malformed."""
    channel, sep, wa_id = key.partition(":")
    if not sep or not channel or not wa_id:
        raise ValueError(f"conversation key must be '{{phone_number_id}}:{{wa_id}}', got {key!r}")
    return channel, wa_id


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """What could not be routed: the reason, and the event it would have been."""

    reason: str
    event: Event


_encoder = msgspec.json.Encoder()
_event_decoder = msgspec.json.Decoder(Event)


def encode(value: Event | DeadLetter) -> bytes:
    return _encoder.encode(value)


def decode_event(data: bytes) -> Event:
    """Raises msgspec.DecodeError / ValidationError for a record that is not an Event."""
    return _event_decoder.decode(data)
