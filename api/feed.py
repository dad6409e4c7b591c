"""The change feed's fan-out in one process: one reader for every channel's feed, and a
bounded queue per live stream (docs/inbox.md).

Browsers never hold Redis connections: the hub blocks on the feeds (one `XREAD` for all
channels on one Redis; one per channel on a Cluster, where feeds live in different
slots), keeps each channel's latest changes in a ring for quick resumes, and offers
every change to the subscribers of its channel. A subscriber whose queue is full is cut,
never waited for: the others see no delay, and memory stays bounded.
"""

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable

from redis.exceptions import RedisError

from store.feed import FEED_LENGTH, START, Entry, Feed, newer

log = logging.getLogger(__name__)
RING = 1024  # changes kept in memory per channel
QUEUE = 256  # changes a stream may fall behind before it is cut
BLOCK_MS = 5000  # how long one read waits for a change
REFRESH_S = 5.0  # how often the list of channels is read again
HAND_OUT = 64  # changes handed out before the streams get a turn (well under QUEUE)


class Subscriber:
    """One live stream: the changes of its channels, then None once it is cut (it fell
    `limit` changes behind) or the hub stops."""

    def __init__(self, channels: Iterable[str], limit: int = QUEUE) -> None:
        self.channels = frozenset(channels)
        # One place more than the limit, for the None that ends it.
        self.queue: asyncio.Queue[Entry | None] = asyncio.Queue(limit + 1)
        self._limit = limit
        self.cut = False
        # Called when it is cut: a stream blocked writing to a client that stopped
        # reading never sees the None, so it hangs up here (api/stream.py).
        self.on_cut: Callable[[], None] | None = None

    def offer(self, entry: Entry) -> None:
        if self.cut:
            return
        if self.queue.qsize() >= self._limit:
            self.cut = True
            self.queue.put_nowait(None)
            if self.on_cut is not None:
                self.on_cut()
            return
        self.queue.put_nowait(entry)


class FeedHub:
    """Call `run` once (a task of the process); `subscribe` from each stream."""

    def __init__(
        self,
        feed: Feed,
        channels: Callable[[], Awaitable[list[str]]],
        *,
        per_channel: bool,
        block_ms: int = BLOCK_MS,
    ) -> None:
        self._feed = feed
        self._channels = channels
        self._per_channel = per_channel
        self._block_ms = block_ms
        self._positions: dict[str, str] = {}
        self._rings: dict[str, deque[Entry]] = {}
        # Per channel, the position the ring holds every change after: where the reading
        # started, then the last change the ring let go of.
        self._ring_after: dict[str, str] = {}
        self._subscribers: dict[str, set[Subscriber]] = {}
        self._readers: dict[str, asyncio.Task[None]] = {}
        self.ready = asyncio.Event()  # set once the positions are known

    def position(self, channel: str) -> str:
        """The newest change this process has seen of `channel` (where a new stream
        starts)."""
        return self._positions.get(channel, START)

    def subscribe(self, channels: Iterable[str]) -> Subscriber:
        subscriber = Subscriber(channels)
        for channel in subscriber.channels:
            self._subscribers.setdefault(channel, set()).add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        for channel in subscriber.channels:
            self._subscribers.get(channel, set()).discard(subscriber)

    async def since(self, channel: str, position: str) -> list[Entry] | None:
        """The changes of `channel` after `position`, from memory or from Redis; None
        when some of them are no longer kept (the stream must reset that channel)."""
        newest = self.position(channel)
        if not newer(newest, position):
            return []
        ring = self._rings.get(channel)
        if ring is not None and not newer(self._ring_after[channel], position):
            return [entry for entry in ring if newer(entry.id, position)]
        first, _ = (await self._feed.bounds([channel]))[channel]
        if first == START or newer(first, position):
            return None  # older than what the feed keeps
        entries = await self._feed.after(channel, position, FEED_LENGTH)
        return [entry for entry in entries if not newer(entry.id, newest)]

    async def run(self, stopping: asyncio.Event) -> None:
        """Read until `stopping` is set; Redis trouble is waited out."""
        try:
            while not stopping.is_set():
                try:
                    await self._refresh()
                    if self._per_channel:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stopping.wait(), REFRESH_S)
                    else:
                        await self._read(dict(self._positions), REFRESH_S)
                except (RedisError, OSError) as error:
                    log.warning("change feed read failed", extra={"error": type(error).__name__})
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stopping.wait(), 1.0)
        finally:
            for reader in self._readers.values():
                reader.cancel()
            await asyncio.gather(*self._readers.values(), return_exceptions=True)

    async def _refresh(self) -> None:
        channels = await self._channels()
        new = [channel for channel in channels if channel not in self._positions]
        if new:
            bounds = await self._feed.bounds(new)
            for channel in new:
                self._positions[channel] = self._ring_after[channel] = bounds[channel][1]
                self._rings[channel] = deque(maxlen=RING)
                if self._per_channel:
                    self._readers[channel] = asyncio.create_task(
                        self._read_forever(channel), name=f"feed-{channel}"
                    )
        self.ready.set()

    async def _read_forever(self, channel: str) -> None:
        while True:
            try:
                await self._read({channel: self._positions[channel]}, REFRESH_S)
            except (RedisError, OSError) as error:
                log.warning("change feed read failed", extra={"error": type(error).__name__})
                await asyncio.sleep(1.0)

    async def _read(self, positions: dict[str, str], for_s: float) -> None:
        """Hand out what comes within about `for_s` seconds."""
        loop = asyncio.get_running_loop()
        until = loop.time() + for_s
        while loop.time() < until:
            found = await self._feed.read(positions, block_ms=self._block_ms)
            for index, entry in enumerate(found):
                if index and index % HAND_OUT == 0:
                    # A read brings up to a thousand changes a channel (the engine
                    # applies hundreds in one step): let the streams take what they
                    # were given, or every one of them would be cut, not only the slow.
                    await asyncio.sleep(0)
                positions[entry.channel] = entry.id
                self._dispatch(entry)

    def _dispatch(self, entry: Entry) -> None:
        if not newer(entry.id, self.position(entry.channel)):
            return  # already handed out
        self._positions[entry.channel] = entry.id
        ring = self._rings[entry.channel]
        if len(ring) == ring.maxlen:
            self._ring_after[entry.channel] = ring[0].id  # about to be let go of
        ring.append(entry)
        for subscriber in list(self._subscribers.get(entry.channel, ())):
            subscriber.offer(entry)
