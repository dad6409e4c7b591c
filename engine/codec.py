"""Conversation state <-> the Redis hash fields and script arguments. Pure."""

from collections.abc import Sequence

import msgspec

from engine import keys
from engine.model import (
    Conversation,
    Effect,
    NoteAdded,
    Queue,
    StatusReceived,
    TagAdded,
    TopicAdded,
)

# Order of HMGET and of apply.lua's state arguments (without the version).
FIELDS = ("q", "a", "la", "oa", "lc", "fr", "v")


def decode_conversation(values: Sequence[bytes | None]) -> Conversation | None:
    """The state from HMGET FIELDS; None when the conversation does not exist."""
    queue, assignee, activity, opened, customer, first_response, version = values
    if queue is None:
        return None
    return Conversation(
        queue=Queue(queue.decode()),
        assignee=assignee.decode() if assignee else None,
        last_activity_at=float(activity or 0),
        opened_at=float(opened or 0),
        last_customer_at=_float(customer),
        first_response_at=_float(first_response),
        version=int(version or 0),
    )


def state_arguments(state: Conversation) -> list[str]:
    """ARGV 6..11 of apply.lua: "" deletes the field."""
    return [
        state.queue.value,
        state.assignee or "",
        repr(state.last_activity_at),
        repr(state.opened_at),
        _text(state.last_customer_at),
        _text(state.first_response_at),
    ]


_note_encoder = msgspec.json.Encoder()


def effect_arguments(
    channel: str, wa_id: str, effects: Sequence[Effect]
) -> tuple[list[str], list[str]]:
    """The effects apply.lua writes: their keys, and their (name, value) pairs in the
    same order. The rest are counted or sent by the engine, not stored."""
    effect_keys: list[str] = []
    pairs: list[str] = []
    for effect in effects:
        match effect:
            case TagAdded(tag=tag):
                effect_keys.append(keys.tags(channel, wa_id))
                pairs += ["tag", tag]
            case TopicAdded(topic=topic):
                effect_keys.append(keys.topics(channel, wa_id))
                pairs += ["topic", topic]
            case NoteAdded():
                effect_keys.append(keys.notes(channel, wa_id))
                pairs += ["note", _note_encoder.encode(effect).decode()]
            case StatusReceived(wamid=wamid, status=status):
                effect_keys.append(keys.messages(channel, wa_id))
                pairs += ["status", f"{wamid}={status}"]
            case _:
                pass
    return effect_keys, pairs


def _float(value: bytes | None) -> float | None:
    return float(value) if value else None


def _text(value: float | None) -> str:
    return "" if value is None else repr(value)
