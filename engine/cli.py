"""The operator's view: one conversation, or a channel's queue sizes, as JSON.

A conversation prints as the store's reader holds it (store/reader.py's
ConversationRecord), not as /v1 serves it: this is an operator's look at what is
stored, and the API's public shapes stay the API's own. Times, Unix seconds in the
records (every field named `at` or `*_at`), print as ISO 8601 in UTC.
"""

from datetime import UTC, datetime
from typing import Any

import msgspec

from store.channels import load_channel_settings
from store.reader import Reader


class NotFound(LookupError):
    """No such conversation or channel."""


async def show_conversation(reader: Reader, key: str) -> dict[str, Any]:
    """The conversation `{phone_number_id}:{customer}`, the customer named by any of
    their identifiers (phone, BSUID, username, Parley's id); raises NotFound, ValueError."""
    channel, sep, identifier = key.partition(":")
    if not sep or not channel or not identifier:
        raise ValueError(f"expected {{phone_number_id}}:{{customer}}, got {key!r}")
    customer = await reader.find_customer(channel, identifier)
    record = None if customer is None else await reader.conversation(channel, customer)
    if record is None:
        raise NotFound(f"no conversation {key}")
    shown: dict[str, Any] = _with_times(msgspec.to_builtins(record))
    return {"conversation": f"{channel}:{customer}", **shown}


async def queue_sizes(reader: Reader, channel: str) -> dict[str, int]:
    """{"new": n, "open": n, "pending": n, "resolved": n}; raises NotFound."""
    if await load_channel_settings(reader.client, channel) is None:
        raise NotFound(f"no channel {channel}")
    return await reader.queue_sizes(channel)


def _with_times(value: Any) -> Any:
    """`value` with every number under a key `at` or `*_at` as an ISO 8601 string."""
    if isinstance(value, list):
        return [_with_times(item) for item in value]
    if not isinstance(value, dict):
        return value
    return {
        key: _iso(item) if _is_time(key, item) else _with_times(item) for key, item in value.items()
    }


def _is_time(key: str, value: Any) -> bool:
    return (key == "at" or key.endswith("_at")) and isinstance(value, int | float)


def _iso(seconds: float) -> str:
    # msgspec's own datetime text, as the API shows times: "2026-09-21T14:13:21Z".
    return str(msgspec.to_builtins(datetime.fromtimestamp(seconds, UTC)))
