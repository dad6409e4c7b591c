"""Who is working: each user's availability (online, away, offline), set by themselves,
and offline by itself once none of their live streams has been connected for a while.

Two keys under the directory's hash tag: a hash of every user's availability, and a
sorted set of the online and away users by when one of their streams was last seen (a
user leaves it on going offline, so the pass that marks absent users offline reads only
what is due). Receivers touch it (ZADD XX: never putting back someone marked offline);
engines run `mark_absent_offline`, atomic in Lua (store/lua/offline.lua).
"""

import math
from collections.abc import Sequence
from enum import StrEnum
from typing import cast

import msgspec

from parley.redis import RedisClient, as_text
from store import _keys as keys
from store._codec import to_ms
from store._scripts import source

# Users marked offline by one script run at most: a pass never holds Redis long.
OFFLINE_BATCH = 500


class Availability(StrEnum):
    ONLINE = "online"  # working, and may be handed conversations
    AWAY = "away"  # signed in, not taking new work
    OFFLINE = "offline"


class Presence(msgspec.Struct, frozen=True, kw_only=True):
    status: Availability
    since: float  # Unix seconds
    auto: bool = False  # set by Parley (no live stream), not by the user


NEVER = Presence(status=Availability.OFFLINE, since=0.0)
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Presence)


def decode(found: bytes | str | None) -> Presence:
    """A user's availability as stored (never set: offline)."""
    return NEVER if found is None else _decoder.decode(found)


class PresenceStore:
    def __init__(self, client: RedisClient) -> None:
        self._client = client
        self._offline = client.register_script(source("offline"))

    async def get(self, user: str) -> Presence:
        return decode(await self._client.hget(keys.AVAILABILITY, user))

    async def many(self, users: Sequence[str]) -> dict[str, Presence]:
        if not users:
            return {}
        found = await self._client.hmget(keys.AVAILABILITY, list(users))
        return {user: decode(value) for user, value in zip(users, found, strict=True)}

    async def set(self, user: str, status: Availability, at: float) -> Presence:
        """The user chose `status`. Online or away counts as seen now: the grace before
        an absent user goes offline starts here, stream or not."""
        record = Presence(status=status, since=at)
        pipe = self._client.pipeline(transaction=True)
        pipe.hset(keys.AVAILABILITY, user, _encoder.encode(record))
        if status is Availability.OFFLINE:
            pipe.zrem(keys.PRESENT, user)
        else:
            pipe.zadd(keys.PRESENT, {user: to_ms(at)})
        await pipe.execute()
        return record

    async def seen(self, user: str, at: float) -> None:
        """A live stream of the user's is connected at `at` (nothing for an offline one)."""
        await self._client.zadd(keys.PRESENT, {user: to_ms(at)}, xx=True)

    async def mark_absent_offline(self, cutoff: float, at: float) -> list[str]:
        """Every online or away user not seen since `cutoff`, marked offline at `at`."""
        record = _encoder.encode(Presence(status=Availability.OFFLINE, since=at, auto=True))
        marked: list[str] = []
        while True:
            found = await self._offline(
                keys=[keys.PRESENT, keys.AVAILABILITY],
                args=[math.floor(cutoff * 1000), record, OFFLINE_BATCH],
            )
            users = [as_text(user) for user in cast(list[bytes], found)]
            marked += users
            if len(users) < OFFLINE_BATCH:
                return marked
