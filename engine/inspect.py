"""The operator's view: one conversation, or a channel's queue sizes, as JSON."""

from datetime import UTC, datetime
from typing import Any

from engine import keys
from engine.channel_store import load_channel_settings
from engine.codec import FIELDS, decode_conversation
from engine.model import Queue
from parley.events import split_conversation_key
from parley.redis import RedisClient


class NotFound(LookupError):
    """No such conversation or channel."""


async def show_conversation(client: RedisClient, key: str) -> dict[str, Any]:
    """The conversation `{phone_number_id}:{wa_id}`; raises NotFound, ValueError."""
    channel, wa_id = split_conversation_key(key)
    pipe = client.pipeline(transaction=False)
    pipe.hmget(keys.conversation(channel, wa_id), FIELDS)
    pipe.smembers(keys.tags(channel, wa_id))
    pipe.smembers(keys.topics(channel, wa_id))
    pipe.llen(keys.notes(channel, wa_id))
    fields, tags, topics, notes = await pipe.execute()
    state = decode_conversation(fields)
    if state is None:
        raise NotFound(f"no conversation {key}")
    return {
        "conversation": key,
        "queue": state.queue.value,
        "assignee": state.assignee,
        "last_activity_at": _iso(state.last_activity_at),
        "opened_at": _iso(state.opened_at),
        "last_customer_message_at": _iso(state.last_customer_at),
        "first_response_at": _iso(state.first_response_at),
        "tags": sorted(tag.decode() for tag in tags),
        "topics": sorted(topic.decode() for topic in topics),
        "notes": notes,
        "version": state.version,
    }


async def queue_sizes(client: RedisClient, channel: str) -> dict[str, int]:
    """{"new": n, "open": n, "pending": n, "resolved": n}; raises NotFound."""
    if await load_channel_settings(client, channel) is None:
        raise NotFound(f"no channel {channel}")
    pipe = client.pipeline(transaction=False)
    for queue in Queue:
        pipe.zcard(keys.queue(channel, queue))
    sizes = await pipe.execute()
    return {queue.value: size for queue, size in zip(Queue, sizes, strict=True)}


def _iso(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat()
