"""Auto-resolution against a real redis-server, with an injected clock."""

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import msgspec
import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from engine.applier import Applier
from engine.cli import queue_sizes, show_conversation
from engine.sweeper import Sweeper
from metrics import EngineMetrics
from parley.channels import ChannelSettings
from parley.state import Queue
from store import _keys as keys
from store.channels import save_channel_settings, seed_channels
from store.conversations import ConversationStore
from store.reader import Reader
from tests import factory as f
from tests.clock import Clock
from tests.conftest import EU
from tests.redis_tools import decided_count

# Recent (the start of today): decided ids are kept 8 days after the day they arrived.
T0 = float(int(time.time()) // 86400 * 86400)
PERIOD = 5  # seconds: the channel's auto-resolve period for new and pending
FAST = msgspec.structs.replace(
    EU.settings, auto_resolve_new_s=PERIOD, auto_resolve_pending_s=PERIOD
)


class Parts(msgspec.Struct):
    applier: Applier
    sweeper: Sweeper
    scripts: ConversationStore
    clock: Clock
    registry: CollectorRegistry


@pytest.fixture
async def parts(redis: Redis) -> AsyncIterator[Parts]:
    scripts = ConversationStore(redis)
    await scripts.start()
    await seed_channels(redis, [EU])
    await save_channel_settings(redis, EU.id, FAST)
    clock = Clock(T0)
    registry = CollectorRegistry()
    yield Parts(
        Applier(scripts, clock),
        Sweeper(redis, scripts, EngineMetrics(registry), clock),
        scripts,
        clock,
        registry,
    )


async def queue_of(redis: Redis, wa_id: str) -> tuple[object, object]:
    shown = await show_conversation(Reader(redis), f"{EU.id}:{wa_id}")
    return shown["queue"], shown["assignee"]


async def test_idle_new_and_pending_are_resolved_and_unassigned_open_never(
    parts: Parts, redis: Redis
) -> None:
    await parts.applier.apply(
        [
            f.customer(EU.id, "new", T0),
            f.customer(EU.id, "pending", T0),
            f.reply(EU.id, "pending", T0, user="alice"),
            f.move(EU.id, "pending", "pending", T0),
            f.customer(EU.id, "open", T0),
            f.reply(EU.id, "open", T0, user="bob"),
        ]
    )
    assert await queue_of(redis, "pending") == ("pending", "alice")

    parts.clock.now = T0 + PERIOD - 0.001
    assert await parts.sweeper.run_once() == 0

    parts.clock.now = T0 + PERIOD
    assert await parts.sweeper.run_once() == 2
    assert await queue_of(redis, "new") == ("resolved", None)
    assert await queue_of(redis, "pending") == ("resolved", None)

    parts.clock.now = T0 + 365 * 86400
    assert await parts.sweeper.run_once() == 0
    assert await queue_of(redis, "open") == ("open", "bob")
    assert (
        parts.registry.get_sample_value(
            "parley_auto_resolved_total", {"channel": EU.id, "queue": "pending"}
        )
        == 1
    )


async def test_a_conversation_touched_after_selection_is_not_resolved(
    parts: Parts, redis: Redis
) -> None:
    await parts.applier.apply([f.customer(EU.id, "touched", T0)])
    now = T0 + PERIOD + 1
    cutoff = now - PERIOD  # due: last activity T0 <= cutoff
    selected = await parts.scripts.due(EU.id, Queue.NEW, cutoff, 500)
    assert [wa_id for wa_id, _ in selected] == ["touched"]

    # Touched after it was selected, past the cutoff: the machine, deciding on what is
    # stored now, finds it no longer due.
    await parts.applier.apply([f.tag(EU.id, "touched", "still-here", T0 + 2)])
    assert await parts.sweeper.resolve(EU.id, Queue.NEW, FAST, selected, now) == 0
    assert await queue_of(redis, "touched") == ("new", None)


async def test_the_engine_decides_again_when_the_sweeper_got_there_first(
    parts: Parts, redis: Redis
) -> None:
    """The version is the compare-and-set token both ways: an event decided on a state
    the sweeper has since resolved is decided again on the resolved state."""
    await parts.applier.apply([f.customer(EU.id, "race", T0)])
    parts.clock.now = T0 + PERIOD
    assert await parts.sweeper.run_once() == 1
    [result] = await parts.applier.apply([f.customer(EU.id, "race", T0 + PERIOD + 1)])
    assert result.decision is not None and result.decision.state is not None
    assert await queue_of(redis, "race") == ("new", None)
    shown = await show_conversation(Reader(redis), f"{EU.id}:race")
    assert datetime.fromisoformat(shown["opened_at"]) == datetime.fromtimestamp(
        T0 + PERIOD + 1, UTC
    )


async def test_two_sweepers_never_resolve_one_conversation_twice(
    parts: Parts, redis: Redis
) -> None:
    await parts.applier.apply([f.customer(EU.id, str(n), T0) for n in range(300)])
    parts.clock.now = T0 + PERIOD
    other = Sweeper(redis, parts.scripts, EngineMetrics(CollectorRegistry()), parts.clock)
    counts = await asyncio.gather(*(s.run_once() for s in (parts.sweeper, other, parts.sweeper)))
    assert sum(counts) == 300
    sizes = await queue_sizes(Reader(redis), EU.id)
    assert sizes == {"new": 0, "open": 0, "pending": 0, "resolved": 300}


async def test_a_new_period_applies_at_once_to_everyone_waiting(parts: Parts, redis: Redis) -> None:
    await parts.applier.apply([f.customer(EU.id, str(n), T0) for n in range(50)])
    parts.clock.now = T0 + 60
    slow = msgspec.structs.replace(FAST, auto_resolve_new_s=3600)
    await save_channel_settings(redis, EU.id, slow)
    assert await parts.sweeper.run_once() == 0

    await redis.config_resetstat()
    await save_channel_settings(redis, EU.id, msgspec.structs.replace(slow, auto_resolve_new_s=30))
    assert await parts.sweeper.run_once() == 50
    # Nothing was rescanned: the conversations were found by score, not by iteration.
    stats = await redis.info("commandstats")
    assert not {"cmdstat_scan", "cmdstat_zscan", "cmdstat_keys"} & set(stats)
    assert stats["cmdstat_zrangebyscore"]["calls"] <= 3


async def test_off_turns_auto_resolution_off(parts: Parts, redis: Redis) -> None:
    await parts.applier.apply([f.customer(EU.id, "kept", T0)])
    off = ChannelSettings(display_name="EU", auto_resolve_new_s=None, auto_resolve_pending_s=None)
    await save_channel_settings(redis, EU.id, off)
    parts.clock.now = T0 + 10 * 365 * 86400
    assert await parts.sweeper.run_once() == 0
    assert await queue_of(redis, "kept") == ("new", None)


async def test_decided_ids_are_kept_for_the_retention_then_expire(
    parts: Parts, redis: Redis
) -> None:
    await parts.applier.apply([f.customer(EU.id, "kept", T0 + 60, wamid="wamid.KEPT")])
    day = keys.receipt_day(T0 + 60)
    assert await decided_count(redis, EU.id) == 1
    expires_at = (day + 1) * 86400 + keys.DEDUPE_RETENTION_S
    ttl = await redis.ttl(keys.seen(EU.id, day))  # TTL, not EXPIRETIME: Redis 6.2 too
    assert abs(time.time() + ttl - expires_at) <= 2
