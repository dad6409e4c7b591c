"""Auto-resolution: resolve new and pending conversations idle past their channel's period.

Each queue is a sorted set scored by last activity, so what is due is a range read by
score: a pass with nothing due costs O(log n) a queue, and a changed period applies to
every waiting conversation at the next pass, without rescanning them. Candidates are
resolved by resolve_due.lua, which re-checks each one atomically.
"""

import logging
import math
from collections.abc import Callable
from typing import cast

from engine import keys, reports
from engine.channel_store import channel_ids, load_channel_settings
from engine.machine import auto_resolve_cutoff
from engine.model import AUTO_RESOLVE_QUEUES, Queue
from engine.scripts import Scripts
from metrics import EngineMetrics
from parley.redis import RedisClient, as_text

log = logging.getLogger(__name__)
# Candidates per script call: large enough to resolve 100k in a few seconds, small
# enough that one call never blocks Redis for long.
SWEEP_BATCH = 500


class Sweeper:
    """May run in every engine instance at once: the script resolves each conversation
    once however many sweepers race."""

    def __init__(
        self,
        client: RedisClient,
        scripts: Scripts,
        metrics: EngineMetrics,
        clock: Callable[[], float],
    ) -> None:
        self._client = client
        self._scripts = scripts
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
                while candidates := await self.due(channel, queue, cutoff):
                    count = await self.resolve(channel, queue, cutoff, candidates)
                    resolved += count
                    # A short page was the last; a page with nothing resolvable would
                    # only come back again.
                    if len(candidates) < SWEEP_BATCH or count == 0:
                        break
        self._metrics.sweeps.labels("ok").inc()
        self._metrics.last_sweep.set(now)
        return resolved

    async def due(self, channel: str, queue: Queue, cutoff: float) -> list[tuple[str, float]]:
        """Up to SWEEP_BATCH conversations of that queue idle since `cutoff` (Unix
        seconds) or longer, with their last activity as scored (milliseconds)."""
        found = await self._client.zrangebyscore(
            keys.queue(channel, queue),
            "-inf",
            _cutoff_ms(cutoff),
            start=0,
            num=SWEEP_BATCH,
            withscores=True,
        )
        pairs = cast(list[tuple[bytes, float]], found)  # WITHSCORES: (member, score) pairs
        return [(as_text(member), score) for member, score in pairs]

    async def resolve(
        self, channel: str, queue: Queue, cutoff: float, candidates: list[tuple[str, float]]
    ) -> int:
        """Resolve those candidates still due; the number resolved."""
        now = self._clock()
        pipe = self._client.pipeline(transaction=False)
        for wa_id, _ in candidates:
            pipe.hget(keys.conversation(channel, wa_id), "oa")
        opened = await pipe.execute()
        script_keys = [
            keys.queue(channel, queue),
            keys.queue(channel, Queue.RESOLVED),
            keys.report(channel, reports.day_of(now)),
            *(keys.conversation(channel, wa_id) for wa_id, _ in candidates),
        ]
        argv: list[str] = [queue.value, str(_cutoff_ms(cutoff)), str(reports.RETENTION_S)]
        for (wa_id, activity_ms), opened_ms in zip(candidates, opened, strict=True):
            # A candidate gone meanwhile has no cycle start; the script then skips it.
            started = as_text(opened_ms) if opened_ms else ""
            cycle_s = now - int(started) / 1000 if started else 0.0
            argv += [
                wa_id,
                str(int(activity_ms)),
                started,
                reports.time_field(reports.RESOLUTION, cycle_s),
            ]
        answer = await self._client.evalsha(
            self._scripts.sha["resolve_due"], len(script_keys), *script_keys, *argv
        )
        count = len(answer) // 2
        if count:
            self._metrics.auto_resolved.labels(channel, queue.value).inc(count)
            self._metrics.resolutions.labels(channel, "auto").inc(count)
            log.info(
                "auto-resolved", extra={"channel": channel, "queue": queue.value, "count": count}
            )
        return count


def _cutoff_ms(cutoff: float) -> int:
    # Activity is stored in whole milliseconds: due means at or before the cutoff's.
    return math.floor(cutoff * 1000)
