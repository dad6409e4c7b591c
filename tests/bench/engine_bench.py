"""Engine apply rate: Kafka to Redis with commits, batched vs one event at a time."""

import asyncio
import time
import uuid

from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry

from engine.applier import Applier
from engine.consumer import CommitPolicy, EngineLoop
from metrics import EngineMetrics
from parley.kafka import ensure_topics
from parley.redis import connect_redis
from parley.runtime import tune_gc
from store.channels import seed_channels
from store.conversations import ConversationStore
from tests.bench.common import report, servers
from tests.conftest import EU, US
from tests.kafka_tools import produce
from tests.streams import stream

EVENTS = 100_000
NAIVE_EVENTS = 10_000


class NaiveApplier(Applier):
    """The baseline: every event applied on its own (a read and a write round trip)."""

    async def apply(self, events):  # type: ignore[no-untyped-def]
        results = []
        for event in events:
            results += await super().apply([event])
        return results


async def drain(bootstrap: str, redis_url: str, topic: str, total: int, naive: bool) -> float:
    client = connect_redis(redis_url, read_timeout_s=None)
    await client.flushdb()
    scripts = ConversationStore(client)
    await scripts.start()
    await seed_channels(client, [EU, US])
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
    applier_type = NaiveApplier if naive else Applier
    applier = applier_type(scripts, time.time)
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


async def main() -> None:
    tune_gc()  # as `python -m engine` does
    with servers() as (bootstrap, redis_url, _):
        topic = "bench-apply"
        await ensure_topics(bootstrap, {topic: 8})
        events = stream(EVENTS, 20_000, (EU.id, US.id), t0=time.time() - 3600)
        await produce(bootstrap, topic, events)
        naive_topic = "bench-apply-naive"
        await ensure_topics(bootstrap, {naive_topic: 8})
        await produce(bootstrap, naive_topic, events[:NAIVE_EVENTS])

        batched = await drain(bootstrap, redis_url, topic, EVENTS, naive=False)
        naive = await drain(bootstrap, redis_url, naive_topic, NAIVE_EVENTS, naive=True)
    batched_rate = EVENTS / batched
    naive_rate = NAIVE_EVENTS / naive
    report(
        "engine apply rate (one process, Kafka -> Redis, offsets committed)",
        [
            ("batched", f"{batched_rate:,.0f} events/s ({EVENTS:,} events in {batched:.2f} s)"),
            ("naive, one event at a time", f"{naive_rate:,.0f} events/s ({NAIVE_EVENTS:,} events)"),
            ("ratio", f"{batched_rate / naive_rate:.1f}x   (target >= 5x, >= 30,000 events/s)"),
        ],
    )


if __name__ == "__main__":
    asyncio.run(main())
