"""Putting events on Kafka, acknowledged before anyone is answered: a webhook call's
events (and its dead letters) for the receiver, an agent's action for the API."""

import asyncio
import time

import msgspec
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import Counter

from metrics import IngestMetrics
from parley.deadlines import SharedDeadline
from parley.events import DeadLetter, Event, encode


class Routed(msgspec.Struct, frozen=True):
    """What to produce: events for the events topic, dead letters for its dead-letter
    topic."""

    events: list[Event]
    dead_letters: list[DeadLetter]


class ProduceError(Exception):
    """Kafka did not acknowledge every event in time: the caller answers 503 (Meta
    retries a webhook call, an agent their action). Some events may still land: the
    engine applies each event id once."""


class EventProducer:
    """Sends events keyed by conversation and waits for every acknowledgement
    (acks=all on the producer). `publish` blocks at most `timeout_s` (and a tenth)."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        dead_letter_topic: str,
        timeout_s: float,
        metrics: IngestMetrics,
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._dead_letter_topic = dead_letter_topic
        # One timer for every call in flight, not one a call (parley/deadlines.py): a
        # call waits at most timeout_s and a tenth more.
        self._deadline = SharedDeadline(timeout_s, tick_s=timeout_s / 10)
        self._metrics = metrics
        self._produced: dict[str, Counter] = {}  # by kind
        self._dead: dict[str, Counter] = {}  # by reason

    async def publish(self, routed: Routed) -> None:
        """Raises ProduceError when Kafka is down, slow or refuses."""
        started = time.perf_counter()
        deliveries: list[asyncio.Future[object]] = []
        try:
            async with self._deadline.bound():
                # send() itself waits while metadata is missing, e.g. the broker is down.
                for event in routed.events:
                    deliveries.append(
                        await self._producer.send(
                            self._topic,
                            key=event.key.encode(),
                            value=encode(event),
                            headers=[("kind", event.kind.encode())],
                        )
                    )
                for letter in routed.dead_letters:
                    deliveries.append(
                        await self._producer.send(
                            self._dead_letter_topic,
                            key=letter.key.encode(),
                            value=encode(letter),
                            headers=[("reason", letter.reason.encode())],
                        )
                    )
                # A timeout cancels our wait, not the message: aiokafka still sends a
                # batch whose futures were cancelled, and the engine refuses the
                # duplicate when Meta retries.
                for delivery in deliveries:
                    await delivery
        except (TimeoutError, KafkaError) as error:
            for delivery in deliveries:
                delivery.add_done_callback(_collect)
            raise ProduceError(type(error).__name__) from error
        self._metrics.produce_seconds.observe(time.perf_counter() - started)
        for event in routed.events:
            self._counted(self._produced, self._metrics.events_produced, event.kind).inc()
        for letter in routed.dead_letters:
            self._counted(self._dead, self._metrics.dead_lettered, letter.reason).inc()

    @staticmethod
    def _counted(children: dict[str, Counter], metric: Counter, label: str) -> Counter:
        """`metric.labels(label)`, resolved once per label: labels() builds and locks
        on every call, a few microseconds a message (docs/profiles/receiver.md)."""
        child = children.get(label)
        if child is None:
            child = children[label] = metric.labels(label)
        return child

    async def reachable(self) -> bool:
        """True when the cluster answered a metadata request just now."""
        try:
            async with asyncio.timeout(2):
                return bool(await self._producer.client.fetch_all_metadata())
        except (TimeoutError, KafkaError, OSError):
            return False


def _collect(delivery: "asyncio.Future[object]") -> None:
    # Read the outcome of a delivery nobody waits for any more, so asyncio does not
    # report it as never retrieved; the caller already answered 503.
    if delivery.done() and not delivery.cancelled():
        delivery.exception()
