"""Capacity routing: draining a 100k pool to 1,000 agents, how even the loads come out,
and one routing decision's latency against a 10-agent, 1k-conversation baseline."""

import asyncio
import contextlib
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import cast

from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from devstack.servers import start_redis
from engine.applier import Applier
from engine.router import Router
from metrics import EngineMetrics
from parley.channels import ChannelSettings
from parley.events import Role
from parley.redis import as_text, connect_redis
from parley.routing import RoutingSettings
from parley.state import Outcome, Queue
from store import _keys as keys
from store._codec import to_ms
from store.channels import save_channel_settings
from store.conversations import ConversationStore
from store.directory import Directory
from store.presence import Availability, PresenceStore
from tests import factory as f
from tests.bench.common import p99, report
from tests.conftest import EU

# Bulk set-up only, on one Redis: conversations as apply.lua leaves a New one (q=new,
# la = oa = lc, v=1; in the New queue scored by last activity, in the routing pool by
# when its cycle opened), written server-side. Conversation i opened at ARGV[4] + i ms,
# so the pool's order is the order written.
POPULATE = """
for i = tonumber(ARGV[2]), tonumber(ARGV[2]) + tonumber(ARGV[3]) - 1 do
  local wa_id = tostring(15570000000 + i)
  local at = tostring(tonumber(ARGV[4]) + i)
  redis.call('HSET', ARGV[1] .. ':c:' .. wa_id, 'q', 'new', 'la', at, 'oa', at,
             'lc', at, 'v', '1')
  redis.call('ZADD', KEYS[1], at, wa_id)
  redis.call('ZADD', KEYS[2], at, wa_id)
end
"""
CAPACITY = 5
AGENTS = 1_000
WAITING = 100_000
PARTIAL_WAITING = 2_500
BASELINE_AGENTS = 10
BASELINE_WAITING = 1_000
SAMPLES = 250
TARGET_P99_MS = 10.0
SETTINGS = ChannelSettings(display_name="EU", routing=RoutingSettings(capacity=CAPACITY))


def verdict(met: bool) -> str:
    return "met" if met else "missed"


class Desk:
    """A redis-server with one routing channel, its agents online, its pool filled."""

    def __init__(self, client: Redis, router: Router, applier: Applier, agents: list[str]) -> None:
        self.client = client
        self.router = router
        self.applier = applier
        self.agents = agents

    async def loads(self) -> dict[str, int]:
        """Every agent's Open conversations on the channel (0 for those not in the index)."""
        rows = await self.client.zrange(keys.load(EU.id), 0, -1, withscores=True)
        pairs = cast(list[tuple[bytes, float]], rows)
        found = {as_text(agent): int(score) for agent, score in pairs}
        return {agent: found.get(agent, 0) for agent in self.agents}

    async def route(self) -> tuple[int, float]:
        """One pass over the channel, as after the consumer applied a change on it (a
        conversation in, one resolved): (routed, seconds)."""
        started = time.perf_counter()
        routed = await self.router.run_once([EU.id])
        return routed, time.perf_counter() - started

    async def free_one(self, agent: str) -> None:
        """The agent resolves one of their conversations, as the API's move would."""
        held = await self.client.zrange(keys.assigned(EU.id, agent), 0, 0)
        customer = as_text(cast(list[bytes], held)[0])
        [applied] = await self.applier.apply([f.move(EU.id, customer, "resolved", time.time())])
        assert applied.outcome is Outcome.APPLIED, applied


async def populate(client: Redis, count: int, opened: float) -> None:
    for offset in range(0, count, 50_000):
        await client.eval(
            POPULATE,
            2,
            keys.queue(EU.id, Queue.NEW),
            keys.waiting(EU.id),
            keys.tag(EU.id),
            offset,
            min(50_000, count - offset),
            to_ms(opened),
        )


@contextlib.asynccontextmanager
async def desk(agents: int, waiting: int) -> AsyncIterator[Desk]:
    server = start_redis()
    client = connect_redis(f"redis://127.0.0.1:{server.port}/0", read_timeout_s=None)
    try:
        store = ConversationStore(client)
        await store.start()
        await save_channel_settings(client, EU.id, SETTINGS)
        directory, presence = Directory(client), PresenceStore(client)
        ids = [f"agent{n:04d}" for n in range(agents)]
        now = time.time()
        for user in ids:
            await directory.create_user(user, user)
            await presence.set(user, Availability.ONLINE, now)
        await directory.set_switches(EU.id, all_users=Role.CONTRIBUTOR)
        await populate(client, waiting, now - 3600)
        router = Router(client, store, EngineMetrics(CollectorRegistry()), clock=time.time)
        yield Desk(client, router, Applier(store, time.time), ids)
    finally:
        await client.aclose()
        server.stop()


def spread(loads: dict[str, int]) -> str:
    """The loads' spread, e.g. max - min 1 (500 at 2, 500 at 3): agents at each load."""
    low, high = min(loads.values()), max(loads.values())
    counts = sorted(Counter(loads.values()).items())
    at = ", ".join(f"{agents:,} at {load}" for load, agents in counts)
    return f"max - min {high - low} ({at})"


async def drain(room: Desk, waiting: int) -> list[tuple[str, str]]:
    """One pass hands out as much as there is room for (or the whole pool)."""
    expected = min(waiting, len(room.agents) * CAPACITY)
    routed, elapsed = await room.route()
    assert routed == expected, (routed, expected)
    loads = await room.loads()
    assert sum(loads.values()) == expected
    even = max(loads.values()) - min(loads.values()) <= 1
    left = await room.client.zcard(keys.waiting(EU.id))
    assert left == waiting - expected, left
    agents, pool = f"{len(room.agents):,} agents", f"{waiting:,} waiting"
    return [
        (
            f"one pass, {agents}, {pool}",
            f"{routed:,} routed in {elapsed * 1000:,.0f} ms ({routed / elapsed:,.0f} a second); "
            f"{left:,} left waiting",
        ),
        (
            "  loads after it",
            f"{spread(loads)}   (target: within one of even: {verdict(even)})",
        ),
    ]


async def decisions(big: Desk, small: Desk) -> list[tuple[str, str]]:
    """Free one slot and time the pass that fills it, on both desks in turn (so the
    machine's noise falls on both alike)."""
    big_ms: list[float] = []
    small_ms: list[float] = []
    for n in range(SAMPLES):
        for room, times in ((big, big_ms), (small, small_ms)):
            agent = room.agents[(n * 37) % len(room.agents)]
            await room.free_one(agent)
            routed, elapsed = await room.route()
            assert routed == 1, routed
            load = await room.client.zscore(keys.load(EU.id), agent)
            assert load == CAPACITY, (agent, load)
            times.append(elapsed * 1000)
    left = await big.client.zcard(keys.waiting(EU.id))
    ratio = p99(big_ms) / p99(small_ms)
    return [
        (
            f"decision, {len(big.agents):,} agents, {left:,} waiting",
            f"p50 {statistics.median(big_ms):.2f} ms, p99 {p99(big_ms):.2f} ms   "
            f"(target p99 <= {TARGET_P99_MS:.0f} ms: {verdict(p99(big_ms) <= TARGET_P99_MS)}; "
            f"{SAMPLES} samples)",
        ),
        (
            f"baseline, {len(small.agents)} agents, {BASELINE_WAITING:,} waiting",
            f"p50 {statistics.median(small_ms):.2f} ms, p99 {p99(small_ms):.2f} ms",
        ),
        ("p99 ratio (1,000 agents, 100k / 10 agents, 1k)", f"{ratio:.2f}x"),
    ]


async def main() -> None:
    rows: list[tuple[str, str]] = []
    async with desk(AGENTS, WAITING) as big, desk(BASELINE_AGENTS, BASELINE_WAITING) as small:
        rows += await drain(big, WAITING)
        await drain(small, BASELINE_WAITING)
        rows += await decisions(big, small)
    async with desk(AGENTS, PARTIAL_WAITING) as partial:
        rows += await drain(partial, PARTIAL_WAITING)
    report(f"routing (one channel, capacity {CAPACITY} an agent, all online)", rows)


if __name__ == "__main__":
    asyncio.run(main())
