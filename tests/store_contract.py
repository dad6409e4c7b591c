"""The conversation store's contract, one suite for every backend (the shape of arroyo's
`StreamsTestMixin` and saq's `TestQueue`): tests/test_store_redis.py runs it on one
redis-server, tests/test_store_cluster.py on a three-primary Redis Cluster.

It checks what `store.conversations.ConversationStore` promises its two writers
(engine/applier.py for events, engine/sweeper.py for auto-resolution) and what the reader
then finds: load, apply, conflict, duplicate, due, resolve, page, and the layout's
invariant after random event sequences. Every write goes through the store's verbs,
directly or through the Applier and Sweeper that run in production; Redis is only read,
to see what landed.
"""

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from redis.asyncio import RedisCluster

from engine.applier import Applied, Applier
from engine.machine import next_due
from engine.sweeper import Sweeper
from metrics import EngineMetrics
from parley.channels import ChannelSettings
from parley.events import (
    Actor,
    AgentReply,
    Assign,
    CustomerMessage,
    Event,
    Identity,
    MessageStatus,
    Move,
    Payload,
    Role,
    Snooze,
    Unassign,
)
from parley.redis import RedisClient, as_text, connect_redis
from parley.state import AUTO_RESOLVE_QUEUES, Conversation, Outcome, Queue
from store import _keys as keys
from store import delivery, reports
from store.aliases import USERNAME, Candidate, Claim, candidates
from store.channels import save_channel_settings, seed_channels
from store.conversations import (
    LOG_LENGTH,
    RESULT_TTL_S,
    WAKE_TTL_S,
    Answer,
    ConversationStore,
    LoadRequest,
    as_stored,
    digest,
)
from store.outbox import Outbox, Outgoing
from store.reader import Reader
from store.writes import (
    ActionResult,
    AddNote,
    AddTag,
    AddTopic,
    Count,
    CountTime,
    Deleted,
    Delivered,
    Done,
    Edited,
    Log,
    LogLine,
    Op,
    Reacted,
    Record,
    Send,
    Sent,
    StoredNote,
    Write,
)
from tests import factory as f
from tests.clock import Clock
from tests.conftest import EU, US

DAY = keys.DAY_S
# The start of today: decided ids are kept 8 days after the day they arrived, so a
# write received in the past would find its dedupe set already expired.
T0 = float(int(time.time()) // DAY * DAY)
CHANNEL = EU.id
PERIOD = 5  # seconds: auto-resolve of new and pending, for the sweeper's tests
FAST = msgspec.structs.replace(
    EU.settings, auto_resolve_new_s=PERIOD, auto_resolve_pending_s=PERIOD
)
ANN = "31611111111"  # a customer known by phone (her id) and by a BSUID
ANN_BSUID = "NL.1AbCdEf"

Snapshot = dict[bytes, tuple[bytes | None, bool]]


async def empty(client: RedisClient) -> None:
    if isinstance(client, RedisCluster):
        await client.flushall()  # every primary
    else:
        await client.flushdb()


def conversation(customer: str, queue: Queue, at: float, **changes: Any) -> Conversation:
    return Conversation(
        queue=queue,
        last_activity_at=at,
        opened_at=at,
        customer=Identity(phone=customer),
        **changes,
    )


def write(
    customer: str,
    state: Conversation | None,
    *,
    version: int = 0,
    was_in: Queue | None = None,
    claims: Sequence[Claim] = (),
    ops: Sequence[Op] = (),
    event: str | None = None,
) -> Write:
    """A decided event's write (`state` None: a mark), as the engine builds one."""
    return Write(
        digest=digest(event or uuid.uuid4().hex),
        received_at=T0,
        expected_version=version,
        customer=customer,
        state=state,
        was_in=was_in,
        claims=claims,
        ops=ops,
    )


def alias(identity: Identity) -> str:
    """The alias field of a one-identifier identity, as the store names it."""
    [candidate] = candidates(identity)
    return candidate.alias


ANN_PHONE, ANN_USER = alias(Identity(phone=ANN)), alias(Identity(user_id=ANN_BSUID))


def claims_for(customer: str, identity: Identity) -> list[Claim]:
    """Every identifier of `identity` claimed for `customer`, none held before."""
    return [Claim(candidate.alias, "", customer) for candidate in candidates(identity)]


async def apply(store: ConversationStore, *writes: Write) -> list[Answer]:
    return (await store.apply({CHANNEL: list(writes)}))[CHANNEL]


async def stored(store: ConversationStore, customer: str) -> Conversation | None:
    return (await store.states({CHANNEL: [customer]}))[CHANNEL][customer]


async def queue_of(store: ConversationStore, customer: str) -> Queue | None:
    state = await stored(store, customer)
    return state.queue if state else None


async def snapshot(client: RedisClient, channel: str = CHANNEL) -> Snapshot:
    """Every key of the channel: its serialized value, and whether it expires."""
    found: Snapshot = {}
    async for key in client.scan_iter(match=f"{keys.tag(channel)}:*"):
        found[key] = (await client.dump(key), await client.pttl(key) > 0)
    return found


async def queue_sets(client: RedisClient, channel: str = CHANNEL) -> dict[Queue, dict[str, int]]:
    """Each queue set's members and scores (last activity, ms)."""
    pipe = client.pipeline(transaction=False)
    for queue in Queue:
        pipe.zrange(keys.queue(channel, queue), 0, -1, withscores=True)
    answers = await pipe.execute()
    return {
        queue: {as_text(member): int(score) for member, score in rows}
        for queue, rows in zip(Queue, answers, strict=True)
    }


async def report_day(client: RedisClient, at: float) -> reports.DayReport:
    fields = await client.hgetall(keys.report(CHANNEL, reports.day_of(at)))
    return reports.tally(fields).report("")


def ms(seconds: float) -> int:
    return round(seconds * 1000)


def sweeper(client: RedisClient, store: ConversationStore, clock: Clock) -> Sweeper:
    return Sweeper(client, store, EngineMetrics(CollectorRegistry()), clock)


# The invariant's random sequences: three people, each writing by phone, by BSUID or
# with both (which links them: two customers first seen apart stay two conversations).
PEOPLE = 3
PHONES = [f"3162000000{n}" for n in range(PEOPLE)]
BSUIDS = [f"NL.{n}xYz" for n in range(PEOPLE)]
AGENTS = ("ana", "bob")
USERS = st.sampled_from(AGENTS)


@dataclass(frozen=True)
class Step:
    kind: str
    who: int
    arg: str = ""
    advance: int = 0  # seconds the clock moves first
    skew: int = 0  # the event's own time against the clock (Kafka order is what counts)


def _steps() -> st.SearchStrategy[Step]:
    who = st.integers(0, PEOPLE - 1)
    advance = st.integers(0, 4000)
    skew = st.integers(-100, 0)

    def step(kind: str, arg: st.SearchStrategy[str]) -> st.SearchStrategy[Step]:
        return st.builds(Step, st.just(kind), who, arg, advance, skew)

    return st.one_of(
        step("customer", st.sampled_from(["phone", "bsuid", "both"])),
        step("reply", USERS),
        step("move", st.sampled_from(["pending", "resolved"])),
        step("assign", USERS),
        step("unassign", st.just("")),
        step("snooze", st.sampled_from(["60", "3600", "7200"])),
        step("status", st.sampled_from(["sent", "delivered", "read"])),
        st.builds(Step, st.just("sweep"), st.just(0), st.just(""), st.integers(0, 10_000)),
        # Random sweeps rarely land on the second a conversation becomes due. Times stay
        # whole seconds, so "due" is exact here (the millisecond edge is due's own test).
        st.builds(Step, st.just("deadline"), who, st.sampled_from(["-1", "0", "1"])),
    )


PERIODS = st.sampled_from([None, 60, 3600])
INVARIANT = settings(
    max_examples=100,
    deadline=None,
    # No explain phase: varying a failing sequence's parts costs minutes against Redis.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    # One test run by each backend's class: sharing its examples (a failure found on
    # one backend is tried first on the other) is the point, not a mistake.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.differing_executors,
    ],
)


class StoreContract:
    """The contract; a backend's class gives the `url` fixture of an empty server."""

    @pytest.fixture
    def url(self) -> str:
        raise NotImplementedError("each backend's class gives its URL")

    @pytest.fixture
    async def client(self, url: str) -> AsyncIterator[RedisClient]:
        client = connect_redis(url)
        await empty(client)
        try:
            yield client
        finally:
            await client.aclose()

    @pytest.fixture
    async def store(self, client: RedisClient) -> ConversationStore:
        await seed_channels(client, [EU, US])
        store = ConversationStore(client)
        await store.start()
        return store

    # load

    async def test_load_reads_each_channels_settings_and_which_events_were_decided(
        self, store: ConversationStore
    ) -> None:
        assert await apply(store, write(ANN, conversation(ANN, Queue.NEW, T0), event="e1")) == [
            Answer.OK
        ]
        asked = [digest("e1"), digest("e2"), digest("e1")]
        eu, us, unknown = await store.load(
            [
                LoadRequest(channel=CHANNEL, digests=asked, newest_received_at=T0, candidates=[]),
                LoadRequest(channel=US.id, digests=asked, newest_received_at=T0, candidates=[]),
                LoadRequest(channel="999", digests=[], newest_received_at=T0, candidates=[]),
            ]
        )
        assert (eu.settings, us.settings, unknown.settings) == (EU.settings, US.settings, None)
        assert eu.decided == [True, False, True]
        assert us.decided == [False, False, False]  # dedupe is per channel
        # A re-delivery days later is still known (the window's older sets are read).
        [later] = await store.load(
            [
                LoadRequest(
                    channel=CHANNEL, digests=asked, newest_received_at=T0 + 3 * DAY, candidates=[]
                )
            ]
        )
        assert later.decided == [True, False, True]

    async def test_load_names_the_aliases_asked_and_reads_their_customers(
        self, store: ConversationStore
    ) -> None:
        ann = conversation(ANN, Queue.NEW, T0 + 0.25)
        linked = Identity(phone=ANN, user_id=ANN_BSUID)
        assert await apply(store, write(ANN, ann, claims=claims_for(ANN, linked))) == [Answer.OK]
        stranger = Identity(phone="31699999999")
        [snap] = await store.load(
            [
                LoadRequest(
                    channel=CHANNEL,
                    digests=[],
                    newest_received_at=T0,
                    candidates=[*candidates(Identity(phone=ANN)), *candidates(stranger)],
                )
            ]
        )
        assert snap.named == {ANN_PHONE: ANN, alias(stranger): None}
        assert snap.states == {
            ANN: as_stored(msgspec.structs.replace(ann, version=1)),
            "31699999999": None,
        }

    async def test_load_reads_a_customer_found_only_through_an_alias(
        self, store: ConversationStore
    ) -> None:
        ann = conversation(ANN, Queue.NEW, T0)
        linked = Identity(phone=ANN, user_id=ANN_BSUID)
        await apply(store, write(ANN, ann, claims=claims_for(ANN, linked)))
        # Asked by her BSUID alone: the alias names her, whose hash was not asked for.
        [snap] = await store.load(
            [
                LoadRequest(
                    channel=CHANNEL,
                    digests=[],
                    newest_received_at=T0,
                    candidates=list(candidates(Identity(user_id=ANN_BSUID))),
                )
            ]
        )
        assert snap.named == {ANN_USER: ANN}
        assert snap.states == {
            ANN_BSUID: None,
            ANN: as_stored(msgspec.structs.replace(ann, version=1)),
        }
        found = await store.states({CHANNEL: [ANN, "nobody"], US.id: [ANN]})
        assert found == {CHANNEL: {ANN: snap.states[ANN], "nobody": None}, US.id: {ANN: None}}

    # apply

    async def test_a_write_lands_in_its_queue_set_with_the_next_version(
        self, client: RedisClient, store: ConversationStore
    ) -> None:
        new = conversation(ANN, Queue.NEW, T0 + 1.2345, last_customer_at=T0 + 1.2345)
        assert await apply(store, write(ANN, new)) == [Answer.OK]
        assert await stored(store, ANN) == as_stored(msgspec.structs.replace(new, version=1))
        assert (await queue_sets(client))[Queue.NEW] == {ANN: ms(T0 + 1.2345)}

        taken = msgspec.structs.replace(
            new, queue=Queue.OPEN, assignee="ana", last_activity_at=T0 + 2, first_response_at=T0 + 2
        )
        assert await apply(store, write(ANN, taken, version=1, was_in=Queue.NEW)) == [Answer.OK]
        assert await stored(store, ANN) == as_stored(msgspec.structs.replace(taken, version=2))
        sets = await queue_sets(client)
        assert sets == {
            Queue.NEW: {},
            Queue.OPEN: {ANN: ms(T0 + 2)},
            Queue.PENDING: {},
            Queue.RESOLVED: {},
        }

        # A field the new state leaves out is removed.
        back = msgspec.structs.replace(taken, queue=Queue.NEW, assignee=None)
        assert await apply(store, write(ANN, back, version=2, was_in=Queue.OPEN)) == [Answer.OK]
        assert await stored(store, ANN) == as_stored(msgspec.structs.replace(back, version=3))

    async def test_a_mark_only_records_the_decision(
        self, client: RedisClient, store: ConversationStore
    ) -> None:
        await apply(store, write(ANN, conversation(ANN, Queue.NEW, T0)))
        seen = keys.seen(CHANNEL, keys.receipt_day(T0)).encode()
        before = await snapshot(client)
        assert await apply(store, write(ANN, None, version=1, event="m1")) == [Answer.OK]
        after = await snapshot(client)
        assert {k: v for k, v in after.items() if k != seen} == {
            k: v for k, v in before.items() if k != seen
        }
        [snap] = await store.load(
            [
                LoadRequest(
                    channel=CHANNEL, digests=[digest("m1")], newest_received_at=T0, candidates=[]
                )
            ]
        )
        assert snap.decided == [True]
        held = await stored(store, ANN)
        assert held is not None and held.version == 1

    async def test_the_log_keeps_the_last_lines(
        self, client: RedisClient, store: ConversationStore
    ) -> None:
        lines = [
            LogLine(id=f"m{n}", direction="inbound", type="text", at=T0 + n, text=str(n))
            for n in range(LOG_LENGTH + 5)
        ]
        await apply(store, write(ANN, conversation(ANN, Queue.NEW, T0), ops=[Log(lines[0])]))
        await apply(store, *(write(ANN, None, version=1, ops=[Log(line)]) for line in lines[1:]))
        kept = await client.lrange(keys.log(CHANNEL, ANN), 0, -1)
        assert [msgspec.json.decode(raw, type=LogLine) for raw in kept] == lines[-LOG_LENGTH:]

    async def test_report_counters_land_on_the_day_of_their_time(
        self, client: RedisClient, store: ConversationStore
    ) -> None:
        ops: list[Op] = [
            Count(T0 + 10, reports.OPENED),
            Count(T0 + 20, reports.OPENED),
            Count(T0 + DAY + 1, reports.RESOLVED),
            CountTime(T0 + 30, reports.FIRST_RESPONSE, 42.4),
        ]
        await apply(store, write(ANN, conversation(ANN, Queue.NEW, T0), ops=ops))
        first, second = await report_day(client, T0), await report_day(client, T0 + DAY)
        assert (first.opened, first.resolved, second.opened, second.resolved) == (2, 0, 0, 1)
        assert (first.first_response.count, first.first_response.median_s) == (1, 42)
        ttl = await client.ttl(keys.report(CHANNEL, reports.day_of(T0)))
        assert 0 < ttl <= reports.RETENTION_S

    async def test_an_actions_result_is_kept_and_wakes_whoever_waits(
        self, client: RedisClient, store: ConversationStore
    ) -> None:
        result = ActionResult(
            outcome=Outcome.REJECTED, reason="resolved conversations have no assignee"
        )
        await apply(store, write(ANN, None, ops=[Done("action-1", result)]))
        reader = Reader(client)
        assert await reader.wait_for_result(CHANNEL, "action-1", 1.0) == result
        assert 0 < await client.ttl(keys.result(CHANNEL, "action-1")) <= RESULT_TTL_S
        # The wake-up was taken by the wait above; a second one expires unclaimed.
        await apply(store, write(ANN, None, ops=[Done("action-2", result)]))
        assert 0 < await client.ttl(keys.wake(CHANNEL, "action-2")) <= WAKE_TTL_S

    async def test_a_reply_is_queued_on_the_channels_outbox(
        self, client: RedisClient, store: ConversationStore
    ) -> None:
        outgoing = Outgoing(id="reply-1", user="ana", customer=ANN, phone=ANN, text="Hello")
        await apply(
            store,
            write(ANN, conversation(ANN, Queue.OPEN, T0, assignee="ana"), ops=[Send(outgoing)]),
        )
        taken = await Outbox(client, "contract").take(CHANNEL, 10)
        assert [entry.outgoing for entry in taken] == [outgoing]

    async def test_delivery_statuses_only_move_forward(
        self, client: RedisClient, store: ConversationStore
    ) -> None:
        messages = keys.messages(CHANNEL, ANN)
        await apply(store, write(ANN, conversation(ANN, Queue.NEW, T0), ops=[Sent("w.1", "sent")]))
        failed = Delivered("w.1", "failed", error="131026 undeliverable", pricing="utility/regular")
        steps: list[tuple[Op, str]] = [
            (Delivered("w.1", "delivered"), "delivered"),
            (Delivered("w.1", "read"), "read"),
            (Delivered("w.1", "delivered"), "read"),  # late: it stays read
            (Sent("w.1", "sent"), "read"),  # known already: not reset
            (failed, "failed"),
            (Delivered("w.1", "played"), "failed"),
        ]
        for op, status in steps:
            assert await apply(store, write(ANN, None, version=1, ops=[op])) == [Answer.OK]
            assert await client.hget(messages, "w.1") == status.encode(), op
        # A wamid never sent nor seeded gets no status, and no details.
        await apply(store, write(ANN, None, version=1, ops=[Delivered("w.2", "read", error="x")]))
        held = await client.hgetall(messages)
        assert {as_text(k): as_text(v) for k, v in held.items()} == {
            "w.1": "failed",
            delivery.error_field("w.1"): "131026 undeliverable",
            delivery.pricing_field("w.1"): "utility/regular",
        }

    async def test_reactions_edits_and_deletions_land(
        self, client: RedisClient, store: ConversationStore
    ) -> None:
        await apply(store, write(ANN, conversation(ANN, Queue.NEW, T0)))
        changes: list[Op] = [
            Reacted("w.1", "👍"),
            Reacted("w.2", "🎉"),
            Reacted("w.2", None),  # taken back
            Edited("w.1", "new text"),
            Edited("w.3", None),
            Deleted("w.4"),
        ]
        for op in changes:
            assert await apply(store, write(ANN, None, version=1, ops=[op])) == [Answer.OK]
        held = await client.hgetall(keys.messages(CHANNEL, ANN))
        assert {as_text(k): as_text(v) for k, v in held.items()} == {
            delivery.reaction_field("w.1"): "👍",
            delivery.edit_field("w.1"): "new text",
            delivery.edit_field("w.3"): "",
            delivery.deleted_field("w.4"): "1",
        }

    async def test_annotations_land(self, client: RedisClient, store: ConversationStore) -> None:
        ops: list[Op] = [
            AddTag("vip"),
            AddTag("vip"),
            AddTopic("refund"),
            AddNote("ana", "Called", T0 + 5),
        ]
        await apply(store, write(ANN, conversation(ANN, Queue.NEW, T0), ops=ops))
        assert await client.smembers(keys.tags(CHANNEL, ANN)) == {b"vip"}
        assert await client.smembers(keys.topics(CHANNEL, ANN)) == {b"refund"}
        notes = await client.lrange(keys.notes(CHANNEL, ANN), 0, -1)
        assert [msgspec.json.decode(n, type=StoredNote) for n in notes] == [
            StoredNote("ana", "Called", T0 + 5)
        ]

    async def test_the_customer_record_and_username_alias_follow_the_record(
        self, client: RedisClient, store: ConversationStore
    ) -> None:
        first = msgspec.structs.replace(
            conversation(ANN, Queue.NEW, T0),
            customer=Identity(phone=ANN, user_id=ANN_BSUID, username="@ann", name="Ann"),
        )
        await apply(store, write(ANN, first, ops=[Record(None, first)]))
        assert await stored(store, ANN) == as_stored(msgspec.structs.replace(first, version=1))
        renamed = msgspec.structs.replace(
            first,
            customer=Identity(phone=ANN, user_id=ANN_BSUID, username="@anna"),
            marketing="stop",
        )
        await apply(store, write(ANN, renamed, version=1, ops=[Record(first, renamed)]))
        assert await stored(store, ANN) == as_stored(msgspec.structs.replace(renamed, version=2))
        [snap] = await store.load(
            [
                LoadRequest(
                    channel=CHANNEL,
                    digests=[],
                    newest_received_at=T0,
                    candidates=[
                        Candidate(USERNAME + "@ann", ""),
                        Candidate(USERNAME + "@anna", ""),
                    ],
                )
            ]
        )
        assert snap.named == {USERNAME + "@ann": None, USERNAME + "@anna": ANN}
        assert await Reader(client).find_customer(CHANNEL, "anna") == ANN

    # conflict

    async def test_a_write_decided_on_a_stale_version_conflicts_and_changes_nothing(
        self, client: RedisClient, store: ConversationStore
    ) -> None:
        await apply(store, write(ANN, conversation(ANN, Queue.NEW, T0)))
        before = await snapshot(client)
        stale = write(
            ANN,
            conversation(ANN, Queue.RESOLVED, T0 + 9),
            version=0,
            was_in=Queue.NEW,
            claims=claims_for(ANN, Identity(user_id=ANN_BSUID)),
            ops=[Count(T0 + 9, reports.RESOLVED), AddTag("late")],
            event="stale",
        )
        assert await apply(store, stale) == [Answer.CONFLICT]
        assert await snapshot(client) == before  # not even decided: it is read again
        # Decided again on the state as it is, it goes through.
        again = msgspec.structs.replace(stale, expected_version=1)
        assert await apply(store, again) == [Answer.OK]

    async def test_a_claim_on_an_alias_that_moved_conflicts_and_changes_nothing(
        self, client: RedisClient, store: ConversationStore
    ) -> None:
        await apply(
            store,
            write(
                ANN, conversation(ANN, Queue.NEW, T0), claims=claims_for(ANN, Identity(phone=ANN))
            ),
        )
        before = await snapshot(client)
        # Decided while p:<phone> named nobody; Ann claimed it meanwhile.
        late = write(
            ANN_BSUID,
            conversation(ANN_BSUID, Queue.NEW, T0 + 1),
            claims=claims_for(ANN_BSUID, Identity(phone=ANN, user_id=ANN_BSUID)),
        )
        assert await apply(store, late) == [Answer.CONFLICT]
        assert await snapshot(client) == before
        # With what the alias holds now, the claim moves it.
        moved = [Claim(ANN_USER, "", ANN_BSUID), Claim(ANN_PHONE, ANN, ANN_BSUID)]
        assert await apply(store, msgspec.structs.replace(late, claims=moved)) == [Answer.OK]
        [snap] = await store.load(
            [
                LoadRequest(
                    channel=CHANNEL,
                    digests=[],
                    newest_received_at=T0,
                    candidates=list(candidates(Identity(phone=ANN))),
                )
            ]
        )
        assert snap.named == {ANN_PHONE: ANN_BSUID}

    async def test_each_write_of_a_call_is_checked_on_its_own(
        self, store: ConversationStore
    ) -> None:
        await apply(store, write("a", conversation("a", Queue.NEW, T0)))
        answers = await apply(
            store,
            write("a", conversation("a", Queue.PENDING, T0 + 1), version=1, was_in=Queue.NEW),
            write("a", conversation("a", Queue.RESOLVED, T0 + 2), version=1, was_in=Queue.NEW),
            write("b", conversation("b", Queue.NEW, T0 + 3)),
        )
        assert answers == [Answer.OK, Answer.CONFLICT, Answer.OK]
        assert await queue_of(store, "a") is Queue.PENDING

    # duplicate

    async def test_the_same_write_again_is_a_duplicate_and_changes_nothing(
        self, client: RedisClient, store: ConversationStore
    ) -> None:
        first = write(
            ANN, conversation(ANN, Queue.NEW, T0), ops=[AddTag("vip"), Count(T0, reports.OPENED)]
        )
        assert await apply(store, first, first) == [Answer.OK, Answer.DUPLICATE]
        then = write(ANN, conversation(ANN, Queue.PENDING, T0 + 1), version=1, was_in=Queue.NEW)
        assert await apply(store, then) == [Answer.OK]
        before = await snapshot(client)
        # A batch retried after its answer was lost: the version moved since, but it
        # was decided, so it is a duplicate, not a conflict.
        assert await apply(store, first, then) == [Answer.DUPLICATE, Answer.DUPLICATE]
        assert await snapshot(client) == before
        assert (await report_day(client, T0)).opened == 1

    # due

    async def test_due_is_what_waited_until_the_cutoff_oldest_first(
        self, store: ConversationStore
    ) -> None:
        arrived = {"d": T0 + 4, "b": T0 + 2, "a": T0 + 1.0004, "c": T0 + 3}
        await apply(store, *(write(c, conversation(c, Queue.NEW, at)) for c, at in arrived.items()))
        await apply(store, write("p", conversation("p", Queue.PENDING, T0, assignee="ana")))
        await apply(store, write("o", conversation("o", Queue.OPEN, T0, assignee="ana")))
        expected = [("a", ms(T0 + 1)), ("b", ms(T0 + 2)), ("c", ms(T0 + 3))]
        assert await store.due(CHANNEL, Queue.NEW, T0 + 3, 10) == expected  # at the cutoff too
        assert await store.due(CHANNEL, Queue.NEW, T0 + 3, 2) == expected[:2]
        assert await store.due(CHANNEL, Queue.NEW, T0 + 2.9999, 10) == expected[:2]
        assert await store.due(CHANNEL, Queue.PENDING, T0 + 100, 10) == [("p", ms(T0))]

    async def test_due_is_empty_when_nothing_waited_long_enough(
        self, client: RedisClient, store: ConversationStore
    ) -> None:
        assert await store.due(CHANNEL, Queue.NEW, T0 + 100, 10) == []
        await apply(store, write("a", conversation("a", Queue.NEW, T0 + 1)))
        assert await store.due(CHANNEL, Queue.NEW, T0 + 0.999, 10) == []
        assert await store.due(US.id, Queue.NEW, T0 + 100, 10) == []
        # A sweeper's pass with nothing due changes nothing.
        await save_channel_settings(client, CHANNEL, FAST)
        before = await snapshot(client)
        assert await sweeper(client, store, Clock(T0 + 1 + PERIOD - 0.001)).run_once() == 0
        assert await snapshot(client) == before

    # resolve: the sweeper on the store

    async def test_the_sweeper_resolves_what_is_due_once(
        self, client: RedisClient, store: ConversationStore
    ) -> None:
        await save_channel_settings(client, CHANNEL, FAST)
        clock = Clock(T0)
        events = [f.customer(CHANNEL, c, T0) for c in ("n1", "n2", "p1", "p2", "o1")]
        events += [f.reply(CHANNEL, c, T0) for c in ("p1", "p2", "o1")]
        events += [f.move(CHANNEL, c, "pending", T0) for c in ("p1", "p2")]
        results = await Applier(store, clock).apply(events)
        assert {r.outcome for r in results} == {Outcome.APPLIED}
        sweeping = sweeper(client, store, clock)

        clock.now = T0 + PERIOD - 0.001
        assert await sweeping.run_once() == 0
        clock.now = T0 + PERIOD
        assert await sweeping.run_once() == 4
        assert await sweeping.run_once() == 0
        sets = await queue_sets(client)
        assert (set(sets[Queue.RESOLVED]), set(sets[Queue.OPEN])) == (
            {"n1", "n2", "p1", "p2"},
            {"o1"},
        )
        assert sets[Queue.RESOLVED]["p1"] == ms(T0)  # a sweep is nobody acting on it
        day = await report_day(client, T0 + PERIOD)
        assert (day.resolved, day.auto_resolved) == (4, 4)

    async def test_sweepers_racing_resolve_each_conversation_once(
        self, client: RedisClient, store: ConversationStore
    ) -> None:
        await save_channel_settings(client, CHANNEL, FAST)
        clock = Clock(T0)
        await Applier(store, clock).apply([f.customer(CHANNEL, f"c{n}", T0) for n in range(120)])
        clock.now = T0 + PERIOD
        one, other = sweeper(client, store, clock), sweeper(client, store, clock)
        counts = await asyncio.gather(one.run_once(), other.run_once(), one.run_once())
        assert sum(counts) == 120
        assert len((await queue_sets(client))[Queue.RESOLVED]) == 120
        assert (await report_day(client, clock.now)).auto_resolved == 120

    async def test_the_sweeper_never_resolves_one_touched_since_it_was_found_due(
        self, client: RedisClient, store: ConversationStore
    ) -> None:
        await save_channel_settings(client, CHANNEL, FAST)
        applier = Applier(store, Clock(T0))
        await applier.apply([f.customer(CHANNEL, "touched", T0)])
        now = T0 + PERIOD + 1
        found = await store.due(CHANNEL, Queue.NEW, now - PERIOD, 500)
        assert found == [("touched", ms(T0))]
        await applier.apply([f.tag(CHANNEL, "touched", "still-here", T0 + 2)])
        assert (
            await sweeper(client, store, Clock(now)).resolve(CHANNEL, Queue.NEW, FAST, found, now)
            == 0
        )
        assert await queue_of(store, "touched") is Queue.NEW

    async def test_a_cycle_reopened_with_the_times_of_a_resolved_one_is_resolved_again(
        self, client: RedisClient, store: ConversationStore
    ) -> None:
        """Two messages of one second (Meta's timestamps are whole seconds): the first
        opens a cycle nobody touches, auto-resolved; the second arrives late (Meta
        retries for days) and reopens it with the same opening time and activity."""
        await save_channel_settings(client, CHANNEL, FAST)
        clock = Clock(T0)
        applier = Applier(store, clock)
        await applier.apply([f.customer(CHANNEL, "late", T0)])
        clock.now = T0 + PERIOD
        assert await sweeper(client, store, clock).run_once() == 1
        retried = msgspec.structs.replace(f.customer(CHANNEL, "late", T0), received_at=clock.now)
        [reopened] = await applier.apply([retried])
        assert reopened.outcome is Outcome.APPLIED
        assert await queue_of(store, "late") is Queue.NEW
        clock.now = T0 + 3 * PERIOD  # idle for a period again, the same day
        assert await sweeper(client, store, clock).run_once() == 1
        assert await queue_of(store, "late") is Queue.RESOLVED

    # page: what the reader makes of what the engine wrote

    async def test_a_queue_pages_by_activity_with_a_cursor(
        self, client: RedisClient, store: ConversationStore
    ) -> None:
        activity = {"c3": T0 + 3, "c1": T0 + 1, "c4": T0 + 4, "c0": T0, "c2": T0 + 2}
        events = [f.customer(CHANNEL, c, at) for c, at in activity.items()]
        events += [f.customer(CHANNEL, "o", T0 + 1), f.assign(CHANNEL, "o", "ana", T0 + 1)]
        await Applier(store, Clock(T0)).apply(events)
        reader = Reader(client)
        cursor = None
        for expected in (["c0", "c1"], ["c2", "c3"], ["c4"]):
            page = await reader.page(CHANNEL, Queue.NEW, limit=2, cursor=cursor)
            rows = [
                (row.customer.id, row.last_activity_at, row.preview) for row in page.conversations
            ]
            assert rows == [(c, activity[c], "hi") for c in expected]
            cursor = page.next_cursor
        assert cursor is None
        newest = await reader.page(CHANNEL, Queue.NEW, limit=5, newest_first=True)
        assert [row.customer.id for row in newest.conversations] == ["c4", "c3", "c2", "c1", "c0"]
        assert newest.next_cursor is None

    # the invariant

    @INVARIANT
    @given(
        new_period=PERIODS,
        pending_period=PERIODS,
        auto_assign=st.booleans(),
        # A drawn length, not a list's own (which averages a handful): sequences run
        # long, and a failing one still shrinks to its shortest.
        steps=st.integers(1, 30).flatmap(lambda n: st.lists(_steps(), min_size=n, max_size=n)),
    )
    async def test_every_conversation_sits_in_exactly_one_queue_set(
        self,
        client: RedisClient,
        new_period: int | None,
        pending_period: int | None,
        auto_assign: bool,
        steps: list[Step],
    ) -> None:
        """Random events through the real Applier and racing Sweepers; after each step,
        in Redis: every conversation hash is in exactly one queue set (its own), scored
        by its last activity (or a later snooze's end); the timer set holds exactly the
        snoozed ones, scored by their wake-up; no queue member lacks a hash; every alias
        names an existing conversation; what was decided is what is stored; a sweep wakes
        and resolves exactly what was due, each once."""
        await empty(client)
        await seed_channels(client, [EU, US])
        channel = msgspec.structs.replace(
            EU.settings,
            auto_assign=auto_assign,
            auto_resolve_new_s=new_period,
            auto_resolve_pending_s=pending_period,
        )
        await save_channel_settings(client, CHANNEL, channel)
        store = ConversationStore(client)
        await store.start()
        clock = Clock(T0)
        world = _World(client, store, clock, channel)
        # The failure report's argument values come out blank under pytest-asyncio.
        note(f"auto_assign={auto_assign} new={new_period} pending={pending_period}")
        for number, step in enumerate(steps):
            note(f"step {number}: {step}")
            clock.now += step.advance
            if step.kind in ("sweep", "deadline"):
                await world.sweep(step)
            else:
                [applied] = await world.applier.apply([await world.event(step)])
                await world.check_stored(applied)
            await world.check_layout()


class _World:
    """One random sequence's parts: the engine's Applier and two Sweepers on the store."""

    def __init__(
        self, client: RedisClient, store: ConversationStore, clock: Clock, channel: ChannelSettings
    ) -> None:
        self.client, self.store, self.clock, self.channel = client, store, clock, channel
        self.applier = Applier(store, clock)
        self.sweepers = [sweeper(client, store, clock) for _ in range(2)]
        self.reader = Reader(client)

    async def event(self, step: Step) -> Event:
        phone, bsuid = PHONES[step.who], BSUIDS[step.who]
        at = self.clock.now + step.skew
        envelope: dict[str, Any] = {"channel": CHANNEL, "received_at": self.clock.now}
        if step.kind == "customer":
            identity = {
                "phone": Identity(phone=phone),
                "bsuid": Identity(user_id=bsuid),
                "both": Identity(phone=phone, user_id=bsuid),
            }[step.arg]
            wamid = f"wamid.{uuid.uuid4().hex}"
            message = CustomerMessage(wamid=wamid, type="text", text="hi")
            return Event(id=wamid, identity=identity, occurred_at=at, payload=message, **envelope)
        if step.kind == "status":
            wamid = f"wamid.out.{step.who}"  # the same status twice is a duplicate
            status = MessageStatus(wamid=wamid, status=step.arg)
            return Event(
                id=f"{wamid}:{step.arg}",
                identity=Identity(phone=phone),
                occurred_at=at,
                payload=status,
                **envelope,
            )
        # An agent's action, as the API sends it: on the customer it finds by an
        # identifier, with their record's identity (found by none: by the phone).
        customer = await self.reader.find_customer(CHANNEL, phone)
        customer = customer or await self.reader.find_customer(CHANNEL, bsuid)
        state = await stored(self.store, customer) if customer else None
        actor = Actor(step.arg if step.kind == "reply" else "ana", Role.CONTRIBUTOR)
        payload: Payload
        match step.kind:
            case "reply":
                payload = AgentReply(actor=actor, text="hello")
            case "move":
                payload = Move(actor=actor, queue=step.arg)
            case "assign":
                payload = Assign(actor=actor, assignee=step.arg)
            case "snooze":
                payload = Snooze(actor=actor, until=self.clock.now + int(step.arg))
            case _:
                payload = Unassign(actor=actor)
        return Event(
            id=uuid.uuid4().hex,
            identity=state.customer if state else Identity(phone=phone),
            occurred_at=at,
            payload=payload,
            customer=customer,
            **envelope,
        )

    async def check_stored(self, applied: Applied) -> None:
        """What the machine decided is what the store now holds."""
        if applied.outcome is not Outcome.APPLIED:
            return
        assert applied.customer is not None and applied.decision is not None
        decided = applied.decision.state
        assert decided is not None
        held = await stored(self.store, applied.customer)
        assert held is not None
        assert held == as_stored(msgspec.structs.replace(decided, version=held.version))

    async def sweep(self, step: Step) -> None:
        periods = {
            Queue.NEW: self.channel.auto_resolve_new_s,
            Queue.PENDING: self.channel.auto_resolve_pending_s,
        }
        before = await self.layout()
        if step.kind == "deadline" and before:
            # The moment one conversation (picked by `who`) becomes due (its snooze
            # ends, or it has been idle its queue's period), give or take 1 s.
            state = before[sorted(before)[step.who % len(before)]]
            period = periods.get(state.queue)
            deadline = None
            if state.snoozed_until is not None:
                deadline = state.snoozed_until
            elif period is not None:
                deadline = state.last_activity_at + period
            if deadline is not None:
                self.clock.now = max(self.clock.now, deadline + int(step.arg))
        now = self.clock.now
        expected: dict[str, tuple[Queue, float]] = {}
        changes = 0
        for customer, state in before.items():
            queue, activity = state.queue, state.last_activity_at
            if state.snoozed_until is not None and state.snoozed_until <= now:
                # The timer wakes it (activity: the wake-up), then its new queue's
                # period may resolve it in the same pass.
                queue = Queue.OPEN if state.assignee else Queue.NEW
                activity = max(activity, state.snoozed_until)
                changes += 1
            if (
                queue in AUTO_RESOLVE_QUEUES
                and (state.snoozed_until is None or state.snoozed_until <= now)
                and (period := periods[queue]) is not None
                and activity + period <= now
            ):
                queue = Queue.RESOLVED
                changes += 1
            expected[customer] = (queue, activity)
        counts = await asyncio.gather(*(one.run_once() for one in self.sweepers))
        assert sum(counts) == changes, (counts, expected)
        after = await self.layout()
        for customer, state in after.items():
            assert (state.queue, state.last_activity_at) == expected[customer], customer

    async def layout(self) -> dict[str, Conversation]:
        """Every conversation of the channel, found by scanning for its hash (1,000 keys
        a SCAN call: one round trip a node, where SCAN's default of 10 took several as
        the sequence's keys grow)."""
        prefix = keys.conversation(CHANNEL, "")
        found = [
            as_text(key).removeprefix(prefix)
            async for key in self.client.scan_iter(
                match=keys.conversation(CHANNEL, "*"), count=1000
            )
        ]
        states = (await self.store.states({CHANNEL: sorted(found)}))[CHANNEL] if found else {}
        assert all(state is not None for state in states.values()), states
        return {customer: state for customer, state in states.items() if state is not None}

    async def check_holdings(
        self, conversations: dict[str, Conversation], scored: dict[str, dict[str, int]]
    ) -> None:
        """The routing pool and who holds what are what the conversations say: the pool
        is the New ones by cycle start, each agent's load their Open ones, what they hold
        their Open and Pending ones. `scored`: each sorted set's members and scores."""
        waiting = {c: ms(s.opened_at) for c, s in conversations.items() if s.queue is Queue.NEW}
        assert scored[keys.waiting(CHANNEL)] == waiting
        open_by = Counter(s.assignee for s in conversations.values() if s.queue is Queue.OPEN)
        assert scored[keys.load(CHANNEL)] == dict(open_by)
        held: dict[str, set[str]] = {}
        for customer, state in conversations.items():
            if state.assignee is not None:
                held.setdefault(state.assignee, set()).add(customer)
        assert scored[keys.held(CHANNEL)] == {a: len(c) for a, c in held.items()}
        for agent in AGENTS:
            found = set(scored[keys.assigned(CHANNEL, agent)])
            assert found == held.get(agent, set()), agent

    async def check_layout(self) -> None:
        conversations = await self.layout()
        # Every other structure read in one pipeline (one round trip; nothing writes
        # between the reads, as between separate calls).
        sorted_sets = [
            *(keys.queue(CHANNEL, queue) for queue in Queue),
            keys.timers(CHANNEL),
            keys.waiting(CHANNEL),
            keys.load(CHANNEL),
            keys.held(CHANNEL),
            *(keys.assigned(CHANNEL, agent) for agent in AGENTS),
        ]
        pipe = self.client.pipeline(transaction=False)
        for key in sorted_sets:
            pipe.zrange(key, 0, -1, withscores=True)
        pipe.hgetall(keys.aliases(CHANNEL))
        *rows, aliases = await pipe.execute()
        scored = {
            key: {as_text(member): int(score) for member, score in found}
            for key, found in zip(sorted_sets, rows, strict=True)
        }
        sets = {queue: scored[keys.queue(CHANNEL, queue)] for queue in Queue}
        timers = scored[keys.timers(CHANNEL)]
        assert set(timers) <= set(conversations), timers
        for customer, state in conversations.items():
            holders = [queue for queue, members in sets.items() if customer in members]
            assert holders == [state.queue], (customer, state, holders)
            assert sets[state.queue][customer] == ms(state.queue_score)
            assert timers.get(customer) == (
                None if next_due(state) is None else ms(next_due(state) or 0)
            ), (customer, state)
            if state.snoozed_until is not None:
                assert state.queue is Queue.PENDING, (customer, state)
            if state.queue in (Queue.NEW, Queue.RESOLVED):
                assert state.assignee is None, (customer, state)
            if state.queue is Queue.OPEN:
                assert state.assignee is not None, (customer, state)
        for queue, members in sets.items():
            orphans = set(members) - set(conversations)
            assert not orphans, (queue, orphans)
        await self.check_holdings(conversations, scored)
        dangling = {
            as_text(a): as_text(c) for a, c in aliases.items() if as_text(c) not in conversations
        }
        assert not dangling, dangling
