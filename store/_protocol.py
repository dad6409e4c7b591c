"""The arguments of load.lua and apply.lua, packed and read back in one place.

Each script's header comment is its contract; this module is the other half. Names the
scripts use (state fields, the version field, delivery ranks) travel in the arguments,
so they are written once, here and in store/codec.py.
"""

import functools
from collections.abc import Iterator, Sequence
from typing import Any, cast

import msgspec

from parley.state import Conversation, Queue
from store import _keys as keys
from store import delivery, reports
from store._codec import (
    FIELDS,
    LAST_ACTIVITY,
    SNOOZED_UNTIL,
    STATE_FIELDS,
    VERSION,
    customer_changes,
    decode_conversation,
    state_arguments,
    to_ms,
)
from store._scripts import ScriptCall
from store.aliases import USERNAME
from store.fetches import encode_job
from store.writes import (
    AddNote,
    AddTag,
    AddTopic,
    BusinessReacted,
    Count,
    CountTime,
    Deleted,
    Delivered,
    Done,
    Edited,
    Fetch,
    Holding,
    Log,
    Op,
    Publish,
    Reacted,
    Record,
    Returned,
    Send,
    Sent,
    StoredNote,
    Timer,
    Write,
)

# Delivery statuses only move forward: a late "delivered" never undoes "read". A voice
# note's "played" comes after "read"; "failed" ends it.
STATUS_RANKS = {"accepted": 0, "sent": 1, "delivered": 2, "read": 3, "played": 4, "failed": 5}


class _Record(msgspec.Struct, frozen=True, array_like=True):
    """One of apply.lua's record operations on `key` (see its header). JSON values stay
    the bytes msgspec made: decoding them to text only for hiredis to encode them again
    cost two copies."""

    op: str
    key: str
    a: str | bytes = ""
    b: str = ""
    c: str = ""


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """How long and how much apply.lua keeps (the store's retention policy)."""

    dedupe_ttl: int
    report_ttl: int
    log_length: int
    result_ttl: int
    wake_ttl: int
    feed_length: int


_encoder = msgspec.json.Encoder()


def apply_call(
    channel: str, writes: Sequence[Write], first_day: int, window: Sequence[str], limits: Limits
) -> ScriptCall:
    """One apply.lua call for a run of one channel's writes, in order."""
    config = {
        "events": len(writes),
        "sets": len(window),
        "first_day": first_day,
        "fields": STATE_FIELDS,
        "score": LAST_ACTIVITY,
        "snooze": SNOOZED_UNTIL,
        "version": VERSION,
        "ranks": STATUS_RANKS,
        "day_s": keys.DAY_S,
        **msgspec.structs.asdict(limits),
    }
    call_keys = [*window, keys.aliases(channel)]
    call_args: list[str | bytes] = [_encoder.encode(config)]
    # Written straight into the call's lists (a copy an event cost a tenth of packing).
    for write in writes:
        first_key, counts = len(call_keys), len(call_args)
        call_args += ("", "")  # the event's key and argument counts, filled in below
        call_keys.append(keys.conversation(channel, write.customer))
        call_args += (
            write.digest,
            str(keys.receipt_day(write.received_at)),
            str(write.expected_version),
            write.customer,
            "mark" if write.state is None else "write",
            str(len(write.claims)),
        )
        for claim in write.claims:
            call_args += (claim.alias, claim.expected, claim.customer)
        if write.state is not None:
            was_in = Queue(write.was_in) if write.was_in else write.state.queue
            call_keys += (keys.queue(channel, was_in), keys.queue(channel, write.state.queue))
            call_args += state_arguments(write.state)
        for record in _records(channel, write.customer, write.ops):
            call_keys.append(record.key)
            call_args += (record.op, record.a, record.b, record.c)
        call_args[counts] = str(len(call_keys) - first_key)
        call_args[counts + 1] = str(len(call_args) - counts - 2)
    return ScriptCall(channel, call_keys, call_args)


def _records(channel: str, customer: str, ops: Sequence[Op]) -> Iterator[_Record]:
    """apply.lua's records for what a decision writes, on the keys the store keeps."""
    messages = keys.messages(channel, customer)
    for op in ops:
        match op:
            # The most frequent first: each case is an isinstance check.
            case Log(line=line):
                yield _Record("log", keys.log(channel, customer), _encoder.encode(line))
            case Count(at=at, counter=counter):
                yield _Record("count", _report_key(channel, int(at // keys.DAY_S)), counter)
            case Publish(change=change, when_known=when_known):
                yield _Record(
                    "feed",
                    keys.feed(channel),
                    _encoder.encode(change),
                    "known" if when_known else "",
                )
            case Holding(old=old, new=new, at=at):
                yield from _holding(channel, customer, old, new, at)
            case Record(old=old, new=new):
                yield from _customer(channel, customer, old, new)
            case Timer(at=at):
                if at is None:
                    yield _Record("zrem", keys.timers(channel), customer)
                else:
                    yield _Record("zadd", keys.timers(channel), customer, str(to_ms(at)))
            case Delivered(wamid=wamid, status=status):
                yield _Record("status", messages, wamid, status)
                for detail, known in (
                    (delivery.error_field(wamid), op.error),
                    (delivery.pricing_field(wamid), op.pricing),
                    (delivery.callback_field(wamid), op.callback_data),
                ):
                    if known:
                        yield _Record("detail", messages, wamid, detail, known)
            case Sent(wamid=wamid, status=status):
                yield _Record("seed", messages, wamid, status)
            case CountTime(at=at, kind=kind, seconds=seconds):
                field = reports.time_field(kind, seconds)
                yield _Record("count", _report_key(channel, int(at // keys.DAY_S)), field)
            case Done(event_id=event_id, result=result):
                value = _encoder.encode(result)
                yield _Record("result", keys.result(channel, event_id), value)
                yield _Record("wake", keys.wake(channel, event_id), "1")
            case Send(outgoing=outgoing):
                yield _Record("outbox", keys.outbox(channel), _encoder.encode(outgoing))
            case AddTag(tag=tag):
                yield _Record("sadd", keys.tags(channel, customer), tag)
            case AddTopic(topic=topic):
                yield _Record("sadd", keys.topics(channel, customer), topic)
            case AddNote():
                note = _encoder.encode(StoredNote(op.user, op.text, op.at))
                yield _Record("rpush", keys.notes(channel, customer), note)
            case Reacted(target=target, emoji=emoji):
                field = delivery.reaction_field(target)
                yield (
                    _Record("put", messages, field, emoji)
                    if emoji
                    else _Record("drop", messages, field)
                )
            case BusinessReacted(target=target, emoji=emoji):
                field = delivery.business_reaction_field(target)
                if emoji:
                    yield _Record("put", messages, field, emoji)
                else:
                    yield _Record("drop", messages, field)
            case Fetch(job=job):
                yield _Record("fetch", keys.fetches(channel), encode_job(job))
            case Edited(target=target, text=text):
                yield _Record("put", messages, delivery.edit_field(target), text or "")
            case Deleted(target=target):
                yield _Record("put", messages, delivery.deleted_field(target), "1")
            case Returned(at=at):
                yield _Record("zmax", keys.returned(channel), customer, str(to_ms(at)))


def _holding(
    channel: str, customer: str, old: Conversation | None, new: Conversation, at: float
) -> Iterator[_Record]:
    """The routing pool and who holds what, after a conversation went from `old` to
    `new` at `at` (store/_keys.py: waiting, load, held, assigned, handed)."""
    was_waiting = old is not None and old.queue is Queue.NEW
    if new.queue is Queue.NEW and not was_waiting:
        yield _Record("zadd", keys.waiting(channel), customer, str(to_ms(new.opened_at)))
    elif was_waiting and new.queue is not Queue.NEW:
        yield _Record("zrem", keys.waiting(channel), customer)
    before = old.assignee if old is not None else None
    was_open = old is not None and old.queue is Queue.OPEN
    is_open = new.queue is Queue.OPEN
    if before is not None and before != new.assignee:
        yield _Record("zrem", keys.assigned(channel, before), customer)
        yield _Record("zincr", keys.held(channel), before, "-1")
        if was_open:
            yield _Record("zincr", keys.load(channel), before, "-1")
    if new.assignee is not None and new.assignee != before:
        yield _Record("zadd", keys.assigned(channel, new.assignee), customer, str(to_ms(at)))
        yield _Record("zincr", keys.held(channel), new.assignee, "1")
        yield _Record("zmax", keys.handed(channel), new.assignee, str(to_ms(at)))
        if is_open:
            yield _Record("zincr", keys.load(channel), new.assignee, "1")
    elif new.assignee is not None and was_open != is_open:
        yield _Record("zincr", keys.load(channel), new.assignee, "1" if is_open else "-1")


def _customer(
    channel: str, customer: str, old: Conversation | None, new: Conversation
) -> Iterator[_Record]:
    conversation = keys.conversation(channel, customer)
    for field, value in customer_changes(old, new):
        yield (
            _Record("drop", conversation, field)
            if value is None
            else _Record("put", conversation, field, value)
        )
    before = old.customer.username if old else None
    if new.customer.username != before:
        aliases = keys.aliases(channel)
        if before:
            yield _Record("dropif", aliases, USERNAME + before, customer)
        if new.customer.username:
            yield _Record("put", aliases, USERNAME + new.customer.username, customer)
    was, now = names_of(customer, old), names_of(customer, new)
    for entry in sorted(was - now):
        yield _Record("unname", keys.names(channel), entry)
    for entry in sorted(now - was):
        yield _Record("name", keys.names(channel), entry)


def names_of(customer: str, state: Conversation | None) -> set[str]:
    """The name index's entries of a customer: each name it is searched by (profile
    name, username), folded to lower case, then its id (the index sorts by text)."""
    if state is None:
        return set()
    record = state.customer
    found = {record.name, record.username.lstrip("@") if record.username else None}
    return {f"{name.casefold()}{NAME_SEPARATOR}{customer}" for name in found if name}


NAME_SEPARATOR = "\x00"


@functools.lru_cache(maxsize=1024)
def _report_key(channel: str, epoch_day: int) -> str:
    return keys.report(channel, reports.day_of(epoch_day * keys.DAY_S))


class Loaded(msgspec.Struct, frozen=True):
    """What load.lua read for one channel."""

    settings: dict[str, str]
    decided: list[bool]  # per digest, in the order given
    named: list[str | None]  # per conversation: its alias's stored value
    states: list[Conversation | None]  # per conversation


def load_call(
    channel: str,
    window: Sequence[str],
    digests: Sequence[bytes],
    conversations: Sequence[tuple[str, str, str]],
) -> ScriptCall:
    """One load.lua call: the decided flags of `digests`, and per (customer id, hash
    key, alias) the alias's stored value and the conversation's state."""
    return ScriptCall(
        channel,
        [
            keys.settings(channel),
            *window,
            keys.aliases(channel),
            *(key for _, key, _ in conversations),
        ],
        [
            str(len(window)),
            str(len(digests)),
            str(len(FIELDS)),
            *FIELDS,
            *digests,
            *(alias for _, _, alias in conversations),
        ],
    )


def read_load(answer: object, conversations: Sequence[tuple[str, str, str]]) -> Loaded:
    flat_settings, decided, *found = cast(list[Any], answer)
    settings = {
        _text(name): _text(value)
        for name, value in zip(flat_settings[::2], flat_settings[1::2], strict=True)
    }
    named: list[str | None] = []
    states: list[Conversation | None] = []
    for (customer, _, _), (alias_value, values) in zip(conversations, found, strict=True):
        named.append(_text(alias_value) if alias_value else None)
        states.append(decode_conversation(values, customer))
    return Loaded(settings, [bool(flag) for flag in decided], named, states)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
