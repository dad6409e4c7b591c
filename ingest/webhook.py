"""The WhatsApp Cloud API webhook call, as Meta documents it ("Webhooks: messages").

Unknown fields are ignored and unknown message and status types kept. Only what routing
needs is required (a message's from/id/timestamp/type, a status's id/status/timestamp/
recipient_id, `metadata.phone_number_id`, an error's code): one odd optional detail must
not cost a whole call. Only `messages` values are decoded; other fields stay raw JSON.
"""

from typing import Any

import msgspec

MESSAGES = "messages"

# Meta sends timestamps as strings and prices as numbers, and has changed which over time.
Number = str | int | float


class ErrorData(msgspec.Struct, frozen=True):
    details: str | None = None


class Error(msgspec.Struct, frozen=True):
    code: int
    title: str | None = None
    message: str | None = None
    error_data: ErrorData | None = None
    href: str | None = None


class Profile(msgspec.Struct, frozen=True):
    name: str | None = None


class Contact(msgspec.Struct, frozen=True):
    profile: Profile | None = None
    wa_id: str | None = None


class Metadata(msgspec.Struct, frozen=True):
    phone_number_id: str
    display_phone_number: str | None = None


class Context(msgspec.Struct, frozen=True):
    from_: str | None = msgspec.field(default=None, name="from")
    id: str | None = None
    forwarded: bool | None = None
    frequently_forwarded: bool | None = None
    referred_product: dict[str, Any] | None = None


class Text(msgspec.Struct, frozen=True):
    body: str | None = None


class Media(msgspec.Struct, frozen=True):  # image, video, audio, document, sticker
    id: str | None = None
    mime_type: str | None = None
    sha256: str | None = None
    caption: str | None = None
    filename: str | None = None
    animated: bool | None = None
    voice: bool | None = None


class Location(msgspec.Struct, frozen=True):
    latitude: float | None = None
    longitude: float | None = None
    name: str | None = None
    address: str | None = None
    url: str | None = None


class ContactCard(msgspec.Struct, frozen=True):  # display data only, so kept light
    name: dict[str, Any] | None = None
    phones: list[dict[str, Any]] = []
    emails: list[dict[str, Any]] = []
    org: dict[str, Any] | None = None
    urls: list[dict[str, Any]] = []
    addresses: list[dict[str, Any]] = []
    birthday: str | None = None


class Reply(msgspec.Struct, frozen=True):  # button_reply, list_reply (with description)
    id: str | None = None
    title: str | None = None
    description: str | None = None


class Interactive(msgspec.Struct, frozen=True):
    type: str | None = None
    button_reply: Reply | None = None
    list_reply: Reply | None = None
    nfm_reply: dict[str, Any] | None = None  # a Flow's answer, its own JSON in a string


class Button(msgspec.Struct, frozen=True):
    payload: str | None = None
    text: str | None = None


class Reaction(msgspec.Struct, frozen=True):
    message_id: str | None = None
    emoji: str | None = None  # absent when the customer removed the reaction


class ProductItem(msgspec.Struct, frozen=True):
    product_retailer_id: str | None = None
    quantity: int | str | None = None
    item_price: Number | None = None
    currency: str | None = None


class Order(msgspec.Struct, frozen=True):
    catalog_id: str | None = None
    text: str | None = None
    product_items: list[ProductItem] = []


class System(msgspec.Struct, frozen=True):  # a changed number (new_wa_id) or identity
    body: str | None = None
    identity: str | None = None
    new_wa_id: str | None = None
    wa_id: str | None = None
    type: str | None = None
    customer: str | None = None


class Referral(msgspec.Struct, frozen=True):  # the ad that started the conversation
    source_url: str | None = None
    source_id: str | None = None
    source_type: str | None = None
    headline: str | None = None
    body: str | None = None
    media_type: str | None = None
    ctwa_clid: str | None = None


class Message(msgspec.Struct, frozen=True):
    """A customer's message. `type` is any string: a type Meta adds later is kept, its
    object left to the message as sent."""

    from_: str = msgspec.field(name="from")
    id: str
    timestamp: Number
    type: str
    context: Context | None = None
    errors: list[Error] = []  # why an `unsupported` message could not be shown
    text: Text | None = None
    image: Media | None = None
    video: Media | None = None
    audio: Media | None = None
    document: Media | None = None
    sticker: Media | None = None
    location: Location | None = None
    contacts: list[ContactCard] = []
    interactive: Interactive | None = None
    button: Button | None = None
    reaction: Reaction | None = None
    order: Order | None = None
    system: System | None = None
    referral: Referral | None = None
    identity: dict[str, Any] | None = None  # acknowledged, created_timestamp, hash


class Origin(msgspec.Struct, frozen=True):
    type: str | None = None


class Conversation(msgspec.Struct, frozen=True):
    id: str | None = None
    expiration_timestamp: Number | None = None
    origin: Origin | None = None


class Pricing(msgspec.Struct, frozen=True):
    billable: bool | None = None
    pricing_model: str | None = None
    category: str | None = None


class Status(msgspec.Struct, frozen=True):
    """A status of a message we sent: sent, delivered, read, failed, or a newer one."""

    id: str
    status: str
    timestamp: Number
    recipient_id: str
    conversation: Conversation | None = None
    pricing: Pricing | None = None
    errors: list[Error] = []


class Value(msgspec.Struct, frozen=True):
    metadata: Metadata
    messaging_product: str = "whatsapp"
    contacts: list[Contact] = []
    messages: list[Message] = []
    statuses: list[Status] = []
    errors: list[Error] = []  # errors about the whole value, not one message


class Change(msgspec.Struct, frozen=True):
    """`value` is raw JSON. For a `messages` change, `decoded` is that value typed and
    `as_sent` the same value as plain JSON objects, so unmodelled fields reach events."""

    field: str
    value: msgspec.Raw
    decoded: Value | None = None
    as_sent: dict[str, Any] = {}


class Entry(msgspec.Struct, frozen=True):
    id: str
    changes: list[Change]


class Webhook(msgspec.Struct, frozen=True):
    object: str
    entry: list[Entry]


# The wire shape keeps each value raw until its change's `field` is known: JSON objects
# are unordered, and Meta's own examples put `value` before `field`.
class _WireChange(msgspec.Struct, frozen=True):
    field: str
    value: msgspec.Raw


class _WireEntry(msgspec.Struct, frozen=True):
    id: str
    changes: list[_WireChange]


class _WireWebhook(msgspec.Struct, frozen=True):
    object: str
    entry: list[_WireEntry]


_webhook_decoder = msgspec.json.Decoder(_WireWebhook)
_object_decoder = msgspec.json.Decoder(dict[str, Any])


def decode_webhook(body: bytes) -> Webhook:
    """Raises `msgspec.DecodeError` when `body` is not JSON (invalid UTF-8 included), and
    `msgspec.ValidationError`, naming the path, when it is JSON but not a webhook, or a
    `messages` change's value is not a messages value."""
    try:
        wire = _webhook_decoder.decode(body)
        entries = [
            Entry(
                id=entry.id,
                changes=[
                    _change(change, f"$.entry[{i}].changes[{j}].value")
                    for j, change in enumerate(entry.changes)
                ],
            )
            for i, entry in enumerate(wire.entry)
        ]
    except UnicodeDecodeError as error:
        # msgspec checks UTF-8 only in strings it decodes, and raises this, not DecodeError.
        raise msgspec.DecodeError(f"invalid UTF-8: {error.reason}") from None
    return Webhook(object=wire.object, entry=entries)


def _change(change: _WireChange, path: str) -> Change:
    if change.field != MESSAGES:
        return Change(field=change.field, value=change.value)
    # Parsed once into plain objects, then typed from those: one parse, and the typed and
    # the as-sent views cannot disagree (duplicate keys included).
    try:
        as_sent = _object_decoder.decode(change.value)
        decoded = msgspec.convert(as_sent, Value)
    except msgspec.ValidationError as error:
        raise msgspec.ValidationError(_at(path, str(error))) from None
    return Change(field=change.field, value=change.value, decoded=decoded, as_sent=as_sent)


def _at(path: str, message: str) -> str:
    """msgspec's path is relative to the value: rebase it onto the whole call."""
    marker = " - at `$"
    if marker in message:
        return message.replace(marker, f" - at `{path}", 1)
    return f"{message} - at `{path}`"
