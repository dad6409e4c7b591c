"""A channel's saved replies: texts admins keep for agents to insert, by name."""

from parley.redis import RedisClient, as_text
from store import _keys as keys


async def saved_replies(client: RedisClient, channel: str) -> dict[str, str]:
    """Every saved reply of the channel, name -> text, by name."""
    found = await client.hgetall(keys.saved_replies(channel))
    return {as_text(name): as_text(text) for name, text in sorted(found.items())}


async def save(client: RedisClient, channel: str, name: str, text: str) -> None:
    await client.hset(keys.saved_replies(channel), name, text)


async def delete(client: RedisClient, channel: str, name: str) -> bool:
    """False when there was none by that name."""
    return bool(await client.hdel(keys.saved_replies(channel), name))
