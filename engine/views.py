"""Read models over the engine's Redis layout: a conversation, a page of a queue, a
channel's report, an action's result. The API and the operator's CLI read through here;
only the engine writes.
"""

import base64
import binascii
from datetime import UTC, date, datetime
from typing import cast

import msgspec

from engine import delivery, keys, reports
from engine.codec import FIELDS, decode_conversation
from engine.model import Conversation, Queue
from engine.records import ActionResult, LoggedMessage
from parley.redis import RedisClient, as_text


class Note(msgspec.Struct, frozen=True, kw_only=True):
    user: str
    text: str
    at: datetime


class Message(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    direction: str  # inbound | outbound
    type: str
    at: datetime
    text: str | None = None
    template: str | None = None
    user: str | None = None
    # Outbound only: queued, accepted, sent, delivered, read, failed or unconfirmed.
    status: str | None = None
    wamid: str | None = None
    error: str | None = None  # why it failed: Meta's code and title, or Parley's reason


class ConversationView(msgspec.Struct, frozen=True, kw_only=True):
    channel: str
    wa_id: str
    queue: Queue
    assignee: str | None
    opened_at: datetime
    last_activity_at: datetime
    last_customer_message_at: datetime | None
    first_response_at: datetime | None
    tags: list[str]
    topics: list[str]
    notes: list[Note]
    messages: list[Message]
    version: int


class ConversationSummary(msgspec.Struct, frozen=True, kw_only=True):
    wa_id: str
    queue: Queue
    assignee: str | None
    opened_at: datetime
    last_activity_at: datetime


class Page(msgspec.Struct, frozen=True, kw_only=True):
    conversations: list[ConversationSummary]
    next_cursor: str | None  # None on the last page


class Report(msgspec.Struct, frozen=True, kw_only=True):
    channel: str
    start: str  # first day, YYYY-MM-DD (UTC)
    end: str  # last day, included
    queues: dict[str, int]  # sizes now
    total: reports.DayReport  # the whole range; its `date` is "start/end"
    days: list[reports.DayReport]


class CursorError(ValueError):
    """A cursor this listing did not hand out."""


class _Cursor(msgspec.Struct, frozen=True, array_like=True):
    queue: str
    newest_first: bool
    score: float  # last activity (ms) of the last conversation shown
    wa_id: str


def _when(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _maybe_when(seconds: float | None) -> datetime | None:
    return None if seconds is None else _when(seconds)


class _StoredNote(msgspec.Struct, frozen=True):
    user: str
    text: str
    at: float


_note = msgspec.json.Decoder(_StoredNote)
_line = msgspec.json.Decoder(LoggedMessage)
_result = msgspec.json.Decoder(ActionResult)


async def conversation(client: RedisClient, channel: str, wa_id: str) -> ConversationView | None:
    """The conversation as an agent sees it; None when there is none. One round trip,
    plus one for outbound messages' delivery statuses."""
    pipe = client.pipeline(transaction=False)
    pipe.hmget(keys.conversation(channel, wa_id), FIELDS)
    pipe.smembers(keys.tags(channel, wa_id))
    pipe.smembers(keys.topics(channel, wa_id))
    pipe.lrange(keys.notes(channel, wa_id), 0, -1)
    pipe.lrange(keys.log(channel, wa_id), 0, -1)
    fields, tags, topics, notes, log = await pipe.execute()
    state = decode_conversation(fields)
    if state is None:
        return None
    lines = [_line.decode(line) for line in log]
    deliveries = await _deliveries(
        client, channel, wa_id, [line.id for line in lines if line.direction == "outbound"]
    )
    return ConversationView(
        channel=channel,
        wa_id=wa_id,
        queue=state.queue,
        assignee=state.assignee,
        opened_at=_when(state.opened_at),
        last_activity_at=_when(state.last_activity_at),
        last_customer_message_at=_maybe_when(state.last_customer_at),
        first_response_at=_maybe_when(state.first_response_at),
        tags=sorted(as_text(tag) for tag in tags),
        topics=sorted(as_text(topic) for topic in topics),
        notes=[_shown(_note.decode(note)) for note in notes],
        messages=[_message(line, deliveries.get(line.id)) for line in lines],
        version=state.version,
    )


def _shown(note: _StoredNote) -> Note:
    return Note(user=note.user, text=note.text, at=_when(note.at))


async def _deliveries(
    client: RedisClient, channel: str, wa_id: str, reply_ids: list[str]
) -> dict[str, delivery.Delivery]:
    """Each reply's delivery: its wamid (or why it was not sent), then that wamid's
    status and error. At most two reads, however many replies."""
    if not reply_ids:
        return {}
    messages = keys.messages(channel, wa_id)
    sent = await client.hmget(messages, [delivery.sent_field(id_) for id_ in reply_ids])
    sent_text = [None if value is None else as_text(value) for value in sent]
    wamids = [
        value
        for value in sent_text
        if value is not None and not value.startswith(delivery.NOT_SENT)
    ]
    found: dict[str, tuple[str | None, str | None]] = {}
    if wamids:
        fields = [*wamids, *(delivery.error_field(wamid) for wamid in wamids)]
        values = [None if v is None else as_text(v) for v in await client.hmget(messages, fields)]
        found = {wamid: (values[i], values[len(wamids) + i]) for i, wamid in enumerate(wamids)}
    return {
        id_: delivery.delivery(value, *found.get(value or "", (None, None)))
        for id_, value in zip(reply_ids, sent_text, strict=True)
    }


def _message(line: LoggedMessage, sent: delivery.Delivery | None) -> Message:
    if line.direction == "outbound":
        sent = sent or delivery.delivery(None, None, None)
    return Message(
        id=line.id,
        direction=line.direction,
        type=line.type,
        at=_when(line.at),
        text=line.text,
        template=line.template,
        user=line.user,
        status=sent.status if sent else None,
        wamid=sent.wamid if sent else None,
        error=sent.error if sent else None,
    )


async def state(client: RedisClient, channel: str, wa_id: str) -> Conversation | None:
    fields = await client.hmget(keys.conversation(channel, wa_id), FIELDS)
    return decode_conversation(cast(list[bytes | None], fields))


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


async def page(
    client: RedisClient,
    channel: str,
    queue: Queue,
    *,
    limit: int,
    cursor: str | None = None,
    newest_first: bool = False,
) -> Page:
    """A page of `queue` by last activity. The cursor is the last (activity, wa_id)
    shown, so paging is stable under concurrent changes: a conversation that did not
    change is shown exactly once; one that was touched meanwhile moves to its new place
    (and may show again further on). Raises CursorError."""
    after = decode_cursor(cursor, queue, newest_first) if cursor else None
    key = keys.queue(channel, queue)
    rows = await _rows_after(client, key, after, limit + 1, newest_first)
    shown = rows[:limit]
    states = await _states(client, channel, [wa_id for wa_id, _ in shown])
    summaries = []
    for (wa_id, _), fields in zip(shown, states, strict=True):
        state = decode_conversation(fields)
        if state is None:  # removed between the two reads
            continue
        summaries.append(
            ConversationSummary(
                wa_id=wa_id,
                queue=state.queue,
                assignee=state.assignee,
                opened_at=_when(state.opened_at),
                last_activity_at=_when(state.last_activity_at),
            )
        )
    next_cursor = None
    if len(rows) > limit:
        wa_id, score = shown[-1]
        next_cursor = encode_cursor(_Cursor(queue.value, newest_first, score, wa_id))
    return Page(conversations=summaries, next_cursor=next_cursor)


# A page's states in one command and one reply: 50 pipelined HMGETs cost the API
# process several times more to send and parse. The keys share the channel's slot.
_READ_STATES = """
local states = {}
for i, key in ipairs(KEYS) do
  states[i] = redis.call('HMGET', key, unpack(ARGV))
end
return states
"""


async def _states(client: RedisClient, channel: str, wa_ids: list[str]) -> list[list[bytes | None]]:
    if not wa_ids:
        return []
    read = client.register_script(_READ_STATES)
    found = await read(keys=[keys.conversation(channel, wa_id) for wa_id in wa_ids], args=FIELDS)
    return cast(list[list[bytes | None]], found)


async def _rows_after(
    client: RedisClient, key: str, after: _Cursor | None, count: int, newest_first: bool
) -> list[tuple[str, float]]:
    """Up to `count` (wa_id, score) rows strictly after the cursor in sorted-set order
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
    wa_id, score = row
    if score != cursor.score:
        return True
    return wa_id < cursor.wa_id if newest_first else wa_id > cursor.wa_id


async def queue_sizes(client: RedisClient, channel: str) -> dict[str, int]:
    pipe = client.pipeline(transaction=False)
    for queue in Queue:
        pipe.zcard(keys.queue(channel, queue))
    sizes = await pipe.execute()
    return {queue.value: size for queue, size in zip(Queue, sizes, strict=True)}


async def report(client: RedisClient, channel: str, start: date, end: date) -> Report:
    """Figures per day from `start` to `end` (included), and for the whole range: one
    hash read per day and four queue sizes, whatever the number of conversations."""
    span = reports.days(start, end)
    pipe = client.pipeline(transaction=False)
    for day in span:
        pipe.hgetall(keys.report(channel, day))
    for queue in Queue:
        pipe.zcard(keys.queue(channel, queue))
    answers = await pipe.execute()
    tallies = [reports.tally(fields) for fields in answers[: len(span)]]
    total = reports.Tally()
    for one in tallies:
        total.add(one)
    return Report(
        channel=channel,
        start=start.isoformat(),
        end=end.isoformat(),
        queues={queue.value: size for queue, size in zip(Queue, answers[len(span) :], strict=True)},
        total=total.report(f"{start.isoformat()}/{end.isoformat()}"),
        days=[one.report(day.isoformat()) for one, day in zip(tallies, span, strict=True)],
    )


async def action_result(client: RedisClient, channel: str, event_id: str) -> ActionResult | None:
    """What became of an agent's action; None while the engine has not decided it (or
    after ten minutes, when results are forgotten)."""
    raw = await client.get(keys.result(channel, event_id))
    return None if raw is None else _result.decode(raw)


async def wait_for_result(
    client: RedisClient, channel: str, event_id: str, timeout_s: float
) -> ActionResult | None:
    """Block until the engine decides the action or `timeout_s` passes (then None).
    The engine pushes a wake-up after writing the result, so no polling."""
    if timeout_s <= 0:  # BLPOP takes 0 as "forever": no wait is one look, not a block
        return await action_result(client, channel, event_id)
    if await client.blpop([keys.wake(channel, event_id)], timeout=timeout_s) is None:
        return None
    return await action_result(client, channel, event_id)
