"""What an applied decision writes besides the state, in the store's own words.

The engine says what happened (a tag added, a line for the log, a reply to send, a
report counter...); `store._protocol` turns each into apply.lua's records on the right
keys, so no one outside the store knows a key. The formats kept in Redis (`LogLine`,
`ActionResult`) are defined here too.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec

from parley.events import Card, Interactive, Place
from parley.state import Conversation, Outcome
from store.aliases import Claim
from store.changes import Change
from store.fetches import FetchJob
from store.outbox import Outgoing

INBOUND, OUTBOUND, SYSTEM = "inbound", "outbound", "system"
# System lines' types for a snooze: parked, woken by its timer, woken by the customer.
SNOOZED, WOKE, WOKE_EARLY = "snoozed", "woke", "woke_early"
# System lines' types for an SLA target (its name in `text`, its deadline in `until`).
SLA_WARNING, SLA_BREACH = "sla_warning", "sla_breach"
# A system line's type: taken from its assignee (who in `user`, why in `text`).
RELEASED = "released"
BUSINESS_APP = "business_app"
OUT_OF_HOURS = "out_of_hours"  # a log line's source: the channel's out-of-hours reply


class MediaLine(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A file on a log line: its kind and type as the message said (what became of it is
    on the message's record, `delivery.media_field`)."""

    kind: str  # image, video, audio, document, sticker
    mime_type: str | None = None
    filename: str | None = None
    voice: bool = False
    key: str | None = None  # an agent's file: its media store key
    size: int | None = None  # an agent's file: its size in bytes


class LogLine(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One line of a conversation's recent messages, as stored."""

    id: str  # the wamid of an inbound message or an echo; the event id of an agent's reply
    direction: str  # inbound, outbound or system
    type: str
    at: float
    text: str | None = None
    template: str | None = None
    user: str | None = None
    author: str | None = None  # who wrote, in a group: a name, else an identifier
    reply_to: str | None = None  # the wamid it answers
    source: str | None = None  # business_app: sent from the WhatsApp Business app
    media: MediaLine | None = None  # the file it carries
    place: Place | None = None  # a location
    cards: list[Card] = []  # shared contacts
    interactive: Interactive | None = None  # the buttons or list an agent sent
    until: float | None = None  # a snooze's end


_KIND_NAMES = {
    "image": "Photo",
    "video": "Video",
    "audio": "Audio",
    "document": "Document",
    "sticker": "Sticker",
}
_RELEASE_PHRASES = {
    "offline": "went offline",
    "returned": "the customer wrote while they were offline",
    "unanswered": "not answered in time",
}
PREVIEW_MAX = 200
_SNOOZE_PHRASES = {
    SNOOZED: "Snoozed",
    WOKE: "Snooze ended",
    WOKE_EARLY: "Snooze ended: the customer wrote",
}


def preview(line: LogLine) -> str:
    """The line as one readable phrase, for lists, previews and the change feed: "Photo:
    the caption", "Voice message", "Location: Café Bleu", "Contact: Ana Lima", "List:
    Pick a size", "Template: order_update"; plain text as it is."""
    if line.direction == SYSTEM and line.type in (SLA_WARNING, SLA_BREACH):
        target = (line.text or "target").replace("_", " ")
        due = (
            ""
            if line.until is None
            else datetime.fromtimestamp(line.until, UTC).strftime(" (due %Y-%m-%d %H:%M UTC)")
        )
        what = "due soon" if line.type == SLA_WARNING else "missed"
        return f"SLA: {target} {what}{due}"
    if line.direction == SYSTEM and line.type == RELEASED:
        why = _RELEASE_PHRASES.get(line.text or "", line.text or "")
        return f"Released from {line.user or 'its assignee'}: {why}"
    if line.direction == SYSTEM and line.type in _SNOOZE_PHRASES:
        phrase = _SNOOZE_PHRASES[line.type]
        if line.until is not None:
            phrase += datetime.fromtimestamp(line.until, UTC).strftime(" until %Y-%m-%d %H:%M UTC")
        return phrase
    text = (line.text or "").strip()
    label: str | None = None
    if line.media is not None:
        label = "Voice message" if line.media.voice else _KIND_NAMES.get(line.media.kind, "File")
        text = text or (line.media.filename or "")
    elif line.place is not None:
        label = "Location"
        text = ", ".join(part for part in (line.place.name, line.place.address) if part)
    elif line.cards:
        label = "Contact" if len(line.cards) == 1 else "Contacts"
        text = ", ".join(
            card.name or (card.phones[0] if card.phones else "?") for card in line.cards
        )
    elif line.interactive is not None:
        label = "List" if line.interactive.sections else "Buttons"
    elif line.template:
        label, text = "Template", line.template
    elif not text:
        return line.type
    phrase = f"{label}: {text}" if label and text else (label or text)
    return phrase if len(phrase) <= PREVIEW_MAX else phrase[: PREVIEW_MAX - 1] + "…"


class StoredNote(msgspec.Struct, frozen=True):
    """A note on a conversation, as stored (a JSON list item)."""

    user: str
    text: str
    at: float


class ActionResult(msgspec.Struct, frozen=True, kw_only=True):
    """What became of an agent's action, kept for the API that waits on it."""

    outcome: Outcome
    reason: str | None = None


class _Op(msgspec.Struct, frozen=True, tag=True):
    pass


class AddTag(_Op, frozen=True):
    tag: str


class AddTopic(_Op, frozen=True):
    topic: str


class AddNote(_Op, frozen=True):
    user: str
    text: str
    at: float


class Log(_Op, frozen=True):
    line: LogLine


class Count(_Op, frozen=True):
    """Add one to a report counter (store.reports) of the UTC day of `at`."""

    at: float
    counter: str


class CountTime(_Op, frozen=True):
    """Count a first-response or resolution time (store.reports) on the day of `at`."""

    at: float
    kind: str
    seconds: float


class Done(_Op, frozen=True):
    """An agent's action was decided: keep its result and wake the API waiting on it."""

    event_id: str
    result: ActionResult


class Send(_Op, frozen=True):
    """Queue a reply for the sender, on the channel's outbox."""

    outgoing: Outgoing


class Delivered(_Op, frozen=True):
    """A delivery status of a message we know: kept only if it ranks higher."""

    wamid: str
    status: str
    error: str | None = None
    pricing: str | None = None
    callback_data: str | None = None


class Sent(_Op, frozen=True):
    """A message sent outside Parley's sender (the Business app): known, at `status`."""

    wamid: str
    status: str


class Reacted(_Op, frozen=True):
    target: str
    emoji: str | None  # None: taken back


class BusinessReacted(_Op, frozen=True):
    """An agent's reaction to a message ("" taken back)."""

    target: str
    emoji: str


class Fetch(_Op, frozen=True):
    """Queue a customer's file to be fetched into the media store."""

    job: FetchJob


class Edited(_Op, frozen=True):
    target: str
    text: str | None


class Deleted(_Op, frozen=True):
    target: str


class Publish(_Op, frozen=True):
    """Put the change on its channel's feed, in the step that applies it (`when_known`:
    only if the event's status named a message Parley sent)."""

    change: Change
    when_known: bool = False


class Timer(_Op, frozen=True):
    """The conversation's next timer fires at `at` (None: it has none any more)."""

    at: float | None


class Holding(_Op, frozen=True):
    """The conversation's queue or assignee changed from `old` to `new` at `at`: the
    routing pool and the agents' loads follow."""

    old: Conversation | None
    new: Conversation
    at: float


class Returned(_Op, frozen=True):
    """The customer wrote to a Pending conversation with an assignee, at `at`: the
    router releases it if the assignee is offline."""

    at: float


class Record(_Op, frozen=True):
    """The customer record changed from `old` to `new` (fields and username alias)."""

    old: Conversation | None
    new: Conversation


Op = (
    AddTag
    | AddTopic
    | AddNote
    | Log
    | Count
    | CountTime
    | Done
    | Send
    | Delivered
    | Sent
    | Reacted
    | BusinessReacted
    | Fetch
    | Edited
    | Deleted
    | Publish
    | Timer
    | Holding
    | Returned
    | Record
)


class Write(msgspec.Struct, frozen=True, kw_only=True):
    """What one decided event writes, checked and applied atomically by apply.lua:
    `state` None is a "mark" (decided, unchanged). `digest` is `store.digest` of the
    event's id; `expected_version` the version it was decided on; `was_in` the queue the
    conversation was in (None: it had none)."""

    digest: bytes
    received_at: float
    expected_version: int
    customer: str
    state: Conversation | None = None
    was_in: str | None = None
    claims: Sequence[Claim] = ()
    ops: Sequence[Op] = ()
