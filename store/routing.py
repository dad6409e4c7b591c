"""What the router reads and holds: the routing pool, who holds what, the agents' own
capacities, the router's lease and its wake-ups.

The pool and the holdings are written by apply.lua with the state that changes them
(`writes.Holding`), so they never disagree with the conversations; this module only
reads them. The lease (SET NX PX, released only by its holder) lets one router decide at
a time, so that two engines never hand the same agent more than their capacity.
"""

import secrets
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, cast

import msgspec
from redis.asyncio.client import Pipeline

from parley.redis import RedisClient, as_text
from parley.state import Queue
from store import _keys as keys
from store._scripts import source
from store.presence import Availability, decode

# Any channel: something every channel's routing depends on changed (an availability).
EVERY_CHANNEL = "*"
# Conversations counted per adopt.lua call when routing is switched on.
ADOPT_PAGE = 500
# Customers back on a held Pending conversation, looked at in one pass at most.
RETURNED_BATCH = 500
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _scored(rows: object) -> dict[str, float]:
    """A ZRANGE WITHSCORES reply as member -> score."""
    return {as_text(member): score for member, score in cast(list[tuple[bytes, float]], rows)}


def _raw_scores(pipe: Pipeline, key: str) -> None:
    """ZRANGE WITHSCORES left as Redis sends it (member, score, member...): redis-py's
    own pairing costs about 8 ms for 2,000 rows, most of a router pass."""
    pipe.execute_command("ZRANGE", key, "0", "-1", "WITHSCORES")


def _flat_scores(reply: object) -> Iterator[tuple[str, float]]:
    """(member, score) from a raw ZRANGE WITHSCORES: [member, score] pairs over RESP3,
    one flat list over RESP2."""
    rows = cast(list[Any], reply)
    if rows and isinstance(rows[0], list):
        return ((as_text(member), float(score)) for member, score in rows)
    return zip(map(as_text, rows[::2]), map(float, rows[1::2]), strict=True)


def _loads(reply: object) -> dict[str, int]:
    """A channel's load set as agent -> Open conversations."""
    return {agent: int(count) for agent, count in _flat_scores(reply)}


def _capacities(found: Mapping[bytes | str, bytes | str]) -> dict[str, int]:
    return {as_text(user): int(value) for user, value in found.items()}


def _members(rows: object) -> list[str]:
    return [as_text(member) for member in cast(list[bytes], rows)]


def routing_channel() -> str:
    """The pub/sub channel routing wake-ups travel on (messages: a channel id or "*")."""
    return keys.ROUTING_WAKE


class RoutingView(msgspec.Struct, frozen=True, kw_only=True):
    """What one router pass reads, in one round trip (`RoutingStore.view`)."""

    capacities: dict[str, int]  # users' own limits across channels
    loads: dict[str, dict[str, int]]  # per channel: agent -> Open conversations
    holders: dict[str, list[str]]  # per channel asked: agents holding any
    waiting: dict[str, int]  # per routing channel: the pool's size
    returned: dict[str, list[str]]  # per channel: customers back on a held Pending one


class RoutingStore:
    def __init__(self, client: RedisClient) -> None:
        self._client = client
        self._unlock = client.register_script(_UNLOCK)
        self._adopt = client.register_script(source("adopt"))

    async def pool(self, channel: str, limit: int) -> list[tuple[str, float]]:
        """The `limit` conversations waiting longest: (customer, cycle opened at)."""
        if limit <= 0:
            return []
        rows = await self._client.zrange(keys.waiting(channel), 0, limit - 1, withscores=True)
        return [(customer, score / 1000) for customer, score in _scored(rows).items()]

    async def loads(self, channels: Sequence[str]) -> dict[str, dict[str, int]]:
        """Per channel, each agent's Open conversations on it (agents at none left out)."""
        pipe = self._client.pipeline(transaction=False)
        for channel in channels:
            _raw_scores(pipe, keys.load(channel))
        found = await pipe.execute()
        return {channel: _loads(reply) for channel, reply in zip(channels, found, strict=True)}

    async def view(
        self,
        *,
        every: Sequence[str],
        routed: Sequence[str],
        held: Sequence[str],
        returned: Sequence[str],
    ) -> RoutingView:
        """Every channel's loads, the `routed` channels' pools,
        who holds conversations on the `held` channels, the `returned` channels'
        customers back (RETURNED_BATCH at most)."""
        pipe = self._client.pipeline(transaction=False)
        pipe.hgetall(keys.CAPACITY)
        for channel in every:
            _raw_scores(pipe, keys.load(channel))
        for channel in routed:
            pipe.zcard(keys.waiting(channel))
        for channel in held:
            pipe.zrange(keys.held(channel), 0, -1)
        for channel in returned:
            pipe.zrange(keys.returned(channel), 0, RETURNED_BATCH - 1)
        found = iter(await pipe.execute())
        capacities = _capacities(next(found))
        loads = {channel: _loads(next(found)) for channel in every}
        waiting = {channel: int(next(found)) for channel in routed}
        holders = {channel: _members(next(found)) for channel in held}
        back = {channel: _members(next(found)) for channel in returned}
        return RoutingView(
            capacities=capacities,
            loads=loads,
            holders=holders,
            waiting=waiting,
            returned=back,
        )

    async def candidates(
        self, channel: str, agents: Sequence[str]
    ) -> tuple[dict[str, Availability], dict[str, float]]:
        """Of `agents`, each one's availability and when they were last handed a
        conversation on the channel (0: never), in one round trip."""
        if not agents:
            return {}, {}
        pipe = self._client.pipeline(transaction=False)
        pipe.hmget(keys.AVAILABILITY, list(agents))
        pipe.zmscore(keys.handed(channel), list(agents))
        statuses, handed = await pipe.execute()
        return (
            {agent: decode(found).status for agent, found in zip(agents, statuses, strict=True)},
            {agent: (at or 0.0) / 1000 for agent, at in zip(agents, handed, strict=True)},
        )

    async def held_by(self, channel: str, agent: str) -> list[str]:
        """The customers whose conversation `agent` holds on the channel."""
        return _members(await self._client.zrange(keys.assigned(channel, agent), 0, -1))

    async def forget_returned(self, channel: str, customers: Sequence[str]) -> None:
        if customers:
            await self._client.zrem(keys.returned(channel), *customers)

    async def capacities(self) -> dict[str, int]:
        """Each user's own limit of Open conversations across channels (if they have one)."""
        found = await self._client.hgetall(keys.CAPACITY)
        return _capacities(found)

    async def set_capacity(self, user: str, capacity: int | None) -> None:
        if capacity is None:
            await self._client.hdel(keys.CAPACITY, user)
        else:
            await self._client.hset(keys.CAPACITY, user, str(capacity))

    async def capacity(self, user: str) -> int | None:
        found = await self._client.hget(keys.CAPACITY, user)
        return None if found is None else int(found)

    async def open_pool(self, channel: str) -> int:
        """Routing was switched on: conversations in New from before the pool was kept
        join it (scored by their last activity; the pool keeps any it has), and those
        held from before the loads were kept are counted (adopt.lua); how many were."""
        await self._client.zunionstore(
            keys.waiting(channel),
            [keys.waiting(channel), keys.queue(channel, Queue.NEW)],
            aggregate="MIN",
        )
        counted = 0
        for queue in (Queue.OPEN, Queue.PENDING):
            start = 0
            while page := _members(
                await self._client.zrange(keys.queue(channel, queue), start, start + ADOPT_PAGE - 1)
            ):
                counted += await self._adopt_page(channel, page)
                start += ADOPT_PAGE
        return counted

    async def _adopt_page(self, channel: str, customers: list[str]) -> int:
        pipe = self._client.pipeline(transaction=False)
        for customer in customers:
            pipe.hmget(keys.conversation(channel, customer), ["q", "a"])
        call_keys, call_args = [keys.load(channel), keys.held(channel)], []
        for customer, (queue, assignee) in zip(customers, await pipe.execute(), strict=True):
            if queue and assignee:
                agent = as_text(assignee)
                call_keys += [keys.conversation(channel, customer), keys.assigned(channel, agent)]
                call_args += [customer, as_text(queue), agent]
        if not call_args:
            return 0
        return int(await self._adopt(keys=call_keys, args=call_args))

    async def lease(self, ttl_s: float) -> str | None:
        """Take the router's lease for `ttl_s`; its token, None when another holds it."""
        token = secrets.token_hex(8)
        taken = await self._client.set(keys.ROUTING_LOCK, token, nx=True, px=int(ttl_s * 1000))
        return token if taken else None

    async def give_back(self, token: str) -> None:
        await self._unlock(keys=[keys.ROUTING_LOCK], args=[token])

    async def wake(self, channel: str = EVERY_CHANNEL) -> None:
        """Tell every engine's router that `channel`'s routing may have changed."""
        await self._client.publish(keys.ROUTING_WAKE, channel)
