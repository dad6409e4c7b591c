"""The consumer loop: poll a batch, apply it to Redis, then commit the next offsets.

Offsets are committed only for events whose transitions Redis confirmed, so a crash
replays at most the uncommitted tail, which apply.lua refuses as duplicates.
"""

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable

import msgspec
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError
from tenacity import AsyncRetrying, retry_if_exception_type, wait_random_exponential

from engine.applier import Applied, Applier
from engine.model import Assigned, FirstResponse, Resolved, Woke
from metrics import EngineMetrics
from parley.events import Event, decode_event
from parley.state import Outcome
from store.conversations import ConversationStore

log = logging.getLogger(__name__)
# The engine's Redis client has no per-reply timeout (see connect_redis); a batch that
# Redis has not answered within this bound is retried (applying twice is harmless).
REDIS_BATCH_TIMEOUT_S = 10.0
RETRYABLE = (RedisConnectionError, RedisTimeoutError, NoScriptError, ConnectionError, OSError)


class StopRequested(Exception):
    """Stopping while Redis is unreachable: the batch is left uncommitted, for later."""


class CommitPolicy:
    """Commit when enough time or enough events have passed since the last commit;
    committing less often is safe (replays are duplicates) and saves broker trips."""

    def __init__(self, interval_s: float = 1.0, max_events: int = 20_000) -> None:
        self.interval_s = interval_s
        self.max_events = max_events

    def should_commit(self, now: float, last_commit_at: float, uncommitted_events: int) -> bool:
        return uncommitted_events >= self.max_events or now - last_commit_at >= self.interval_s


# The first batch after start is this small, and each next one four times larger up to
# the most: on a backlog the first event is applied after deciding 250 events, not
# 5,000 (about 0.6 s at the engine's 128 us an event: docs/profiles/engine.md), and the
# steady rate is reached by the fourth poll.
FIRST_BATCH = 250
BATCH_GROWTH = 4


def next_batch_limit(current: int, most: int) -> int:
    """The most records the next poll takes, after a batch polled with `current`."""
    return min(current * BATCH_GROWTH, most)


class EngineLoop:
    """One consumer's work. `run_once()` handles one poll; `stop()` only sets the stop
    event, which may be shared with the process's other loops (`stopping`): `run()`
    then finishes the batch in hand, commits and returns."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        applier: Applier,
        store: ConversationStore,
        metrics: EngineMetrics,
        policy: CommitPolicy | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        max_records: int = 5000,
        stopping: asyncio.Event | None = None,
    ) -> None:
        self.consumer = consumer
        self._applier = applier
        self._store = store
        self._metrics = metrics
        self._policy = policy or CommitPolicy()
        self._monotonic = monotonic
        self._max_records = max_records
        self._batch_limit = min(FIRST_BATCH, max_records)
        self._offsets: dict[TopicPartition, int] = {}
        self._uncommitted = 0
        self._last_commit_at = monotonic()
        self._stopping = stopping if stopping is not None else asyncio.Event()
        # Held while a batch is applied and committed; the rebalance listener waits on it.
        self.lock = asyncio.Lock()
        # Told of every applied batch (the router: what entered New or left Open).
        self.on_applied: Callable[[list[Applied]], object] = lambda results: None

    def stop(self) -> None:
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def run(self) -> None:
        """Poll and apply until stopping (noticed within one poll's 200 ms), then commit
        what was applied. The consumer must have been started."""
        while not self.stopping:
            try:
                await self.run_once()
            except StopRequested:
                break
        async with self.lock:
            await self.commit()

    async def run_once(self) -> int:
        """Poll, apply and (by policy) commit one batch; the number of records."""
        batch = await self.consumer.getmany(timeout_ms=200, max_records=self._batch_limit)
        records = [record for part in batch.values() for record in part]
        if records:
            self._batch_limit = next_batch_limit(self._batch_limit, self._max_records)
        async with self.lock:
            if records:
                events = self._decode(records)
                started = time.perf_counter()
                results = await self._apply(events)
                self._metrics.apply_seconds.observe(time.perf_counter() - started)
                self._metrics.batch_events.observe(len(records))
                self._count(results)
                self.on_applied(results)
                for tp, part in batch.items():
                    self._offsets[tp] = part[-1].offset + 1
                    self._report_lag(tp, part[-1].offset + 1)
                self._uncommitted += len(records)
            if self._offsets and self._policy.should_commit(
                self._monotonic(), self._last_commit_at, self._uncommitted
            ):
                await self.commit()
        return len(records)

    async def commit(self) -> None:
        """Commit the next offset of everything applied. Call with `lock` held."""
        if not self._offsets:
            return
        try:
            await self.consumer.commit(self._offsets)
            self._metrics.commits.labels("ok").inc()
        except (CommitFailedError, KafkaError) as error:
            # A rebalance took the partitions: their next owner replays the tail, and
            # apply.lua refuses what we already applied.
            self._metrics.commits.labels("failed").inc()
            log.warning("offset commit failed", extra={"error": type(error).__name__})
        self._offsets = {}
        self._uncommitted = 0
        self._last_commit_at = self._monotonic()

    def _decode(self, records: list[ConsumerRecord]) -> list[Event]:
        events: list[Event] = []
        for record in records:
            try:
                events.append(decode_event(record.value))
            except (msgspec.DecodeError, msgspec.ValidationError):
                self._metrics.events_applied.labels("undecodable", Outcome.REJECTED).inc()
                log.error(
                    "undecodable record skipped",
                    extra={"partition": record.partition, "offset": record.offset},
                )
        return events

    async def _apply(self, events: list[Event]) -> list[Applied]:
        """Apply, retrying Redis failures with backoff for as long as it takes; nothing
        is committed meanwhile. Stopping gives up (the batch is replayed later)."""
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(RETRYABLE),
            wait=wait_random_exponential(multiplier=0.05, max=5),
            reraise=True,
        ):
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    self._metrics.redis_retries.labels("apply").inc()
                    if self.stopping:
                        raise StopRequested
                    await self._store.start()  # a restarted Redis forgot the scripts
                async with asyncio.timeout(REDIS_BATCH_TIMEOUT_S):
                    return await self._applier.apply(events)
        raise AssertionError("unreachable: AsyncRetrying reraises")

    def _count(self, results: list[Applied]) -> None:
        # Tallied first: a labelled counter costs microseconds per call, per event.
        outcomes: Counter[tuple[str, str]] = Counter()
        assignments: Counter[tuple[str, str]] = Counter()
        resolutions: Counter[tuple[str, str]] = Counter()
        woken_early: Counter[str] = Counter()
        for result in results:
            outcomes[result.event.kind, result.outcome] += 1
            if result.decision is None or result.outcome is not Outcome.APPLIED:
                continue
            for effect in result.decision.effects:
                if isinstance(effect, Assigned):
                    assignments[result.event.channel, "auto" if effect.auto else "manual"] += 1
                elif isinstance(effect, Resolved):
                    resolutions[result.event.channel, effect.by] += 1
                elif isinstance(effect, Woke):
                    woken_early[result.event.channel] += 1
                elif isinstance(effect, FirstResponse):
                    self._metrics.first_response_seconds.labels(result.event.channel).observe(
                        max(effect.seconds, 0.0)  # skewed clocks can make it negative
                    )
        for labels, count in outcomes.items():
            self._metrics.events_applied.labels(*labels).inc(count)
        for labels, count in assignments.items():
            self._metrics.assignments.labels(*labels).inc(count)
        for labels, count in resolutions.items():
            self._metrics.resolutions.labels(*labels).inc(count)
        for channel, count in woken_early.items():
            self._metrics.snooze_wakeups.labels(channel, "early").inc(count)

    def forget_lag(self, partitions: set[TopicPartition]) -> None:
        """Stop reporting lag for partitions another consumer now owns: a stale value
        here would add up with the new owner's."""
        for tp in partitions:
            with contextlib.suppress(KeyError):
                self._metrics.consumer_lag.remove(tp.topic, str(tp.partition))

    def _report_lag(self, tp: TopicPartition, position: int) -> None:
        highwater = self.consumer.highwater(tp)
        if highwater is not None:
            self._metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(
                max(highwater - position, 0)
            )


class CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Finish the batch in hand and commit before partitions move; nothing else."""

    def __init__(self, loop: EngineLoop) -> None:
        self._loop = loop

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._loop.lock:
            await self._loop.commit()
        self._loop.forget_lag(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        return None
