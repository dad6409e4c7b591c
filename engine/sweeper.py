"""Auto-resolution: resolve new and pending conversations idle past their channel's period.

Each queue is a sorted set scored by last activity, so what is due is a range read by
score (`ConversationStore.due`): a pass with nothing due costs O(log n) a queue, and a
changed period applies to every waiting conversation at the next pass, without
rescanning them. Each candidate is decided by the machine (`auto_resolve`, the rule the
tests check) and written through the same apply path as events, under a deterministic
id: two sweepers racing make the second a duplicate, and the version check guards
against the consumer having touched the conversation meanwhile.
"""

import logging
from collections.abc import Callable

from engine.machine import auto_resolve, auto_resolve_cutoff
from engine.records import records
from metrics import EngineMetrics
from parley.channels import ChannelSettings
from parley.redis import RedisClient
from parley.state import AUTO_RESOLVE_QUEUES, Conversation, Outcome, Queue
from store.channels import channel_ids, load_channel_settings
from store.conversations import Answer, ConversationStore, digest
from store.writes import Write

log = logging.getLogger(__name__)
# Candidates per round trip: large enough to resolve 100k in a few seconds, small
# enough that one call never blocks Redis for long.
SWEEP_BATCH = 500
AUTO_RESOLVE = "auto.resolve"  # the kind of a sweep's resolution on the feed


def resolution_id(customer: str, state: Conversation) -> str:
    """The id a sweep's resolution is applied under: the same for every sweeper that
    sees the conversation as it is (its version rises with every write), so only one of
    them applies it; a cycle reopened later, even with the same times, has another."""
    return f"auto:{customer}:{state.version}"


class Sweeper:
    """May run in every engine instance at once: each resolution is applied once
    however many sweepers race."""

    def __init__(
        self,
        client: RedisClient,
        store: ConversationStore,
        metrics: EngineMetrics,
        clock: Callable[[], float],
    ) -> None:
        self._client = client
        self._store = store
        self._metrics = metrics
        self._clock = clock

    async def run_once(self) -> int:
        """One pass over every channel; the number of conversations it resolved."""
        now = self._clock()
        resolved = 0
        for channel in await channel_ids(self._client):
            settings = await load_channel_settings(self._client, channel)
            if settings is None:
                continue
            for queue in sorted(AUTO_RESOLVE_QUEUES):
                cutoff = auto_resolve_cutoff(queue, settings, now)
                if cutoff is None:
                    continue
                while candidates := await self._store.due(channel, queue, cutoff, SWEEP_BATCH):
                    count = await self.resolve(channel, queue, settings, candidates, now)
                    resolved += count
                    # A short page was the last; a page with nothing resolvable would
                    # only come back again.
                    if len(candidates) < SWEEP_BATCH or count == 0:
                        break
        self._metrics.sweeps.labels("ok").inc()
        self._metrics.last_sweep.set(now)
        return resolved

    async def resolve(
        self,
        channel: str,
        queue: Queue,
        settings: ChannelSettings,
        candidates: list[tuple[str, float]],
        now: float,
    ) -> int:
        """Resolve those candidates the machine finds due; the number resolved."""
        customers = [customer for customer, _ in candidates]
        states = (await self._store.states({channel: customers}))[channel]
        writes = []
        for customer in customers:
            state = states.get(customer)
            decision = auto_resolve(state, settings, now)
            if state is None or decision.outcome is not Outcome.APPLIED:
                continue  # gone, or touched since it was found due
            event_id = resolution_id(customer, state)
            ops = records(
                decision,
                channel=channel,
                event_id=event_id,
                kind=AUTO_RESOLVE,
                at=now,
                customer=customer,
                old=state,
            )
            writes.append(
                Write(
                    digest=digest(event_id),
                    received_at=now,
                    expected_version=state.version,
                    customer=customer,
                    state=decision.state,
                    was_in=state.queue,
                    ops=ops,
                )
            )
        if not writes:
            return 0
        answers = (await self._store.apply({channel: writes}))[channel]
        count = sum(answer is Answer.OK for answer in answers)
        if count:
            self._metrics.auto_resolved.labels(channel, queue.value).inc(count)
            self._metrics.resolutions.labels(channel, "auto").inc(count)
            log.info(
                "auto-resolved", extra={"channel": channel, "queue": queue.value, "count": count}
            )
        return count
