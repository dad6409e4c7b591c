"""The operator's view: one conversation, or a channel's queue sizes, as JSON."""

from typing import Any

import msgspec

from parley.redis import RedisClient
from store import reader as views
from store.channels import load_channel_settings


class NotFound(LookupError):
    """No such conversation or channel."""


async def show_conversation(client: RedisClient, key: str) -> dict[str, Any]:
    """The conversation `{phone_number_id}:{customer}` as the API shows it, the customer
    named by any of their identifiers (phone, BSUID, username, Parley's id); raises
    NotFound, ValueError."""
    channel, sep, identifier = key.partition(":")
    if not sep or not channel or not identifier:
        raise ValueError(f"expected {{phone_number_id}}:{{customer}}, got {key!r}")
    customer = await views.find_customer(client, channel, identifier)
    view = None if customer is None else await views.conversation(client, channel, customer)
    if view is None:
        raise NotFound(f"no conversation {key}")
    shown: dict[str, Any] = msgspec.to_builtins(view)
    return {"conversation": f"{channel}:{customer}", **shown}


async def queue_sizes(client: RedisClient, channel: str) -> dict[str, int]:
    """{"new": n, "open": n, "pending": n, "resolved": n}; raises NotFound."""
    if await load_channel_settings(client, channel) is None:
        raise NotFound(f"no channel {channel}")
    return await views.queue_sizes(client, channel)
