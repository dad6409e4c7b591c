"""Applying a batch of events: read what it needs, decide (pure), write.

`ConversationStore.load` reads, per channel, the settings, the ids already decided and
the customers the events name; the pure machine decides in memory, event after event;
`ConversationStore.apply` writes each channel's decisions. A write that finds the
version or an alias moved (the sweeper or another engine got there first) answers
"conflict", and the rest of that key's events are read and decided again.
"""

import asyncio
from collections import defaultdict
from collections.abc import Callable, Sequence

import msgspec

from engine.identity import Aliases
from engine.machine import transition
from engine.model import Decision
from engine.records import records
from parley.events import AGENT_ACTIONS, CustomerMessage, Event, Identity, IdentityChange
from parley.state import Outcome
from store.aliases import Candidate, candidates
from store.conversations import (
    Answer,
    ConversationStore,
    LoadRequest,
    Snapshot,
    as_stored,
    digest,
)
from store.writes import Write

NO_CHANNEL = Decision(outcome=Outcome.REJECTED, state=None, reason="channel not configured")


class Applied(msgspec.Struct, frozen=True):
    """What became of one event; `customer` is the id of the customer it was about."""

    event: Event
    outcome: Outcome
    decision: Decision | None = None  # None for duplicates
    customer: str | None = None


# A decided event: its key, its index in the batch, what it became, its write's position
# in its channel's writes.
_Planned = tuple[str, int, Applied, int]


class _Channel:
    """One channel's part of a round: what was read, and what was decided so far."""

    def __init__(self, snapshot: Snapshot, decided: set[str]) -> None:
        self.settings = snapshot.settings
        self.states = snapshot.states
        existing = {customer for customer, state in self.states.items() if state is not None}
        self.aliases = Aliases(snapshot.named, existing)
        self.decided = decided  # event ids decided before or in this round


class Applier:
    """Applies events for any conversations. Redis errors propagate; the batch can be
    applied again as a whole (every step is idempotent)."""

    def __init__(self, store: ConversationStore, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock

    async def apply(self, events: Sequence[Event]) -> list[Applied]:
        """Outcomes in the events' order."""
        pending: dict[str, list[int]] = defaultdict(list)
        for index, event in enumerate(events):
            pending[event.key].append(index)
        results: dict[int, Applied] = {}
        # Once per event, whatever the rounds: both the read and the write need it.
        digests = [digest(event.id) for event in events]
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
        """Read, decide and write `pending` in parts of different keys, as a pipeline:
        while the engine decides one part, Redis reads the next and applies the one
        before (the engine's work and Redis' cost about the same), so a round takes
        about the longer of the two rather than their sum. Parts hold different
        customers (bar two routes to one person, or an alias claimed in an earlier
        part: a version or claim conflict, decided again)."""
        parts = _parts(pending)
        reading = asyncio.ensure_future(self._read(events, digests, parts[0]))
        applying: list[tuple[list[_Planned], asyncio.Future[dict[str, list[Answer]]]]] = []
        try:
            for number, part in enumerate(parts):
                channels = await reading
                if number + 1 < len(parts):  # Redis reads the next while this is decided
                    reading = asyncio.ensure_future(self._read(events, digests, parts[number + 1]))
                planned, writes = self._decide_part(events, digests, part, channels, results)
                applying.append((planned, asyncio.ensure_future(self._store.apply(writes))))
                await asyncio.sleep(0)  # the part's call goes out before the next is decided
            retry: dict[str, list[int]] = {}
            for planned, written in applying:
                _sort_answers(planned, await written, results, retry)
        finally:
            # A failed part leaves none of the others running behind the caller's back.
            reading.cancel()
            for _, written in applying:
                written.cancel()
        return {key: indices for key, indices in retry.items() if indices}

    def _decide_part(
        self,
        events: Sequence[Event],
        digests: Sequence[bytes],
        part: dict[str, list[int]],
        channels: dict[str, _Channel],
        results: dict[int, Applied],
    ) -> tuple[list[_Planned], dict[str, list[Write]]]:
        """Each event of `part` decided in order; what was planned, and each channel's
        writes (a duplicate goes straight to `results`)."""
        now = self._clock()
        planned: list[_Planned] = []
        writes: dict[str, list[Write]] = defaultdict(list)
        for key, indices in part.items():
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
        return planned, writes

    def _decide(
        self, event: Event, event_digest: bytes, known: _Channel, now: float
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
        write = Write(
            digest=event_digest,
            received_at=event.received_at,
            expected_version=version,
            customer=customer,
            ops=records(
                decision,
                channel=event.channel,
                event_id=event.id,
                kind=event.kind,
                at=event.occurred_at,
                customer=customer,
                old=state,
                payload=event.payload,
            ),
        )
        if decision.outcome is Outcome.APPLIED and new is not None and new != state:
            claims = []
            if not isinstance(event.payload, AGENT_ACTIONS):
                # Only what Meta told us links identifiers; an agent's action carries
                # the record's own, which must not undo a later link.
                claims = known.aliases.claims(customer, _told(event))
            write = msgspec.structs.replace(
                write, state=new, was_in=state.queue if state else None, claims=claims
            )
            known.states[customer] = as_stored(msgspec.structs.replace(new, version=version + 1))
        return write, Applied(event, decision.outcome, decision, customer)

    async def _read(
        self, events: Sequence[Event], digests: Sequence[bytes], pending: dict[str, list[int]]
    ) -> dict[str, _Channel]:
        """Per channel: settings, the ids already decided (dedupe is per channel, as the
        seen sets are), the aliases of every identifier the events carry, and the
        conversations they name."""
        indices_of: dict[str, list[int]] = defaultdict(list)
        wanted: dict[str, dict[str, Candidate]] = defaultdict(dict)
        newest: dict[str, float] = {}
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
                newest[event.channel] = max(newest.get(event.channel, 0.0), event.received_at)
        requests = [
            LoadRequest(
                channel=channel,
                digests=[digests[index] for index in indices_of[channel]],
                newest_received_at=newest[channel],
                candidates=list(found.values()),
            )
            for channel, found in wanted.items()
        ]
        snapshots = await self._store.load(requests)
        channels: dict[str, _Channel] = {}
        for request, snapshot in zip(requests, snapshots, strict=True):
            decided = {
                events[index].id
                for index, flag in zip(indices_of[request.channel], snapshot.decided, strict=True)
                if flag
            }
            channels[request.channel] = _Channel(snapshot, decided)
        return channels


def _sort_answers(
    planned: Sequence[_Planned],
    answers: dict[str, list[Answer]],
    results: dict[int, Applied],
    retry: dict[str, list[int]],
) -> None:
    """Each planned event's answer into `results`, or its key into `retry` with the
    events to decide again in order."""
    for key, index, applied, position in planned:
        answer = answers[applied.event.channel][position]
        if key in retry:
            retry[key].append(index)  # after a conflict, decide again in order
        elif answer is Answer.OK:
            results[index] = applied
        elif answer is Answer.DUPLICATE:
            # Another instance applied it meanwhile (e.g. before a rebalance); what we
            # planned after it assumed our write: decide the rest again.
            results[index] = Applied(applied.event, Outcome.DUPLICATE)
            retry[key] = []
        else:
            retry[key] = [index]


# A round is read, decided and written in parts of about this many events: small
# enough that the pipeline's first read and last write (the engine waits for both)
# are short, large enough that a part's calls carry hundreds of events.
PART_EVENTS = 1000


def _parts(pending: dict[str, list[int]]) -> list[dict[str, list[int]]]:
    """`pending` in parts of about PART_EVENTS events, each key whole, in order."""
    parts: list[dict[str, list[int]]] = [{}]
    taken = 0
    for key, indices in pending.items():
        if taken >= PART_EVENTS:
            parts.append({})
            taken = 0
        parts[-1][key] = indices
        taken += len(indices)
    return parts


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
