"""Applying a batch of events to Redis: read states, decide (pure), write with scripts.

Three round trips a batch, whatever its size: one pipeline reads every conversation,
channel setting and already-seen id; the pure machine decides in memory, event after
event; one pipeline runs apply.lua per event. A script that finds the version moved
(the sweeper got there first) answers "conflict", and that conversation's remaining
events are read and decided again.
"""

from collections import defaultdict
from collections.abc import Callable, Sequence

import msgspec

from engine import keys
from engine.channel_store import decode_settings
from engine.codec import FIELDS, decode_conversation, effect_arguments, state_arguments
from engine.machine import transition
from engine.model import Conversation, Decision, Outcome
from engine.scripts import ScriptCall, Scripts
from parley.channels import ChannelSettings
from parley.events import Event, split_conversation_key
from parley.redis import RedisClient

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
        while pending:
            pending = await self._round(events, pending, results)
        return [results[index] for index in range(len(events))]

    async def _round(
        self,
        events: Sequence[Event],
        pending: dict[str, list[int]],
        results: dict[int, Applied],
    ) -> dict[str, list[int]]:
        states, settings, seen = await self._read(events, pending)
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
                calls.append(_write(event, state, decision))
                planned.append((conversation, index, Applied(event, decision.outcome, decision)))
                if decision.outcome is Outcome.APPLIED and decision.state is not None:
                    version = state.version if state else 0
                    state = msgspec.structs.replace(decision.state, version=version + 1)
        answers = await self._scripts.run_many(self._client, "apply", calls)

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

    async def _read(
        self, events: Sequence[Event], pending: dict[str, list[int]]
    ) -> tuple[dict[str, Conversation | None], dict[str, ChannelSettings], set[tuple[str, str]]]:
        """States, channel settings, and the (channel, event id) pairs already decided:
        dedupe is per channel, as the seen sets are."""
        ids_by_channel: dict[str, list[str]] = defaultdict(list)
        for indices in pending.values():
            for index in indices:
                ids_by_channel[events[index].channel].append(events[index].id)
        pipe = self._client.pipeline(transaction=False)
        conversations = list(pending)
        for conversation in conversations:
            channel, wa_id = split_conversation_key(conversation)
            pipe.hmget(keys.conversation(channel, wa_id), FIELDS)
        channels = list(ids_by_channel)
        for channel in channels:
            pipe.hgetall(keys.settings(channel))
            pipe.zmscore(keys.seen(channel), ids_by_channel[channel])
        answers = await pipe.execute()

        states = {
            conversation: decode_conversation(answer)
            for conversation, answer in zip(conversations, answers, strict=False)
        }
        settings: dict[str, ChannelSettings] = {}
        seen: set[tuple[str, str]] = set()
        rest = answers[len(conversations) :]
        for position, channel in enumerate(channels):
            decoded = decode_settings(rest[2 * position])
            if decoded is not None:
                settings[channel] = decoded
            scores = rest[2 * position + 1]
            seen.update(
                (channel, event_id)
                for event_id, score in zip(ids_by_channel[channel], scores, strict=True)
                if score is not None
            )
        return states, settings, seen


def _write(event: Event, state: Conversation | None, decision: Decision) -> ScriptCall:
    """The apply.lua call for a decision: a state write, or "mark" (decided, unchanged)."""
    channel, wa_id = split_conversation_key(event.conversation)
    version = state.version if state else 0
    head = [event.id, repr(event.received_at), str(version), wa_id]
    if decision.outcome is Outcome.APPLIED and decision.state is not None:
        args = [
            *head,
            "write",
            *state_arguments(decision.state),
            *effect_arguments(decision.effects),
        ]
    else:
        args = [*head, "mark"]
    return ScriptCall(event.conversation, keys.conversation_keys(channel, wa_id), args)
