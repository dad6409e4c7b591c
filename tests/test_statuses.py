"""Delivery statuses of a reply, for any wamid, through the real Applier on real Redis.

Every example: a customer writes (phone and BSUID), an agent replies as the API asks
for it, the engine applies the reply and queues it on the outbox, and the wamid is
recorded by the sender's own method, `Sender._record`, called directly (what it does once
the Graph API answered: HSET `e:<event id>` -> wamid, HSETNX `<wamid>` -> accepted). Then
statuses arrive as Meta sends them (webhooks read by `ingest.normalize`), to the phone,
the BSUID or both, with or without errors, pricing and callback data. The wamids are
generated: base64 with its `=`/`==` padding, `/` and `+`; `=` and `:` anywhere; any
unicode; long ones.
"""

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

import aiohttp
import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from devstack import samples
from engine.applier import Applier
from ingest.meta_payload import decode_webhook
from ingest.normalize import normalize
from parley.events import Actor, AgentReply, Event, Identity, Move, Payload, Role, Unassign
from parley.graph import GraphClient
from parley.redis import as_text
from parley.state import Outcome, Queue
from store import _keys as keys
from store import delivery
from store._protocol import STATUS_RANKS
from store.channels import seed_channels
from store.conversations import ConversationStore
from store.outbox import Outbox
from store.reader import ConversationRecord, MessageRecord, Reader
from tests.clock import Clock
from tests.conftest import EU
from tests.engine_proc import CLOSED_GRAPH_URL

CH = EU.id
PHONE = "16315550142"
BSUID = "US.90817263544536271809"
CUSTOMER = BSUID  # first seen with both: the BSUID is the routing identifier, so the id
# Recent (the start of today): decided ids are kept 8 days after the day they arrived.
T0 = float(int(time.time()) // 86400 * 86400)
REPLY_AT = T0 + 5
ANA = Actor("ana", Role.CONTRIBUTOR)
STATUSES = ("sent", "delivered", "read", "played", "failed")
EXAMPLES = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# Wamids: Meta's are "wamid." and base64 (`==` padding, `/`, `+`); nothing may assume it.
base64_wamids = st.binary(min_size=1, max_size=120).map(
    lambda raw: "wamid." + base64.b64encode(raw).decode()
)
symbol_wamids = st.text(alphabet="=/+:.-_wamidHBgTQ09", min_size=1, max_size=40)
unicode_wamids = st.text(min_size=1, max_size=40)
long_wamids = st.text(alphabet="=/+:aZ9é漢😀", min_size=300, max_size=1500)
wamids = st.one_of(
    base64_wamids,
    symbol_wamids,
    unicode_wamids,
    long_wamids,
    st.sampled_from(
        [
            "wamid.HBgMNDQ3NzAwOTAwMTIzFQIAERgSQzRGMUE5RTA2QjdEMjM4NTlFAA==",
            "wamid.HBgLMTYzMTU1NTEyMzQVAgARGBI3NzFGMkM1RjA2QjE4MjBBNDIA=",
            "wamid.a=b:c/d+e==",
            "wamid:read",
            "=",
            "wamid.ключ✓😀",
        ]
    ),
)
# The sender stores a reply's wamid, or "!<why it was not sent>", in the same `e:` field
# (engine/delivery.py), so a wamid that begins with "!" reads back as a failed send. Meta's
# wamids are opaque (docs/meta-webhooks-2026.md): that is a product bug, which the last
# test pins over every wamid. The property tests draw the wamids it cannot misread, so
# that they go on testing their own property meanwhile.
OPAQUE_BANG_WAMID = "!HBgLMTYzMTU1NTEyMzQVAgARGBI3NzFGMkM1RjA2QjE4MjBBNDIA=="
recordable_wamids = wamids.filter(lambda wamid: not wamid.startswith("!"))


class Step(NamedTuple):
    """One status webhook: what it says, to whom, and what it carries."""

    status: str
    to: str  # "phone", "bsuid" or "both"
    error: tuple[int, str] | None  # Meta's (code, title), on a failed one
    pricing: tuple[str | None, str | None] | None  # (category, type)
    callback: str | None

    @property
    def shown_error(self) -> str | None:
        return None if self.error is None else f"{self.error[0]} {self.error[1]}"

    @property
    def shown_pricing(self) -> str | None:
        return None if self.pricing is None else f"{self.pricing[0] or ''}/{self.pricing[1] or ''}"


titles = st.text(min_size=1, max_size=30).filter(lambda t: t == t.strip() and t != "")


@st.composite
def steps(draw: st.DrawFn) -> Step:
    status = draw(st.sampled_from(STATUSES))
    error = None
    if status == "failed":
        error = draw(st.none() | st.tuples(st.integers(1, 999_999), titles))
    pricing = draw(
        st.none()
        | st.tuples(
            st.sampled_from(["service", "marketing", "utility", "authentication"]),
            st.none() | st.sampled_from(["regular", "free_customer_service", "free_entry_point"]),
        )
    )
    callback = draw(st.none() | st.text(min_size=1, max_size=30))
    return Step(status, draw(st.sampled_from(["phone", "bsuid", "both"])), error, pricing, callback)


def status_webhook(wamid: str, step: Step, at: float) -> Event:
    """The event the receiver makes of Meta's status webhook."""
    item: dict[str, Any] = {"id": wamid, "status": step.status, "timestamp": str(int(at))}
    if step.to in ("phone", "both"):
        item["recipient_id"] = PHONE
    if step.to in ("bsuid", "both"):
        item["recipient_user_id"] = BSUID
    if step.error is not None:
        code, title = step.error
        item["errors"] = [{"code": code, "title": title, "message": title}]
    if step.pricing is not None:
        category, kind = step.pricing
        item["pricing"] = {"billable": False, "pricing_model": "PMP", "category": category}
        if kind is not None:
            item["pricing"]["type"] = kind
    if step.callback is not None:
        item["biz_opaque_callback_data"] = step.callback
    body = json.dumps(samples.webhook(CH, {"statuses": [item]})).encode()
    [event] = normalize(decode_webhook(body), at).events
    return event


def customer_message(wamid: str, at: float) -> Event:
    value = {
        "contacts": [{"profile": {"name": "Sheena"}, "wa_id": PHONE, "user_id": BSUID}],
        "messages": [
            {
                "from": PHONE,
                "from_user_id": BSUID,
                "id": wamid,
                "timestamp": str(int(at)),
                "type": "text",
                "text": {"body": "Where is my order?"},
            }
        ],
    }
    body = json.dumps(samples.webhook(CH, value)).encode()
    [event] = normalize(decode_webhook(body), at).events
    return event


class World(msgspec.Struct):
    redis: Redis
    scripts: ConversationStore
    graph: GraphClient


@pytest.fixture
async def world(redis: Redis) -> AsyncIterator[World]:
    scripts = ConversationStore(redis)
    await scripts.start()  # FLUSHDB between examples keeps the script cache
    async with aiohttp.ClientSession() as session:
        # The sender is only asked to record: nothing is sent (a closed port anyway).
        yield World(redis, scripts, GraphClient(session, CLOSED_GRAPH_URL, timeout_s=0.5))


class Replied(NamedTuple):
    applier: Applier
    reply_id: str


async def api_action(world: World, payload: Payload, at: float) -> Event:
    """As api/conversations.py `_act` builds it: identity from the record,
    `customer` the id."""
    current = await Reader(world.redis).state(CH, CUSTOMER)
    assert current is not None
    record = current.customer
    return Event(
        id=uuid.uuid4().hex,
        channel=CH,
        identity=Identity(phone=record.phone, user_id=record.user_id, group_id=record.group_id),
        customer=CUSTOMER,
        occurred_at=at,
        received_at=at,
        payload=payload,
    )


async def replied(world: World, wamid: str) -> Replied:
    """An empty store; the customer wrote, Ana replied, the sender recorded `wamid`."""
    redis = world.redis
    await redis.flushdb()
    await seed_channels(redis, [EU])
    applier = Applier(world.scripts, Clock(T0))
    inbound = f"wamid.inbound.{uuid.uuid4().hex}"
    [written] = await applier.apply([customer_message(inbound, T0)])
    assert (written.outcome, written.customer) == (Outcome.APPLIED, CUSTOMER)
    reply = await api_action(world, AgentReply(actor=ANA, text="Tomorrow."), REPLY_AT)
    [answered] = await applier.apply([reply])
    assert answered.outcome is Outcome.APPLIED

    # The sender's part: take the reply off the outbox as its consumer group does, and
    # record the wamid as it does (the Graph API "answered" `wamid`).
    outbox = Outbox(redis, consumer="s")
    [entry] = await outbox.take(CH, 10)
    outgoing = entry.outgoing
    assert (outgoing.id, outgoing.owner, outgoing.to_phone) == (reply.id, CUSTOMER, PHONE)
    await outbox.record(entry, wamid, None)

    messages = keys.messages(CH, CUSTOMER)
    assert await redis.hget(messages, delivery.wamid_field(reply.id)) == wamid.encode()
    assert await redis.hget(messages, wamid) == b"accepted"
    assert await redis.xlen(keys.outbox(CH)) == 0
    shown = await reply_shown(world, reply.id)
    assert (shown.status, shown.wamid, shown.error) == ("accepted", wamid, None)
    return Replied(applier, reply.id)


async def conversation(world: World) -> ConversationRecord:
    shown = await Reader(world.redis).conversation(CH, CUSTOMER)
    assert shown is not None
    return shown


async def reply_shown(world: World, reply_id: str) -> MessageRecord:
    [shown] = [m for m in (await conversation(world)).messages if m.id == reply_id]
    return shown


async def snapshot(redis: Redis) -> dict[str, Any]:
    """Every key but the dedupe sets (which record that an event was decided), with its
    content."""
    found: dict[str, Any] = {}
    async for raw in redis.scan_iter(count=1000):
        key, kind = as_text(raw), as_text(await redis.type(raw))
        if ":seen:" in key:
            continue
        if kind == "hash":
            found[key] = await redis.hgetall(raw)
        elif kind == "zset":
            found[key] = await redis.zrange(raw, 0, -1, withscores=True)
        elif kind == "set":
            found[key] = sorted(await redis.smembers(raw))
        elif kind == "list":
            found[key] = await redis.lrange(raw, 0, -1)
        elif kind == "stream":
            found[key] = await redis.xrange(raw)
        else:
            found[key] = await redis.get(raw)
    return found


def furthest(statuses: list[str]) -> str:
    return max(["accepted", *statuses], key=STATUS_RANKS.__getitem__)


@EXAMPLES
@given(wamid=recordable_wamids, sequence=st.lists(steps(), min_size=1, max_size=10))
async def test_a_reply_shows_the_furthest_status_so_far_with_its_error_pricing_and_callback(
    world: World, wamid: str, sequence: list[Step]
) -> None:
    applier, reply_id = await replied(world, wamid)
    applied: list[Step] = []
    for index, step in enumerate(sequence):
        [result] = await applier.apply([status_webhook(wamid, step, REPLY_AT + 60 + index)])
        # `{wamid}:{status}` is the event's id: Meta's re-delivery of a status is refused.
        again = any(earlier.status == step.status for earlier in applied)
        assert result.outcome is (Outcome.DUPLICATE if again else Outcome.APPLIED)
        if not again:
            assert result.customer == CUSTOMER
            applied.append(step)
        shown = await reply_shown(world, reply_id)
        assert shown.wamid == wamid
        assert shown.status == furthest([s.status for s in applied])
        errors = [s.shown_error for s in applied if s.shown_error]
        assert shown.error == (errors[-1] if errors else None)
        prices = [s.shown_pricing for s in applied if s.shown_pricing]
        assert shown.pricing == (prices[-1] if prices else None)
        callbacks = [s.callback for s in applied if s.callback]
        assert shown.callback_data == (callbacks[-1] if callbacks else None)


@EXAMPLES
@given(
    wamid=recordable_wamids,
    data=st.data(),
    sequence=st.lists(steps(), min_size=1, max_size=6),
)
async def test_a_status_for_an_unknown_wamid_changes_nothing(
    world: World, wamid: str, data: st.DataObject, sequence: list[Step]
) -> None:
    applier, reply_id = await replied(world, wamid)
    # First a status of the known wamid, so there are fields an unknown one could hit.
    await applier.apply([status_webhook(wamid, Step("delivered", "both", None, None, "c"), T0)])
    near = [wamid + "=", wamid + "==", wamid[:-1], wamid.upper(), wamid.lower(), " " + wamid]
    unknown = data.draw(
        (wamids | st.sampled_from([w for w in near if w])).filter(lambda w: w != wamid),
        label="unknown",
    )
    before = await snapshot(world.redis)
    for index, step in enumerate(sequence):
        event = status_webhook(unknown, step, REPLY_AT + 60 + index)
        [result] = await applier.apply([event])
        assert result.outcome in (Outcome.APPLIED, Outcome.DUPLICATE)
    assert await snapshot(world.redis) == before
    shown = await reply_shown(world, reply_id)
    assert (shown.status, shown.wamid, shown.callback_data) == ("delivered", wamid, "c")


@EXAMPLES
@given(
    wamid=recordable_wamids,
    queue=st.sampled_from(Queue),
    sequence=st.lists(steps(), min_size=1, max_size=8),
)
async def test_a_status_never_moves_the_conversation_its_activity_or_its_queue(
    world: World, wamid: str, queue: Queue, sequence: list[Step]
) -> None:
    """Whatever queue the conversation is in, statuses (however late their timestamps)
    leave its queue, assignee, cycle and last activity as they were: a `read` weeks
    later must not postpone auto-resolve, nor reopen a resolved conversation."""
    applier, reply_id = await replied(world, wamid)  # open, Ana's
    if queue in (Queue.PENDING, Queue.RESOLVED):
        move = await api_action(world, Move(actor=ANA, queue=queue.value), REPLY_AT + 1)
        assert (await applier.apply([move]))[0].outcome is Outcome.APPLIED
    elif queue is Queue.NEW:  # open, unassigned, falls back to new
        unassign = await api_action(world, Unassign(actor=ANA), REPLY_AT + 2)
        assert (await applier.apply([unassign]))[0].outcome is Outcome.APPLIED
    before = await conversation(world)
    assert before.queue is queue
    score = await world.redis.zscore(keys.queue(CH, queue), CUSTOMER)
    for index, step in enumerate(sequence):
        weeks_later = REPLY_AT + 21 * 86400 + index
        await applier.apply([status_webhook(wamid, step, weeks_later)])
        after = await conversation(world)
        assert (after.queue, after.assignee) == (before.queue, before.assignee)
        assert after.last_activity_at == before.last_activity_at
        assert after.opened_at == before.opened_at
        assert after.last_customer_at == before.last_customer_at
        assert after.customer == before.customer
        assert await world.redis.zscore(keys.queue(CH, queue), CUSTOMER) == score
    shown = await reply_shown(world, reply_id)
    assert shown.status == furthest([s.status for s in sequence])


@EXAMPLES
@given(wamid=recordable_wamids, sequence=st.lists(steps(), min_size=1, max_size=10))
async def test_one_batch_of_statuses_ends_at_the_furthest_status(
    world: World, wamid: str, sequence: list[Step]
) -> None:
    """The consumer applies a whole batch in one round. A repeated status is Meta's
    re-delivery of it (the same item again): refused. Events of different keys (to the
    phone, to the BSUID) may be applied in either order, as on different partitions:
    the status is the furthest whatever the order, and details are some applied one's."""
    applier, reply_id = await replied(world, wamid)
    first_of: dict[str, Step] = {}
    for step in sequence:
        first_of.setdefault(step.status, step)
    delivered = [first_of[step.status] for step in sequence]  # re-deliveries are copies
    events = [status_webhook(wamid, s, REPLY_AT + 60 + i) for i, s in enumerate(delivered)]
    results = await applier.apply(events)
    seen: set[str] = set()
    for step, result in zip(delivered, results, strict=True):
        assert result.outcome is (Outcome.DUPLICATE if step.status in seen else Outcome.APPLIED)
        seen.add(step.status)
    applied = list(first_of.values())
    shown = await reply_shown(world, reply_id)
    assert (shown.wamid, shown.status) == (wamid, furthest(list(first_of)))
    one_key = len({step.to for step in applied}) == 1
    for got, values in [
        (shown.error, [s.shown_error for s in applied if s.shown_error]),
        (shown.pricing, [s.shown_pricing for s in applied if s.shown_pricing]),
        (shown.callback_data, [s.callback for s in applied if s.callback]),
    ]:
        if not values:
            assert got is None
        elif one_key:  # one partition's order: the last one written wins
            assert got == values[-1]
        else:
            assert got in values
    assert (await conversation(world)).last_activity_at == REPLY_AT


@EXAMPLES
@example(wamid=OPAQUE_BANG_WAMID)
@given(wamid=wamids)
async def test_any_wamid_the_sender_records_shows_on_its_reply_and_takes_statuses(
    world: World, wamid: str
) -> None:
    """Wamids are opaque: whatever Meta answered, the reply shows it, accepted, and a
    status of it moves it on."""
    applier, reply_id = await replied(world, wamid)  # asserts: accepted, this wamid
    [result] = await applier.apply(
        [status_webhook(wamid, Step("read", "bsuid", None, None, None), REPLY_AT + 60)]
    )
    assert result.outcome is Outcome.APPLIED
    shown = await reply_shown(world, reply_id)
    assert (shown.wamid, shown.status, shown.error) == (wamid, "read", None)
