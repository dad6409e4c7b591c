"""Reading what landed on a topic, for assertions."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from parley.events import Event, encode

T = TypeVar("T")


async def read_all(bootstrap: str, topic: str) -> list[ConsumerRecord]:
    """Every record on `topic` up to its end offsets now (none when it does not exist)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        if topic not in await consumer.topics():
            return []
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord] = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for part in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(part)
        return records
    finally:
        await consumer.stop()


async def produce(bootstrap: str, topic: str, events: list[Event]) -> None:
    """Put events on the topic keyed by conversation, as the producers do."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        deliveries = [
            await producer.send(topic, key=e.key.encode(), value=encode(e)) for e in events
        ]
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()


async def eventually(check: Callable[[], Awaitable[T]], timeout_s: float = 15.0) -> T:
    """Poll `check` until it returns a truthy value (the engine works asynchronously)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = await check()
        if result or asyncio.get_running_loop().time() > deadline:
            assert result, f"not true within {timeout_s}s: {result!r}"
            return result
        await asyncio.sleep(0.05)
