"""What the /v1 API reads: queue pages, the daily report, a conversation's messages.

No engine runs: conversations are written as the engine would write them (api_tools'
put_conversation, or engine.applier.Applier applying events straight into Redis), and
the receiver's API reads them over HTTP."""

import math
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from engine.applier import Applier
from engine.sweeper import Sweeper
from metrics import EngineMetrics
from parley.channels import Channel, ChannelSettings
from parley.events import Actor, AgentReply, CustomerMessage, Event, Role
from parley.settings import Settings
from parley.state import Outcome, Queue
from store import _keys as keys
from store import reports
from store.channels import save_channel_settings
from store.conversations import ConversationStore
from tests import factory as f
from tests.api_tools import ADMIN, AiohttpClient, call, put_conversation, start_api, user_with_role
from tests.clock import Clock
from tests.conftest import EU

# A fixed day start (a Monday), so figures and dates are the same on every run.
T0 = datetime(2024, 3, 4, tzinfo=UTC).timestamp()
DAY = 86400.0
LIST = f"/v1/channels/{EU.id}/conversations"
REPORT = f"/v1/channels/{EU.id}/report"


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class World:
    api: TestClient  # type: ignore[type-arg]
    redis: Redis
    scripts: ConversationStore

    async def get(self, path: str, headers: dict[str, str] = ADMIN, **params: Any) -> Any:
        status, body = await call(self.api, "GET", path, headers, **params)
        assert status == 200, body
        return body


@pytest.fixture
async def world(
    aiohttp_client: AiohttpClient, settings: Settings, channels: list[Channel], redis: Redis
) -> AsyncIterator[World]:
    api = await start_api(aiohttp_client, settings, channels)  # seeds the channels
    scripts = ConversationStore(redis)
    await scripts.start()
    yield World(api, redis, scripts)


async def clear_conversations(redis: Redis) -> None:
    """EU's conversations and queues gone; users and settings stay (between examples)."""
    doomed = [key async for key in redis.scan_iter(match=f"{keys.tag(EU.id)}:[cq]:*", count=1000)]
    if doomed:
        await redis.delete(*doomed)


async def load(redis: Redis, conversations: dict[str, float], queue: Queue = Queue.NEW) -> None:
    pipe = redis.pipeline(transaction=False)
    for wa_id, at in conversations.items():
        await put_conversation(pipe, EU.id, wa_id, queue, at)
    await pipe.execute()


@dataclass
class Shown:
    wa_id: str
    at: float  # last activity when it was shown

    @property
    def position(self) -> tuple[float, str]:
        return (self.at, self.wa_id)


async def page(world: World, newest: bool, limit: int, cursor: str | None) -> Any:
    params = {"queue": "new", "limit": str(limit), "order": "newest" if newest else "oldest"}
    if cursor is not None:
        params["cursor"] = cursor
    return await world.get(LIST, ADMIN, **params)


def shown(answer: Any) -> list[Shown]:
    rows = answer["conversations"]
    assert {row["queue"] for row in rows} <= {"new"}
    return [
        Shown(row["customer"]["id"], datetime.fromisoformat(row["last_activity_at"]).timestamp())
        for row in rows
    ]


async def all_pages(world: World, newest: bool, limit: int) -> list[list[Shown]]:
    pages, cursor = [], None
    while True:
        answer = await page(world, newest, limit, cursor)
        pages.append(shown(answer))
        cursor = answer["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) <= 1000, "paging does not end"


PAGING = hyp_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
# Few distinct scores, so that many conversations share one; ids whose text order is
# not their number order.
scores = st.lists(st.integers(min_value=0, max_value=5), max_size=40)
wa_ids = st.text(alphabet="0123456789", min_size=1, max_size=3)


@PAGING
@given(data=st.data())
async def test_pages_cover_a_queue_exactly_once_in_order(world: World, data: st.DataObject) -> None:
    await clear_conversations(world.redis)
    seconds = data.draw(scores, label="scores")
    ids = data.draw(
        st.lists(wa_ids, min_size=len(seconds), max_size=len(seconds), unique=True), label="ids"
    )
    limit = data.draw(st.integers(min_value=1, max_value=12), label="limit")
    queue = {wa_id: T0 + s for wa_id, s in zip(ids, seconds, strict=True)}
    await load(world.redis, queue)
    await load(world.redis, {"open-1": T0 + 2, "open-2": T0 + 3}, Queue.OPEN)  # elsewhere

    expected = sorted((at, wa_id) for wa_id, at in queue.items())
    for newest in (False, True):
        pages = await all_pages(world, newest, limit)
        assert len(pages) == max(1, math.ceil(len(queue) / limit))
        assert all(len(one) == limit for one in pages[:-1])
        listed = [row.position for one in pages for row in one]
        assert listed == (expected[::-1] if newest else expected)


async def test_a_thousand_conversations_with_one_score_page_by_id(world: World) -> None:
    # The cursor is (score, wa_id): a page boundary inside a run of equal scores must
    # neither repeat nor skip, however long the run (the read widens past it).
    same = {f"3161{n:07d}": T0 + 7 for n in range(1000)}
    before = {f"3162{n:07d}": T0 + n % 7 for n in range(20)}
    after = {f"3160{n:07d}": T0 + 8 + n % 3 for n in range(20)}
    queue = {**same, **before, **after}
    await load(world.redis, queue)
    expected = sorted((at, wa_id) for wa_id, at in queue.items())
    for newest, limit in [(False, 7), (True, 7), (False, 200), (True, 199)]:
        pages = await all_pages(world, newest, limit)
        listed = [row.position for one in pages for row in one]
        assert listed == (expected[::-1] if newest else expected)
        assert len(pages) == math.ceil(len(queue) / limit)


@PAGING
@given(data=st.data())
async def test_paging_is_stable_while_conversations_move_and_go(
    world: World, data: st.DataObject
) -> None:
    """While a reader pages, agents and customers act: some conversations not yet shown
    get newer activity, some leave the queue, some already shown get newer activity.
    Every conversation that did not change is shown exactly once, none is skipped, and
    the listing never goes back."""
    await clear_conversations(world.redis)
    seconds = data.draw(scores.filter(bool), label="scores")
    ids = data.draw(
        st.lists(wa_ids, min_size=len(seconds), max_size=len(seconds), unique=True), label="ids"
    )
    newest = data.draw(st.booleans(), label="newest")
    limit = data.draw(st.integers(min_value=1, max_value=8), label="limit")
    queue = {wa_id: T0 + s for wa_id, s in zip(ids, seconds, strict=True)}
    await load(world.redis, queue)

    listing: list[Shown] = []
    changed: set[str] = set()
    moved_unseen: set[str] = set()
    gone: set[str] = set()
    latest = T0 + max(seconds)
    moves = 0  # each move can show a conversation once more, no more
    cursor = None
    while True:
        answer = await page(world, newest, limit, cursor)
        listing += shown(answer)
        cursor = answer["next_cursor"]
        if cursor is None:
            break
        seen = {row.wa_id for row in listing}
        unseen = sorted(set(queue) - seen - gone)
        for wa_id in data.draw(st.lists(st.sampled_from(unseen or [""]), max_size=3)):
            if wa_id and wa_id not in gone:  # newer activity: to the newest end
                latest += 1
                await put_conversation(world.redis, EU.id, wa_id, Queue.NEW, latest)
                moves += 1
                changed.add(wa_id)
                moved_unseen.add(wa_id)
        for wa_id in data.draw(st.lists(st.sampled_from(unseen or [""]), max_size=2)):
            if wa_id and wa_id not in moved_unseen:  # resolved, or deleted
                await world.redis.delete(keys.conversation(EU.id, wa_id))
                await world.redis.zrem(keys.queue(EU.id, Queue.NEW), wa_id)
                changed.add(wa_id)
                gone.add(wa_id)
        for wa_id in data.draw(st.lists(st.sampled_from(sorted(seen - gone)), max_size=2)):
            latest += 1
            await put_conversation(world.redis, EU.id, wa_id, Queue.NEW, latest)
            moves += 1
            changed.add(wa_id)
        # Every page shows something new or a moved one again: the listing ends.
        assert len(listing) <= len(queue) + moves, "paging does not end"

    times = Counter(row.wa_id for row in listing)
    for wa_id in set(queue) - changed:
        assert times[wa_id] == 1, (wa_id, listing)
    for wa_id in gone:
        assert times[wa_id] == 0
    for wa_id in moved_unseen:
        # Oldest first it moved ahead of the reader and shows once more; newest first it
        # moved behind them.
        assert times[wa_id] >= 1 if not newest else times[wa_id] == 0
    positions = [row.position for row in listing]
    assert positions == sorted(positions, reverse=newest)
    assert len(set(positions)) == len(positions)  # strictly onwards: nothing twice in place


# The daily report


def day_figures(
    date: str,
    opened: int = 0,
    replies: int = 0,
    resolved: int = 0,
    auto_resolved: int = 0,
    first_response: tuple[int, int | None, int | None] = (0, None, None),
    resolution: tuple[int, int | None, int | None] = (0, None, None),
    sla_warnings: int = 0,
    sla_breaches: int = 0,
) -> dict[str, Any]:
    def summary(figures: tuple[int, int | None, int | None]) -> dict[str, int | None]:
        return dict(zip(("count", "median_s", "p90_s"), figures, strict=True))

    return {
        "date": date,
        "opened": opened,
        "replies": replies,
        "resolved": resolved,
        "auto_resolved": auto_resolved,
        "sla_warnings": sla_warnings,
        "sla_breaches": sla_breaches,
        "first_response": summary(first_response),
        "resolution": summary(resolution),
    }


async def test_the_report_of_a_scripted_scenario_has_exact_figures(world: World) -> None:
    redis = world.redis
    daily = ChannelSettings(
        display_name="Support EU", auto_resolve_new_s=86400, auto_resolve_pending_s=86400
    )
    await save_channel_settings(redis, EU.id, daily)
    clock = Clock(T0)
    applier = Applier(world.scripts, clock)
    d1, d2 = T0, T0 + DAY
    events = [
        # Day 1: five customers; first responses after 30, 60, 1000 and 2000 s (one
        # never answered); three resolved 600, 1200 and 3600 s after they opened; one
        # left pending.
        f.customer(EU.id, "1", d1 + 100),
        f.reply(EU.id, "1", d1 + 130),
        f.reply(EU.id, "1", d1 + 200),  # a second reply: counted, not a first response
        f.move(EU.id, "1", "resolved", d1 + 700),
        f.customer(EU.id, "2", d1 + 200),
        f.reply(EU.id, "2", d1 + 260),
        f.move(EU.id, "2", "resolved", d1 + 1400),
        f.customer(EU.id, "3", d1 + 300),
        f.reply(EU.id, "3", d1 + 1300),
        f.move(EU.id, "3", "resolved", d1 + 3900),
        f.customer(EU.id, "4", d1 + 400),
        f.reply(EU.id, "4", d1 + 2400),
        f.move(EU.id, "4", "pending", d1 + 2500),
        f.customer(EU.id, "5", d1 + 500),
        # Day 2: customer 1 comes back (a new cycle: opened again, answered after 45 s,
        # resolved after 295 s); customer 6 is answered after 90 s and stays open.
        f.customer(EU.id, "1", d2 + 50),
        f.reply(EU.id, "1", d2 + 95),
        f.move(EU.id, "1", "resolved", d2 + 345),
        f.customer(EU.id, "6", d2 + 1000),
        f.reply(EU.id, "6", d2 + 1090),
    ]
    events.sort(key=lambda event: event.occurred_at)
    results = await applier.apply(events)
    assert {result.outcome for result in results} == {Outcome.APPLIED}
    # Day 2, an hour in: 4 (pending) and 5 (new) have been idle for a day.
    clock.now = d2 + 3600
    sweeper = Sweeper(redis, world.scripts, EngineMetrics(CollectorRegistry()), clock)
    assert await sweeper.run_once() == 2

    supervisor = await user_with_role(world.api, "sam", EU.id, "supervisor")
    report = await world.get(REPORT, supervisor, **{"from": "2024-03-03", "to": "2024-03-06"})
    assert report == {
        "channel": EU.id,
        "start": "2024-03-03",
        "end": "2024-03-06",
        "queues": {"new": 0, "open": 1, "pending": 0, "resolved": 5},
        "total": day_figures(
            "2024-03-03/2024-03-06",
            opened=7,
            replies=7,
            resolved=6,
            auto_resolved=2,
            # 30 45 60 | 90 1000 2000; 295 600 1200 | 3600 89500 89600
            first_response=(6, 60, 2000),
            resolution=(6, 1200, 89600),
        ),
        "days": [
            day_figures("2024-03-03"),
            day_figures(
                "2024-03-04",
                opened=5,
                replies=5,
                resolved=3,
                first_response=(4, 60, 2000),
                resolution=(3, 1200, 3600),
            ),
            day_figures(
                "2024-03-05",
                opened=2,
                replies=2,
                resolved=3,
                auto_resolved=2,
                first_response=(2, 45, 90),
                # Auto-resolved a day and an hour after they opened at 400 and 500 s.
                resolution=(3, 89500, 89600),
            ),
            day_figures("2024-03-06"),
        ],
    }
    one_day = await world.get(REPORT, supervisor, **{"from": "2024-03-05", "to": "2024-03-05"})
    assert one_day["days"] == report["days"][2:3]
    assert one_day["total"] == {**report["days"][2], "date": "2024-03-05/2024-03-05"}

    contributor = await user_with_role(world.api, "cat", EU.id, "contributor")
    status, answer = await call(world.api, "GET", REPORT, contributor)
    assert (status, answer["error"]["code"]) == (403, "forbidden")


# Events decided at a time by load_channel: small enough that the receiver's own tasks,
# on the same loop, are never held up for long.
BATCH = 1000


async def load_channel(redis: Redis, count: int, first: int) -> None:
    """Conversations first..first+count-1 across the four queues and a week of days,
    each counted in its day's report as the engine would have counted it. The events
    are put_conversation's (a customer writes, then an agent takes the conversation to
    its queue), decided by the engine's own Applier, but in batches, as the engine
    applies a poll, not one conversation at a time."""
    store = ConversationStore(redis)
    await store.start()
    applier = Applier(store, Clock(T0))
    batch: list[Event] = []
    wanted: dict[str, tuple[Queue, str | None]] = {}
    reached: dict[str, tuple[Queue, str | None]] = {}
    pipe = redis.pipeline(transaction=False)
    for n in range(first, first + count):
        at = T0 + (n % 7) * DAY + n
        wa_id, queue = f"31{n:09d}", list(Queue)[n % 4]
        events = [f.customer(EU.id, wa_id, at)]
        if queue is Queue.OPEN:
            events.append(f.assign(EU.id, wa_id, "alice", at))
        elif queue is not Queue.RESOLVED:
            events.append(f.unassign(EU.id, wa_id, at))
        if queue in (Queue.PENDING, Queue.RESOLVED):
            events.append(f.move(EU.id, wa_id, queue.value, at))
        wanted[wa_id] = (queue, "alice" if queue is Queue.OPEN else None)
        batch += events
        report = keys.report(EU.id, reports.day_of(at))
        pipe.hincrby(report, reports.time_field(reports.FIRST_RESPONSE, n % 5000), 1)
        if len(batch) > BATCH - 3 or n == first + count - 1:
            last = {applied.customer: applied for applied in await applier.apply(batch)}
            for customer, applied in last.items():  # as put_conversation checks its own
                state = applied.decision.state if applied.decision else None
                assert customer is not None and state is not None, applied
                reached[customer] = (state.queue, state.assignee)
            batch = []
    await pipe.execute()
    assert reached == wanted


async def commands_for(
    world: World, headers: dict[str, str], **params: str
) -> tuple[Any, Counter[str]]:
    """The report, and the Redis commands (name: calls) answering it took. Redis counts
    every client's: the receiver's own periodic reads (the registered channels, every
    second) can land inside one count, never inside both of two, and a count only adds
    them, so the report's own cost is what the two counts share."""
    report, calls = await _counted(world, headers, **params)
    again, calls_again = await _counted(world, headers, **params)
    assert again == report
    return report, calls & calls_again


async def _counted(
    world: World, headers: dict[str, str], **params: str
) -> tuple[Any, Counter[str]]:
    before = await world.redis.info("commandstats")
    report = await world.get(REPORT, headers, **params)
    after = await world.redis.info("commandstats")
    calls = Counter(
        {
            name.removeprefix("cmdstat_"): stats["calls"] - before.get(name, {}).get("calls", 0)
            for name, stats in after.items()
        }
    )
    calls["info"] -= 1  # the `before` read itself
    return report, +calls


async def test_a_report_costs_the_same_whatever_the_number_of_conversations(
    world: World,
) -> None:
    supervisor = await user_with_role(world.api, "sam", EU.id, "supervisor")
    week = {"from": "2024-03-04", "to": "2024-03-10"}
    await world.get(REPORT, supervisor, **week)  # the API's connection is open

    await load_channel(world.redis, 10, first=0)
    small, small_cost = await commands_for(world, supervisor, **week)
    await load_channel(world.redis, 4990, first=10)
    large, large_cost = await commands_for(world, supervisor, **week)

    assert (small["total"]["opened"], large["total"]["opened"]) == (10, 5000)
    assert sum(small["queues"].values()) == 10
    assert large["queues"] == {"new": 1250, "open": 1250, "pending": 1250, "resolved": 1250}
    # One hash per day and four queue sizes, besides the caller's token, user and teams,
    # and the channel's existence and grants: nothing that grows with the conversations.
    assert small_cost == large_cost
    assert large_cost == Counter(
        {"hgetall": 7, "hmget": 1, "zcard": 4, "hget": 2, "smembers": 1, "sismember": 1}
    )
    one_day = {"from": "2024-03-04", "to": "2024-03-04"}
    _, one_day_cost = await commands_for(world, supervisor, **one_day)
    assert large_cost - one_day_cost == Counter({"hgetall": 6})


# A conversation


async def test_a_conversation_shows_its_recent_messages_in_order(world: World) -> None:
    ana = Actor("ana", Role.CONTRIBUTOR)
    wa_id = "31655555555"
    asked = CustomerMessage(wamid="wamid.Q1", type="text", text="Where is it?")
    thanked = CustomerMessage(wamid="wamid.Q2", type="text", text="Thanks!")
    answer = f.event(EU.id, wa_id, AgentReply(actor=ana, text="It left today"), T0 + 60)
    template = f.event(EU.id, wa_id, AgentReply(actor=ana, template="order_update"), T0 + 61)
    events = [
        f.event(EU.id, wa_id, asked, T0 + 1, asked.wamid),
        answer,
        template,
        f.event(EU.id, wa_id, thanked, T0 + 120, thanked.wamid),
        f.note(EU.id, wa_id, "Parcel 123", T0 + 130),
        f.tag(EU.id, wa_id, "vip", T0 + 131),
    ]
    results = await Applier(world.scripts, Clock(T0)).apply(events)
    assert {result.outcome for result in results} == {Outcome.APPLIED}

    viewer = await user_with_role(world.api, "vic", EU.id, "viewer")
    view = await world.get(f"/v1/conversations/{EU.id}/{wa_id}", viewer)
    nothing_since: dict[str, Any] = {
        "reaction": None,
        "edited": False,
        "deleted": False,
        "pricing": None,
    }
    nothing_since |= {"callback_data": None, "author": None, "reply_to": None, "source": None}
    nothing_since |= {"media": None, "place": None, "cards": [], "interactive": None}
    nothing_since |= {"business_reaction": None, "quoted": None}
    inbound = {"direction": "inbound", "type": "text", "template": None, "user": None}
    inbound |= {"wamid": None, "error": None, **nothing_since}
    outbound: dict[str, Any] = {"direction": "outbound", "user": "ana", "status": "queued"}
    outbound |= {"wamid": None, "error": None, **nothing_since}  # nothing sent it yet
    assert view["messages"] == [
        {**inbound, "id": "wamid.Q1", "at": iso(T0 + 1), "text": "Where is it?", "status": None, "preview": "Where is it?"},
        {**outbound, "id": answer.id, "type": "text", "at": iso(T0 + 60), "text": "It left today", "template": None, "preview": "It left today"},
        {**outbound, "id": template.id, "type": "template", "at": iso(T0 + 61), "text": None, "template": "order_update", "preview": "Template: order_update"},
        {**inbound, "id": "wamid.Q2", "at": iso(T0 + 120), "text": "Thanks!", "status": None, "preview": "Thanks!"},
    ]  # fmt: skip
    assert (view["queue"], view["assignee"]) == ("open", "ana")  # EU assigns on reply
    assert view["opened_at"] == iso(T0 + 1)
    assert view["first_response_at"] == iso(T0 + 60)
    assert view["last_customer_message_at"] == iso(T0 + 120)
    assert view["last_activity_at"] == iso(T0 + 131)
    assert view["tags"] == ["vip"]
    assert view["notes"] == [{"user": "alice", "text": "Parcel 123", "at": iso(T0 + 130)}]

    status, missing = await call(world.api, "GET", f"/v1/conversations/{EU.id}/316", viewer)
    assert (status, missing["error"]["code"]) == (404, "not_found")
