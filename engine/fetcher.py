"""The media fetcher: files customers sent, downloaded from the Graph API into the media
store soon after their webhook, never on the apply path.

apply.lua queues each media message's job in the step that applies it (store/fetches.py).
Fetchers read the queues through one consumer group (with several engines, each job goes
to one of them), at most `concurrency` downloads at once and `max_in_hand` jobs held, and
record the outcome on the message: `stored` with the file's key, or `failed` with why.
A download URL lasts minutes: one that expired (401/403/404) is asked for again from the
media id. Passing failures (5xx, timeouts, rate limits) are retried with backoff; a
fetcher that dies leaves its jobs pending, and another takes them over after
`claim_idle_s`: fetching twice stores nothing twice (the store is content-addressed).
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from mediastore import MediaStore, MediaStoreError, TooLarge
from metrics import EngineMetrics
from parley.graph import GraphClient, GraphError
from parley.loops import run_taker
from store.fetches import Fetches, MediaRecord, Taken

log = logging.getLogger(__name__)
POLL_S = 0.1
RETRY_S = 1.0
DRAIN_S = 3.0  # on stopping, downloads in hand may take this long (within the grace)
EXPIRED = frozenset({401, 403, 404})  # a download URL past its life: ask for a new one
STORED, FAILED = "stored", "failed"


def _retryable(error: BaseException) -> bool:
    return isinstance(error, GraphError) and error.retryable


class Fetcher:
    """Call `run_once()` in a loop (it never blocks on a download) and `recover()` now
    and then; `drain()` waits for the downloads in hand."""

    def __init__(
        self,
        fetches: Fetches,
        graph: GraphClient,
        media: MediaStore,
        tokens: Callable[[str], Awaitable[str | None]],
        metrics: EngineMetrics,
        *,
        channels: Callable[[], Awaitable[list[str]]],
        concurrency: int = 32,
        max_in_hand: int = 500,
        max_attempts: int = 4,
        backoff_s: float = 0.2,
        claim_idle_s: float = 300.0,
    ) -> None:
        self._fetches = fetches
        self._graph = graph
        self._media = media
        self._tokens = tokens
        self._metrics = metrics
        self._channels = channels
        self._downloads = asyncio.Semaphore(concurrency)
        self._max_in_hand = max_in_hand
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._claim_idle_ms = int(claim_idle_s * 1000)
        self._in_hand: dict[str, asyncio.Task[None]] = {}

    @property
    def in_hand(self) -> int:
        return len(self._in_hand)

    async def run_once(self) -> int:
        """Take new jobs from every channel's queue, up to the bound; the number taken."""
        taken = 0
        for channel in await self._channels():
            room = self._max_in_hand - self.in_hand
            if room <= 0:
                break
            for job in await self._fetches.take(channel, min(room, 100)):
                self._start(job)
                taken += 1
        return taken

    async def recover(self) -> int:
        """Take over jobs a fetcher that died left pending; the number taken."""
        taken = 0
        for channel in await self._channels():
            for job in await self._fetches.claim_idle(channel, self._claim_idle_ms):
                if job.id not in self._in_hand:
                    self._start(job)
                    taken += 1
        return taken

    async def drain(self) -> None:
        while self._in_hand:
            await asyncio.gather(*list(self._in_hand.values()), return_exceptions=True)

    async def cancel(self) -> None:
        for task in list(self._in_hand.values()):
            task.cancel()
        await asyncio.gather(*list(self._in_hand.values()), return_exceptions=True)

    def _start(self, job: Taken) -> None:
        self._in_hand[job.id] = asyncio.create_task(self._fetch(job), name=f"fetch-{job.id}")
        self._metrics.media_in_hand.set(self.in_hand)

    async def _fetch(self, job: Taken) -> None:
        try:
            async with self._downloads:
                record = await self._download(job)
            await self._fetches.finish(job, record)
            self._metrics.media_fetched.labels(job.channel, record.state).inc()
        except Exception:
            # Left pending: recovery takes it over later.
            log.exception("media fetch left pending", extra={"channel": job.channel})
        finally:
            self._in_hand.pop(job.id, None)
            self._metrics.media_in_hand.set(self.in_hand)

    async def _download(self, job: Taken) -> MediaRecord:
        media = job.job.media
        token = await self._tokens(job.channel)
        if token is None:
            return MediaRecord(state=FAILED, error="channel is not active")
        started = time.perf_counter()
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(_retryable),
                wait=wait_random_exponential(multiplier=self._backoff_s, max=10 * self._backoff_s),
                stop=stop_after_attempt(self._max_attempts),
                reraise=True,
            ):
                with attempt:
                    data, mime_type = await self._bytes(media.id, token)
            stored = await self._media.put(data, mime_type or media.mime_type or "")
        except TooLarge as error:
            return MediaRecord(state=FAILED, error=str(error), filename=media.filename)
        except (GraphError, MediaStoreError) as error:
            log.warning("media not fetched", extra={"channel": job.channel, "reason": str(error)})
            return MediaRecord(state=FAILED, error=str(error), filename=media.filename)
        finally:
            self._metrics.media_fetch_seconds.observe(time.perf_counter() - started)
        return MediaRecord(
            state=STORED,
            key=stored.key,
            mime_type=stored.mime_type,
            size=stored.size,
            filename=media.filename,
        )

    async def _bytes(self, media_id: str, token: str) -> tuple[bytes, str]:
        """The file, by a fresh URL; a URL that expired on the way is asked for again."""
        for _ in range(2):
            info = await self._graph.media(media_id, token)
            try:
                data = await self._graph.download(info.url, token, max_bytes=self._media.max_bytes)
            except GraphError as error:
                if error.status in EXPIRED:
                    continue
                raise
            return data, info.mime_type or ""
        raise GraphError(None, None, "the download link kept expiring", True)


async def run_fetcher(
    fetcher: Fetcher, stopping: asyncio.Event, recover_every_s: float = 60.0
) -> None:
    """The fetcher's loop (`run_taker`): downloads cut off stay pending and are taken
    over by the next recovery."""
    await run_taker(
        fetcher,
        stopping,
        poll_s=POLL_S,
        retry_s=RETRY_S,
        drain_s=DRAIN_S,
        recover_every_s=recover_every_s,
    )
