"""The sweeper at 10k, 100k and 1M tracked conversations, and Redis memory per conversation."""

import asyncio
import contextlib
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from devstack.servers import start_redis
from engine.applier import Applier
from engine.sweeper import Sweeper
from metrics import EngineMetrics
from parley.channels import ChannelSettings
from parley.redis import connect_redis
from parley.state import Queue
from store import _keys as keys
from store._codec import to_ms
from store.channels import save_channel_settings, seed_channels
from store.conversations import LOG_LENGTH, ConversationStore
from tests import factory as f
from tests.bench.common import report
from tests.conftest import EU

# Bulk set-up only, on one Redis: writes conversations server-side, far faster than
# events would. It builds key names inside the script, which a cluster would refuse.
POPULATE = """
for i = tonumber(ARGV[2]), tonumber(ARGV[2]) + tonumber(ARGV[3]) - 1 do
  local wa_id = tostring(15550000000 + i)
  redis.call('HSET', ARGV[1] .. ':c:' .. wa_id, 'q', 'new', 'la', ARGV[4], 'oa', ARGV[4],
             'lc', ARGV[4], 'v', '1')
  redis.call('ZADD', KEYS[1], ARGV[4], wa_id)
end
"""
# Snoozed conversations as apply.lua leaves them: pending, assigned, `sz` set, in the
# pending set and the timer set scored by their wake-up (ARGV[5], ms).
POPULATE_SNOOZED = """
for i = tonumber(ARGV[2]), tonumber(ARGV[2]) + tonumber(ARGV[3]) - 1 do
  local wa_id = tostring(15560000000 + i)
  redis.call('HSET', ARGV[1] .. ':c:' .. wa_id, 'q', 'pending', 'a', 'ana', 'la', ARGV[4],
             'oa', ARGV[4], 'lc', ARGV[4], 'sz', ARGV[5], 'v', '1')
  redis.call('ZADD', KEYS[1], ARGV[5], wa_id)
  redis.call('ZADD', KEYS[2], ARGV[5], wa_id)
end
"""
SIZES = (10_000, 100_000, 1_000_000)
TIMER_SIZES = (10_000, 1_000_000)
PASSES = 20
DUE = 100_000
MEMORY_CONVERSATIONS = 100_000


async def populate(client: Redis, count: int, activity: float) -> None:
    start = await client.zcard(keys.queue(EU.id, Queue.NEW))
    for offset in range(0, count, 50_000):
        chunk = min(50_000, count - offset)
        await client.eval(  # type: ignore[misc]
            POPULATE,
            1,
            keys.queue(EU.id, Queue.NEW),
            keys.tag(EU.id),
            start + offset,
            chunk,
            to_ms(activity),
        )


async def idle_passes(
    sweeper: Sweeper,
    sizes: tuple[int, ...],
    grow: Callable[[int], Awaitable[None]],
    what: str,
) -> list[tuple[str, str]]:
    """The median pass with nothing due at each size (`grow` fills up to it), and the
    largest size's against the smallest's."""
    rows: list[tuple[str, str]] = []
    idle: list[float] = []
    for size in sizes:
        await grow(size)
        times = []
        for _ in range(PASSES):
            started = time.perf_counter()
            assert await sweeper.run_once() == 0
            times.append(time.perf_counter() - started)
        idle.append(statistics.median(times))
        rows.append(
            (
                f"nothing due, {size:>9,} {what}",
                f"{idle[-1] * 1e6:,.0f} us a pass (median of {PASSES})",
            )
        )
    rows.append(
        ("1M / 10k pass time", f"{idle[-1] / idle[0]:.2f}x   (target: the same at every size)")
    )
    return rows


@contextlib.asynccontextmanager
async def sweeping() -> AsyncIterator[tuple[Redis, Sweeper, float]]:
    """A fresh redis-server with the channel seeded, and a Sweeper whose clock stays at
    the returned now."""
    server = start_redis()
    client = connect_redis(f"redis://127.0.0.1:{server.port}/0")
    try:
        scripts = ConversationStore(client)
        await scripts.start()
        await seed_channels(client, [EU])
        now = time.time()
        yield client, Sweeper(client, scripts, EngineMetrics(CollectorRegistry()), lambda: now), now
    finally:
        await client.aclose()
        server.stop()


async def sweeps() -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    async with sweeping() as (client, sweeper, now):

        async def grow(size: int) -> None:
            held = await client.zcard(keys.queue(EU.id, Queue.NEW))
            await populate(client, size - held, now - 86400)

        rows += await idle_passes(sweeper, SIZES, grow, "tracked")

        await client.flushdb()
        await seed_channels(client, [EU])
        await populate(client, DUE, now - 3600)
        fast = ChannelSettings(display_name="EU", auto_resolve_new_s=60, auto_resolve_pending_s=60)
        await save_channel_settings(client, EU.id, fast)
        started = time.perf_counter()
        resolved = await sweeper.run_once()
        elapsed = time.perf_counter() - started
        assert resolved == DUE, resolved
        rows.append((f"resolving {DUE:,} due", f"{elapsed:.2f} s   (target <= 5 s)"))
    return rows


async def populate_snoozed(client: Redis, count: int, activity: float, until: float) -> None:
    start = await client.zcard(keys.timers(EU.id))
    for offset in range(0, count, 50_000):
        chunk = min(50_000, count - offset)
        await client.eval(  # type: ignore[misc]
            POPULATE_SNOOZED,
            2,
            keys.queue(EU.id, Queue.PENDING),
            keys.timers(EU.id),
            keys.tag(EU.id),
            start + offset,
            chunk,
            to_ms(activity),
            to_ms(until),
        )


async def timers() -> list[tuple[str, str]]:
    """Conversations holding a timer (a snooze): a pass with none due, at 10k and 1M;
    then 100k due, woken by one pass."""
    rows: list[tuple[str, str]] = []
    async with sweeping() as (client, sweeper, now):

        async def grow(size: int) -> None:
            held = await client.zcard(keys.timers(EU.id))
            await populate_snoozed(client, size - held, now - 60, now + 86400)

        rows += await idle_passes(sweeper, TIMER_SIZES, grow, "holding timers")

        await client.flushdb()
        await seed_channels(client, [EU])
        await populate_snoozed(client, DUE, now - 3600, now - 60)
        started = time.perf_counter()
        woken = await sweeper.run_once()
        elapsed = time.perf_counter() - started
        assert woken == DUE, woken
        assert await client.zcard(keys.timers(EU.id)) == 0
        assert await client.zcard(keys.queue(EU.id, Queue.OPEN)) == DUE
        rows.append((f"waking {DUE:,} snoozes due", f"{elapsed:.2f} s   (target <= 5 s)"))
    return rows


async def memory() -> list[tuple[str, str]]:
    """Conversations made the real way: a customer message, an agent's reply."""
    server = start_redis()
    client = connect_redis(f"redis://127.0.0.1:{server.port}/0", read_timeout_s=None)
    try:
        scripts = ConversationStore(client)
        await scripts.start()
        await seed_channels(client, [EU])
        applier = Applier(scripts, time.time)
        now = time.time()
        before = (await client.info("memory"))["used_memory"]
        for start in range(0, MEMORY_CONVERSATIONS, 2_000):
            batch = []
            for n in range(start, start + 2_000):
                batch += [
                    f.customer(EU.id, f"1555{n:07d}", now),
                    f.reply(EU.id, f"1555{n:07d}", now + 1),
                ]
            await applier.apply(batch)
        used = (await client.info("memory"))["used_memory"] - before
        parts = {
            "seen": await _usage(client, f"{keys.tag(EU.id)}:seen:*"),
            "log": await _usage(client, f"{keys.tag(EU.id)}:log:*"),
            "outbox": await client.memory_usage(keys.outbox(EU.id)) or 0,
            # The live feed keeps the last FEED_LENGTH changes, whatever the number of
            # conversations: a fixed cost, shown apart.
            "feed": await client.memory_usage(keys.feed(EU.id)) or 0,
            "result": await _usage(client, f"{keys.tag(EU.id)}:result:*")
            + await _usage(client, f"{keys.tag(EU.id)}:wake:*"),
        }
    finally:
        await client.aclose()
        server.stop()
    per = used / MEMORY_CONVERSATIONS
    dedupe, log, outbox, result = (
        parts[name] / MEMORY_CONVERSATIONS for name in ("seen", "log", "outbox", "result")
    )
    feed_bytes = parts["feed"]
    return [
        ("memory a conversation, all in", f"{per:,.0f} bytes"),
        (
            "  state and queue entry",
            f"{per - dedupe - log - outbox - result - feed_bytes / MEMORY_CONVERSATIONS:,.0f} "
            "bytes   (target <= 400)",
        ),
        ("  its 2 dedupe ids", f"{dedupe:,.0f} bytes (kept 8 days after their day)"),
        ("  its recent messages (2)", f"{log:,.0f} bytes (the last {LOG_LENGTH} are kept)"),
        ("  its reply waiting to be sent", f"{outbox:,.0f} bytes (gone once sent)"),
        ("  its reply's result for the API", f"{result:,.0f} bytes (kept ten minutes)"),
        (
            "the live feed, not per conversation",
            f"{feed_bytes / 1e6:,.1f} MB (its last {keys.FEED_LENGTH:,} changes, at any size)",
        ),
    ]


async def _usage(client: Redis, pattern: str) -> int:
    total = 0
    async for key in client.scan_iter(match=pattern, count=1000):
        total += await client.memory_usage(key) or 0
    return total


async def main() -> None:
    report("sweeper (one channel, 30-day period, nothing due vs due)", await sweeps())
    report("timers (one channel: snoozed conversations, nothing due vs due)", await timers())
    report(f"redis memory ({MEMORY_CONVERSATIONS:,} open conversations)", await memory())


if __name__ == "__main__":
    asyncio.run(main())
