"""The conversation store's verbs: load what a batch needs, apply decided writes, and
find what is due. The engine's consumer and sweeper use only these.

A few round trips a batch, whatever its size: `load` reads each channel's settings, the
event ids already decided, the aliases of the identifiers asked for and the
conversations they name (a second read only for customers found through an alias whose
conversation was not read yet); `apply` writes each channel's decisions in runs of
`WRITES_PER_CALL`, each checked against the version (and the aliases) it was decided on.
"""

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import cast

import msgspec

from parley.channels import ChannelSettings
from parley.redis import RedisClient, as_text
from parley.state import Conversation, Queue
from store import _keys as keys
from store import reports
from store._codec import as_stored, dedupe_digest
from store._protocol import Limits, apply_call, load_call, read_load
from store._scripts import ScriptCall, Scripts
from store.aliases import Candidate
from store.channels import decode_settings
from store.writes import Write

# Events per apply.lua call: a call blocks Redis for its whole run (~10 us an event).
WRITES_PER_CALL = 500
# Messages kept per conversation for the agent's view; Parley is not the archive.
LOG_LENGTH = 20
# How long an action's result can be asked for, and how long an unclaimed wake-up waits.
RESULT_TTL_S = 600  # 384 bytes an action while kept: at 1,000 actions/s, 230 MB
WAKE_TTL_S = 60
LIMITS = Limits(
    dedupe_ttl=keys.DEDUPE_RETENTION_S,
    report_ttl=reports.RETENTION_S,
    log_length=LOG_LENGTH,
    result_ttl=RESULT_TTL_S,
    wake_ttl=WAKE_TTL_S,
    feed_length=keys.FEED_LENGTH,
)


__all__ = [
    "Answer",
    "ConversationStore",
    "LoadRequest",
    "Snapshot",
    "as_stored",  # a state as it reads back (times to the millisecond)
    "digest",
]


class Answer(StrEnum):
    OK = "ok"
    DUPLICATE = "duplicate"  # decided before: nothing changed
    CONFLICT = "conflict"  # the version or an alias moved: read and decide again


class LoadRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What to read for one channel: whether each event (by `digest`) was decided
    before, and the customers the `candidates` name (a candidate with no alias names
    the customer whose id it is)."""

    channel: str
    digests: Sequence[bytes]
    newest_received_at: float
    candidates: Sequence[Candidate]


class Snapshot(msgspec.Struct, kw_only=True):
    """What `load` read for one channel."""

    settings: ChannelSettings | None
    decided: list[bool]  # per digest, in the order asked
    named: dict[str, str | None]  # alias -> the customer it names (stored value)
    states: dict[str, Conversation | None]  # customer id -> conversation


def digest(event_id: str) -> bytes:
    """How the store knows an event id (its dedupe sets hold these)."""
    return dedupe_digest(event_id)


class ConversationStore:
    """Redis errors propagate (a NoScriptError after Redis restarted: `start` again);
    every verb can be retried as a whole."""

    def __init__(self, client: RedisClient) -> None:
        self._client = client
        self._scripts = Scripts()

    async def start(self) -> None:
        """Register the scripts (once; again after Redis lost them)."""
        await self._scripts.load(self._client)

    async def load(self, requests: Sequence[LoadRequest]) -> list[Snapshot]:
        calls, asked = [], []
        for request in requests:
            _, window = keys.seen_window(
                request.channel, keys.receipt_day(request.newest_received_at)
            )
            ask = [
                (c.itself, keys.conversation(request.channel, c.itself), c.alias)
                for c in request.candidates
            ]
            calls.append(load_call(request.channel, window, request.digests, ask))
            asked.append(ask)
        answers = await self._scripts.run_many(self._client, "load", calls)
        snapshots = []
        missing: dict[str, list[str]] = defaultdict(list)
        for request, ask, answer in zip(requests, asked, answers, strict=True):
            loaded = read_load(answer, ask)
            snapshot = Snapshot(
                settings=decode_settings(loaded.settings),
                decided=loaded.decided,
                named={},
                states={},
            )
            for (itself, _, alias), named, state in zip(
                ask, loaded.named, loaded.states, strict=True
            ):
                if alias:
                    snapshot.named[alias] = named
                snapshot.states[itself] = state
            missing[request.channel] += sorted(
                {c for c in snapshot.named.values() if c and c not in snapshot.states}
            )
            snapshots.append(snapshot)
        if any(missing.values()):
            found = await self.states(missing)
            for request, snapshot in zip(requests, snapshots, strict=True):
                snapshot.states.update(found.get(request.channel, {}))
        return snapshots

    async def states(
        self, customers: Mapping[str, Sequence[str]]
    ) -> dict[str, dict[str, Conversation | None]]:
        """The conversations of these customers, per channel: one call per channel."""
        channels = [channel for channel, ids in customers.items() if ids]
        calls = []
        for channel in channels:
            ask = [(c, keys.conversation(channel, c), "") for c in customers[channel]]
            calls.append(load_call(channel, [], [], ask))
        answers = await self._scripts.run_many(self._client, "load", calls)
        found: dict[str, dict[str, Conversation | None]] = {}
        for channel, answer in zip(channels, answers, strict=True):
            ask = [(c, "", "") for c in customers[channel]]
            loaded = read_load(answer, ask)
            found[channel] = dict(zip(customers[channel], loaded.states, strict=True))
        return found

    async def apply(self, writes: Mapping[str, Sequence[Write]]) -> dict[str, list[Answer]]:
        """Apply every channel's writes in their order; each channel's answers in the
        same order."""
        calls: list[ScriptCall] = []
        for channel, channel_writes in writes.items():
            for start in range(0, len(channel_writes), WRITES_PER_CALL):
                run = channel_writes[start : start + WRITES_PER_CALL]
                newest = max(keys.receipt_day(write.received_at) for write in run)
                first_day, window = keys.seen_window(channel, newest)
                calls.append(apply_call(channel, run, first_day, window, LIMITS))
        results = await self._scripts.run_many(self._client, "apply", calls)
        answers: dict[str, list[Answer]] = defaultdict(list)
        for call, result in zip(calls, results, strict=True):
            answers[call.order_key] += [Answer(as_text(one)) for one in cast(list[bytes], result)]
        return answers

    async def timers_due(self, channel: str, now: float, limit: int) -> list[tuple[str, float]]:
        """Up to `limit` customers whose conversation's next timer fires at or before
        `now`, soonest first, with when (ms). Costs O(log n + limit)."""
        found = await self._client.zrangebyscore(
            keys.timers(channel),
            "-inf",
            math.floor(now * 1000),
            start=0,
            num=limit,
            withscores=True,
        )
        pairs = cast(list[tuple[bytes, float]], found)
        return [(as_text(member), score) for member, score in pairs]

    async def due(
        self, channel: str, queue: Queue, cutoff: float, limit: int
    ) -> list[tuple[str, float]]:
        """Up to `limit` customers whose conversation sits in `queue` with its last
        activity at or before `cutoff` (Unix seconds), oldest first, with that activity
        as scored (milliseconds). Costs O(log n + limit)."""
        found = await self._client.zrangebyscore(
            keys.queue(channel, queue),
            "-inf",
            # Activity is stored in whole milliseconds: due is at or before the cutoff's.
            math.floor(cutoff * 1000),
            start=0,
            num=limit,
            withscores=True,
        )
        pairs = cast(list[tuple[bytes, float]], found)  # WITHSCORES: (member, score) pairs
        return [(as_text(member), score) for member, score in pairs]
