"""Two `python -m engine` processes share the timers (every engine runs the sweeper); one
is killed (SIGKILL) while they fire. Every timer fires exactly once: each snoozed
conversation wakes once, with one wake line in its log and one change on the feed."""

import asyncio
import os
import signal
import time
from pathlib import Path

import msgspec
import pytest
from redis.asyncio import Redis

from engine.applier import Applier
from parley.channels import load_channels
from parley.redis import as_text
from parley.state import Queue
from store import _keys as keys
from store.changes import Change
from store.channels import seed_channels
from store.conversations import ConversationStore
from store.writes import SYSTEM, WOKE, LogLine
from tests import factory as f
from tests.conftest import EU, US
from tests.engine_proc import QUIET_CHANNELS, start_engine, stop

CONVERSATIONS = 400
SPREAD_S = 4.0  # the wake-ups spread over this long, starting FIRST_S from now
FIRST_S = 3.0


async def snoozed_conversations(redis_url: str, channels: Path, now: float) -> dict[str, float]:
    """CONVERSATIONS conversations, each answered and snoozed, written through the
    store's apply path; customer -> when it wakes."""
    client = Redis.from_url(redis_url)
    await seed_channels(client, load_channels(str(channels)))
    store = ConversationStore(client)
    await store.start()
    applier = Applier(store, time.time)
    wakes = {
        f"3160000{n:05d}": now + FIRST_S + SPREAD_S * n / CONVERSATIONS
        for n in range(CONVERSATIONS)
    }
    events = []
    for customer, until in wakes.items():
        events += [
            f.customer(EU.id, customer, now),
            f.reply(EU.id, customer, now),
            f.snooze(EU.id, customer, until, now),
        ]
    results = await applier.apply(events)
    assert all(result.outcome == "applied" for result in results), results[:3]
    await client.aclose()
    return wakes


@pytest.mark.slow
async def test_two_engines_one_killed_fire_every_timer_exactly_once(
    kafka_bootstrap: str, redis: Redis, redis_url: str, topic: str, tmp_path: Path
) -> None:
    channels = tmp_path / "channels.toml"
    channels.write_text(QUIET_CHANNELS.format(eu=EU.id, us=US.id))
    wakes = await snoozed_conversations(redis_url, channels, time.time())
    assert await redis.zcard(keys.timers(EU.id)) == CONVERSATIONS

    group = f"{topic}-engine"
    engines = [
        start_engine(kafka_bootstrap, redis_url, topic, group, channels, sweep_interval_s="0.05")
        for _ in range(2)
    ]
    try:
        # Kill one while the wake-ups are under way: some fired, most not yet.
        while await redis.zcard(keys.timers(EU.id)) > CONVERSATIONS * 3 // 4:
            assert time.time() < min(wakes.values()) + 30, "no timer fired"
            await asyncio.sleep(0.02)
        os.kill(engines[0].pid, signal.SIGKILL)
        engines[0].wait()
        left = await redis.zcard(keys.timers(EU.id))
        assert 0 < left < CONVERSATIONS, left  # the survivor has timers of its own to fire
        deadline = max(wakes.values()) + 20
        while await redis.zcard(keys.timers(EU.id)):
            assert time.time() < deadline, "timers left unfired"
            await asyncio.sleep(0.1)
    finally:
        for engine in engines:
            stop(engine)

    woke_lines: dict[str, int] = {}
    for customer in wakes:
        state = await redis.hmget(keys.conversation(EU.id, customer), ["q", "a", "sz"])
        assert [as_text(v) if v else None for v in state] == [Queue.OPEN, "alice", None]
        lines = [
            msgspec.json.decode(line, type=LogLine)
            for line in await redis.lrange(keys.log(EU.id, customer), 0, -1)
        ]
        woke_lines[customer] = sum(line.direction == SYSTEM and line.type == WOKE for line in lines)
    assert set(woke_lines.values()) == {1}, {c: n for c, n in woke_lines.items() if n != 1}

    feed = await redis.xrange(keys.feed(EU.id))
    fired = [
        change.customer
        for _, fields in feed
        if (change := msgspec.json.decode(fields[b"c"], type=Change)).kind == "timer"
    ]
    assert sorted(fired) == sorted(wakes)  # each exactly once
