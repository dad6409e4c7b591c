"""Conversation state <-> the Redis hash fields and script arguments. Pure."""

import hashlib
from collections.abc import Sequence

import msgspec

from engine.model import Conversation, Queue

# Order of HMGET and of apply.lua's state arguments (without the version).
FIELDS = ("q", "a", "la", "oa", "lc", "fr", "v")


def to_ms(seconds: float) -> int:
    """Times are stored as whole milliseconds: an integer field takes half the memory
    of a float's text, and every queue score is exact."""
    return round(seconds * 1000)


def decode_conversation(values: Sequence[bytes | None]) -> Conversation | None:
    """The state from HMGET FIELDS; None when the conversation does not exist."""
    queue, assignee, activity, opened, customer, first_response, version = values
    if queue is None:
        return None
    return Conversation(
        queue=Queue(queue.decode()),
        assignee=assignee.decode() if assignee else None,
        last_activity_at=_seconds(activity) or 0.0,
        opened_at=_seconds(opened) or 0.0,
        last_customer_at=_seconds(customer),
        first_response_at=_seconds(first_response),
        version=int(version or 0),
    )


def as_stored(state: Conversation) -> Conversation:
    """`state` as it reads back from Redis (times to the millisecond), so what the
    engine decides next in a batch is what it would decide after a re-read."""
    return msgspec.structs.replace(
        state,
        last_activity_at=to_ms(state.last_activity_at) / 1000,
        opened_at=to_ms(state.opened_at) / 1000,
        last_customer_at=_rounded(state.last_customer_at),
        first_response_at=_rounded(state.first_response_at),
    )


def state_arguments(state: Conversation) -> list[str]:
    """ARGV 6..11 of an event in apply.lua: "" deletes the field."""
    return [
        state.queue.value,
        state.assignee or "",
        str(to_ms(state.last_activity_at)),
        str(to_ms(state.opened_at)),
        _text(state.last_customer_at),
        _text(state.first_response_at),
    ]


def dedupe_digest(event_id: str) -> bytes:
    """What the dedupe sets hold for an event id: 14 bytes of BLAKE2b, the largest that
    fits Redis's smallest string allocation. Ids sharing a digest by chance: about one
    pair in 10^20 among a channel's 8 days of ids at a billion a day."""
    return hashlib.blake2b(event_id.encode(), digest_size=14).digest()


def _seconds(value: bytes | None) -> float | None:
    return int(value) / 1000 if value else None


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else to_ms(seconds) / 1000


def _text(seconds: float | None) -> str:
    return "" if seconds is None else str(to_ms(seconds))
