"""Read models over the engine's Redis layout: a conversation, a page of a queue, a
channel's report, an action's result. The API and the operator's CLI read through one
`Reader` per process; only the engine writes.

The reader answers in records of its own (times as Unix seconds): what the store holds,
named for what it is. The /v1 API's public shapes are api/schemas.py's, converted from
these explicitly, so a change here cannot change the API by accident.
"""

import base64
import binascii
from collections.abc import Sequence
from datetime import date
from typing import Any, cast

import msgspec

from parley.events import GROUP_PREFIX, Card, Identity, Interactive, Place
from parley.redis import RedisClient, as_text
from parley.sla import Deadline
from parley.state import Conversation, Queue
from store import _keys as keys
from store import _scripts, delivery, reports
from store._codec import FIELDS, decode_conversation
from store._protocol import NAME_SEPARATOR
from store.aliases import USERNAME, candidates
from store.fetches import MediaRecord
from store.writes import OUTBOUND, ActionResult, LogLine, MediaLine, preview


class CustomerRecord(msgspec.Struct, frozen=True, kw_only=True):
    """Who a conversation is with: `id` is Parley's (stable; the identifier the customer
    was first seen by); the rest are None where unknown."""

    id: str
    phone: str | None
    user_id: str | None  # the business-scoped user id (BSUID)
    username: str | None
    name: str | None  # their WhatsApp profile name
    group_id: str | None = None  # set for a WhatsApp group
    marketing_opt_out: bool = False


class NoteRecord(msgspec.Struct, frozen=True, kw_only=True):
    user: str
    text: str
    at: float


class MediaView(msgspec.Struct, frozen=True, kw_only=True):
    """A message's file: `fetching` (a customer's, not in the media store yet), `stored`
    (under `key`), or `failed` (with `error`: the customer's file could not be had)."""

    kind: str  # image, video, audio, document, sticker
    state: str
    mime_type: str | None = None
    filename: str | None = None
    voice: bool = False
    size: int | None = None
    key: str | None = None
    error: str | None = None


class QuotedRecord(msgspec.Struct, frozen=True, kw_only=True):
    """The message a reply quotes, as far as the log still holds it."""

    id: str
    direction: str
    preview: str


class MessageRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A line of the conversation's log, with what happened to it since."""

    id: str
    direction: str  # inbound, outbound, or system (e.g. the customer's number changed)
    type: str
    at: float
    preview: str  # the line as one readable phrase ("Photo: caption", "Location: ...")
    text: str | None = None
    template: str | None = None
    user: str | None = None
    author: str | None = None  # who wrote it, in a group
    reply_to: str | None = None  # the wamid of the message it answers
    source: str | None = None  # business_app: sent from the WhatsApp Business app
    reaction: str | None = None  # the customer's reaction to it
    edited: bool = False  # the customer changed it (`text` is the new text)
    deleted: bool = False  # the customer deleted it (`text` is then None)
    # Outbound only: queued, accepted, sent, delivered, read, played, failed or unconfirmed.
    status: str | None = None
    wamid: str | None = None
    error: str | None = None  # why it failed: Meta's code and title, or Parley's reason
    pricing: str | None = None  # Meta's "<category>/<type>"
    callback_data: str | None = None
    media: MediaView | None = None
    place: Place | None = None
    cards: list[Card] = []
    interactive: Interactive | None = None  # the buttons or list an agent sent
    business_reaction: str | None = None  # an agent's reaction to it
    quoted: QuotedRecord | None = None  # the message `reply_to` names, when still logged


class ConversationRecord(msgspec.Struct, frozen=True, kw_only=True):
    channel: str
    customer: CustomerRecord
    queue: Queue
    assignee: str | None
    opened_at: float
    last_activity_at: float
    last_customer_at: float | None  # the customer's last message
    first_response_at: float | None
    snoozed_until: float | None  # parked in Pending until then
    sla: tuple[Deadline, ...]  # the SLA targets running
    tags: list[str]
    topics: list[str]
    notes: list[NoteRecord]
    messages: list[MessageRecord]
    version: int


class SummaryRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A conversation as a queue's listing shows it."""

    customer: CustomerRecord
    queue: Queue
    assignee: str | None
    opened_at: float
    last_activity_at: float
    last_customer_at: float | None
    snoozed_until: float | None
    preview: str | None  # the last message's text (or its type)


class PageRecord(msgspec.Struct, frozen=True, kw_only=True):
    conversations: list[SummaryRecord]
    next_cursor: str | None  # None on the last page


class ReportRecord(msgspec.Struct, frozen=True, kw_only=True):
    channel: str
    start: date  # first day (UTC)
    end: date  # last day, included
    queues: dict[str, int]  # sizes now
    total: reports.DayReport  # the whole range; its `date` is "start/end"
    days: list[reports.DayReport]


class CursorError(ValueError):
    """A cursor this listing did not hand out."""


class _Cursor(msgspec.Struct, frozen=True, array_like=True):
    queue: str
    newest_first: bool
    score: float  # last activity (ms) of the last conversation shown
    customer: str


class _StoredNote(msgspec.Struct, frozen=True):
    user: str
    text: str
    at: float


_note = msgspec.json.Decoder(_StoredNote)
_line = msgspec.json.Decoder(LogLine)
_media_record = msgspec.json.Decoder(MediaRecord)
FETCHING, STORED = "fetching", "stored"
_result = msgspec.json.Decoder(ActionResult)


class Reader:
    """Every read of the API and the CLI, through one client. Build one per process: the
    page-rows script is registered here, once (redis-py keeps its SHA and loads it again
    after a Redis restart forgot it)."""

    def __init__(self, client: RedisClient) -> None:
        self.client = client
        self._read_rows = client.register_script(_scripts.source("read_rows"))

    async def find_customer(self, channel: str, identifier: str) -> str | None:
        """The id of the customer `identifier` names on `channel`: a conversation's own
        id, else a phone, BSUID, parent BSUID, group id or username (with or without its
        @) linked to one; None when none does. One round trip."""
        lookups = [candidate.alias for candidate in candidates(_as_every_identifier(identifier))]
        username = identifier if identifier.startswith("@") else f"@{identifier}"
        lookups += [USERNAME + username, USERNAME + identifier.removeprefix("@")]
        pipe = self.client.pipeline(transaction=False)
        pipe.exists(keys.conversation(channel, identifier))
        pipe.hmget(keys.aliases(channel), lookups)
        exists, named = await pipe.execute()
        if exists:
            return identifier
        return next((as_text(value) for value in named if value is not None), None)

    async def conversation(self, channel: str, customer: str) -> ConversationRecord | None:
        """The conversation as an agent sees it; None when there is none. One round trip,
        plus one for what happened to its messages (delivery, reactions, edits)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hmget(keys.conversation(channel, customer), FIELDS)
        pipe.smembers(keys.tags(channel, customer))
        pipe.smembers(keys.topics(channel, customer))
        pipe.lrange(keys.notes(channel, customer), 0, -1)
        pipe.lrange(keys.log(channel, customer), 0, -1)
        fields, tags, topics, notes, log = await pipe.execute()
        state = decode_conversation(fields, customer)
        if state is None:
            return None
        lines = [_line.decode(line) for line in log]
        about = await _about_messages(self.client, channel, customer, lines)
        return ConversationRecord(
            channel=channel,
            customer=_customer(customer, state),
            queue=state.queue,
            assignee=state.assignee,
            opened_at=state.opened_at,
            last_activity_at=state.last_activity_at,
            last_customer_at=state.last_customer_at,
            first_response_at=state.first_response_at,
            snoozed_until=state.snoozed_until,
            sla=state.sla,
            tags=sorted(as_text(tag) for tag in tags),
            topics=sorted(as_text(topic) for topic in topics),
            notes=[_note_record(_note.decode(note)) for note in notes],
            messages=_quoting([_message(line, about) for line in lines]),
            version=state.version,
        )

    async def media(self, channel: str, customer: str, message: str) -> MediaView | None:
        """The file of a message (by its id): a customer's stays findable by its record
        after the log has moved past it. One round trip."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hget(keys.messages(channel, customer), delivery.media_field(message))
        pipe.lrange(keys.log(channel, customer), 0, -1)
        fetched, log = await pipe.execute()
        fetched_text = None if fetched is None else as_text(fetched)
        line = next((ln for ln in map(_line.decode, log) if ln.id == message), None)
        if line is not None:
            return _media_view(line.media, fetched_text)
        if fetched_text is None:
            return None
        record = _media_record.decode(fetched_text)
        return MediaView(
            kind="document", state=record.state, mime_type=record.mime_type,
            filename=record.filename, size=record.size, key=record.key, error=record.error,
        )  # fmt: skip

    async def state(self, channel: str, customer: str) -> Conversation | None:
        """The conversation's state as the engine decides on it; None when there is none."""
        fields = await self.client.hmget(keys.conversation(channel, customer), FIELDS)
        return decode_conversation(cast(list[bytes | None], fields), customer)

    async def page(
        self,
        channel: str,
        queue: Queue,
        *,
        limit: int,
        cursor: str | None = None,
        newest_first: bool = False,
    ) -> PageRecord:
        """A page of `queue` by last activity. The cursor is the last (activity, customer)
        shown, so paging is stable under concurrent changes: a conversation that did not
        change is shown exactly once; one that was touched meanwhile moves to its new
        place (and may show again further on). Raises CursorError."""
        after = decode_cursor(cursor, queue, newest_first) if cursor else None
        key = keys.queue(channel, queue)
        rows = await _rows_after(self.client, key, after, limit + 1, newest_first)
        shown = rows[:limit]
        summaries = await self._summaries(channel, [customer for customer, _ in shown])
        next_cursor = None
        if len(rows) > limit:
            customer, score = shown[-1]
            next_cursor = encode_cursor(_Cursor(queue.value, newest_first, score, customer))
        return PageRecord(conversations=summaries, next_cursor=next_cursor)

    async def search(self, channel: str, text: str, limit: int) -> list[SummaryRecord]:
        """Conversations whose customer `text` names: exactly (a phone, BSUID, username
        or id), then by the start of a name or username (case folded), at most `limit`."""
        exact = await self.find_customer(channel, text)
        prefix = text.strip().lstrip("@").casefold()
        found: list[str] = [exact] if exact else []
        if prefix:
            entries = await self.client.zrangebylex(
                # 0xFF never occurs in UTF-8: the upper bound of every text with the prefix.
                keys.names(channel),
                b"[" + prefix.encode(),
                b"[" + prefix.encode() + b"\xff",
                start=0,
                num=limit,
            )
            for entry in entries:
                customer = as_text(entry).rpartition(NAME_SEPARATOR)[2]
                if customer not in found:
                    found.append(customer)
        return await self._summaries(channel, found[:limit])

    async def _summaries(self, channel: str, customers: list[str]) -> list[SummaryRecord]:
        """A list row of each customer's conversation (none for one that is gone)."""
        found = await self._rows(channel, customers)
        summaries = []
        for customer, (fields, last) in zip(customers, found, strict=True):
            state = decode_conversation(fields, customer)
            if state is None:  # removed between the two reads
                continue
            line = _line.decode(last) if last else None
            summaries.append(
                SummaryRecord(
                    customer=_customer(customer, state),
                    queue=state.queue,
                    assignee=state.assignee,
                    opened_at=state.opened_at,
                    last_activity_at=state.last_activity_at,
                    last_customer_at=state.last_customer_at,
                    snoozed_until=state.snoozed_until,
                    preview=preview(line) if line else None,
                )
            )
        return summaries

    async def _rows(
        self, channel: str, customers: list[str]
    ) -> list[tuple[list[bytes | None], bytes | None]]:
        """Per customer its conversation hash's fields and its last log line, in one
        command (store/lua/read_rows.lua)."""
        if not customers:
            return []
        row_keys = [
            key
            for customer in customers
            for key in (keys.conversation(channel, customer), keys.log(channel, customer))
        ]
        found = await self._read_rows(keys=row_keys, args=list(FIELDS))
        return [(fields, last or None) for fields, last in cast(list[list[Any]], found)]

    async def queue_sizes(self, channel: str) -> dict[str, int]:
        return (await queue_sizes_of(self.client, [channel]))[channel]

    async def report(self, channel: str, start: date, end: date) -> ReportRecord:
        """Figures per day from `start` to `end` (included), and for the whole range: one
        hash read per day and four queue sizes, whatever the number of conversations."""
        span = reports.days(start, end)
        pipe = self.client.pipeline(transaction=False)
        for day in span:
            pipe.hgetall(keys.report(channel, day))
        for queue in Queue:
            pipe.zcard(keys.queue(channel, queue))
        answers = await pipe.execute()
        tallies = [reports.tally(fields) for fields in answers[: len(span)]]
        total = reports.Tally()
        for one in tallies:
            total.add(one)
        sizes = answers[len(span) :]
        return ReportRecord(
            channel=channel,
            start=start,
            end=end,
            queues={queue.value: size for queue, size in zip(Queue, sizes, strict=True)},
            total=total.report(f"{start.isoformat()}/{end.isoformat()}"),
            days=[one.report(day.isoformat()) for one, day in zip(tallies, span, strict=True)],
        )

    async def action_result(self, channel: str, event_id: str) -> ActionResult | None:
        """What became of an agent's action; None while the engine has not decided it (or
        after ten minutes, when results are forgotten)."""
        raw = await self.client.get(keys.result(channel, event_id))
        return None if raw is None else _result.decode(raw)

    async def wait_for_result(
        self, channel: str, event_id: str, timeout_s: float
    ) -> ActionResult | None:
        """Block until the engine decides the action or `timeout_s` passes (then None).
        The engine pushes a wake-up after writing the result, so no polling."""
        if timeout_s <= 0:  # BLPOP takes 0 as "forever": no wait is one look, not a block
            return await self.action_result(channel, event_id)
        if await self.client.blpop([keys.wake(channel, event_id)], timeout=timeout_s) is None:
            return None
        return await self.action_result(channel, event_id)


async def queue_sizes_of(client: RedisClient, channels: Sequence[str]) -> dict[str, dict[str, int]]:
    """Each channel's queue sizes, in one round trip (a ZCARD per channel and queue)."""
    pipe = client.pipeline(transaction=False)
    for channel in channels:
        for queue in Queue:
            pipe.zcard(keys.queue(channel, queue))
    sizes = iter(await pipe.execute() if channels else [])
    return {channel: {queue.value: next(sizes) for queue in Queue} for channel in channels}


def _as_every_identifier(identifier: str) -> Identity:
    group = identifier.removeprefix(GROUP_PREFIX) if identifier.startswith(GROUP_PREFIX) else None
    return Identity(phone=identifier, user_id=identifier, parent_user_id=identifier, group_id=group)


def _customer(customer: str, state: Conversation) -> CustomerRecord:
    record = state.customer
    return CustomerRecord(
        id=customer,
        phone=record.phone,
        user_id=record.user_id,
        username=record.username,
        name=record.name,
        group_id=record.group_id,
        marketing_opt_out=state.marketing == "stop",
    )


def _note_record(note: _StoredNote) -> NoteRecord:
    return NoteRecord(user=note.user, text=note.text, at=note.at)


async def _about_messages(
    client: RedisClient, channel: str, customer: str, lines: list[LogLine]
) -> dict[str, str]:
    """The messages hash's fields about these lines: each reply's record (its wamid, or
    why it was not sent), then every wamid's status, error, pricing, callback data,
    reaction, edit and deletion. Two reads, however many lines."""
    messages = keys.messages(channel, customer)
    found: dict[str, str] = {}
    wamids = [line.id for line in lines if not _is_reply(line)]
    replies = [line.id for line in lines if _is_reply(line)]
    if replies:
        fields = [field for id_ in replies for field in delivery.reply_fields(id_)]
        values = await client.hmget(messages, fields)
        found = {f: as_text(v) for f, v in zip(fields, values, strict=True) if v is not None}
        for id_ in replies:
            wamid, _ = delivery.outcome(*(found.get(f) for f in delivery.reply_fields(id_)))
            if wamid is not None:
                wamids.append(wamid)
    fields = [
        field(wamid)
        for wamid in wamids
        for field in (
            str,
            delivery.error_field,
            delivery.pricing_field,
            delivery.callback_field,
            delivery.reaction_field,
            delivery.edit_field,
            delivery.deleted_field,
            delivery.media_field,
            delivery.business_reaction_field,
        )
    ]
    if fields:
        for field, value in zip(fields, await client.hmget(messages, fields), strict=True):
            if value is not None:
                found[field] = as_text(value)
    return found


def _is_reply(line: LogLine) -> bool:
    """An agent's reply (keyed by its event id until the sender records a wamid)."""
    return line.direction == OUTBOUND and line.source is None


def _message(line: LogLine, about: dict[str, str]) -> MessageRecord:
    """A log line with what happened to it since."""
    wamid: str | None = line.id
    sent: delivery.Delivery | None = None
    if _is_reply(line):
        wamid, failure = delivery.outcome(*(about.get(f) for f in delivery.reply_fields(line.id)))
        sent = delivery.delivery(wamid, failure, None, None)
    if line.direction == OUTBOUND and wamid is not None:
        sent = delivery.delivery(
            wamid, None, about.get(wamid), about.get(delivery.error_field(wamid))
        )
    text = line.text
    edited = wamid is not None and delivery.edit_field(wamid) in about
    deleted = wamid is not None and delivery.deleted_field(wamid) in about
    if edited and wamid is not None:
        text = about[delivery.edit_field(wamid)] or None
    if deleted:
        text = None
    return MessageRecord(
        id=line.id,
        direction=line.direction,
        type=line.type,
        at=line.at,
        preview=preview(msgspec.structs.replace(line, text=text)),
        text=text,
        template=line.template,
        user=line.user,
        author=line.author,
        reply_to=line.reply_to,
        source=line.source,
        reaction=about.get(delivery.reaction_field(wamid)) if wamid else None,
        edited=edited,
        deleted=deleted,
        status=sent.status if sent else None,
        wamid=wamid if line.direction == OUTBOUND else None,
        error=sent.error if sent else None,
        pricing=about.get(delivery.pricing_field(wamid)) if wamid else None,
        callback_data=about.get(delivery.callback_field(wamid)) if wamid else None,
        media=_media_view(line.media, about.get(delivery.media_field(wamid)) if wamid else None),
        place=line.place,
        cards=line.cards,
        interactive=line.interactive,
        business_reaction=about.get(delivery.business_reaction_field(wamid)) or None
        if wamid
        else None,
    )


def _media_view(line: MediaLine | None, fetched: str | None) -> MediaView | None:
    """An agent's file is in the store from the start (`line.key`); a customer's is
    being fetched until the fetcher records what became of it."""
    if line is None:
        return None
    view = MediaView(
        kind=line.kind, state=FETCHING, mime_type=line.mime_type, filename=line.filename,
        voice=line.voice,
    )  # fmt: skip
    if line.key is not None:
        return msgspec.structs.replace(view, state=STORED, key=line.key, size=line.size)
    if fetched is None:
        return view
    record = _media_record.decode(fetched)
    return msgspec.structs.replace(
        view,
        state=record.state,
        key=record.key,
        size=record.size,
        error=record.error,
        mime_type=record.mime_type or line.mime_type,
    )


def _quoting(messages: list[MessageRecord]) -> list[MessageRecord]:
    """Each reply with the message it quotes, found by wamid among those logged."""
    by_wamid = {m.wamid or m.id: m for m in messages}
    return [
        msgspec.structs.replace(message, quoted=_quoted(by_wamid[message.reply_to]))
        if message.reply_to in by_wamid
        else message
        for message in messages
    ]


def _quoted(message: MessageRecord) -> QuotedRecord:
    return QuotedRecord(id=message.id, direction=message.direction, preview=message.preview)


def encode_cursor(cursor: _Cursor) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(cursor)).decode().rstrip("=")


def decode_cursor(text: str, queue: Queue, newest_first: bool) -> _Cursor:
    """Raises CursorError for a cursor that is garbled or from another listing."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        cursor = msgspec.json.decode(raw, type=_Cursor)
    except (binascii.Error, ValueError, msgspec.DecodeError) as error:
        raise CursorError("not a cursor this listing handed out") from error
    if cursor.queue != queue.value or cursor.newest_first != newest_first:
        raise CursorError("the cursor belongs to another queue or order")
    return cursor


async def _rows_after(
    client: RedisClient, key: str, after: _Cursor | None, count: int, newest_first: bool
) -> list[tuple[str, float]]:
    """Up to `count` (customer, score) rows strictly after the cursor in sorted-set order
    (score, then wa_id). Rows sharing the cursor's score are skipped by name; the read
    widens while a whole read is such rows."""
    start = "-inf" if after is None else repr(after.score)
    end = "+inf"
    if newest_first:
        start, end = ("+inf" if after is None else repr(after.score)), "-inf"
    fetch = count
    while True:
        found = await client.zrange(
            key, start, end, byscore=True, desc=newest_first, offset=0, num=fetch, withscores=True
        )
        pairs = [
            (as_text(member), score) for member, score in cast(list[tuple[bytes, float]], found)
        ]
        if after is not None:
            pairs = [pair for pair in pairs if _beyond(pair, after, newest_first)]
        if len(pairs) >= count or len(found) < fetch:
            return pairs[:count]
        fetch *= 2


def _beyond(row: tuple[str, float], cursor: _Cursor, newest_first: bool) -> bool:
    customer, score = row
    if score != cursor.score:
        return True
    return customer < cursor.customer if newest_first else customer > cursor.customer
