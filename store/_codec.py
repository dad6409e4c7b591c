"""Conversation state <-> the Redis hash fields and script arguments. Pure."""

import hashlib
from collections.abc import Sequence

import msgspec

from parley.events import Identity
from parley.sla import Deadline
from parley.state import Conversation, Queue

# The state a "write" sets, in apply.lua's order; LAST_ACTIVITY scores the queue sets.
STATE_FIELDS = ("q", "a", "la", "oa", "lc", "fr", "li", "rd", "sz", "oh", "sl", "ha", "ra", "po")
# apply.lua's 1-based positions: the queue sets score a conversation by the later of its
# last activity and the end of its snooze (Conversation.queue_score).
LAST_ACTIVITY = STATE_FIELDS.index("la") + 1
SNOOZED_UNTIL = STATE_FIELDS.index("sz") + 1
VERSION = "v"
# The customer record, kept in the same hash: written only when it changes.
CUSTOMER_FIELDS = {
    "phone": "p",
    "user_id": "u",
    "parent_user_id": "pu",
    "username": "un",
    "name": "n",
    "group_id": "g",
}
MARKETING = "mk"
# Order of load.lua's HMGET.
FIELDS = (*STATE_FIELDS, VERSION, *CUSTOMER_FIELDS.values(), MARKETING)


_encoder = msgspec.json.Encoder()
_deadlines = msgspec.json.Decoder(tuple[Deadline, ...])


def to_ms(seconds: float) -> int:
    """Times are stored as whole milliseconds: an integer field takes half the memory
    of a float's text, and every queue score is exact."""
    return round(seconds * 1000)


def decode_conversation(values: Sequence[bytes | None], customer: str) -> Conversation | None:
    """The state from HMGET FIELDS of customer `customer`'s hash; None when the
    conversation does not exist."""
    (
        queue,
        assignee,
        activity,
        opened,
        last_customer,
        first_response,
        inbound,
        read,
        snoozed,
        out_of_hours,
        sla,
        handed,
        reassign,
        passed_over,
    ) = values[: len(STATE_FIELDS)]
    version = values[len(STATE_FIELDS)]
    if queue is None:
        return None
    known = {
        name: value.decode()
        for name, value in zip(CUSTOMER_FIELDS, values[len(STATE_FIELDS) + 1 : -1], strict=True)
        if value is not None
    }
    if not known:
        # Written by release 0.1, which knew customers by phone only: the id is it.
        known = {"phone": customer}
    marketing = values[-1]
    return Conversation(
        queue=Queue(queue.decode()),
        assignee=assignee.decode() if assignee else None,
        last_activity_at=_seconds(activity) or 0.0,
        opened_at=_seconds(opened) or 0.0,
        last_customer_at=_seconds(last_customer),
        first_response_at=_seconds(first_response),
        version=int(version or 0),
        customer=Identity(**known),
        marketing=marketing.decode() if marketing else None,
        last_inbound=inbound.decode() if inbound else None,
        read=read.decode() if read else None,
        snoozed_until=_seconds(snoozed),
        out_of_hours_replied=bool(out_of_hours),
        sla=_deadlines.decode(sla) if sla else (),
        handed_at=_seconds(handed),
        reassign_at=_seconds(reassign),
        passed_over=passed_over.decode() if passed_over else None,
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
        snoozed_until=_rounded(state.snoozed_until),
        handed_at=_rounded(state.handed_at),
        reassign_at=_rounded(state.reassign_at),
    )


def state_arguments(state: Conversation) -> list[str]:
    """The STATE_FIELDS values of a "write": "" deletes the field."""
    return [
        state.queue.value,
        state.assignee or "",
        str(to_ms(state.last_activity_at)),
        str(to_ms(state.opened_at)),
        _text(state.last_customer_at),
        _text(state.first_response_at),
        state.last_inbound or "",
        state.read or "",
        _text(state.snoozed_until),
        "1" if state.out_of_hours_replied else "",
        _encoder.encode(state.sla).decode() if state.sla else "",
        _text(state.handed_at),
        _text(state.reassign_at),
        state.passed_over or "",
    ]


def customer_changes(old: Conversation | None, new: Conversation) -> list[tuple[str, str | None]]:
    """(field, value) of the customer record to write (None: delete it). A record that
    changed is written whole (a few short fields, and rarely): one release 0.1 wrote
    has no fields at all, and a diff against its decoded phone would leave it out."""
    changes: list[tuple[str, str | None]] = []
    if old is None:
        # A new conversation's hash does not exist yet (only apply.lua writes it, and
        # always with a state): nothing to delete.
        for name, field in CUSTOMER_FIELDS.items():
            if (value := getattr(new.customer, name)) is not None:
                changes.append((field, value))
    elif new.customer != old.customer:
        changes = [(field, getattr(new.customer, name)) for name, field in CUSTOMER_FIELDS.items()]
    if new.marketing != (old.marketing if old else None):
        changes.append((MARKETING, new.marketing))
    return changes


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
