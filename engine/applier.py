"""Applying a batch of events to Redis: read states, decide (pure), write with scripts.

A few round trips a batch, whatever its size: load.lua reads each channel's settings,
already-decided ids, the aliases of the identifiers the events carry and the
conversations they name (a second read only for customers found through an alias whose
conversation was not read yet); the pure machine decides in memory, event after event;
apply.lua writes each channel's decisions in runs. A write that finds the version or an
alias moved (the sweeper or another engine got there first) answers "conflict", and the
rest of that key's events are read and decided again.
"""

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import cast

import msgspec

from engine import keys
from engine.channel_store import decode_settings
from engine.codec import as_stored, dedupe_digest
from engine.identity import Aliases, Candidate, candidates
from engine.machine import transition
from engine.model import Conversation, Decision, Outcome
from engine.protocol import ApplySettings, Write, apply_call, load_call, read_load
from engine.records import LOG_LENGTH, RESULT_TTL_S, WAKE_TTL_S, records
from engine.reports import RETENTION_S
from engine.scripts import ScriptCall, Scripts
from parley.channels import ChannelSettings
from parley.events import (
    AGENT_ACTIONS,
    CustomerMessage,
    Event,
    Identity,
    IdentityChange,
)
from parley.redis import RedisClient

# Events per apply.lua call: a call blocks Redis for its whole run (~10 us an event).
WRITES_PER_CALL = 500
NO_CHANNEL = Decision(outcome=Outcome.REJECTED, state=None, reason="channel not configured")
LIMITS = ApplySettings(
    dedupe_ttl=keys.DEDUPE_RETENTION_S,
    report_ttl=RETENTION_S,
    log_length=LOG_LENGTH,
    result_ttl=RESULT_TTL_S,
    wake_ttl=WAKE_TTL_S,
)


class Applied(msgspec.Struct, frozen=True):
    """What became of one event; `customer` is the id of the customer it was about."""

    event: Event
    outcome: Outcome
    decision: Decision | None = None  # None for duplicates
    customer: str | None = None


class _Channel:
    """One channel's part of a round: what was read, and what was decided so far."""

    def __init__(self) -> None:
        self.settings: ChannelSettings | None = None
        self.aliases = Aliases({}, set())
        self.states: dict[str, Conversation | None] = {}
        self.decided: set[str] = set()  # event ids decided before or in this round


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
            pending[event.key].append(index)
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
        channels = await self._read(events, digests, pending)
        now = self._clock()
        planned: list[tuple[str, int, Applied, int]] = []
        writes: dict[str, list[Write]] = defaultdict(list)
        for key, indices in pending.items():
            for index in indices:
                event = events[index]
                known = channels[event.channel]
                if event.id in known.decided:
                    results[index] = Applied(event, Outcome.DUPLICATE)
                    continue
                known.decided.add(event.id)
                write, applied = self._decide(event, digests[index], known, now)
                planned.append((key, index, applied, len(writes[event.channel])))
                writes[event.channel].append(write)
        answers = await self._run_writes(writes)
        retry: dict[str, list[int]] = {}
        for key, index, applied, position in planned:
            answer = answers[applied.event.channel][position]
            if key in retry:
                retry[key].append(index)  # after a conflict, decide again in order
            elif answer == b"ok":
                results[index] = applied
            elif answer == b"duplicate":
                # Another instance applied it meanwhile (e.g. before a rebalance); what we
                # planned after it assumed our write, so decide the rest again.
                results[index] = Applied(applied.event, Outcome.DUPLICATE)
                retry[key] = []
            else:
                retry[key] = [index]
        return {key: indices for key, indices in retry.items() if indices}

    def _decide(
        self, event: Event, digest: bytes, known: _Channel, now: float
    ) -> tuple[Write, Applied]:
        """Decide one event on what is known, and update what is known with it."""
        customer = event.customer or known.aliases.find(event.identity) or event.route
        state = known.states.get(customer)
        if known.settings is None:
            decision = NO_CHANNEL
        else:
            decision = transition(state, event, known.settings, now)
        new = decision.state
        version = state.version if state else 0
        conversation = keys.conversation(event.channel, customer)
        write = Write(
            digest=digest,
            receipt_day=keys.receipt_day(event.received_at),
            expected_version=version,
            customer=customer,
            conversation=conversation,
            records=records(event, decision, event.channel, customer, state),
        )
        if decision.outcome is Outcome.APPLIED and new is not None and new != state:
            claims = []
            if not isinstance(event.payload, AGENT_ACTIONS):
                # Only what Meta told us links identifiers; an agent's action carries
                # the record's own, which must not undo a later link.
                claims = known.aliases.claims(customer, _told(event))
            write = msgspec.structs.replace(
                write,
                state=new,
                old_queue=keys.queue(event.channel, (state or new).queue),
                new_queue=keys.queue(event.channel, new.queue),
                claims=claims,
            )
            known.states[customer] = as_stored(msgspec.structs.replace(new, version=version + 1))
        return write, Applied(event, decision.outcome, decision, customer)

    async def _run_writes(self, writes: dict[str, list[Write]]) -> dict[str, list[bytes]]:
        """Run apply.lua for every channel's writes, in runs of WRITES_PER_CALL; each
        channel's answers in its writes' order."""
        calls: list[ScriptCall] = []
        for channel, channel_writes in writes.items():
            for start in range(0, len(channel_writes), WRITES_PER_CALL):
                run = channel_writes[start : start + WRITES_PER_CALL]
                first_day, window = keys.seen_window(channel, max(w.receipt_day for w in run))
                calls.append(apply_call(channel, run, first_day, window, LIMITS))
        results = await self._scripts.run_many(self._client, "apply", calls)
        answers: dict[str, list[bytes]] = defaultdict(list)
        for call, answer in zip(calls, results, strict=True):
            answers[call.order_key] += cast(list[bytes], answer)
        return answers

    async def _read(
        self, events: Sequence[Event], digests: Sequence[bytes], pending: dict[str, list[int]]
    ) -> dict[str, _Channel]:
        """Per channel: settings, the ids already decided (dedupe is per channel, as the
        seen sets are), the aliases of every identifier the events carry, and the
        conversations they name."""
        indices_of: dict[str, list[int]] = defaultdict(list)
        wanted: dict[str, dict[str, Candidate]] = defaultdict(dict)
        newest: dict[str, int] = {}
        for indices in pending.values():
            for index in indices:
                event = events[index]
                indices_of[event.channel].append(index)
                found = wanted[event.channel]
                if event.customer:  # named by the producer: read it, look nothing up
                    found.setdefault("=" + event.customer, Candidate("", event.customer))
                for identity in (event.identity, _told(event)):
                    for candidate in candidates(identity):
                        found.setdefault(candidate.alias, candidate)
                day = keys.receipt_day(event.received_at)
                newest[event.channel] = max(newest.get(event.channel, day), day)
        calls, asked = [], []
        for channel, found in wanted.items():
            _, window = keys.seen_window(channel, newest[channel])
            ask = [
                (c.itself, keys.conversation(channel, c.itself), c.alias) for c in found.values()
            ]
            channel_digests = [digests[index] for index in indices_of[channel]]
            calls.append(load_call(channel, window, channel_digests, ask))
            asked.append(ask)
        answers = await self._scripts.run_many(self._client, "load", calls)

        channels: dict[str, _Channel] = defaultdict(_Channel)
        missing: dict[str, set[str]] = defaultdict(set)
        for channel, ask, answer in zip(wanted, asked, answers, strict=True):
            loaded = read_load(answer, ask)
            known = channels[channel]
            known.settings = decode_settings(loaded.settings)
            known.decided = {
                events[index].id
                for index, flag in zip(indices_of[channel], loaded.decided, strict=True)
                if flag
            }
            stored: dict[str, str | None] = {}
            for (itself, _, alias), named, state in zip(
                ask, loaded.named, loaded.states, strict=True
            ):
                if alias:
                    stored[alias] = named
                known.states[itself] = state
            existing = {itself for itself, state in known.states.items() if state is not None}
            known.aliases = Aliases(stored, existing)
            for customer in stored.values():
                if customer is not None and customer not in known.states:
                    missing[channel].add(customer)
        if missing:
            await self._read_states(channels, missing)
        return channels

    async def _read_states(
        self, channels: dict[str, _Channel], missing: dict[str, set[str]]
    ) -> None:
        """The conversations of customers found only through an alias (e.g. a customer
        release 0.1 knew by phone, now writing with a BSUID alone)."""
        calls, asked = [], []
        for channel, customers in missing.items():
            ask = [(customer, keys.conversation(channel, customer), "") for customer in customers]
            calls.append(load_call(channel, [], [], ask))
            asked.append(ask)
        answers = await self._scripts.run_many(self._client, "load", calls)
        for channel, ask, answer in zip(missing, asked, answers, strict=True):
            loaded = read_load(answer, ask)
            known = channels[channel]
            for (customer, _, _), state in zip(ask, loaded.states, strict=True):
                known.states[customer] = state
                if state is not None:
                    known.aliases.existing.add(customer)


def _told(event: Event) -> Identity:
    """Every identifier the event says belongs to its customer: its own, a new number
    or BSUID Meta announced, a phone shared answering a contact request."""
    payload = event.payload
    identity = event.identity
    if isinstance(payload, IdentityChange):
        new = payload.new
        return msgspec.structs.replace(
            identity,
            phone=new.phone or identity.phone,
            user_id=new.user_id or identity.user_id,
            parent_user_id=new.parent_user_id or identity.parent_user_id,
        )
    if isinstance(payload, CustomerMessage) and payload.shared_phone and not identity.group_id:
        return msgspec.structs.replace(identity, phone=payload.shared_phone)
    return identity
