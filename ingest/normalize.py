"""A decoded webhook call turned into conversation events: pure, no I/O, no clock."""

import math
from typing import Any

import msgspec

from engine.template_store import TemplateUpdate
from ingest.webhook import Contact, Error, Message, Status, Webhook
from parley.events import CustomerMessage, Event, MessageStatus, conversation_key

TEMPLATE_STATUS = "message_template_status_update"


class Batch(msgspec.Struct, frozen=True):
    """What one call carried. `events` holds one event per message and per status, in
    payload order. `other_fields` names every change Parley does not read (to count),
    and `value_errors` are the errors Meta reported for a whole value (to log)."""

    events: list[Event]
    other_fields: list[str]
    value_errors: list[Error]
    template_updates: list[TemplateUpdate] = msgspec.field(default_factory=list)


def normalize(webhook: Webhook, received_at: float) -> Batch:
    """Never raises for a `Webhook` that `decode_webhook` returned; `received_at` is the
    time Parley took the call, and stands in for timestamps that are not a time."""
    events: list[Event] = []
    other_fields: list[str] = []
    value_errors: list[Error] = []
    template_updates: list[TemplateUpdate] = []
    for entry in webhook.entry:
        for change in entry.changes:
            value = change.decoded
            if change.field == TEMPLATE_STATUS:
                update = _template_update(change.value)
                if update is not None:
                    template_updates.append(update)
                    continue
            if value is None:
                other_fields.append(change.field)
                continue
            value_errors.extend(value.errors)
            channel = value.metadata.phone_number_id
            raw_messages: list[dict[str, Any]] = change.as_sent.get("messages", [])
            raw_statuses: list[dict[str, Any]] = change.as_sent.get("statuses", [])
            for message, raw in zip(value.messages, raw_messages, strict=True):
                name = _profile_name(value.contacts, message.from_)
                events.append(_message_event(channel, message, raw, name, received_at))
            for status, raw in zip(value.statuses, raw_statuses, strict=True):
                events.append(_status_event(channel, status, raw, received_at))
    return Batch(
        events=events,
        other_fields=other_fields,
        value_errors=value_errors,
        template_updates=template_updates,
    )


def _template_update(raw: msgspec.Raw) -> TemplateUpdate | None:
    """Meta's `message_template_status_update` value: the template by name and language,
    its new status in `event`; None when it is not that shape."""
    try:
        value = msgspec.json.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):  # bad UTF-8 in a string: the latter
        return None
    if not isinstance(value, dict):
        return None
    name, language, status = (
        value.get("message_template_name"),
        value.get("message_template_language"),
        value.get("event"),
    )
    if not all(isinstance(part, str) and part for part in (name, language, status)):
        return None
    reason = value.get("reason")
    return TemplateUpdate(
        name=str(name),
        language=str(language),
        status=str(status),
        reason=reason if isinstance(reason, str) and reason != "NONE" else None,
    )


def _message_event(
    channel: str,
    message: Message,
    as_sent: dict[str, Any],
    profile_name: str | None,
    received_at: float,
) -> Event:
    context = message.context
    return Event(
        id=message.id,
        conversation=conversation_key(channel, message.from_),
        channel=channel,
        occurred_at=_seconds(message.timestamp, received_at),
        received_at=received_at,
        payload=CustomerMessage(
            wamid=message.id,
            wa_id=message.from_,
            type=message.type,
            profile_name=profile_name,
            context_wamid=context.id if context else None,
            forwarded=bool(context and (context.forwarded or context.frequently_forwarded)),
            message=as_sent,
        ),
    )


def _status_event(
    channel: str, status: Status, as_sent: dict[str, Any], received_at: float
) -> Event:
    return Event(
        id=f"{status.id}:{status.status}",
        conversation=conversation_key(channel, status.recipient_id),
        channel=channel,
        occurred_at=_seconds(status.timestamp, received_at),
        received_at=received_at,
        payload=MessageStatus(
            wamid=status.id,
            recipient_id=status.recipient_id,
            status=status.status,
            # As sent rather than re-encoded from `Error`, so fields we do not model stay.
            errors=as_sent.get("errors", []),
            conversation_id=status.conversation.id if status.conversation else None,
            pricing_category=status.pricing.category if status.pricing else None,
        ),
    )


def _profile_name(contacts: list[Contact], wa_id: str) -> str | None:
    """The sender's name. Meta sends one contact per message, but its `wa_id` may be
    spelled differently from the message's `from` (e.g. a country's mobile prefix), so a
    lone contact names the sender; among several, an unmatched guess could name the wrong
    customer, so none does."""
    for contact in contacts:
        if contact.wa_id == wa_id:
            return contact.profile.name if contact.profile else None
    if len(contacts) == 1 and contacts[0].profile:
        return contacts[0].profile.name
    return None


def _seconds(timestamp: str | int | float, fallback: float) -> float:
    """Unix seconds from Meta's timestamp. Anything that is not a finite number falls
    back, since a NaN or infinity would encode as JSON null and break every reader."""
    try:
        seconds = float(timestamp)
    except (ValueError, OverflowError):
        return fallback
    return seconds if math.isfinite(seconds) else fallback
