"""The engine as shipped: `python -m engine` started on a backlog already on Kafka.

Two backlogs of 100,000 events, each on its own fresh topic and read by a fresh group
from offset 0: all new customers (100,000 customers writing once) and a mixed stream
(messages, replies, statuses, moves, assignments... over 20,000 conversations). For
each: start to the first applied event, the steady rate between 10% and 90% of the
backlog applied, and the catch-up (every event applied and its offset committed), then
SIGTERM and the exit code (tests/bench/engine_process.py says how each is seen).

The baseline, in the same run: a consumer in this process that applies one event at a
time (a read and a write round trip each) over 10,000 events of each stream.
"""

import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry

from devstack.servers import LOCAL_SESSION_TIMEOUT_S
from engine.applier import Applied, Applier
from engine.consumer import CommitPolicy, EngineLoop
from metrics import EngineMetrics
from parley.events import Event
from parley.kafka import ensure_topics
from parley.redis import RedisClient, connect_redis
from parley.runtime import tune_gc
from parley.settings import Settings
from store.channels import seed_channels
from store.conversations import ConversationStore
from tests import factory
from tests.bench.common import report, servers
from tests.bench.engine_process import POLL_S, Catchup, run_engine
from tests.conftest import EU, US
from tests.kafka_tools import produce
from tests.streams import stream

EVENTS = 100_000
CONVERSATIONS = 20_000
NAIVE_EVENTS = 10_000
CHANNELS = [EU, US]
FIRST_TARGET_S = 2.0
RATE_TARGET = 30_000
# The catch-up the two targets above allow: the first event in 2 s, then 30,000/s.
CATCHUP_TARGET_S = FIRST_TARGET_S + EVENTS / RATE_TARGET
# The shipped consumer's fetch wait and session (engine/app.py, with the session `make
# run` sets for its local broker); everything else aiokafka's default.
FETCH_MAX_WAIT_MS = 25
SESSION_TIMEOUT_MS = int(LOCAL_SESSION_TIMEOUT_S * 1000)


def all_new_customers(count: int, t0: float) -> list[Event]:
    """`count` customers each writing once, alternating between the two channels."""
    return [
        factory.customer(CHANNELS[n % 2].id, f"1777{n:07d}", t0 + n * 0.01, wamid=f"wamid.new.{n}")
        for n in range(count)
    ]


class NaiveApplier(Applier):
    """The baseline: every event applied on its own (a read and a write round trip)."""

    async def apply(self, events: Sequence[Event]) -> list[Applied]:
        results: list[Applied] = []
        for event in events:
            results += await super().apply([event])
        return results


async def empty_store(redis_url: str) -> tuple[RedisClient, ConversationStore]:
    """An emptied Redis with the channels' settings, and the store on it."""
    client = connect_redis(redis_url, read_timeout_s=None)
    await client.flushdb()
    scripts = ConversationStore(client)
    await scripts.start()
    await seed_channels(client, CHANNELS)
    return client, scripts


async def drain(bootstrap: str, redis_url: str, topic: str, total: int, naive: bool) -> float:
    """Seconds for an in-process loop (large fetches, not the shipped engine's) to apply
    and commit `total` events from `topic` on an empty Redis: what media_bench compares
    image and text messages with."""
    client, scripts = await empty_store(redis_url)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-{uuid.uuid4().hex}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    await consumer.start()
    applier = (NaiveApplier if naive else Applier)(scripts, time.time)
    loop = EngineLoop(
        consumer, applier, scripts, EngineMetrics(CollectorRegistry()), CommitPolicy()
    )
    done = 0
    started = time.perf_counter()
    while done < total:
        done += await loop.run_once()
    async with loop.lock:
        await loop.commit()
    elapsed = time.perf_counter() - started
    await consumer.stop()
    await client.aclose()
    return elapsed


@dataclass(frozen=True)
class Naive:
    join_s: float  # the consumer's start (its group join) in this process
    rate: float  # events/s from joined to every event applied and committed


async def naive(bootstrap: str, redis_url: str, topic: str, total: int) -> Naive:
    client, scripts = await empty_store(redis_url)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-naive-{uuid.uuid4().hex}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=SESSION_TIMEOUT_MS // 3,
    )
    started = time.perf_counter()
    await consumer.start()
    joined = time.perf_counter()
    loop = EngineLoop(
        consumer, NaiveApplier(scripts, time.time), scripts, EngineMetrics(CollectorRegistry())
    )
    done = 0
    while done < total:
        done += await loop.run_once()
    async with loop.lock:
        await loop.commit()
    finished = time.perf_counter()
    await consumer.stop()
    await client.aclose()
    return Naive(join_s=joined - started, rate=total / (finished - joined))


async def flush(redis_url: str) -> None:
    client = connect_redis(redis_url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


def verdict(met: bool) -> str:
    return "met" if met else "missed"


def _inside(run: Catchup) -> str:
    """What the engine's own metrics say about the catch-up: its batches, the time spent
    applying them (Redis and the applier's Python) out of the time from the group joined
    to every event applied, and its commits."""
    final = run.final
    batches = final.get("parley_apply_batch_seconds_count", 0.0)
    if not batches:
        return "(no batch seen on /metrics)"
    size = final.get("parley_apply_batch_events_sum", 0.0) / batches
    applying = final.get("parley_apply_batch_seconds_sum", 0.0)
    busy = run.applied_s - run.logged.get("consumer joined", 0.0)
    commits = final.get("parley_offset_commits_total", 0.0)
    return (
        f"{batches:,.0f} batches of {size:,.0f} events, applying them {applying:.2f} s "
        f"of the {busy:.2f} s from joined to all applied; {commits:.0f} commits"
    )


def _cpu(run: Catchup) -> str:
    """CPU time per event from the first batch to the last, of the engine and of
    redis-server: figures that a busy machine moves less than it moves rates."""
    if run.engine_cpu_s is None or not run.cpu_events:
        return "(not measured)"
    busy = run.applied_s - (run.first_s or 0.0)
    engine_us = run.engine_cpu_s / run.cpu_events * 1e6
    parts = [f"engine {engine_us:.0f} µs"]
    if run.redis_cpu_s is not None:
        parts.append(f"redis-server {run.redis_cpu_s / run.cpu_events * 1e6:.0f} µs")
    return (
        ", ".join(parts) + f" (the engine was on a core {run.engine_cpu_s / busy:.0%} of those "
        f"{busy:.1f} s; at {engine_us:.0f} µs an event one core allows "
        f"{1e6 / engine_us:,.0f} events/s)"
    )


def rows(run: Catchup, baseline: Naive) -> list[tuple[str, str]]:
    first = run.first_s if run.first_s is not None else float("inf")
    steps = [
        ('"starting engine" logged', run.logged.get("starting engine")),
        ("/metrics answered", run.metrics_up_s),
        ('"consumer joined" logged', run.logged.get("consumer joined")),
        ("first batch applied", run.first_s),
    ]
    timeline = ", ".join(f"{what} {at:.2f} s" for what, at in steps if at is not None)
    naive_catchup = run.total / baseline.rate
    stopped = f"exit {run.exit_code} in {run.stop_s:.2f} s"
    return [
        (
            "start to first applied event",
            f"{first:.2f} s   (target <= {FIRST_TARGET_S:.0f} s: {verdict(first <= FIRST_TARGET_S)})",
        ),
        ("  after start", timeline),
        (
            "steady rate, 10% to 90% applied",
            f"{run.rate:,.0f} events/s   (target >= {RATE_TARGET:,}: "
            f"{verdict(run.rate >= RATE_TARGET)})",
        ),
        (
            "catch-up, applied and committed",
            f"{run.caught_up_s:.2f} s, all applied at {run.applied_s:.2f} s   "
            f"(the two targets allow {CATCHUP_TARGET_S:.1f} s: "
            f"{verdict(run.caught_up_s <= CATCHUP_TARGET_S)})",
        ),
        ("  in the engine (its /metrics)", _inside(run)),
        ("  CPU per event (/proc)", _cpu(run)),
        (
            "naive, one event at a time",
            f"{baseline.rate:,.0f} events/s ({NAIVE_EVENTS:,} events; its group join "
            f"{baseline.join_s:.2f} s; {run.total:,} would take {naive_catchup:.0f} s)",
        ),
        (
            "shipped / naive",
            f"rate {run.rate / baseline.rate:.1f}x, catch-up {naive_catchup / run.caught_up_s:.1f}x",
        ),
        ("SIGTERM", stopped if run.exit_code == 0 else f"{stopped}   (expected 0: missed)"),
    ]


def python_speed() -> float:
    """CPU seconds this machine takes for 5 million pure-Python additions: a yardstick
    to compare runs and machines by (shared machines vary several times over)."""
    started = time.process_time()
    total = 0
    for n in range(5_000_000):
        total += n
    return time.process_time() - started


def setup_rows(load: float, speed: float) -> list[tuple[str, str]]:
    return [
        (
            "machine",
            f"{os.cpu_count()} cores, load average {load:.1f} when the bench began; "
            f"5M Python additions take {speed:.2f} s of CPU",
        ),
        (
            "engine settings",
            "shipped defaults (log level INFO, 8 partitions...), "
            f"PARLEY_KAFKA_SESSION_TIMEOUT_S={LOCAL_SESSION_TIMEOUT_S} as `make run` sets it "
            "for its local broker, Graph API on a closed port",
        ),
        (
            "streams",
            f"each {EVENTS:,} events on a fresh topic before the engine starts, "
            f"read by a fresh group; Tansu and redis-server local; /metrics polled every "
            f"{POLL_S * 1000:.0f} ms",
        ),
    ]


async def main() -> None:
    load, speed = os.getloadavg()[0], python_speed()
    tune_gc()  # for the in-process baseline, as `python -m engine` does
    partitions = Settings().topic_partitions  # as the engine creates its topic
    run_id = uuid.uuid4().hex[:8]
    streams = {
        "all new customers": all_new_customers(EVENTS, time.time() - 3600),
        "mixed": stream(EVENTS, CONVERSATIONS, (EU.id, US.id), t0=time.time() - 3600),
    }
    with servers() as (bootstrap, redis_url, redis), tempfile.TemporaryDirectory() as tmp:
        topics: dict[str, tuple[str, str, str]] = {}
        for n, (name, events) in enumerate(streams.items()):
            topic, naive_topic = f"bench-engine-{n}-{run_id}", f"bench-engine-naive-{n}-{run_id}"
            await ensure_topics(bootstrap, {topic: partitions, naive_topic: partitions})
            await produce(bootstrap, topic, events)
            await produce(bootstrap, naive_topic, events[:NAIVE_EVENTS])
            topics[name] = (topic, naive_topic, f"bench-engine-{n}-{run_id}")
        runs: dict[str, Catchup] = {}
        for name, (topic, _, group) in topics.items():
            await flush(redis_url)
            workdir = Path(tmp) / group
            runs[name] = await run_engine(
                bootstrap, redis_url, topic, group, CHANNELS, EVENTS, workdir, redis.process.pid
            )
        baselines = {
            name: await naive(bootstrap, redis_url, naive_topic, NAIVE_EVENTS)
            for name, (_, naive_topic, _) in topics.items()
        }
    report(
        "engine as shipped: `python -m engine`, one process, on a backlog", setup_rows(load, speed)
    )
    for name, run in runs.items():
        report(f"engine as shipped, {name}", rows(run, baselines[name]))


if __name__ == "__main__":
    asyncio.run(main())
