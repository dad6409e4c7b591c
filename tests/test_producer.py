"""The event producer against a real broker (Tansu): concurrent calls each answered
once all of their events are acknowledged, every event landing once, on the partition
Kafka's default partitioner picks for its key (the receiver's cached partitioner must
not move a conversation), in the order it was made; a message Kafka cannot take fails
its own call only."""

import asyncio
import random
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client import CollectorRegistry

from metrics import IngestMetrics
from parley.events import DeadLetter, decode_event
from parley.kafka import cached_partitioner, ensure_topics
from parley.producer import EventProducer, ProduceError, Routed
from parley.settings import Settings
from tests.conftest import EU
from tests.factory import customer
from tests.kafka_tools import read_all

PARTITIONS = 4
T0 = 1_790_000_000.0


@pytest.fixture
async def producer(settings: Settings) -> AsyncIterator[EventProducer]:
    assert settings.kafka_bootstrap is not None
    await ensure_topics(
        settings.kafka_bootstrap,
        {settings.topic: PARTITIONS, f"{settings.topic}.dead-letter": 1},
    )
    # As the receiver makes it (ingest/app.py).
    kafka = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", partitioner=cached_partitioner
    )
    await kafka.start()
    try:
        yield EventProducer(
            kafka,
            settings.topic,
            f"{settings.topic}.dead-letter",
            5.0,
            IngestMetrics(CollectorRegistry()),
        )
    finally:
        await kafka.stop()


async def test_concurrent_calls_each_land_whole_in_order_on_their_keys_partition(
    producer: EventProducer, settings: Settings
) -> None:
    rng = random.Random(7)
    customers = [f"1555{n:07d}" for n in range(40)]
    sequence = {wa_id: 0 for wa_id in customers}

    def call_events(call: int) -> Routed:
        events = []
        for wa_id in rng.sample(customers, rng.randint(1, 4)):
            sequence[wa_id] += 1
            wamid = f"wamid.{wa_id}.{sequence[wa_id]:04d}"
            events.append(customer(EU.id, wa_id, T0 + call, wamid))
        return Routed(events=events, dead_letters=[])

    # Each customer's calls are made in turn, awaited one after the other: 60 rounds of
    # 20 concurrent calls.
    sent = 0
    for round_ in range(60):
        calls = [call_events(round_ * 20 + n) for n in range(20)]
        sent += sum(len(c.events) for c in calls)
        await asyncio.gather(*(producer.publish(c) for c in calls))

    assert settings.kafka_bootstrap is not None
    records = await read_all(settings.kafka_bootstrap, settings.topic)
    assert len(records) == sent
    every = list(range(PARTITIONS))
    seen: dict[str, list[str]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        assert record.partition == DefaultPartitioner()(record.key, every, every)
        event = decode_event(record.value)
        assert dict(record.headers) == {"kind": event.kind.encode()}
        seen.setdefault(event.key, []).append(event.id)
    assert sum(len(ids) for ids in seen.values()) == len({i for ids in seen.values() for i in ids})
    for ids in seen.values():
        assert ids == sorted(ids)  # a conversation's events in the order they were made


async def test_events_and_dead_letters_of_one_call_are_both_acknowledged(
    producer: EventProducer, settings: Settings
) -> None:
    letter = DeadLetter(reason="unknown_channel", received_at=T0, channel=EU.id, item={"id": "w"})
    await producer.publish(
        Routed(events=[customer(EU.id, "15550000001", T0)], dead_letters=[letter])
    )
    assert settings.kafka_bootstrap is not None
    assert len(await read_all(settings.kafka_bootstrap, settings.topic)) == 1
    letters = await read_all(settings.kafka_bootstrap, f"{settings.topic}.dead-letter")
    assert [dict(r.headers) for r in letters] == [{"reason": b"unknown_channel"}]


async def test_a_call_kafka_cannot_take_fails_alone(
    producer: EventProducer, settings: Settings
) -> None:
    huge = Routed(
        events=[customer(EU.id, "15550000002", T0, "wamid." + "x" * 2_000_000)], dead_letters=[]
    )
    fine = Routed(events=[customer(EU.id, "15550000003", T0)], dead_letters=[])
    outcomes = await asyncio.gather(
        producer.publish(huge), producer.publish(fine), return_exceptions=True
    )
    assert isinstance(outcomes[0], ProduceError)
    assert outcomes[1] is None
    assert settings.kafka_bootstrap is not None
    landed = await read_all(settings.kafka_bootstrap, settings.topic)
    assert [decode_event(r.value).id for r in landed] == [fine.events[0].id]
