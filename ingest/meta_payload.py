"""The WhatsApp Cloud API webhook call, as Meta documents it (2026: "Webhooks: messages",
"Business-scoped user IDs", groups, coexistence; see docs/meta-webhooks-2026.md).

Only the envelope (`object`, `entry[].changes[].field` and `value`) must be right for a
call to be read; every item in it (a message, a status, an echo...) is read on its own,
so one odd item costs nothing but itself (`ingest/normalize.py` dead-letters it).
Unknown fields are ignored and unknown message and status types kept.
"""

from typing import Any

import msgspec

# Meta sends timestamps as strings and prices as numbers, and has changed which over time.
Number = str | int | float


class Profile(msgspec.Struct, frozen=True):
    name: str | None = None
    username: str | None = None


class Contact(msgspec.Struct, frozen=True):
    """Who a value's messages or statuses are from or to."""

    profile: Profile | None = None
    wa_id: str | None = None
    user_id: str | None = None
    parent_user_id: str | None = None


class Metadata(msgspec.Struct, frozen=True):
    phone_number_id: str
    display_phone_number: str | None = None


class Context(msgspec.Struct, frozen=True):
    id: str | None = None
    forwarded: bool | None = None
    frequently_forwarded: bool | None = None


class MediaObject(msgspec.Struct, frozen=True):  # image, video, audio, document, sticker
    id: str
    mime_type: str | None = None
    sha256: str | None = None
    filename: str | None = None
    voice: bool | None = None


class LocationObject(msgspec.Struct, frozen=True):
    latitude: float | None = None
    longitude: float | None = None
    name: str | None = None
    address: str | None = None


class Reaction(msgspec.Struct, frozen=True):
    message_id: str
    emoji: str | None = None  # absent when the customer took the reaction back


class Original(msgspec.Struct, frozen=True):  # of an edit or a revoke
    original_message_id: str
    message: dict[str, Any] | None = None  # an edit's new content, shaped like a message


class System(msgspec.Struct, frozen=True):  # a changed number or BSUID
    type: str | None = None
    body: str | None = None
    wa_id: str | None = None  # the new number (user_changed_number)
    new_wa_id: str | None = None  # the new number, older spelling (customer_changed_number)
    user_id: str | None = None  # the new BSUID
    parent_user_id: str | None = None


class MessageItem(msgspec.Struct, frozen=True):
    """A customer's message. `type` is any string: a type Meta adds later is kept, its
    object left to the message as sent. Any of `from`, `from_user_id` may be missing."""

    id: str
    type: str
    timestamp: Number | None = None
    from_: str | None = msgspec.field(default=None, name="from")
    from_user_id: str | None = None
    from_parent_user_id: str | None = None
    group_id: str | None = None
    context: Context | None = None
    reaction: Reaction | None = None
    image: MediaObject | None = None
    video: MediaObject | None = None
    audio: MediaObject | None = None
    document: MediaObject | None = None
    sticker: MediaObject | None = None
    location: LocationObject | None = None
    edit: Original | None = None
    revoke: Original | None = None
    system: System | None = None


class Pricing(msgspec.Struct, frozen=True):
    category: str | None = None
    type: str | None = None


class Error(msgspec.Struct, frozen=True):
    code: int
    title: str | None = None
    message: str | None = None


class StatusItem(msgspec.Struct, frozen=True):
    """A status of a message we sent: sent, delivered, read, played, failed (or newer)."""

    id: str
    status: str
    timestamp: Number | None = None
    recipient_id: str | None = None  # the phone, or the group id of a group send
    recipient_user_id: str | None = None
    recipient_parent_user_id: str | None = None
    recipient_type: str | None = None  # "group"
    recipient_participant_id: str | None = None
    recipient_participant_user_id: str | None = None
    pricing: Pricing | None = None
    biz_opaque_callback_data: str | None = None
    errors: list[dict[str, Any]] = []


class MessageEcho(msgspec.Struct, frozen=True):
    """A message the business sent from the WhatsApp Business app (coexistence)."""

    id: str
    type: str
    timestamp: Number | None = None
    to: str | None = None
    to_user_id: str | None = None
    to_parent_user_id: str | None = None


class UserPreference(msgspec.Struct, frozen=True):
    category: str
    value: str
    wa_id: str | None = None
    user_id: str | None = None
    parent_user_id: str | None = None
    timestamp: Number | None = None


class PreviousCurrent(msgspec.Struct, frozen=True):
    previous: str | None = None
    current: str | None = None


class UserIdUpdate(msgspec.Struct, frozen=True):
    user_id: PreviousCurrent
    wa_id: str | None = None
    parent_user_id: PreviousCurrent | None = None
    detail: str | None = None
    timestamp: Number | None = None


class TemplateStatus(msgspec.Struct, frozen=True):
    """`message_template_status_update`: the template by name and language, its new
    status in `event`."""

    event: str
    message_template_name: str
    message_template_language: str
    reason: str | None = None
    message_template_category: str | None = None


class TemplateCategory(msgspec.Struct, frozen=True):
    """`template_category_update`: the category changed (or will in 24 hours)."""

    message_template_name: str
    message_template_language: str
    new_category: str | None = None
    correct_category: str | None = None
    previous_category: str | None = None


class Change(msgspec.Struct, frozen=True):
    field: str
    value: msgspec.Raw


class Entry(msgspec.Struct, frozen=True):
    """`id` is the WhatsApp Business Account."""

    changes: list[Change]
    id: str | None = None


class Webhook(msgspec.Struct, frozen=True):
    object: str
    entry: list[Entry]


_webhook_decoder = msgspec.json.Decoder(Webhook)
_value_decoder = msgspec.json.Decoder()


def decode_webhook(body: bytes) -> Webhook:
    """Raises `msgspec.DecodeError` when `body` is not JSON (invalid UTF-8 in the
    envelope included), and `msgspec.ValidationError`, naming the path, when it is JSON
    but not a webhook envelope. Values stay raw: `decode_value` reads each one, so a
    value that is not readable (invalid UTF-8 in it included) costs only its own items."""
    try:
        return _webhook_decoder.decode(body)
    except UnicodeDecodeError as error:
        # msgspec checks UTF-8 only in strings it decodes, and raises this, not DecodeError.
        raise msgspec.DecodeError(f"invalid UTF-8: {error.reason}") from None


def decode_value(raw: msgspec.Raw) -> Any:
    """A change's value as plain JSON; raises msgspec.DecodeError for bad UTF-8 in it."""
    try:
        return _value_decoder.decode(raw)
    except UnicodeDecodeError as error:
        raise msgspec.DecodeError(f"invalid UTF-8: {error.reason}") from None
