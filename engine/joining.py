"""The engine's Kafka consumer and its group join, which start before the rest of the
engine is imported.

The join is a wait on the broker: Tansu holds a new member's JoinGroup for half a
session, Kafka for its initial rebalance delay. Interpreter start-up and the engine's
imports take most of a second of CPU. `python -m engine` starts the join first and
imports the rest meanwhile, so that the two overlap instead of adding up
(docs/profiles/engine.md, "Fourth round"). This module imports only what the join needs.
"""

import asyncio

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from parley.kafka import ensure_topics
from parley.settings import Settings

# An agent's action waits on the engine: Tansu holds a fetch for half its max wait even
# when records are there (aiokafka's default 500 ms made every reply take 250 ms). Kafka
# answers as soon as records arrive; this only adds empty fetches while idle.
FETCH_MAX_WAIT_MS = 25


class LateListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """The rebalance listener of a consumer that subscribes before the engine that
    handles its rebalances exists: until `target` is set, nothing has been applied, so
    a revocation has nothing to commit."""

    def __init__(self) -> None:
        self.target: ConsumerRebalanceListener | None = None

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if self.target is not None:
            await self.target.on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        if self.target is not None:
            await self.target.on_partitions_assigned(assigned)


class Joining:
    """A consumer subscribed to the engine's topic, and the task that creates the topic
    if missing and joins the group. Make it inside the event loop that will run the
    engine; `joined()` returns once the group has given this member its share."""

    def __init__(self, settings: Settings) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=settings.consumer_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
            # Heartbeats three times a session, as Kafka advises.
            session_timeout_ms=int(settings.kafka_session_timeout_s * 1000),
            heartbeat_interval_ms=int(settings.kafka_session_timeout_s * 1000 / 3),
        )
        self.listener = LateListener()
        self.consumer.subscribe([settings.topic], listener=self.listener)
        self._task = asyncio.create_task(self._join(settings), name="kafka-join")

    async def _join(self, settings: Settings) -> None:
        topics = {settings.topic: settings.topic_partitions}
        await ensure_topics(settings.kafka_bootstrap or "", topics)
        await self.consumer.start()

    async def joined(self) -> None:
        """Wait for the join; a cancelled wait cancels the join."""
        await self._task

    async def close(self, timeout_s: float) -> bool:
        """Leave the group (or give up joining) within `timeout_s`; False if the broker
        did not answer in time, which then drops this member after its session."""
        try:
            async with asyncio.timeout(timeout_s):
                await self.consumer.stop()
        except TimeoutError:
            return False
        finally:
            self._task.cancel()
        return True
