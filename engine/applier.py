"""Applying a batch of events to Redis: read states, decide (pure), write with scripts.

Two round trips a batch, whatever its size: load.lua reads each channel's
conversations, settings and already-decided ids; the pure machine decides in memory,
event after event; apply.lua writes each channel's decisions in runs. A write that finds
the version moved (the sweeper got there first) answers "conflict", and that
conversation's remaining events are read and decided again.
"""

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, cast

import msgspec

from engine import keys
from engine.channel_store import decode_settings
from engine.codec import (
    as_stored,
    decode_conversation,
    dedupe_digest,
    state_arguments,
)
from engine.machine import transition
from engine.model import Conversation, Decision, Outcome
from engine.records import LOG_LENGTH, RESULT_TTL_S, WAKE_TTL_S, records
from engine.reports import RETENTION_S
from engine.scripts import ScriptCall, Scripts
from parley.channels import ChannelSettings
from parley.events import Event, conversation_key, split_conversation_key
from parley.redis import RedisClient

# Events per apply.lua call: a call blocks Redis for its whole run (~10 us an event).
WRITES_PER_CALL = 500
NO_CHANNEL = Decision(outcome=Outcome.REJECTED, state=None, reason="channel not configured")


class Applied(msgspec.Struct, frozen=True):
    """What became of one event."""

    event: Event
    outcome: Outcome
    decision: Decision | None = None  # None for duplicates


class Applier:
    """Applies events for any conversations. Redis errors propagate; the batch can be
    applied again as a whole (every step is idempotent)."""

    def __init__(self, client: RedisClient, scripts: Scripts, clock: Callable[[], float]) -> None:
        self._client = client
        self._scripts = scripts
        self._clock = clock

    async def apply(self, events: Sequence[Event]) -> list[Applied]:
        """Outcomes in the events' order."""
        pending: dict[str, list[int]] = defaultdict(list)
        for index, event in enumerate(events):
            pending[event.conversation].append(index)
        results: dict[int, Applied] = {}
        # Once per event, whatever the rounds: both the read and the write need it.
        digests = [dedupe_digest(event.id) for event in events]
        while pending:
            pending = await self._round(events, digests, pending, results)
        return [results[index] for index in range(len(events))]

    async def _round(
        self,
        events: Sequence[Event],
        digests: Sequence[bytes],
        pending: dict[str, list[int]],
        results: dict[int, Applied],
    ) -> dict[str, list[int]]:
        states, settings, seen = await self._read(events, digests, pending)
        now = self._clock()
        planned: list[tuple[str, int, Applied]] = []
        calls: list[ScriptCall] = []
        for conversation, indices in pending.items():
            state = states[conversation]
            for index in indices:
                event = events[index]
                if (event.channel, event.id) in seen:
                    results[index] = Applied(event, Outcome.DUPLICATE)
                    continue
                seen.add((event.channel, event.id))
                channel_settings = settings.get(event.channel)
                decision = (
                    NO_CHANNEL
                    if channel_settings is None
                    else transition(state, event, channel_settings, now)
                )
                calls.append(_write(event, digests[index], state, decision))
                planned.append((conversation, index, Applied(event, decision.outcome, decision)))
                if decision.outcome is Outcome.APPLIED and decision.state is not None:
                    version = state.version if state else 0
                    state = as_stored(msgspec.structs.replace(decision.state, version=version + 1))
        answers = await self._run_writes(calls)
        retry: dict[str, list[int]] = {}
        for (conversation, index, applied), answer in zip(planned, answers, strict=True):
            if conversation in retry:
                retry[conversation].append(index)  # after a conflict, decide again in order
            elif answer == b"ok":
                results[index] = applied
            elif answer == b"duplicate":
                # Another instance applied it meanwhile (e.g. before a rebalance); what we
                # planned after it assumed our write, so decide the rest again.
                results[index] = Applied(applied.event, Outcome.DUPLICATE)
                retry[conversation] = []
            else:
                retry[conversation] = [index]
        return {conversation: indices for conversation, indices in retry.items() if indices}

    async def _run_writes(self, writes: list[ScriptCall]) -> list[bytes]:
        """Run apply.lua for every write, a channel's writes in runs of WRITES_PER_CALL
        events per call; the answers in the writes' order."""
        by_channel: dict[str, list[int]] = defaultdict(list)
        for position, write in enumerate(writes):
            by_channel[write.order_key].append(position)
        calls: list[ScriptCall] = []
        runs: list[list[int]] = []
        for channel, positions in by_channel.items():
            for start in range(0, len(positions), WRITES_PER_CALL):
                run = positions[start : start + WRITES_PER_CALL]
                newest = max(int(writes[position].args[1]) for position in run)
                first_day, window = keys.seen_window(channel, newest)
                call_keys = list(window)
                call_args: list[str | bytes] = [
                    str(len(run)),
                    str(len(window)),
                    str(first_day),
                    str(keys.DEDUPE_RETENTION_S),
                    str(RETENTION_S),
                    str(LOG_LENGTH),
                    str(RESULT_TTL_S),
                    str(WAKE_TTL_S),
                ]
                for position in run:
                    call_keys += writes[position].keys
                    call_args += [
                        str(len(writes[position].keys)),
                        str(len(writes[position].args)),
                        *writes[position].args,
                    ]
                calls.append(ScriptCall(channel, call_keys, call_args))
                runs.append(run)
        answers: list[bytes] = [b""] * len(writes)
        results = await self._scripts.run_many(self._client, "apply", calls)
        for run, answer in zip(runs, results, strict=True):
            for position, one in zip(run, cast(list[bytes], answer), strict=True):
                answers[position] = one
        return answers

    async def _read(
        self, events: Sequence[Event], digests: Sequence[bytes], pending: dict[str, list[int]]
    ) -> tuple[dict[str, Conversation | None], dict[str, ChannelSettings], set[tuple[str, str]]]:
        """States, channel settings, and the (channel, event id) pairs already decided
        (dedupe is per channel, as the seen sets are): one load.lua call per channel."""
        conversations: dict[str, list[str]] = defaultdict(list)
        indices_of: dict[str, list[int]] = defaultdict(list)
        newest: dict[str, int] = {}
        for conversation, indices in pending.items():
            channel, wa_id = split_conversation_key(conversation)
            conversations[channel].append(wa_id)
            for index in indices:
                indices_of[channel].append(index)
                day = keys.receipt_day(events[index].received_at)
                newest[channel] = max(newest.get(channel, day), day)
        calls = []
        for channel, wa_ids in conversations.items():
            _, window = keys.seen_window(channel, newest[channel])
            calls.append(
                ScriptCall(
                    channel,
                    [
                        keys.settings(channel),
                        *window,
                        *(keys.conversation(channel, wa_id) for wa_id in wa_ids),
                    ],
                    [str(len(window)), *(digests[index] for index in indices_of[channel])],
                )
            )
        answers = await self._scripts.run_many(self._client, "load", calls)

        states: dict[str, Conversation | None] = {}
        settings: dict[str, ChannelSettings] = {}
        seen: set[tuple[str, str]] = set()
        for (channel, wa_ids), answer in zip(conversations.items(), answers, strict=True):
            flat_settings, decided, *fields = cast(list[Any], answer)
            pairs = dict(zip(flat_settings[::2], flat_settings[1::2], strict=True))
            decoded = decode_settings(pairs)
            if decoded is not None:
                settings[channel] = decoded
            seen.update(
                (channel, events[index].id)
                for index, flag in zip(indices_of[channel], decided, strict=True)
                if flag
            )
            for wa_id, values in zip(wa_ids, fields, strict=True):
                states[conversation_key(channel, wa_id)] = decode_conversation(values)
        return states, settings, seen


def _write(
    event: Event, digest: bytes, state: Conversation | None, decision: Decision
) -> ScriptCall:
    """The apply.lua arguments for one decision: a state write, or "mark" (decided,
    unchanged). Only the keys the write touches are passed: packing arguments is the
    engine's hottest path."""
    channel, wa_id = split_conversation_key(event.conversation)
    version = state.version if state else 0
    head: list[str | bytes] = [
        digest,
        str(keys.receipt_day(event.received_at)),
        str(version),
        wa_id,
    ]
    conversation = keys.conversation(channel, wa_id)
    extra = records(event, decision, channel, wa_id)
    new = decision.state
    if decision.outcome is not Outcome.APPLIED or new is None:
        return ScriptCall(channel, [conversation, *extra.keys], [*head, "mark", *extra.pairs])
    old_queue = keys.queue(channel, state.queue if state else new.queue)
    return ScriptCall(
        channel,
        [conversation, old_queue, keys.queue(channel, new.queue), *extra.keys],
        [*head, "write", *state_arguments(new), *extra.pairs],
    )
