"""Release 0.1's state restored into an empty Redis, then today's engine with BSUIDs.

tests/fixtures/release_0_1_state.json was written by release 0.1's own Applier and Sender
(tests/fixtures/make_release_0_1_state.py): every Redis key with its type, value and TTL,
and two records of 0.1's format still on the topic. docs/customers.md promises a
migration without a migration: an identifier that is an existing conversation's id names
it (the "self" fallback), the first BSUID to appear is attached to it, later traffic
carrying only that BSUID finds it through its alias, and nothing 0.1 wrote is lost.

The new traffic is what the receiver makes of Meta-shaped webhooks (`ingest.normalize`)
and agents' actions built as the API builds them, applied by the real Applier and
scripts on one redis-server and on a three-primary Redis Cluster (every fixture key but
`parley:channels` carries the channel's hash tag), and once through the broker and
`python -m engine`.
"""

import base64
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from devstack import samples
from engine.applier import Applier
from ingest.meta_payload import decode_webhook
from ingest.normalize import normalize
from parley.channels import load_channels
from parley.events import (
    Actor,
    AddNote,
    AddTag,
    AgentReply,
    CustomerMessage,
    Event,
    Identity,
    MessageStatus,
    Payload,
    Role,
    decode_event,
)
from parley.redis import as_text, connect_redis
from parley.settings import Settings
from parley.state import Outcome, Queue
from store import _keys as keys
from store._codec import dedupe_digest
from store._protocol import STATUS_RANKS
from store.channels import seed_channels
from store.conversations import ConversationStore
from store.reader import ConversationRecord, MessageRecord, Reader
from store.writes import LogLine
from tests import factory as f
from tests.clock import Clock
from tests.conftest import EU
from tests.engine_proc import canonical_dump, start_engine, stop, wait_committed
from tests.kafka_tools import produce

FIXTURE: dict[str, Any] = json.loads(
    (Path(__file__).parent / "fixtures" / "release_0_1_state.json").read_text()
)
STATE: dict[str, dict[str, Any]] = FIXTURE["redis"]
CH = EU.id  # the fixture's only channel
SHEENA, OLIVER, MARCO, LENA = "16315551234", "447700900123", "393331234567", "4915123456789"
CUSTOMERS = {SHEENA, OLIVER, MARCO, LENA}
SHEENA_BSUID = "US.13491208655302741918"  # docs/meta-webhooks-2026.md's Sheena Nelson
OLIVER_BSUID = "GB.53049274485812265630"
SHEENA_USERNAME = "@realsheenanelson"
SHEENA_FIRST_WAMID = "wamid.HBgLMTYzMTU1NTEyMzQVAgASGBQzQUNCNjk0RjE0NDk4NjE1NjVBNgA="
WAMID_PHONE_AND_BSUID = "wamid.HBgLMTYzMTU1NTEyMzQVAgASGBQzQUYwQzJCNjFEOTRFNzVBMEMzOAA="
WAMID_BSUID_ONLY = "wamid.HBgLMTYzMTU1NTEyMzQVAgASGBQ0QkQ3OTk1MkE2NjUzMjFGOUMA"
FIXTURE_DAY = 20784  # the day release 0.1 received its events (its one dedupe set)
SEEN = keys.seen(CH, FIXTURE_DAY)
REPORT = f"{keys.tag(CH)}:report:2026-11-27"

# The upgrade happens now: new webhooks and agents' actions carry the real time.
NOW = float(int(time.time()))
# Release 0.1's decided ids are refused while their day is in the dedupe window (and its
# set is kept): until 8 days after the day ended. Later, forgetting them is right.
DEDUPE_ENDS = (FIXTURE_DAY + 1) * keys.DAY_S + keys.DEDUPE_RETENTION_S
# `python -m engine` also sweeps, on the real clock: once the fixture's new and pending
# conversations sat idle for the channel's 30 days, it would resolve them too.
SWEEP_ENDS = 1_795_800_080 + 30 * 86400


def _conversation_key(customer: str) -> str:
    return keys.conversation(CH, customer)


def _fixture(key: str) -> Any:
    return STATE[key]["value"]


def reply_wamid(customer: str) -> str:
    """The wamid release 0.1's Sender recorded for the customer's one reply."""
    [wamid] = [v for k, v in _fixture(keys.messages(CH, customer)).items() if k.startswith("e:")]
    return str(wamid)


def rank(status: str) -> int:
    return STATUS_RANKS[status]


# Restoring and reading the whole store


async def restore(client: Redis) -> None:
    """Every fixture key with its type, value and time to live; set members (dedupe
    digests, and `parley:channels`'s) are base64 in the file."""
    for key, entry in STATE.items():
        kind, value, ttl = entry["type"], entry["value"], entry["ttl"]
        if kind == "hash":
            await client.hset(key, mapping=value)
        elif kind == "zset":
            await client.zadd(key, {member: score for member, score in value})
        elif kind == "set":
            await client.sadd(key, *(base64.b64decode(member) for member in value))
        elif kind == "list":
            await client.rpush(key, *value)
        elif kind == "string":
            await client.set(key, value)
        else:
            raise AssertionError(f"{key}: the fixture has a {kind}, which this cannot restore")
        if ttl is not None:
            await client.expire(key, ttl)


async def dump(client: Redis) -> dict[str, dict[str, Any]]:
    """Every key as the fixture holds it (outbox streams left out, as the generator did)."""
    found: dict[str, dict[str, Any]] = {}
    async for raw in client.scan_iter(count=1000):
        key, kind = as_text(raw), as_text(await client.type(raw))
        value: Any
        if kind == "hash":
            value = {as_text(k): as_text(v) for k, v in (await client.hgetall(raw)).items()}
        elif kind == "zset":
            value = [[as_text(m), s] for m, s in await client.zrange(raw, 0, -1, withscores=True)]
        elif kind == "set":
            value = sorted(base64.b64encode(m).decode() for m in await client.smembers(raw))
        elif kind == "list":
            value = [as_text(line) for line in await client.lrange(raw, 0, -1)]
        elif kind == "string":
            value = as_text(await client.get(raw))
        else:
            continue
        ttl = await client.ttl(raw)
        found[key] = {"type": kind, "value": value, "ttl": ttl if ttl > 0 else None}
    return found


def without_ttls(found: dict[str, dict[str, Any]]) -> dict[str, tuple[str, Any]]:
    return {key: (entry["type"], entry["value"]) for key, entry in found.items()}


@pytest.fixture(params=["one redis", "redis cluster"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Redis]:
    """An empty store: one redis-server, or a three-primary Redis Cluster."""
    url = request.getfixturevalue(
        "redis_url" if request.param == "one redis" else "redis_cluster_url"
    )
    client = connect_redis(url)
    await client.flushall()  # on a cluster: every primary
    yield client
    await client.aclose()


async def upgraded(client: Redis) -> Applier:
    """The fixture restored, and today's Applier over it (nothing seeded: the channel's
    settings are the ones release 0.1 left)."""
    await restore(client)
    scripts = ConversationStore(client)
    await scripts.start()
    return Applier(scripts, Clock(NOW + 3600))


# The new traffic


def kafka_tail() -> list[Event]:
    return [decode_event(record.encode()) for record in FIXTURE["kafka_tail"]]


def from_meta(value: dict[str, Any], received_at: float) -> list[Event]:
    """What the receiver makes of a Meta webhook carrying `value`."""
    body = json.dumps(samples.webhook(CH, value)).encode()
    batch = normalize(decode_webhook(body), received_at)
    assert not batch.unusable, batch.unusable
    return batch.events


def sheena_writes_with_phone_and_bsuid() -> list[Event]:
    return from_meta(
        {
            "contacts": [
                {"profile": {"name": "Sheena Nelson"}, "wa_id": SHEENA, "user_id": SHEENA_BSUID}
            ],
            "messages": [
                {
                    "from": SHEENA,
                    "from_user_id": SHEENA_BSUID,
                    "id": WAMID_PHONE_AND_BSUID,
                    "timestamp": str(int(NOW + 10)),
                    "type": "text",
                    "text": {"body": "Hi, is my order shipped yet?"},
                }
            ],
        },
        NOW + 11,
    )


def sheena_writes_with_bsuid_only() -> list[Event]:
    return from_meta(
        {
            "contacts": [
                {
                    "profile": {"name": "Sheena Nelson", "username": SHEENA_USERNAME},
                    "user_id": SHEENA_BSUID,
                }
            ],
            "messages": [
                {
                    "from_user_id": SHEENA_BSUID,
                    "id": WAMID_BSUID_ONLY,
                    "timestamp": str(int(NOW + 20)),
                    "type": "text",
                    "text": {"body": "Any news?"},
                }
            ],
        },
        NOW + 21,
    )


def sheena_reads_with_bsuid_only() -> list[Event]:
    """Delivered, then read, of release 0.1's reply to Sheena, by BSUID alone."""
    return from_meta(
        {
            "statuses": [
                {
                    "id": reply_wamid(SHEENA),
                    "status": state,
                    "timestamp": str(int(NOW + 30 + offset)),
                    "recipient_user_id": SHEENA_BSUID,
                }
                for offset, state in enumerate(["delivered", "read"])
            ]
        },
        NOW + 32,
    )


def oliver_status_with_phone_and_bsuid() -> list[Event]:
    return from_meta(
        {
            "statuses": [
                {
                    "id": reply_wamid(OLIVER),
                    "status": "delivered",  # late: the tail already said read
                    "timestamp": str(int(NOW + 40)),
                    "recipient_id": OLIVER,
                    "recipient_user_id": OLIVER_BSUID,
                    "pricing": {"category": "service", "type": "free_customer_service"},
                }
            ]
        },
        NOW + 41,
    )


def webhook_traffic() -> list[list[Event]]:
    """The new webhooks, in the order Meta sends them."""
    return [
        sheena_writes_with_phone_and_bsuid(),
        sheena_writes_with_bsuid_only(),
        sheena_reads_with_bsuid_only(),
        oliver_status_with_phone_and_bsuid(),
    ]


async def api_action(
    client: Redis, identifier: str, payload: Payload, event_id: str, at: float
) -> Event:
    """An agent's action built as api/conversations.py `_act` builds it: the
    customer found by any identifier, the identity taken from their record, `customer`
    their id. (Fixed ids here, so two runs can be compared.)"""
    customer = await Reader(client).find_customer(CH, identifier)
    assert customer is not None, identifier
    current = await Reader(client).state(CH, customer)
    assert current is not None
    record = current.customer
    return Event(
        id=event_id,
        channel=CH,
        identity=Identity(phone=record.phone, user_id=record.user_id, group_id=record.group_id),
        customer=customer,
        occurred_at=at,
        received_at=at,
        payload=payload,
    )


async def agent_actions(client: Redis) -> list[Event]:
    """Ana tags Sheena (asked for by her BSUID) and notes on Lena, whom only 0.1 knew."""
    ana = Actor("ana", Role.CONTRIBUTOR)
    tag = await api_action(
        client, SHEENA_BSUID, AddTag(actor=ana, tag="migrated"), "a" * 32, NOW + 50
    )
    note = await api_action(
        client, LENA, AddNote(actor=ana, text="still here after 0.2"), "b" * 32, NOW + 51
    )
    return [tag, note]


# Reading back


async def view(client: Redis, customer: str) -> ConversationRecord:
    shown = await Reader(client).conversation(CH, customer)
    assert shown is not None, customer
    return shown


async def conversation_ids(client: Redis) -> set[str]:
    prefix = keys.conversation(CH, "")
    return {as_text(raw).removeprefix(prefix) async for raw in client.scan_iter(match=prefix + "*")}


async def aliases(client: Redis) -> dict[str, str]:
    found = await client.hgetall(keys.aliases(CH))
    return {as_text(k): as_text(v) for k, v in found.items()}


def reply_of(shown: ConversationRecord) -> MessageRecord:
    [reply] = [m for m in shown.messages if m.direction == "outbound"]
    return reply


async def assert_one_conversation_each(client: Redis) -> None:
    """No conversation split: exactly the fixture's four, each in exactly one queue set
    (its own), scored by its last activity; no queue member without its hash; every
    alias names one of them."""
    assert await conversation_ids(client) == CUSTOMERS
    queued: dict[str, list[Queue]] = {}
    for queue in Queue:
        for member, score in await client.zrange(keys.queue(CH, queue), 0, -1, withscores=True):
            customer = as_text(member)
            queued.setdefault(customer, []).append(queue)
            fields = await client.hmget(_conversation_key(customer), ["q", "la"])
            assert [as_text(v) if v else None for v in fields] == [queue.value, str(int(score))]
    assert {customer: len(queues) for customer, queues in queued.items()} == dict.fromkeys(
        CUSTOMERS, 1
    )
    assert set((await aliases(client)).values()) <= CUSTOMERS


# The story, with what must hold after each step


async def play_upgrade(client: Redis, applier: Applier) -> None:
    """The tail 0.1 left on the topic, then BSUID traffic, then agents' actions."""
    before = {customer: await view(client, customer) for customer in CUSTOMERS}

    # 1. The tail: a message from Marco (new, unanswered), a `read` for Oliver's reply.
    tail = kafka_tail()
    assert [type(e.payload) for e in tail] == [CustomerMessage, MessageStatus]
    assert [e.identity for e in tail] == [Identity(phone=MARCO), Identity(phone=OLIVER)]
    results = await applier.apply(tail)
    assert [(r.outcome, r.customer) for r in results] == [
        (Outcome.APPLIED, MARCO),
        (Outcome.APPLIED, OLIVER),
    ]
    marco = await view(client, MARCO)
    assert (marco.queue, marco.assignee) == (Queue.NEW, None)
    assert marco.opened_at == before[MARCO].opened_at  # the same cycle: nothing reopened
    assert marco.messages[:-1] == before[MARCO].messages
    assert (marco.messages[-1].id, marco.messages[-1].text) == (tail[0].id, "hi")
    assert marco.last_customer_at == marco.messages[-1].at
    assert marco.customer.phone == MARCO
    oliver = await view(client, OLIVER)
    assert reply_wamid(OLIVER).endswith("==")
    assert (reply_of(oliver).wamid, reply_of(oliver).status) == (reply_wamid(OLIVER), "read")
    assert (oliver.queue, oliver.assignee) == (Queue.PENDING, "ana")
    assert oliver.last_activity_at == before[OLIVER].last_activity_at  # a receipt
    assert (await aliases(client)).get(f"p:{MARCO}") == MARCO
    await assert_one_conversation_each(client)

    # 2. Sheena writes with her phone and, for the first time, her BSUID: keyed by the
    # BSUID, found by the phone that is her conversation's id, the BSUID attached.
    [message] = sheena_writes_with_phone_and_bsuid()
    assert message.key == f"{CH}:{SHEENA_BSUID}"
    [result] = await applier.apply([message])
    assert (result.outcome, result.customer) == (Outcome.APPLIED, SHEENA)
    sheena = await view(client, SHEENA)
    assert sheena.customer.id == SHEENA
    assert (sheena.customer.phone, sheena.customer.user_id) == (SHEENA, SHEENA_BSUID)
    assert sheena.customer.name == "Sheena Nelson"
    assert (sheena.queue, sheena.assignee) == (Queue.OPEN, "ana")  # still open, still hers
    assert sheena.opened_at == before[SHEENA].opened_at
    assert sheena.messages[:-1] == before[SHEENA].messages
    assert sheena.messages[-1].id == WAMID_PHONE_AND_BSUID
    assert sheena.tags == ["vip"]
    assert await Reader(client).find_customer(CH, SHEENA_BSUID) == SHEENA
    linked = await aliases(client)
    assert (linked[f"u:{SHEENA_BSUID}"], linked[f"p:{SHEENA}"]) == (SHEENA, SHEENA)
    await assert_one_conversation_each(client)

    # 3. Then her BSUID alone (she took a username): the same conversation.
    [message] = sheena_writes_with_bsuid_only()
    assert message.identity.phone is None
    [result] = await applier.apply([message])
    assert (result.outcome, result.customer) == (Outcome.APPLIED, SHEENA)
    sheena = await view(client, SHEENA)
    assert [m.id for m in sheena.messages[-2:]] == [WAMID_PHONE_AND_BSUID, WAMID_BSUID_ONLY]
    assert (sheena.queue, sheena.assignee) == (Queue.OPEN, "ana")
    assert (sheena.customer.id, sheena.customer.phone) == (SHEENA, SHEENA)
    assert sheena.customer.username == SHEENA_USERNAME
    assert await Reader(client).find_customer(CH, SHEENA_USERNAME) == SHEENA
    await assert_one_conversation_each(client)

    #    Delivered and read of 0.1's reply to her, by BSUID alone: forward, to read, and
    #    no activity. Release 0.1 applied a `delivered` of it already: that id is refused
    #    (while 0.1's day is in the dedupe window; after it, it is a no-op).
    statuses = sheena_reads_with_bsuid_only()
    assert all(e.identity == Identity(user_id=SHEENA_BSUID) for e in statuses)
    results = await applier.apply(statuses)
    seen_before = Outcome.DUPLICATE if time.time() < DEDUPE_ENDS else Outcome.APPLIED
    assert [r.outcome for r in results] == [seen_before, Outcome.APPLIED]
    assert results[1].customer == SHEENA
    after = await view(client, SHEENA)
    assert (reply_of(after).wamid, reply_of(after).status) == (reply_wamid(SHEENA), "read")
    assert after.last_activity_at == sheena.last_activity_at
    assert after.queue == Queue.OPEN
    await assert_one_conversation_each(client)

    # 4. A late status to Oliver's phone and BSUID: his BSUID attached, his queue, last
    # activity and the message's `read` untouched.
    score = await client.zscore(keys.queue(CH, Queue.PENDING), OLIVER)
    [status] = oliver_status_with_phone_and_bsuid()
    [result] = await applier.apply([status])
    assert (result.outcome, result.customer) == (Outcome.APPLIED, OLIVER)
    oliver = await view(client, OLIVER)
    assert (oliver.customer.id, oliver.customer.phone) == (OLIVER, OLIVER)
    assert oliver.customer.user_id == OLIVER_BSUID
    assert (oliver.queue, oliver.assignee) == (Queue.PENDING, "ana")
    assert oliver.last_activity_at == before[OLIVER].last_activity_at
    assert await client.zscore(keys.queue(CH, Queue.PENDING), OLIVER) == score
    assert reply_of(oliver).status == "read"  # never back to delivered
    assert reply_of(oliver).pricing == "service/free_customer_service"
    assert await Reader(client).find_customer(CH, OLIVER_BSUID) == OLIVER
    await assert_one_conversation_each(client)

    # 5. Agents act through the API: the event names the customer by id, and carries
    # the identity of their record (Sheena's now has her BSUID: keyed as her webhooks).
    tag, note = await agent_actions(client)
    assert (tag.customer, tag.key) == (SHEENA, f"{CH}:{SHEENA_BSUID}")
    assert (note.customer, note.identity) == (LENA, Identity(phone=LENA))
    results = await applier.apply([tag, note])
    assert [(r.outcome, r.customer) for r in results] == [
        (Outcome.APPLIED, SHEENA),
        (Outcome.APPLIED, LENA),
    ]
    assert (await view(client, SHEENA)).tags == ["migrated", "vip"]
    lena = await view(client, LENA)
    assert [n.text for n in lena.notes] == ["still here after 0.2"]
    assert (lena.queue, lena.assignee) == (Queue.RESOLVED, None)
    assert lena.customer.phone == LENA
    await assert_one_conversation_each(client)


async def assert_nothing_lost(client: Redis) -> None:
    """Everything release 0.1 wrote is still there: tags, notes, log lines, report
    counters, the delivery records (statuses only forward), the conversations' cycles,
    the channel's settings."""
    for key, entry in STATE.items():
        old = entry["value"]
        if ":tags:" in key:
            members = {as_text(m) for m in await client.smembers(key)}
            assert {base64.b64decode(m).decode() for m in old} <= members, key
        elif ":notes:" in key or ":log:" in key:
            lines = [as_text(line) for line in await client.lrange(key, 0, -1)]
            assert lines[: len(old)] == old, key
        elif ":report:" in key:
            assert {as_text(k): as_text(v) for k, v in (await client.hgetall(key)).items()} == old
            assert await client.ttl(key) > 0
        elif ":msgs:" in key:
            now = {as_text(k): as_text(v) for k, v in (await client.hgetall(key)).items()}
            for field, value in old.items():
                if field.startswith("e:"):
                    assert now[field] == value, (key, field)  # the reply's wamid
                else:
                    assert rank(now[field]) >= rank(value), (key, field)
        elif ":c:" in key:
            fields = await client.hmget(key, ["q", "a", "oa", "fr"])
            assert [as_text(v) if v else None for v in fields] == [
                old["q"],
                old.get("a"),
                old["oa"],
                old.get("fr"),
            ], key
        elif key.endswith(":settings"):  # kept; settings added since come with defaults
            now = {as_text(k): as_text(v) for k, v in (await client.hgetall(key)).items()}
            assert old.items() <= now.items(), key
        elif key == keys.CHANNELS:
            assert {as_text(m) for m in await client.smembers(key)} == {CH}
    assert await client.hget(keys.messages(CH, LENA), reply_wamid(LENA)) == b"accepted"
    # 0.1's day: four opened, three replies, one resolved; the tail opened nothing.
    assert await client.hmget(REPORT, ["opened", "replies", "resolved"]) == [b"4", b"3", b"1"]
    # Each conversation's log: release 0.1's lines, then what came since, in order.
    expected_logs = {
        SHEENA: [WAMID_PHONE_AND_BSUID, WAMID_BSUID_ONLY],
        MARCO: [kafka_tail()[0].id],
        OLIVER: [],
        LENA: [],
    }
    for customer, new in expected_logs.items():
        lines = await client.lrange(keys.log(CH, customer), 0, -1)
        old = _fixture(keys.log(CH, customer))
        ids = [msgspec.json.decode(line, type=LogLine).id for line in lines]
        assert ids == [json.loads(line)["id"] for line in old] + new, customer


def original_events() -> list[Event]:
    """Every event release 0.1 decided, rebuilt from what it left (log lines, action
    results, the statuses its generator applied), as a re-delivery would carry them
    now: inbound messages, agents' actions, and Sheena's reply's sent and delivered."""
    events: list[Event] = []
    actions = {key.rsplit(":", 1)[1] for key in STATE if key.startswith(f"{keys.tag(CH)}:result:")}
    ana = Actor("ana", Role.CONTRIBUTOR)
    for customer in sorted(CUSTOMERS):
        for raw in _fixture(keys.log(CH, customer)):
            line = json.loads(raw)
            if line["direction"] == "inbound":
                events.append(f.customer(CH, customer, NOW, wamid=line["id"]))
            else:
                payload = AgentReply(actor=ana, text="again")
                events.append(f.event(CH, customer, payload, NOW, event_id=line["id"]))
                actions.discard(line["id"])
    for action in sorted(actions):  # the tag, the note and the two moves
        payload = AddTag(actor=ana, tag="again")
        events.append(f.event(CH, SHEENA, payload, NOW, event_id=action))
    for state in ("sent", "delivered"):
        events.append(f.status(CH, SHEENA, reply_wamid(SHEENA), state, NOW))
    return events


# The tests


async def test_the_fixture_restores_exactly_with_every_id_release_0_1_decided(
    store: Redis,
) -> None:
    await restore(store)
    restored = await dump(store)
    assert without_ttls(restored) == without_ttls(STATE)
    for key, entry in STATE.items():
        if entry["ttl"] is None:
            assert restored[key]["ttl"] is None, key
        else:
            assert entry["ttl"] - 5 <= restored[key]["ttl"] <= entry["ttl"], key
    # One hash tag for every key a script touches, as on the cluster it must be.
    assert {key for key in STATE if not key.startswith(keys.tag(CH) + ":")} == {keys.CHANNELS}
    # The dedupe set holds exactly the digests of the 13 events 0.1 decided: the ids a
    # re-delivery would carry are known, and they are the ones the set refuses.
    ids = [event.id for event in original_events()]
    assert len(set(ids)) == len(ids) == 13
    assert SHEENA_FIRST_WAMID in ids
    assert {base64.b64encode(dedupe_digest(i)).decode() for i in ids} == set(_fixture(SEEN))


async def test_the_kafka_tail_of_release_0_1_decodes_and_applies(redis: Redis) -> None:
    applier = await upgraded(redis)
    message, status = kafka_tail()
    assert message.payload == CustomerMessage(
        wamid="wamid.HBgMMzkzMzMxMjM0NTY3FQIAEhgUM0FBQkNERUYwMTIzNDU2Nzg5MDEA",
        type="text",
        text="hi",
    )
    assert (message.channel, message.route, message.customer) == (CH, MARCO, None)
    assert status.payload == MessageStatus(wamid=reply_wamid(OLIVER), status="read")
    assert status.id == f"{reply_wamid(OLIVER)}:read"
    before = await dump(redis)
    results = await applier.apply([message, status])
    assert [r.outcome for r in results] == [Outcome.APPLIED, Outcome.APPLIED]
    after = await dump(redis)
    changed = {k for k in after if without_ttls(after).get(k) != without_ttls(before).get(k)}
    # Marco's conversation, log and queue score; his phone's alias; Oliver's delivery
    # record; the dedupe set. Nothing else: no report counter (nothing opened).
    assert changed == {
        _conversation_key(MARCO),
        keys.log(CH, MARCO),
        keys.queue(CH, Queue.NEW),
        keys.aliases(CH),
        keys.messages(CH, OLIVER),
        SEEN,
    }
    marco = await view(redis, MARCO)
    assert (marco.queue, marco.version, len(marco.messages)) == (Queue.NEW, 2, 2)
    assert after[keys.messages(CH, OLIVER)]["value"][reply_wamid(OLIVER)] == "read"
    # The consumer reads an uncommitted tail again after a restart: applied once.
    again = await applier.apply(kafka_tail())
    assert [r.outcome for r in again] == [Outcome.DUPLICATE, Outcome.DUPLICATE]


async def test_bsuid_traffic_joins_release_0_1_conversations_and_nothing_splits_or_is_lost(
    store: Redis,
) -> None:
    applier = await upgraded(store)
    await assert_one_conversation_each(store)
    await play_upgrade(store, applier)
    await assert_one_conversation_each(store)
    await assert_nothing_lost(store)
    assert await aliases(store) == {
        f"p:{MARCO}": MARCO,
        f"u:{SHEENA_BSUID}": SHEENA,
        f"p:{SHEENA}": SHEENA,
        f"n:{SHEENA_USERNAME}": SHEENA,
        f"u:{OLIVER_BSUID}": OLIVER,
        f"p:{OLIVER}": OLIVER,
    }

    # Lena, resolved by 0.1, writes with phone and BSUID: her conversation reopens in
    # place (a new cycle of the same id), it does not start another.
    lena_bsuid = "DE.60522187463201129874"
    [message] = from_meta(
        {
            "contacts": [{"profile": {"name": "Lena"}, "wa_id": LENA, "user_id": lena_bsuid}],
            "messages": [
                {
                    "from": LENA,
                    "from_user_id": lena_bsuid,
                    "id": "wamid.HBgNNDkxNTEyMzQ1Njc4ORUCABIYFDNBMDFCMkMzRDRFNUY2QTdCOEM5AA==",
                    "timestamp": str(int(NOW + 60)),
                    "type": "text",
                    "text": {"body": "Hallo, again"},
                }
            ],
        },
        NOW + 61,
    )
    [result] = await applier.apply([message])
    assert (result.outcome, result.customer) == (Outcome.APPLIED, LENA)
    lena = await view(store, LENA)
    assert (lena.customer.id, lena.customer.phone, lena.customer.user_id) == (
        LENA,
        LENA,
        lena_bsuid,
    )
    assert (lena.queue, lena.assignee) == (Queue.NEW, None)
    assert lena.opened_at == NOW + 60  # Unix seconds, as the store holds them
    assert [m.id for m in lena.messages][:2] == [
        json.loads(line)["id"] for line in _fixture(keys.log(CH, LENA))
    ]
    assert lena.notes[0].text == "still here after 0.2"
    await assert_one_conversation_each(store)


@pytest.mark.skipif(
    time.time() >= DEDUPE_ENDS, reason="release 0.1's events left the 8-day dedupe window"
)
async def test_release_0_1_dedupe_ids_still_refuse_re_deliveries_after_the_upgrade(
    store: Redis,
) -> None:
    applier = await upgraded(store)
    await play_upgrade(store, applier)
    settled = without_ttls(await dump(store))
    [first] = await applier.apply([f.customer(CH, SHEENA, NOW + 60, wamid=SHEENA_FIRST_WAMID)])
    assert first.outcome is Outcome.DUPLICATE
    again = await applier.apply(original_events())
    assert [r.outcome for r in again] == [Outcome.DUPLICATE] * 13
    # And what the upgrade applied is not applied twice either.
    replay = kafka_tail() + [e for batch in webhook_traffic() for e in batch]
    assert {r.outcome for r in await applier.apply(replay)} == {Outcome.DUPLICATE}
    assert without_ttls(await dump(store)) == settled


@pytest.mark.skipif(
    time.time() >= SWEEP_ENDS, reason="the engine's sweeper would resolve the idle ones"
)
async def test_through_the_broker_and_python_m_engine_the_upgrade_ends_the_same(
    redis: Redis, settings: Settings, tmp_path: Path
) -> None:
    """The same upgrade, as it happens: 0.1's records and the new webhooks on the topic
    (keyed as their producers key them), `python -m engine` started over the restored
    store, then agents' actions built from what it wrote. It ends in the very state the
    Applier reached above."""
    channels = tmp_path / "channels.toml"
    channels.write_text(
        f'[[channels]]\nid = "{CH}"\napp_secret = "a"\nverify_token = "v"\n'
        'access_token = "t"\ndisplay_name = "Support EU"\n'
    )
    applier = await upgraded(redis)
    await play_upgrade(redis, applier)
    # The engine fills settings added since 0.1 from the file at start: so does this.
    await seed_channels(redis, load_channels(str(channels)))
    expected = await canonical_dump(redis)
    await redis.flushdb()
    await restore(redis)

    bootstrap = settings.kafka_bootstrap or ""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for record in FIXTURE["kafka_tail"]:  # as release 0.1 keyed and wrote them
            key = json.loads(record)["conversation"]
            await producer.send_and_wait(settings.topic, record.encode(), key=key.encode())
    finally:
        await producer.stop()
    for batch in webhook_traffic():
        await produce(bootstrap, settings.topic, batch)
    group = f"{settings.topic}-engine"
    engine = start_engine(bootstrap, settings.redis_url or "", settings.topic, group, channels)
    try:
        await wait_committed(bootstrap, settings.topic, group)
        await produce(bootstrap, settings.topic, await agent_actions(redis))
        await wait_committed(bootstrap, settings.topic, group)
    finally:
        stop(engine)
    assert await canonical_dump(redis) == expected
    await assert_one_conversation_each(redis)
    await assert_nothing_lost(redis)
