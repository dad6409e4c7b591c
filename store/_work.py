"""Work queued on per-channel streams and taken through one consumer group (the
outboxes, the media fetches): several engines share the work, each entry goes to one
of them, and what a dead taker left pending is claimed by another after a while."""

from collections.abc import Callable
from typing import Any, cast

from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError

from parley.redis import RedisClient, as_text

Raw = tuple[str, bytes]  # (the entry's id, its payload)


class WorkStreams:
    """The streams `key(channel)` of every channel, read as `consumer` of `group`; each
    entry's payload is its field `field`. Raises redis errors; never blocks."""

    def __init__(
        self,
        client: RedisClient,
        consumer: str,
        group: str,
        key: Callable[[str], str],
        field: bytes,
    ) -> None:
        self._client = client
        self._consumer = consumer
        self._group = group
        self._key = key
        self._field = field
        self._groups: set[str] = set()

    async def take(self, channel: str, count: int) -> list[Raw]:
        """Up to `count` entries of `channel` nobody has taken yet, now ours."""
        await self._ensure_group(channel)
        found = await self._client.xreadgroup(
            self._group, self._consumer, {self._key(channel): ">"}, count=count
        )
        return [
            (as_text(entry_id), fields[self._field])
            for _, entries in cast(list[tuple[Any, list[tuple[Any, dict[bytes, bytes]]]]], found)
            for entry_id, fields in entries
        ]

    async def claim_idle(self, channel: str, idle_ms: int) -> list[Raw]:
        """Every entry of `channel` another taker took over `idle_ms` ago and never
        finished (it died), now ours."""
        await self._ensure_group(channel)
        claimed: list[Raw] = []
        start = "0-0"
        while True:
            answer = await self._client.xautoclaim(
                self._key(channel), self._group, self._consumer, idle_ms, start, count=100
            )
            start = as_text(answer[0])
            for entry_id, fields in answer[1]:
                if fields is not None:  # None: deleted meanwhile
                    claimed.append((as_text(entry_id), fields[self._field]))
            if start == "0-0":
                return claimed

    def done(self, pipe: Pipeline, channel: str, entry_id: str) -> None:
        """Acknowledge and drop the entry, in the caller's transaction."""
        pipe.xack(self._key(channel), self._group, entry_id)
        pipe.xdel(self._key(channel), entry_id)

    async def _ensure_group(self, channel: str) -> None:
        if channel in self._groups:
            return
        try:
            await self._client.xgroup_create(self._key(channel), self._group, id="0", mkstream=True)
        except ResponseError as error:  # BUSYGROUP: it exists
            if "BUSYGROUP" not in str(error):
                raise
        self._groups.add(channel)
