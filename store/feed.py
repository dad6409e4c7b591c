"""Reading the channels' change feeds (docs/inbox.md): what the engine applied, in order.

apply.lua adds each applied change to its channel's feed in the step that applies it;
this module only reads. A position is a stream id (`<ms>-<seq>`); "0-0" is before the
first change.
"""

from collections.abc import Mapping, Sequence
from typing import Any, cast

import msgspec
from redis.exceptions import ResponseError

from parley.redis import RedisClient, as_text
from store import _keys as keys
from store.changes import Change

# What the feed keeps of each channel (public for the API's hub, which reads no further).
FEED_LENGTH = keys.FEED_LENGTH

START = "0-0"


class Entry(msgspec.Struct, frozen=True):
    """A change as the feed keeps it: `data` is its JSON, handed to clients as it is
    (the hub never needs more than the channel and the position)."""

    channel: str
    id: str
    data: bytes

    @property
    def change(self) -> Change:
        return _decoder.decode(self.data)


_decoder = msgspec.json.Decoder(Change)


def newer(a: str, b: str) -> bool:
    """Whether stream id `a` comes after `b`."""
    a_ms, _, a_seq = a.partition("-")
    b_ms, _, b_seq = b.partition("-")
    return (int(a_ms), int(a_seq or 0)) > (int(b_ms), int(b_seq or 0))


class Feed:
    """Raises redis errors."""

    def __init__(self, client: RedisClient) -> None:
        self._client = client

    async def read(
        self, after: Mapping[str, str], *, block_ms: int | None, count: int = 1000
    ) -> list[Entry]:
        """The changes after each channel's position, waiting up to `block_ms` for one
        (None: no wait). On a Redis Cluster, ask one channel a call: feeds of different
        channels live in different slots."""
        if not after:
            return []
        streams: dict[Any, Any] = {
            keys.feed(channel): position for channel, position in after.items()
        }
        found = await self._client.xread(streams, count=count, block=block_ms)
        by_key = {keys.feed(channel): channel for channel in after}
        return [
            Entry(by_key[as_text(key)], as_text(entry_id), fields[b"c"])
            for key, entries in cast(list[tuple[Any, list[tuple[Any, dict[bytes, bytes]]]]], found)
            for entry_id, fields in entries
        ]

    async def after(self, channel: str, position: str, count: int) -> list[Entry]:
        """Up to `count` changes of `channel` after `position`, oldest first."""
        found = await self._client.xrange(keys.feed(channel), f"({position}", "+", count=count)
        return [
            Entry(channel, as_text(entry_id), fields[b"c"])
            for entry_id, fields in cast(list[tuple[Any, dict[bytes, bytes]]], found)
        ]

    async def bounds(self, channels: Sequence[str]) -> dict[str, tuple[str, str]]:
        """Each channel's (first, last) position: the oldest change the feed still keeps
        (START when it keeps none) and the newest it was ever given, kept or trimmed since
        (START when it never had one), in one round trip a channel."""
        pipe = self._client.pipeline(transaction=False)
        for channel in channels:
            pipe.xinfo_stream(keys.feed(channel))
        found = await pipe.execute(raise_on_error=False) if channels else []
        bounds = {}
        for channel, info in zip(channels, found, strict=True):
            if isinstance(info, ResponseError) and "no such key" in str(info).lower():
                bounds[channel] = (START, START)  # never written
                continue
            if isinstance(info, Exception):
                raise info
            first = info["first-entry"]
            bounds[channel] = (
                as_text(first[0]) if first else START,
                as_text(info["last-generated-id"]),
            )
        return bounds
