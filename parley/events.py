"""The conversation event: the one message format on the events topic.

Every change to a conversation travels as an `Event` keyed `{channel}:{customer}`, where
`customer` is the routing identifier of the event's identity (`routing_id`): the
customer's business-scoped user id (BSUID) when known, else their phone, or
`g.<group id>` for a group. Meta sends
the BSUID on every message and on every status but a `failed` one to a phone, so one
customer's events share a partition (docs/customers.md says why, and what the engine
does with the rest). The payload is a tagged union: its `kind` tag says what happened.
New fields get defaults (msgspec schema evolution); readers ignore fields they do not
know. Records written by release 0.1 are still read (`decode_event`).
"""

from enum import StrEnum
from typing import Any

import msgspec

GROUP_PREFIX = "g."


class Role(StrEnum):
    """A user's role on a channel, lowest first; admins manage everything."""

    VIEWER = "viewer"
    CONTRIBUTOR = "contributor"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class Identity(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Who a customer is, as far as one webhook (or the customer record) says: any part
    may be missing. `phone` is Meta's `wa_id`; `user_id` the BSUID; `group_id` names a
    WhatsApp group, which is a customer of its own."""

    phone: str | None = None
    user_id: str | None = None
    parent_user_id: str | None = None
    username: str | None = None
    name: str | None = None
    group_id: str | None = None


def routing_id(identity: Identity) -> str | None:
    """The identifier a customer's events are keyed by; None when there is none."""
    if identity.group_id:
        return GROUP_PREFIX + identity.group_id
    return identity.user_id or identity.phone or None


class Actor(msgspec.Struct, frozen=True):
    """Who asked for an agent action, with the role the producer resolved for them."""

    user: str
    role: Role


class _Payload(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    """Base of every payload: the `kind` tag names what happened."""


class Media(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A file a customer sent (image, audio or voice note, video, document, sticker): Meta
    keeps it under `id` until Parley fetches it."""

    id: str
    mime_type: str | None = None
    sha256: str | None = None
    filename: str | None = None
    voice: bool = False


class Place(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    latitude: float | None = None
    longitude: float | None = None
    name: str | None = None
    address: str | None = None


class Card(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A contact card the customer shared: a name and the numbers on it."""

    name: str | None = None
    phones: list[str] = []


class CustomerMessage(_Payload, frozen=True, tag="customer.message"):
    """The customer wrote (or, `request_welcome`, opened the chat). `text` is what an
    agent reads of it (the body, a caption, the option chosen...), read from Meta's
    payload by the receiver; `author` is the participant who wrote in a group;
    `shared_phone` is the phone a customer shared answering a contact request; `media`,
    `place` and `cards` are what a media, location or contacts message carries."""

    wamid: str
    type: str
    author: Identity | None = None
    text: str | None = None
    context_wamid: str | None = None
    forwarded: bool = False
    shared_phone: str | None = None
    media: Media | None = None
    place: Place | None = None
    cards: list[Card] = []


class Reaction(_Payload, frozen=True, tag="customer.reaction"):
    """The customer reacted to a message (`emoji` None: took the reaction back)."""

    wamid: str
    target: str
    emoji: str | None = None


class Edit(_Payload, frozen=True, tag="customer.edit"):
    """The customer changed the text of an earlier message."""

    wamid: str
    target: str
    text: str | None = None


class Revoke(_Payload, frozen=True, tag="customer.revoke"):
    """The customer deleted an earlier message."""

    wamid: str
    target: str


class IdentityChange(_Payload, frozen=True, tag="customer.identity"):
    """Meta says the customer's identifiers changed (a new number, a new BSUID): the
    event's identity finds them, `new` holds the new identifiers. Not the customer
    writing."""

    new: Identity
    reason: str  # user_changed_number, user_changed_user_id, user_id_update...
    text: str | None = None


class Preference(_Payload, frozen=True, tag="customer.preference"):
    """The customer stopped or resumed a category of messages (e.g. marketing)."""

    category: str
    value: str  # "stop" or "resume"


class MessageStatus(_Payload, frozen=True, tag="message.status"):
    """A delivery status of a message we sent: sent, delivered, read, played, failed."""

    wamid: str
    status: str
    participant: Identity | None = None  # the group member it is about
    error: str | None = None  # of a failed one: Meta's "<code> <title>"
    pricing_category: str | None = None
    pricing_type: str | None = None
    callback_data: str | None = None  # biz_opaque_callback_data, as the send set it


class Echo(_Payload, frozen=True, tag="business.echo"):
    """A message the business sent from the WhatsApp Business app (coexistence)."""

    wamid: str
    type: str
    text: str | None = None


class Attachment(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A file an agent sends: uploaded to Parley's media store first (`key`)."""

    key: str
    kind: str  # image, video, audio, document or sticker
    mime_type: str
    filename: str | None = None
    size: int | None = None  # bytes


class TemplateParameters(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The values of a template's variables: the header's (text, or a file by media
    store key), the body's {{1}}..{{n}} in order, and each URL button's by index."""

    header_text: str | None = None
    header_media: Attachment | None = None
    body: list[str] = []
    buttons: dict[int, str] = {}


class Choice(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    id: str
    title: str
    description: str | None = None


class Section(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    title: str | None = None
    rows: list[Choice] = []


class Interactive(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Reply buttons (`buttons`) or a list (`sections`, opened with `button`)."""

    body: str
    buttons: list[Choice] = []
    button: str | None = None
    sections: list[Section] = []
    header: str | None = None
    footer: str | None = None


class AgentReply(_Payload, frozen=True, tag="agent.reply"):
    """An agent's reply: free-form text, a file with an optional caption (`text`),
    reply buttons or a list, or an approved template by name with its variables;
    `reply_to` quotes a message of the conversation."""

    actor: Actor
    text: str | None = None
    template: str | None = None
    language: str | None = None  # the template's language code, e.g. "en_US"
    parameters: TemplateParameters | None = None
    attachment: Attachment | None = None
    interactive: Interactive | None = None
    reply_to: str | None = None


class React(_Payload, frozen=True, tag="agent.react"):
    """An agent reacts to a message with an emoji ("" takes the reaction back)."""

    actor: Actor
    target: str
    emoji: str


class MarkRead(_Payload, frozen=True, tag="agent.read"):
    """An agent opened the conversation (`typing`: and is writing): the customer's last
    message is marked read, with the typing indicator when asked."""

    actor: Actor
    typing: bool = False


class Snooze(_Payload, frozen=True, tag="agent.snooze"):
    """Park the conversation in Pending until `until` (Unix seconds)."""

    actor: Actor
    until: float


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
AGENT_ACTIONS = (
    AgentReply,
    Move,
    Snooze,
    Assign,
    Unassign,
    AddTag,
    AddNote,
    AddTopic,
    React,
    MarkRead,
)
AgentAction = (
    AgentReply | Move | Snooze | Assign | Unassign | AddTag | AddNote | AddTopic | React | MarkRead
)
# What Meta tells us about a customer.
FromMeta = (
    CustomerMessage | Reaction | Edit | Revoke | IdentityChange | Preference | MessageStatus | Echo
)
Payload = FromMeta | AgentAction


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """The envelope. `id` is the event's own id, used to apply it once: the `wamid` of a
    customer message, `{wamid}:{status}` of a status, a random id for agent actions.
    `identity` is who the event is about, as the producer knew them: Meta's identifiers
    for what came from a webhook, the customer record's for an agent's action; it must
    hold a routing identifier, and the customer's events share it (see the module). Times are Unix seconds: `occurred_at` when it happened
    (Meta's timestamp or the agent's request), `received_at` when Parley took it.
    """

    id: str
    channel: str
    identity: Identity
    occurred_at: float
    received_at: float
    payload: Payload
    # Parley's id of the customer, when the producer knows it (the API, for an agent's
    # action); the engine finds the customer of a webhook's event from its identity.
    customer: str | None = None

    @property
    def route(self) -> str:
        """The routing identifier; "" for an event no producer may send."""
        return routing_id(self.identity) or ""

    @property
    def key(self) -> str:
        """The Kafka key: one partition holds one customer's order on a channel."""
        return f"{self.channel}:{self.route}"

    @property
    def kind(self) -> str:
        return type(self.payload).__struct_config__.tag  # type: ignore[return-value]


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A webhook item Parley could not use, kept with its reason on the dead-letter
    topic so that an operator can see it and re-drive it once the cause is fixed.

    `event` is set when the item was read (e.g. its channel was unknown); `item` holds
    the item as Meta sent it when it could not be read. `signed_by` is a channel
    configured with the app secret that signed the call: re-driving an event to a
    channel requires that channel to share that secret."""

    reason: str
    received_at: float
    detail: str | None = None
    channel: str | None = None
    field: str | None = None
    item: Any = None
    event: Event | None = None
    signed_by: str | None = None

    @property
    def key(self) -> str:
        return self.event.key if self.event is not None else self.channel or ""


_encoder = msgspec.json.Encoder()
_event_decoder = msgspec.json.Decoder(Event)
_letter_decoder = msgspec.json.Decoder(DeadLetter)


def encode(value: Event | DeadLetter) -> bytes:
    return _encoder.encode(value)


def decode_event(data: bytes) -> Event:
    """Raises msgspec.DecodeError / ValidationError for a record that is not an Event
    (of this release or of release 0.1)."""
    try:
        return _event_decoder.decode(data)
    except msgspec.ValidationError:
        from parley.legacy_events import decode_legacy  # rare: only at an upgrade

        return decode_legacy(data)


def decode_dead_letter(data: bytes) -> DeadLetter:
    return _letter_decoder.decode(data)
