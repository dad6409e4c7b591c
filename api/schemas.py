"""What the /v1 API takes and gives: one struct per body, the source of both the
validation and the OpenAPI document's schemas.

The response shapes are the API's own: the store's records (store/reader.py,
store/directory.py, store/templates.py) are converted to them explicitly, below, so a
storage change cannot change /v1 by accident.
"""

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import quote

import msgspec
from msgspec import UNSET, UnsetType

from parley.business_hours import BusinessHours, OutOfHoursReply
from parley.channels import AppId, PhoneNumberId, WabaId
from parley.events import Choice, Interactive, Place
from parley.registration import Registration, Status
from parley.routing import RoutingSettings
from parley.sla import SlaTargets
from parley.state import Queue
from parley.whatsapp import template_variables
from store import reports
from store.directory import TeamRecord, UserRecord
from store.presence import Presence
from store.reader import (
    ConversationRecord,
    CustomerRecord,
    MessageRecord,
    NoteRecord,
    PageRecord,
    QuotedRecord,
    ReportRecord,
    SummaryRecord,
)
from store.templates import Template

# User and team ids: what people type in a URL, up to 64 characters.
Id = Annotated[
    str,
    msgspec.Meta(
        # (?!\n): Python's `$` also matches before a final newline; JSON Schema's does not.
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$(?!\n)",
        description="letters, digits and . _ @ -, up to 64 characters",
    ),
]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
Label = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
Period = Annotated[
    str, msgspec.Meta(description='"90s", "15m", "12h", "30d" or "off"', max_length=16)
]
# Meta's language codes, e.g. "en" or "en_US".
Language = Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2,3}(_[A-Z]{2})?$(?!\n)")]
# Tokens and secrets travel in HTTP headers: printable ASCII, no spaces.
Secret = Annotated[
    str, msgspec.Meta(pattern=r"^[!-~]{1,1024}$(?!\n)", description="printable ASCII")
]
SixDigits = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{6}$(?!\n)")]
# A day (UTC); the API answers 400 for what is not a date, so the document says `date`.
Day = Annotated[
    str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$", extra_json_schema={"format": "date"})
]


class GrantRole(StrEnum):
    """The roles a grant can give on a channel (admins are admins everywhere)."""

    VIEWER = "viewer"
    CONTRIBUTOR = "contributor"
    SUPERVISOR = "supervisor"


class Body(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Request bodies refuse fields they do not know: a typo is an error, not a no-op."""


# --- Users and teams ------------------------------------------------------------------


class NewUser(Body, frozen=True):
    id: Id
    name: Name
    admin: bool = False


class CreatedUser(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    admin: bool
    token: str  # shown once: only its digest is kept


class NewToken(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    token: str


class NewTeam(Body, frozen=True):
    id: Id
    name: Name


class UserOut(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    admin: bool = False
    teams: list[str] = []  # sorted
    created_at: float
    # Their own limit of Open conversations across channels (null: none).
    total_capacity: int | None = None


class TeamOut(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    members: list[str] = []  # sorted
    created_at: float


class Me(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    admin: bool
    teams: list[str]


class AvailabilityBody(Body, frozen=True):
    status: Literal["online", "away", "offline"]


class AvailabilityOut(msgspec.Struct, frozen=True, kw_only=True):
    """A user's availability: `auto` when Parley set it (no live stream for
    PARLEY_OFFLINE_AFTER_S), not the user; `since` is null for one never set."""

    user: str
    status: Literal["online", "away", "offline"]
    since: datetime | None
    auto: bool


class AgentOut(msgspec.Struct, frozen=True, kw_only=True):
    """Someone who may answer on the channel: how available, how loaded and how much
    they may hold (`capacity`: the channel's routing capacity, null without routing;
    `total_capacity`: their own limit across channels, null for none)."""

    id: str
    name: str
    availability: AvailabilityOut
    open: int  # Open conversations they hold on this channel
    total_open: int  # ...and on every channel
    capacity: int | None
    total_capacity: int | None


class CapacityBody(Body, frozen=True):
    """A user's own limit of Open conversations across channels (null: none, only the
    channels' capacities)."""

    total_capacity: Annotated[int, msgspec.Meta(ge=0, le=1000)] | None


class CapacityOut(msgspec.Struct, frozen=True, kw_only=True):
    user: str
    total_capacity: int | None


class SessionBody(Body, frozen=True):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=512)]


class SessionOut(msgspec.Struct, frozen=True, kw_only=True):
    """`csrf`: send it back as X-CSRF-Token with every request that changes anything."""

    user: Me
    csrf: str


# --- Channels and grants --------------------------------------------------------------


class Grant(Body, frozen=True):
    role: GrantRole


class ChannelPatch(Body, frozen=True):
    """Only the fields present change. A switch set to null is off."""

    display_name: str | UnsetType = UNSET
    auto_assign: bool | UnsetType = UNSET
    auto_resolve_new: Period | UnsetType = UNSET
    auto_resolve_pending: Period | UnsetType = UNSET
    # Replies a second at most (per engine instance); null: no limit.
    send_rate: Annotated[int, msgspec.Meta(ge=1, le=10_000)] | UnsetType | None = UNSET
    # The WhatsApp Business Account the number belongs to, whose template webhooks change
    # this channel's templates; null: none (template webhooks change nothing here).
    waba_id: WabaId | UnsetType | None = UNSET
    # The Meta app the number's token belongs to (its Resumable Upload API takes the
    # profile picture); null: none.
    app_id: AppId | UnsetType | None = UNSET
    # Mark the customer's messages read (blue ticks) when an agent opens the conversation.
    read_receipts: bool | UnsetType = UNSET
    # When the team answers (null: always), in the channel's time zone.
    business_hours: BusinessHours | UnsetType | None = UNSET
    # Sent once a cycle to a customer writing outside business hours (null: nothing):
    # {"text"} or an approved template without variables {"template", "language"}.
    out_of_hours_reply: OutOfHoursReply | UnsetType | None = UNSET
    # SLA targets in seconds of business time (null: none).
    sla: SlaTargets | UnsetType | None = UNSET
    # Capacity routing (null: conversations go to whoever answers them): {"capacity",
    # "reassign_after_s", "release_all_when_offline"}.
    routing: RoutingSettings | UnsetType | None = UNSET
    all_users: GrantRole | UnsetType | None = UNSET
    all_teams: GrantRole | UnsetType | None = UNSET


class ChannelOut(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    display_name: str
    auto_assign: bool
    auto_resolve_new: str
    auto_resolve_pending: str
    send_rate: int | None
    waba_id: str | None  # the WhatsApp Business Account
    app_id: str | None  # the Meta app of the number's token
    read_receipts: bool  # customers see blue ticks when an agent opens the conversation
    business_hours: BusinessHours | None  # null: always open
    out_of_hours_reply: OutOfHoursReply | None
    sla: SlaTargets | None
    routing: RoutingSettings | None  # null: assignment on reply only
    all_users: GrantRole | None
    all_teams: GrantRole | None
    role: str  # the caller's role on it: viewer, contributor, supervisor or admin


class ChannelList(msgspec.Struct, frozen=True, kw_only=True):
    channels: list[ChannelOut]


class AccessOut(msgspec.Struct, frozen=True, kw_only=True):
    channel: str
    users: dict[str, GrantRole]
    teams: dict[str, GrantRole]
    all_users: GrantRole | None
    all_teams: GrantRole | None


# --- Conversations: what agents see ---------------------------------------------------


class Note(msgspec.Struct, frozen=True, kw_only=True):
    user: str
    text: str
    at: datetime


class Customer(msgspec.Struct, frozen=True, kw_only=True):
    """Who the conversation is with: `id` is Parley's (stable; the identifier the
    customer was first seen by); the rest are null where unknown."""

    id: str
    phone: str | None
    user_id: str | None  # the business-scoped user id (BSUID)
    username: str | None
    name: str | None  # their WhatsApp profile name
    group_id: str | None = None  # set for a WhatsApp group
    marketing_opt_out: bool = False


class MediaOut(msgspec.Struct, frozen=True, kw_only=True):
    """A message's file: `fetching` (the customer's, on its way into Parley), `stored`
    (download it from `url`), or `failed` (`error` says why)."""

    kind: str  # image, video, audio, document, sticker
    state: Literal["fetching", "stored", "failed"]
    mime_type: str | None = None
    filename: str | None = None
    voice: bool = False  # a voice note
    size: int | None = None
    error: str | None = None
    url: str | None = None


class PlaceOut(msgspec.Struct, frozen=True, kw_only=True):
    latitude: float | None = None
    longitude: float | None = None
    name: str | None = None
    address: str | None = None


class CardOut(msgspec.Struct, frozen=True, kw_only=True):
    """A contact card the customer shared."""

    name: str | None = None
    phones: list[str] = []


class QuotedOut(msgspec.Struct, frozen=True, kw_only=True):
    """The message a reply quotes, while the conversation's log still holds it."""

    id: str
    direction: str
    preview: str


class ChoiceBody(Body, frozen=True):
    """A reply button or a list row: WhatsApp's limits (button titles 20 characters,
    row titles 24, descriptions 72) are checked with the message, naming the field."""

    id: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    description: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


class SectionBody(Body, frozen=True):
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    rows: list[ChoiceBody] = []


class InteractiveBody(Body, frozen=True):
    """Reply buttons (`buttons`, up to 3), or a list (`sections` of rows, up to 10 in
    all, opened by a button labelled `button`)."""

    body: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
    buttons: list[ChoiceBody] = []
    button: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    sections: list[SectionBody] = []
    header: Annotated[str, msgspec.Meta(min_length=1, max_length=60)] | None = None
    footer: Annotated[str, msgspec.Meta(min_length=1, max_length=60)] | None = None


class MessageOut(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    direction: str  # inbound, outbound, or system (e.g. the customer's number changed)
    # text, image, video, audio, document, sticker, location, contacts, interactive,
    # template, button, reaction, ...: what WhatsApp called it
    type: str
    at: datetime
    preview: str  # one readable phrase: "Photo: the caption", "Location: Café Bleu"
    text: str | None = None  # the text, or a file's caption
    template: str | None = None
    user: str | None = None
    author: str | None = None  # who wrote it, in a group
    reply_to: str | None = None  # the wamid of the message it answers
    # business_app: sent from the WhatsApp Business app; out_of_hours: the channel's
    # out-of-hours reply, sent by Parley
    source: str | None = None
    reaction: str | None = None  # the customer's reaction to it
    edited: bool = False  # the customer changed it (`text` is the new text)
    deleted: bool = False  # the customer deleted it (`text` is then null)
    # Outbound only: queued, accepted, sent, delivered, read, played, failed or unconfirmed.
    status: str | None = None
    wamid: str | None = None
    error: str | None = None  # why it failed: Meta's code and title, or Parley's reason
    pricing: str | None = None  # Meta's "<category>/<type>"
    callback_data: str | None = None
    media: MediaOut | None = None
    place: PlaceOut | None = None  # a location
    cards: list[CardOut] = []  # shared contacts
    interactive: InteractiveBody | None = None  # the buttons or list an agent sent
    business_reaction: str | None = None  # an agent's reaction to it
    quoted: QuotedOut | None = None  # the message `reply_to` names


class SlaOut(msgspec.Struct, frozen=True, kw_only=True):
    target: Literal["first_response", "next_response", "resolution"]
    due: datetime
    warned: bool  # its warning lead has begun
    breached: bool  # missed


class ConversationView(msgspec.Struct, frozen=True, kw_only=True):
    channel: str
    customer: Customer
    queue: Queue
    assignee: str | None
    opened_at: datetime
    last_activity_at: datetime
    last_customer_message_at: datetime | None
    first_response_at: datetime | None
    snoozed_until: datetime | None  # parked in Pending until then (it wakes to New or Open)
    sla: list[SlaOut]  # the SLA targets running in this cycle, soonest first
    tags: list[str]
    topics: list[str]
    notes: list[Note]
    messages: list[MessageOut]
    version: int


class ConversationSummary(msgspec.Struct, frozen=True, kw_only=True):
    customer: Customer
    queue: Queue
    assignee: str | None
    opened_at: datetime
    last_activity_at: datetime
    last_customer_message_at: datetime | None
    snoozed_until: datetime | None
    preview: str | None  # the last message's text (or its type), for the list


class Page(msgspec.Struct, frozen=True, kw_only=True):
    conversations: list[ConversationSummary]
    next_cursor: str | None  # None on the last page


# --- Actions: each an event on the conversation's partition ---------------------------


# A media store key: what POST /v1/channels/{channel}/uploads answers.
MediaKey = Annotated[
    str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$(?!\n)", description="an uploaded file's key")
]
MediaKind = Literal["image", "video", "audio", "document", "sticker"]


class AttachmentBody(Body, frozen=True):
    """A file uploaded first; `kind` defaults to what its type is sent as (a document
    when nothing else), `filename` to none (documents show it)."""

    key: MediaKey
    kind: MediaKind | None = None
    filename: Annotated[str, msgspec.Meta(min_length=1, max_length=240)] | None = None


class TemplateParametersBody(Body, frozen=True):
    """A template's variables: the header's (text, or a file), the body's {{1}}..{{n}}
    in order, and each URL button's by its index among the template's buttons."""

    header_text: Annotated[str, msgspec.Meta(min_length=1, max_length=60)] | None = None
    header_media: AttachmentBody | None = None
    body: list[Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]] = []
    buttons: dict[int, Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]] = {}


class ReplyBody(Body, frozen=True):
    """One of: free-form `text`; a file (`attachment`, with `text` as its caption where
    WhatsApp takes one); `interactive` reply buttons or a list; an approved `template`
    by name with its `parameters`. `reply_to` quotes a message of the conversation (its
    id or wamid)."""

    text: Text | None = None
    template: Label | None = None
    language: Language | None = None
    parameters: TemplateParametersBody | None = None
    attachment: AttachmentBody | None = None
    interactive: InteractiveBody | None = None
    reply_to: Annotated[str, msgspec.Meta(min_length=1, max_length=256)] | None = None


class ReactionBody(Body, frozen=True):
    """React to a message (its id or wamid) with one emoji; "" takes the reaction back."""

    message: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    emoji: Annotated[str, msgspec.Meta(max_length=16)]


class ReadBody(Body, frozen=True):
    """`typing`: also show the customer that an agent is writing (about 25 s)."""

    typing: bool = False


class UploadQuery(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kind: MediaKind | None = None  # default: what the file's type is sent as
    filename: Annotated[str, msgspec.Meta(min_length=1, max_length=240)] | None = None


class Upload(msgspec.Struct, frozen=True, kw_only=True):
    """A file kept for sending: name it by `key` in a reply's `attachment`."""

    key: str
    kind: str  # what it is sent as: image, video, audio, document or sticker
    mime_type: str
    size: int
    filename: str | None = None


class SnoozeBody(Body, frozen=True):
    """Until when (with its time zone): in the future, and within a year."""

    until: datetime


class MoveTo(Body, frozen=True):
    queue: Literal["pending", "resolved"]


class AssigneeBody(Body, frozen=True):
    user: Id


class TagBody(Body, frozen=True):
    tag: Label


class TopicBody(Body, frozen=True):
    topic: Label


class NoteBody(Body, frozen=True):
    text: Text


class ActionApplied(msgspec.Struct, frozen=True, kw_only=True):
    """200: the engine decided the action within the wait."""

    event_id: str
    outcome: Literal["applied", "ignored"]
    reason: str | None  # why nothing changed, when ignored
    conversation: ConversationView


class Accepted(msgspec.Struct, frozen=True, kw_only=True):
    """202: on the conversation's partition, not decided yet; ask `status_url`."""

    event_id: str
    status: Literal["pending"] = "pending"
    status_url: str


class ActionStatus(msgspec.Struct, frozen=True, kw_only=True):
    event_id: str
    status: Literal["pending", "applied", "ignored", "rejected"]
    reason: str | None = None


# --- Reports --------------------------------------------------------------------------


class DurationSummary(msgspec.Struct, frozen=True, kw_only=True):
    """How many times were measured, and their median and 90th percentile (seconds)."""

    count: int
    median_s: int | None
    p90_s: int | None


class ReportDay(msgspec.Struct, frozen=True, kw_only=True):
    date: str  # YYYY-MM-DD, UTC
    opened: int
    replies: int
    resolved: int
    auto_resolved: int
    sla_warnings: int  # SLA targets that came within their warning lead
    sla_breaches: int  # SLA targets missed
    first_response: DurationSummary
    resolution: DurationSummary


class Report(msgspec.Struct, frozen=True, kw_only=True):
    channel: str
    start: str  # first day, YYYY-MM-DD (UTC)
    end: str  # last day, included
    queues: dict[str, int]  # sizes now
    total: ReportDay  # the whole range; its `date` is "start/end"
    days: list[ReportDay]


# --- Registering numbers, and templates -----------------------------------------------


class NewChannel(Body, frozen=True):
    id: PhoneNumberId
    display_name: Name
    access_token: Secret  # the Graph API token for this number
    app_secret: Secret  # signs its webhooks
    verify_token: Secret  # answers Meta's subscription handshake


class RegistrationOut(msgspec.Struct, frozen=True, kw_only=True):
    channel: str
    display_name: str
    status: Status
    code_method: str | None
    code_requested_at: float | None
    verified_at: float | None
    registered_at: float | None


class CodeRequest(Body, frozen=True):
    method: Literal["SMS", "VOICE"] = "SMS"
    language: Language = "en_US"


class Code(Body, frozen=True):
    code: SixDigits


class Pin(Body, frozen=True):
    pin: SixDigits  # the number's two-step verification PIN


class TemplateIn(Body, frozen=True):
    category: Literal["MARKETING", "UTILITY", "AUTHENTICATION"]
    status: Literal["APPROVED", "PENDING", "REJECTED", "PAUSED", "DISABLED"] = "APPROVED"
    # As Meta lists them (HEADER, BODY, FOOTER, BUTTONS): a send's variables are checked
    # against them. Usually synced from the business account instead (templates/sync).
    components: list[dict[str, Any]] = []


class TemplateOut(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    language: str  # e.g. "en_US"
    category: str  # MARKETING, UTILITY or AUTHENTICATION
    status: str  # APPROVED, PENDING, REJECTED, PAUSED, DISABLED...
    reason: str | None = None  # Meta's, when rejected or paused
    updated_at: float
    components: list[dict[str, Any]] = []  # HEADER, BODY, FOOTER, BUTTONS, as Meta gives them
    # What a send must give (`parameters`): "header_text", "header_media:<kind>",
    # "body:<n>" and "button:<index>", from the components.
    variables: list[str] = []
    id: str | None = None  # Meta's, once the business account has it


class TemplateSynced(msgspec.Struct, frozen=True, kw_only=True):
    """The channel's templates are now its business account's list."""

    waba_id: str
    templates: int


class TemplateList(msgspec.Struct, frozen=True, kw_only=True):
    templates: list[TemplateOut]


# --- Query strings and errors ---------------------------------------------------------


class ListQuery(msgspec.Struct, frozen=True, kw_only=True):
    queue: Literal["new", "open", "pending", "resolved"] = "new"
    limit: Annotated[int, msgspec.Meta(ge=1, le=200)] = 50
    # oldest: least recent activity first (who has waited longest); newest: most recent
    order: Literal["oldest", "newest"] = "oldest"
    cursor: Annotated[str, msgspec.Meta(max_length=512)] | None = None


class SearchQuery(msgspec.Struct, frozen=True, kw_only=True):
    """`q`: a phone, BSUID or username (exact), or the start of a name or username."""

    q: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    limit: Annotated[int, msgspec.Meta(ge=1, le=50)] = 20


class QueueCounts(msgspec.Struct, frozen=True, kw_only=True):
    new: int
    open: int
    pending: int
    resolved: int


class SearchResult(msgspec.Struct, frozen=True, kw_only=True):
    conversations: list[ConversationSummary]


class SavedReply(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    text: str


class SavedReplies(msgspec.Struct, frozen=True, kw_only=True):
    saved_replies: list[SavedReply]


class SavedReplyBody(Body, frozen=True):
    text: Text


class StreamQuery(msgspec.Struct, frozen=True, kw_only=True):
    """`channels`: comma-separated channel ids (default: every channel the caller may
    see). `last_event_id`: where to resume, for clients that cannot send the
    `Last-Event-ID` header."""

    channels: Annotated[str, msgspec.Meta(max_length=4096)] | None = None
    last_event_id: Annotated[str, msgspec.Meta(max_length=8192)] | None = None


class ChangeEvent(msgspec.Struct, frozen=True, kw_only=True):
    """The data of a `change` event of GET /v1/stream: one change the engine applied
    (docs/inbox.md). Other events: `ready` ({"channels": [...]}), `reset` ({"channel",
    "reason"}: reload that channel), and a `: heartbeat` comment every 15 s."""

    channel: str
    customer: str
    kind: str
    event: str
    version: int
    was: Queue | None
    queue: Queue
    assignee: str | None
    last_activity_at: float
    last_customer_message_at: float | None = None
    snoozed_until: float | None = None
    customer_name: str | None = None
    preview: str | None = None


class ReportQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Days are UTC; `to` defaults to today and `from` to six days before `to`."""

    from_: Day | None = msgspec.field(default=None, name="from")
    to: Day | None = None


class ErrorDetail(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    message: str
    field: str | None = None


class ErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    error: ErrorDetail


# --- From the store's records ---------------------------------------------------------


def _when(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _maybe_when(seconds: float | None) -> datetime | None:
    return None if seconds is None else _when(seconds)


def availability_out(user: str, presence: Presence) -> AvailabilityOut:
    return AvailabilityOut(
        user=user,
        status=presence.status.value,
        since=_when(presence.since) if presence.since else None,
        auto=presence.auto,
    )


def customer_out(record: CustomerRecord) -> Customer:
    return Customer(
        id=record.id,
        phone=record.phone,
        user_id=record.user_id,
        username=record.username,
        name=record.name,
        group_id=record.group_id,
        marketing_opt_out=record.marketing_opt_out,
    )


def note_out(record: NoteRecord) -> Note:
    return Note(user=record.user, text=record.text, at=_when(record.at))


def message_out(record: MessageRecord, channel: str, customer: str) -> MessageOut:
    return MessageOut(
        id=record.id,
        direction=record.direction,
        type=record.type,
        at=_when(record.at),
        text=record.text,
        template=record.template,
        user=record.user,
        author=record.author,
        reply_to=record.reply_to,
        source=record.source,
        reaction=record.reaction,
        edited=record.edited,
        deleted=record.deleted,
        status=record.status,
        wamid=record.wamid,
        error=record.error,
        pricing=record.pricing,
        callback_data=record.callback_data,
        media=media_out(record, channel, customer),
        place=_place_out(record.place),
        cards=[CardOut(name=card.name, phones=list(card.phones)) for card in record.cards],
        interactive=_interactive_out(record.interactive),
        business_reaction=record.business_reaction,
        quoted=_quoted_out(record.quoted),
        preview=record.preview,
    )


def media_url(channel: str, customer: str, message: str) -> str:
    return (
        f"/v1/media/{quote(channel, safe='')}/{quote(customer, safe='')}/{quote(message, safe='')}"
    )


def media_out(record: MessageRecord, channel: str, customer: str) -> MediaOut | None:
    media = record.media
    if media is None:
        return None
    state: Literal["fetching", "stored", "failed"] = "fetching"
    if media.state in ("stored", "failed"):
        state = "stored" if media.state == "stored" else "failed"
    return MediaOut(
        kind=media.kind,
        state=state,
        mime_type=media.mime_type,
        filename=media.filename,
        voice=media.voice,
        size=media.size,
        error=media.error,
        url=media_url(channel, customer, record.id) if state == "stored" else None,
    )


def _place_out(place: Place | None) -> PlaceOut | None:
    if place is None:
        return None
    return PlaceOut(
        latitude=place.latitude, longitude=place.longitude, name=place.name, address=place.address
    )


def _choice_out(choice: Choice) -> ChoiceBody:
    return ChoiceBody(id=choice.id, title=choice.title, description=choice.description)


def _interactive_out(interactive: Interactive | None) -> InteractiveBody | None:
    if interactive is None:
        return None
    return InteractiveBody(
        body=interactive.body,
        buttons=[_choice_out(button) for button in interactive.buttons],
        button=interactive.button,
        sections=[
            SectionBody(title=section.title, rows=[_choice_out(row) for row in section.rows])
            for section in interactive.sections
        ],
        header=interactive.header,
        footer=interactive.footer,
    )


def _quoted_out(quoted: QuotedRecord | None) -> QuotedOut | None:
    if quoted is None:
        return None
    return QuotedOut(id=quoted.id, direction=quoted.direction, preview=quoted.preview)


def conversation_view(record: ConversationRecord) -> ConversationView:
    return ConversationView(
        channel=record.channel,
        customer=customer_out(record.customer),
        queue=record.queue,
        assignee=record.assignee,
        opened_at=_when(record.opened_at),
        last_activity_at=_when(record.last_activity_at),
        last_customer_message_at=_maybe_when(record.last_customer_at),
        first_response_at=_maybe_when(record.first_response_at),
        snoozed_until=_maybe_when(record.snoozed_until),
        sla=[
            SlaOut(
                target=deadline.target,  # type: ignore[arg-type]  # one of the three
                due=_when(deadline.due),
                warned=deadline.warned,
                breached=deadline.breached,
            )
            for deadline in sorted(record.sla, key=lambda deadline: deadline.due)
        ],
        tags=list(record.tags),
        topics=list(record.topics),
        notes=[note_out(note) for note in record.notes],
        messages=[
            message_out(message, record.channel, record.customer.id) for message in record.messages
        ],
        version=record.version,
    )


def summary_out(record: SummaryRecord) -> ConversationSummary:
    return ConversationSummary(
        customer=customer_out(record.customer),
        queue=record.queue,
        assignee=record.assignee,
        opened_at=_when(record.opened_at),
        last_activity_at=_when(record.last_activity_at),
        last_customer_message_at=_maybe_when(record.last_customer_at),
        snoozed_until=_maybe_when(record.snoozed_until),
        preview=record.preview,
    )


def page_out(record: PageRecord) -> Page:
    return Page(
        conversations=[summary_out(summary) for summary in record.conversations],
        next_cursor=record.next_cursor,
    )


def _durations(summary: reports.Summary) -> DurationSummary:
    return DurationSummary(count=summary.count, median_s=summary.median_s, p90_s=summary.p90_s)


def _day(day: reports.DayReport) -> ReportDay:
    return ReportDay(
        date=day.date,
        opened=day.opened,
        replies=day.replies,
        resolved=day.resolved,
        auto_resolved=day.auto_resolved,
        sla_warnings=day.sla_warnings,
        sla_breaches=day.sla_breaches,
        first_response=_durations(day.first_response),
        resolution=_durations(day.resolution),
    )


def report_out(record: ReportRecord) -> Report:
    return Report(
        channel=record.channel,
        start=record.start.isoformat(),
        end=record.end.isoformat(),
        queues=dict(record.queues),
        total=_day(record.total),
        days=[_day(day) for day in record.days],
    )


def user_out(record: UserRecord, total_capacity: int | None = None) -> UserOut:
    return UserOut(
        id=record.id,
        name=record.name,
        admin=record.admin,
        teams=list(record.teams),
        created_at=record.created_at,
        total_capacity=total_capacity,
    )


def team_out(record: TeamRecord) -> TeamOut:
    return TeamOut(
        id=record.id, name=record.name, members=list(record.members), created_at=record.created_at
    )


def registration_out(record: Registration) -> RegistrationOut:
    """Never its secrets."""
    return RegistrationOut(
        channel=record.channel,
        display_name=record.display_name,
        status=record.status,
        code_method=record.code_method,
        code_requested_at=record.code_requested_at,
        verified_at=record.verified_at,
        registered_at=record.registered_at,
    )


def template_out(record: Template) -> TemplateOut:
    return TemplateOut(
        name=record.name,
        language=record.language,
        category=record.category,
        status=record.status,
        reason=record.reason,
        updated_at=record.updated_at,
        components=record.components,
        variables=template_variables(record.components),
        id=record.id,
    )
