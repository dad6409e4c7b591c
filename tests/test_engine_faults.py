"""Exactly once in effect: replays, SIGKILL at random points, Redis outages, rebalances.

Every run applies one deterministic 50,000-event stream (with Meta-style re-deliveries)
to its own Redis database, and the canonical dump of that database must equal the dump
of one clean run.
"""

import asyncio
import functools
import os
import random
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from devstack.servers import Server, start_redis
from engine.router import LEASE_S
from store import _keys as keys
from tests.conftest import EU, US, kafka_session_timeout_s
from tests.engine_proc import (
    QUIET_CHANNELS,
    canonical_dump,
    start_engine,
    stop,
    wait_committed,
)
from tests.kafka_tools import eventually, produce
from tests.redis_tools import decided_count
from tests.streams import stream

pytestmark = pytest.mark.slow
EVENTS = 50_000
TOPIC = "parley-faults-stream"


@pytest.fixture(scope="module")
def channels_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("faults") / "channels.toml"
    path.write_text(QUIET_CHANNELS.format(eu=EU.id, us=US.id))
    return path


@pytest.fixture(scope="module")
def faults_redis() -> Iterator[Server]:
    """A redis-server of these tests' own, writing an append-only file so that it can be
    stopped and started again with its data (a stop is a SIGTERM, on which Redis writes
    the file out in full; no test here kills Redis, so it is not synced on every write,
    which slowed every run over the stream)."""
    server = start_redis(extra=["--appendonly", "yes", "--appendfsync", "everysec"])
    yield server
    server.stop()


def url(server: Server, db: int) -> str:
    return f"redis://127.0.0.1:{server.port}/{db}"


def run_engine(
    bootstrap: str, server: Server, db: int, group: str, channels_file: Path
) -> subprocess.Popen[bytes]:
    """`python -m engine` on database `db`, with the Kafka session of the tests' broker
    (PARLEY_KAFKA_SESSION_TIMEOUT_S; tests/conftest.py): on the local broker each start
    waits 1 s for its join and each SIGKILLed member's partitions move after 2 s,
    instead of 3 s and 6 s."""
    return start_engine(
        bootstrap,
        url(server, db),
        TOPIC,
        group,
        channels_file,
        kafka_session_timeout_s=str(kafka_session_timeout_s()),
    )


@pytest.fixture(scope="module")
async def reference(
    kafka_bootstrap: str, faults_redis: Server, channels_file: Path
) -> AsyncIterator[dict[str, Any]]:
    """The stream on its topic, and the dump of one clean engine run over it (db 1)."""
    events = stream(EVENTS, 2_000, (EU.id, US.id), t0=time.time() - 86400)
    await produce(kafka_bootstrap, TOPIC, events)
    client = Redis.from_url(url(faults_redis, 1))
    await client.flushdb()
    engine = run_engine(kafka_bootstrap, faults_redis, 1, "clean", channels_file)
    try:
        await wait_committed(kafka_bootstrap, TOPIC, "clean")
    finally:
        stop(engine)
    dump = await canonical_dump(client)
    await client.aclose()
    yield dump


async def fresh_db(server: Server, db: int) -> Redis:
    client = Redis.from_url(url(server, db))
    await client.flushdb()
    return client


async def test_the_reference_run_applied_the_stream(reference: dict[str, Any]) -> None:
    conversations = [key for key in reference if ":c:" in key]
    assert 1_500 < len(conversations) <= 4_000
    queues = {
        value
        for kind, fields in (reference[k] for k in conversations)
        for name, value in fields
        if name == b"q"
    }
    assert queues == {b"new", b"open", b"pending", b"resolved"}


async def test_replaying_the_whole_topic_over_the_state_changes_nothing(
    kafka_bootstrap: str, faults_redis: Server, channels_file: Path, reference: dict[str, Any]
) -> None:
    client = Redis.from_url(url(faults_redis, 1))
    engine = run_engine(kafka_bootstrap, faults_redis, 1, "replay", channels_file)
    try:
        await wait_committed(kafka_bootstrap, TOPIC, "replay")
    finally:
        stop(engine)
    assert await canonical_dump(client) == reference
    await client.aclose()


async def test_sigkill_at_random_points_ends_in_the_clean_runs_state(
    kafka_bootstrap: str, faults_redis: Server, channels_file: Path, reference: dict[str, Any]
) -> None:
    client = await fresh_db(faults_redis, 2)
    # Kill points: after this many events were decided, somewhere in the stream.
    kill_points = sorted(random.Random(2026).sample(range(2_000, 45_000), 5))
    for point in kill_points:
        engine = run_engine(kafka_bootstrap, faults_redis, 2, "crashy", channels_file)
        await eventually(functools.partial(decided_at_least, client, point), timeout_s=120)
        os.kill(engine.pid, signal.SIGKILL)
        engine.wait()
    engine = run_engine(kafka_bootstrap, faults_redis, 2, "crashy", channels_file)
    try:
        await wait_committed(kafka_bootstrap, TOPIC, "crashy")
    finally:
        stop(engine)
    await lease_lapsed(client)
    assert await canonical_dump(client) == reference
    await client.aclose()


async def lease_lapsed(client: Redis) -> None:
    """Waits for the router's lease to be gone: an engine SIGKILLed in a routing pass
    leaves it held until it lapses by itself (LEASE_S), and the lease is nothing the
    clean run decided (it gives it back on stopping), so the dump comes after."""

    async def gone() -> bool:
        return not await client.exists(keys.ROUTING_LOCK)

    await eventually(gone, timeout_s=LEASE_S + 10)


async def decided_at_least(client: Redis, count: int) -> bool:
    decided = sum([await decided_count(client, c.id) for c in (EU, US)])
    return decided >= count


async def test_redis_stopped_for_a_while_loses_nothing(
    kafka_bootstrap: str, faults_redis: Server, channels_file: Path, reference: dict[str, Any]
) -> None:
    client = await fresh_db(faults_redis, 3)
    engine = run_engine(kafka_bootstrap, faults_redis, 3, "outage", channels_file)
    try:
        await eventually(lambda: decided_at_least(client, 10_000), timeout_s=120)
        os.kill(faults_redis.process.pid, signal.SIGSTOP)  # Redis stops answering
        await asyncio.sleep(4.0)
        assert engine.poll() is None, "the engine must wait for Redis, not die"
        before = await committed_offsets(kafka_bootstrap, "outage")
        await asyncio.sleep(2.0)
        assert await committed_offsets(kafka_bootstrap, "outage") == before  # nothing committed
        os.kill(faults_redis.process.pid, signal.SIGCONT)
        await wait_committed(kafka_bootstrap, TOPIC, "outage")
    finally:
        os.kill(faults_redis.process.pid, signal.SIGCONT)
        stop(engine)
    assert await canonical_dump(client) == reference
    await client.aclose()


async def test_two_engines_one_killed_the_other_takes_over(
    kafka_bootstrap: str, faults_redis: Server, channels_file: Path, reference: dict[str, Any]
) -> None:
    client = await fresh_db(faults_redis, 4)
    first = run_engine(kafka_bootstrap, faults_redis, 4, "pair", channels_file)
    second = run_engine(kafka_bootstrap, faults_redis, 4, "pair", channels_file)
    try:
        await eventually(lambda: decided_at_least(client, 15_000), timeout_s=120)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        await wait_committed(kafka_bootstrap, TOPIC, "pair")
        assert second.poll() is None
    finally:
        stop(first)
        stop(second)
    await lease_lapsed(client)
    assert await canonical_dump(client) == reference
    await client.aclose()


async def committed_offsets(bootstrap: str, group: str) -> dict[int, int | None]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        await consumer.topics()
        return {
            p: await consumer.committed(TopicPartition(TOPIC, p))
            for p in consumer.partitions_for_topic(TOPIC) or ()
        }
    finally:
        await consumer.stop()
