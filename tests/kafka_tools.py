"""Reading what landed on a topic, for assertions."""

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition


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
        while any(await consumer.position(tp) < ends[tp] for tp in partitions):
            for part in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(part)
        return records
    finally:
        await consumer.stop()
