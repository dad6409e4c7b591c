"""Looking into Redis for assertions."""

from redis.asyncio import Redis

from store import _keys as keys


async def decided_count(client: Redis, channel: str) -> int:
    """How many event ids the engine has recorded as decided on `channel`."""
    total = 0
    async for key in client.scan_iter(match=f"{keys.tag(channel)}:seen:*"):
        total += await client.scard(key)
    return total
