"""Due work: auto-resolution and the conversations' timers (a snooze's end, SLA
warnings and breaches, a routed conversation left unanswered).

Both are sorted sets read by score, so a pass costs what is due, not what exists:
- auto-resolve: each queue is scored by when its conversations went idle, so what is due
  is a range read (`ConversationStore.due`), and a changed period applies to every
  waiting conversation at the next pass without rescanning them;
- timers: each channel's timer set scores a conversation by its next timer
  (`engine.machine.next_due`, kept by the same apply call that changes the state), read
  by `ConversationStore.timers_due`.
Each candidate is decided by the machine (`auto_resolve`, `fire_timers`: the rules the
tests check) and written through the same apply path as events, under a deterministic
id: two sweepers racing make the second a duplicate, and the version check guards
against the consumer having touched the conversation meanwhile. Every engine runs one.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial

from engine.machine import auto_resolve, auto_resolve_cutoff, fire_timers
from engine.model import Decision, Released, SlaBreached, SlaWarned, Woke
from engine.settle import EventId, settle, versioned
from metrics import EngineMetrics
from parley.channels import ChannelSettings
from parley.redis import RedisClient
from parley.state import AUTO_RESOLVE_QUEUES, Conversation, Queue
from store.channels import channel_ids, load_channel_settings
from store.conversations import ConversationStore

log = logging.getLogger(__name__)
# Candidates per apply call: large enough to resolve 100k in a few seconds, small
# enough that one call never blocks Redis for long.
SWEEP_BATCH = 500
# Batches in flight: while the engine decides one, Redis reads and applies the others
# (each batch is a read, a decision and a write in turn). Resolving 100,000 due, in
# alternating runs (docs/profiles/engine.md): 2 in flight 11.2 to 14.8 s, 4 in flight
# 9.1 to 12.0 s, 8 no better.
IN_FLIGHT = 4
SWEEP_PAGE = SWEEP_BATCH * IN_FLIGHT * 4  # candidates read at once
AUTO_RESOLVE = "auto.resolve"  # the kind of a sweep's resolution on the feed
TIMER = "timer"  # the kind of a fired timer on the feed

# Decides one candidate at `now` (the machine's rule).
Rule = Callable[[Conversation | None, ChannelSettings, float], Decision]


# The ids a sweep's resolutions and fired timers are applied under (engine/settle.py).
resolution_id = versioned("auto")
timer_id = versioned("timer")


class Sweeper:
    """May run in every engine instance at once: each resolution is applied once
    however many sweepers race."""

    def __init__(
        self,
        client: RedisClient,
        store: ConversationStore,
        metrics: EngineMetrics,
        clock: Callable[[], float],
        on_change: Callable[[str], None] = lambda channel: None,
    ) -> None:
        self._client = client
        self._store = store
        self._metrics = metrics
        self._clock = clock
        # Told of each channel a batch changed (the router: a conversation woke to New,
        # or went back to the pool unanswered).
        self._on_change = on_change

    async def run_once(self) -> int:
        """One pass over every channel; the number of conversations it changed."""
        now = self._clock()
        changed = 0
        for channel in await channel_ids(self._client):
            settings = await load_channel_settings(self._client, channel)
            if settings is None:
                continue
            # Timers first: a conversation a snooze wakes is then resolved in the same
            # pass if its new queue's period has passed too.
            changed += await self._drain(
                partial(self._store.timers_due, channel, now),
                partial(self.fire, channel, settings, now=now),
            )
            for queue in sorted(AUTO_RESOLVE_QUEUES):
                cutoff = auto_resolve_cutoff(queue, settings, now)
                if cutoff is None:
                    continue
                changed += await self._drain(
                    partial(self._store.due, channel, queue, cutoff),
                    partial(self.resolve, channel, queue, settings, now=now),
                )
        self._metrics.sweeps.labels("ok").inc()
        self._metrics.last_sweep.set(now)
        return changed

    @staticmethod
    async def _drain(
        find: Callable[[int], Awaitable[list[tuple[str, float]]]],
        settle: Callable[[list[tuple[str, float]]], Awaitable[int]],
    ) -> int:
        """Settle what is due, a page at a time, in batches of SWEEP_BATCH with
        IN_FLIGHT at once; how many changed. Batches hold different conversations, so
        their order does not matter."""
        total = 0
        slots = asyncio.Semaphore(IN_FLIGHT)

        async def batch(candidates: list[tuple[str, float]]) -> int:
            async with slots:
                return await settle(candidates)

        while candidates := await find(SWEEP_PAGE):
            batches = [
                candidates[start : start + SWEEP_BATCH]
                for start in range(0, len(candidates), SWEEP_BATCH)
            ]
            count = sum(await asyncio.gather(*(batch(part) for part in batches)))
            total += count
            # A short page was the last; a page with nothing settled would only come
            # back again.
            if len(candidates) < SWEEP_PAGE or count == 0:
                break
        return total

    async def resolve(
        self,
        channel: str,
        queue: Queue,
        settings: ChannelSettings,
        candidates: list[tuple[str, float]],
        now: float,
    ) -> int:
        """Resolve those candidates the machine finds due; the number resolved."""
        count = len(
            await self._settle(
                channel, settings, candidates, now, auto_resolve, AUTO_RESOLVE, resolution_id
            )
        )
        if count:
            self._metrics.auto_resolved.labels(channel, queue.value).inc(count)
            self._metrics.resolutions.labels(channel, "auto").inc(count)
            log.info(
                "auto-resolved", extra={"channel": channel, "queue": queue.value, "count": count}
            )
        return count

    async def fire(
        self,
        channel: str,
        settings: ChannelSettings,
        candidates: list[tuple[str, float]],
        now: float,
    ) -> int:
        """Fire the timers the machine finds due; the number of conversations changed."""
        fired = await self._settle(channel, settings, candidates, now, fire_timers, TIMER, timer_id)
        for decision in fired:
            for effect in decision.effects:
                if isinstance(effect, Woke):
                    self._metrics.snooze_wakeups.labels(channel, "on_time").inc()
                elif isinstance(effect, Released):
                    self._metrics.released.labels(channel, effect.why.value).inc()
                elif isinstance(effect, SlaWarned | SlaBreached):
                    event = "breach" if isinstance(effect, SlaBreached) else "warning"
                    self._metrics.sla_events.labels(channel, effect.target, event).inc()
        if fired:
            log.info("timers fired", extra={"channel": channel, "count": len(fired)})
        return len(fired)

    async def _settle(
        self,
        channel: str,
        settings: ChannelSettings,
        candidates: list[tuple[str, float]],
        now: float,
        rule: Rule,
        kind: str,
        event_id_of: EventId,
    ) -> list[Decision]:
        """Decide each candidate by `rule` and apply those it changes; the decisions
        applied."""
        customers = [customer for customer, _ in candidates]
        states = (await self._store.states({channel: customers}))[channel]
        decided = [
            (customer, states.get(customer), rule(states.get(customer), settings, now))
            for customer in customers
        ]
        applied = await settle(
            self._store, channel, decided, now=now, kind=kind, event_id_of=event_id_of
        )
        if applied:
            self._on_change(channel)
        return [decision for _, decision in applied]
