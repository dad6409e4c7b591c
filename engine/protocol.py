"""The arguments of load.lua and apply.lua, packed and read back in one place.

Each script's header comment is its contract; this module is the other half. Names the
scripts use (state fields, the version field, delivery ranks) travel in the arguments,
so they are written once, here and in engine/codec.py.
"""

from collections.abc import Sequence
from typing import Any, cast

import msgspec

from engine import keys
from engine.codec import (
    FIELDS,
    LAST_ACTIVITY,
    STATE_FIELDS,
    VERSION,
    decode_conversation,
    state_arguments,
)
from engine.identity import Claim
from engine.model import Conversation
from engine.scripts import ScriptCall

# Delivery statuses only move forward: a late "delivered" never undoes "read". A voice
# note's "played" comes after "read"; "failed" ends it.
STATUS_RANKS = {"accepted": 0, "sent": 1, "delivered": 2, "read": 3, "played": 4, "failed": 5}


class Record(msgspec.Struct, frozen=True, array_like=True):
    """One of apply.lua's record operations on `key` (see its header)."""

    op: str
    key: str
    a: str = ""
    b: str = ""
    c: str = ""


class Write(msgspec.Struct, frozen=True, kw_only=True):
    """What one decided event writes: `state` None is a "mark" (decided, unchanged)."""

    digest: bytes
    receipt_day: int
    expected_version: int
    customer: str
    conversation: str  # the conversation hash's key
    state: Conversation | None = None
    old_queue: str = ""  # the queue set it was in (a write only; its new one if none)
    new_queue: str = ""
    claims: Sequence[Claim] = ()
    records: Sequence[Record] = ()


class ApplySettings(msgspec.Struct, frozen=True, kw_only=True):
    dedupe_ttl: int
    report_ttl: int
    log_length: int
    result_ttl: int
    wake_ttl: int


def apply_call(
    channel: str,
    writes: Sequence[Write],
    first_day: int,
    window: Sequence[str],
    limits: ApplySettings,
) -> ScriptCall:
    """One apply.lua call for a run of one channel's writes, in order."""
    config = {
        "events": len(writes),
        "sets": len(window),
        "first_day": first_day,
        "fields": STATE_FIELDS,
        "score": LAST_ACTIVITY,
        "version": VERSION,
        "ranks": STATUS_RANKS,
        "day_s": keys.DAY_S,
        **msgspec.structs.asdict(limits),
    }
    call_keys = [*window, keys.aliases(channel)]
    call_args: list[str | bytes] = [msgspec.json.encode(config)]
    for write in writes:
        event_keys = [write.conversation]
        args: list[str | bytes] = [
            write.digest,
            str(write.receipt_day),
            str(write.expected_version),
            write.customer,
            "mark" if write.state is None else "write",
            str(len(write.claims)),
        ]
        for claim in write.claims:
            args += [claim.alias, claim.expected, claim.customer]
        if write.state is not None:
            event_keys += [write.old_queue, write.new_queue]
            args += state_arguments(write.state)
        for record in write.records:
            event_keys.append(record.key)
            args += [record.op, record.a, record.b, record.c]
        call_keys += event_keys
        call_args += [str(len(event_keys)), str(len(args)), *args]
    return ScriptCall(channel, call_keys, call_args)


class Loaded(msgspec.Struct, frozen=True):
    """What load.lua read for one channel."""

    settings: dict[str, str]
    decided: list[bool]  # per digest, in the order given
    named: list[str | None]  # per conversation: its alias's stored value
    states: list[Conversation | None]  # per conversation


def load_call(
    channel: str,
    window: Sequence[str],
    digests: Sequence[bytes],
    conversations: Sequence[tuple[str, str, str]],
) -> ScriptCall:
    """One load.lua call: the decided flags of `digests`, and per (customer id, hash
    key, alias) the alias's stored value and the conversation's state."""
    return ScriptCall(
        channel,
        [
            keys.settings(channel),
            *window,
            keys.aliases(channel),
            *(key for _, key, _ in conversations),
        ],
        [
            str(len(window)),
            str(len(digests)),
            str(len(FIELDS)),
            *FIELDS,
            *digests,
            *(alias for _, _, alias in conversations),
        ],
    )


def read_load(answer: object, conversations: Sequence[tuple[str, str, str]]) -> Loaded:
    flat_settings, decided, *found = cast(list[Any], answer)
    settings = {
        _text(name): _text(value)
        for name, value in zip(flat_settings[::2], flat_settings[1::2], strict=True)
    }
    named: list[str | None] = []
    states: list[Conversation | None] = []
    for (customer, _, _), (alias_value, values) in zip(conversations, found, strict=True):
        named.append(_text(alias_value) if alias_value else None)
        states.append(decode_conversation(values, customer))
    return Loaded(settings, [bool(flag) for flag in decided], named, states)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
