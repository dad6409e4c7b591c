"""The operator's view: one conversation, or a channel's queue sizes, as JSON."""

from typing import Any

import msgspec

from engine import views
from engine.channel_store import load_channel_settings
from parley.events import split_conversation_key
from parley.redis import RedisClient


class NotFound(LookupError):
    """No such conversation or channel."""


async def show_conversation(client: RedisClient, key: str) -> dict[str, Any]:
    """The conversation `{phone_number_id}:{wa_id}` as the API shows it; raises
    NotFound, ValueError."""
    channel, wa_id = split_conversation_key(key)
    view = await views.conversation(client, channel, wa_id)
    if view is None:
        raise NotFound(f"no conversation {key}")
    shown: dict[str, Any] = msgspec.to_builtins(view)
    return {"conversation": key, **shown}


async def queue_sizes(client: RedisClient, channel: str) -> dict[str, int]:
    """{"new": n, "open": n, "pending": n, "resolved": n}; raises NotFound."""
    if await load_channel_settings(client, channel) is None:
        raise NotFound(f"no channel {channel}")
    return await views.queue_sizes(client, channel)
