"""Reports and the other records an applied event leaves: pure rules, then real Redis."""

import json
import math
import time
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from engine.applier import Applier
from engine.sweeper import Sweeper
from metrics import EngineMetrics
from parley.meta_text import message_text
from parley.state import Outcome
from store import _keys as keys
from store import reports
from store.channels import save_channel_settings, seed_channels
from store.conversations import LOG_LENGTH, ConversationStore
from tests import factory as f
from tests.clock import Clock
from tests.conftest import EU

T0 = float(int(time.time()) // 86400 * 86400)  # the start of today, UTC


@given(st.floats(min_value=0, max_value=1e9, allow_nan=False))
def test_buckets_are_exact_below_1000s_and_within_half_a_percent_above(seconds: float) -> None:
    value = reports.bucket(seconds)
    whole = round(seconds)
    if whole < 1000:
        assert value == whole
    else:
        assert abs(value - whole) <= whole * 0.005
        assert len(str(value).rstrip("0")) <= 3  # three significant digits at most


@given(st.floats(min_value=0, max_value=1e9), st.floats(min_value=0, max_value=1e9))
def test_buckets_keep_order(a: float, b: float) -> None:
    if a <= b:
        assert reports.bucket(a) <= reports.bucket(b)


@given(st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=200))
def test_percentiles_from_counts_equal_nearest_rank_on_the_raw_values(values: list[int]) -> None:
    counts = Counter(values)
    ordered = sorted(values)
    for q in (0.5, 0.9):
        expected = ordered[max(1, math.ceil(q * len(values))) - 1]
        assert reports.percentile(counts.items(), q) == expected


def test_no_values_have_no_percentile() -> None:
    assert reports.percentile([], 0.5) is None
    assert reports.summarize({}) == reports.Summary(count=0, median_s=None, p90_s=None)


@pytest.mark.parametrize(
    ("kind", "message", "text"),
    [
        ("text", {"text": {"body": "Where is my order?"}}, "Where is my order?"),
        ("image", {"image": {"caption": "the label", "id": "1"}}, "the label"),
        ("document", {"document": {"filename": "invoice.pdf"}}, "invoice.pdf"),
        ("button", {"button": {"text": "Yes", "payload": "y"}}, "Yes"),
        ("interactive", {"interactive": {"list_reply": {"title": "Returns"}}}, "Returns"),
        ("location", {"location": {"name": "Depot", "latitude": 1}}, "Depot"),
        ("reaction", {"reaction": {"emoji": "👍"}}, "👍"),
        ("sticker", {"sticker": {"id": "9"}}, None),
        ("text", {}, None),
        ("text", {"text": {"body": "x" * 5000}}, "x" * 4096),
    ],
)
def test_what_an_agent_reads_of_a_customer_message(
    kind: str, message: dict[str, object], text: str | None
) -> None:
    assert message_text(kind, message) == text


@pytest.fixture
async def scripts(redis: Redis) -> AsyncIterator[ConversationStore]:
    loaded = ConversationStore(redis)
    await loaded.start()
    await seed_channels(redis, [EU])
    yield loaded


async def day_report(redis: Redis, at: float) -> reports.DayReport:
    day = reports.day_of(at)
    fields = await redis.hgetall(keys.report(EU.id, day))
    return reports.tally(fields).report(day.isoformat())


async def test_a_scripted_day_gives_known_figures(redis: Redis, scripts: ConversationStore) -> None:
    applier = Applier(scripts, Clock(T0))
    # Three customers; agents answer after 30 s, 90 s and 600 s and resolve two of them
    # 300 s and 1200 s after they opened.
    events = [
        f.customer(EU.id, "1", T0 + 10),
        f.customer(EU.id, "2", T0 + 20),
        f.customer(EU.id, "3", T0 + 30),
        f.reply(EU.id, "1", T0 + 40),
        f.reply(EU.id, "2", T0 + 110),
        f.reply(EU.id, "3", T0 + 630),
        f.reply(EU.id, "1", T0 + 700),  # a second reply: counted, no new first response
        f.move(EU.id, "1", "resolved", T0 + 310),
        f.move(EU.id, "2", "resolved", T0 + 1220),
    ]
    results = await applier.apply(events)
    assert {r.outcome for r in results} == {Outcome.APPLIED}
    again = await applier.apply(events)  # a replay changes nothing
    assert {r.outcome for r in again} == {Outcome.DUPLICATE}

    report = await day_report(redis, T0)
    assert (report.opened, report.replies, report.resolved, report.auto_resolved) == (3, 4, 2, 0)
    assert report.first_response == reports.Summary(count=3, median_s=90, p90_s=600)
    assert report.resolution == reports.Summary(count=2, median_s=300, p90_s=1200)


async def test_auto_resolutions_are_counted_with_their_resolution_time(
    redis: Redis, scripts: ConversationStore
) -> None:
    clock = Clock(T0)
    fast = EU.settings.__class__(
        display_name="Support EU", auto_resolve_new_s=60, auto_resolve_pending_s=60
    )
    await save_channel_settings(redis, EU.id, fast)
    applier = Applier(scripts, clock)
    await applier.apply([f.customer(EU.id, "1", T0), f.customer(EU.id, "2", T0 + 5)])
    sweeper = Sweeper(redis, scripts, EngineMetrics(CollectorRegistry()), clock)
    clock.now = T0 + 120
    assert await sweeper.run_once() == 2
    assert await sweeper.run_once() == 0  # already resolved: counted once

    report = await day_report(redis, T0 + 120)
    assert (report.resolved, report.auto_resolved) == (2, 2)
    assert report.resolution == reports.Summary(count=2, median_s=115, p90_s=120)


async def test_the_recent_messages_log_is_capped(redis: Redis, scripts: ConversationStore) -> None:
    applier = Applier(scripts, Clock(T0))
    await applier.apply([f.customer(EU.id, "1", T0 + n) for n in range(LOG_LENGTH + 5)])
    await applier.apply([f.reply(EU.id, "1", T0 + 100, user="bob")])
    lines = [json.loads(line) for line in await redis.lrange(keys.log(EU.id, "1"), 0, -1)]
    assert len(lines) == LOG_LENGTH
    assert lines[0]["at"] == T0 + 6  # the oldest five went
    assert lines[-1]["direction"] == "outbound"
    assert (lines[-1]["user"], lines[-1]["text"]) == ("bob", "hello")
    assert (lines[-2]["direction"], lines[-2]["text"]) == ("inbound", "hi")


async def test_an_action_leaves_its_result_whatever_the_outcome(
    redis: Redis, scripts: ConversationStore
) -> None:
    applier = Applier(scripts, Clock(T0))
    tag = f.tag(EU.id, "1", "vip", T0 + 1)  # no conversation yet: rejected
    message = f.customer(EU.id, "1", T0 + 2)
    move = f.move(EU.id, "1", "pending", T0 + 3)
    await applier.apply([tag, message, move])
    rejected = json.loads(await redis.get(keys.result(EU.id, tag.id)))
    applied = json.loads(await redis.get(keys.result(EU.id, move.id)))
    assert rejected == {"outcome": "rejected", "reason": "no conversation"}
    assert applied == {"outcome": "applied", "reason": None}
    assert await redis.get(keys.result(EU.id, message.id)) is None  # customers wait on nobody
    assert await redis.lpop(keys.wake(EU.id, move.id)) == b"1"
    assert 0 < await redis.ttl(keys.wake(EU.id, tag.id)) <= 60
