"""Replies out to WhatsApp: the sender against the Graph stand-in and a real
redis-server, then end to end through the receiver, the broker and the engine."""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from devstack.graph_standin import Fault, StandIn
from devstack.graph_standin import create_app as create_standin
from engine.sender import Credentials, Sender
from metrics import EngineMetrics
from parley.channels import Channel
from parley.graph import GraphClient
from parley.settings import Settings
from store import _keys as keys
from store import delivery
from store.channels import seed_channels
from store.outbox import GROUP, Outgoing
from tests.api_tools import AiohttpClient, call, start_api, start_engine, user_with_role
from tests.conftest import EU, US
from tests.http_tools import post_message

CUSTOMER = "31655555555"
TEXT_SHAPE = {
    "messaging_product": "whatsapp",
    "recipient_type": "individual",
    "to": CUSTOMER,
    "type": "text",
    "text": {"preview_url": False, "body": "Hello!"},
}


class Parts(msgspec.Struct):
    standin: StandIn
    sender: Sender
    registry: CollectorRegistry
    waits: list[float]
    make_sender: Callable[..., Sender]


@pytest.fixture
async def standin_url(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> AsyncIterator[tuple[StandIn, str]]:
    standin = StandIn(
        {EU.id: EU.access_token, US.id: US.access_token},
        app_secrets={EU.id: EU.app_secret, US.id: US.app_secret},
    )
    server = await aiohttp_server(create_standin(standin))
    yield standin, str(server.make_url("/v21.0"))


@pytest.fixture
async def parts(redis: Redis, standin_url: tuple[StandIn, str]) -> AsyncIterator[Parts]:
    standin, url = standin_url
    await seed_channels(redis, [EU, US])
    registry = CollectorRegistry()
    metrics = EngineMetrics(registry)
    waits: list[float] = []

    async def record_wait(seconds: float) -> None:
        waits.append(seconds)

    async with aiohttp.ClientSession() as session:
        graph = GraphClient(session, url, timeout_s=0.5)

        def make_sender(consumer: str = "one", **options: Any) -> Sender:
            credentials = Credentials(redis, {EU.id: EU.access_token, US.id: US.access_token})
            options = {"backoff_s": 0.01, "sleep": record_wait, **options}
            return Sender(redis, graph, credentials, metrics, consumer=consumer, **options)

        yield Parts(standin, make_sender(), registry, waits, make_sender)


async def queue_reply(redis: Redis, channel: str, reply_id: str, **fields: Any) -> None:
    outgoing = Outgoing(id=reply_id, wa_id=CUSTOMER, user="ana", **{"text": "Hello!", **fields})
    await redis.xadd(keys.outbox(channel), {"m": msgspec.json.encode(outgoing)})


async def send_all(sender: Sender) -> None:
    while await sender.run_once():
        pass
    await sender.drain()


async def delivery_of(redis: Redis, channel: str, reply_id: str) -> delivery.Delivery:
    messages = keys.messages(channel, CUSTOMER)
    record = await redis.hmget(messages, delivery.reply_fields(reply_id))
    wamid, failure = delivery.outcome(*(value.decode() if value else None for value in record))
    status = await redis.hget(messages, wamid) if wamid else None
    return delivery.delivery(wamid, failure, status.decode() if status else None, None)


def counted(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_a_reply_goes_out_in_the_documented_shape_and_its_wamid_is_recorded(
    parts: Parts, redis: Redis
) -> None:
    await queue_reply(redis, EU.id, "r1")
    await send_all(parts.sender)
    [sent] = parts.standin.sent
    assert (sent.phone_number_id, sent.body) == (EU.id, TEXT_SHAPE)
    assert await delivery_of(redis, EU.id, "r1") == delivery.Delivery(
        status="accepted", wamid=sent.wamid
    )
    assert await redis.xlen(keys.outbox(EU.id)) == 0  # acknowledged and removed
    assert (
        counted(parts.registry, "parley_outbound_messages_total", channel=EU.id, outcome="accepted")
        == 1
    )


async def test_a_template_goes_out_as_a_template(parts: Parts, redis: Redis) -> None:
    await queue_reply(redis, EU.id, "r1", text=None, template="order_update", language="nl")
    await send_all(parts.sender)
    [sent] = parts.standin.sent
    assert sent.body["type"] == "template"
    assert sent.body["template"] == {"name": "order_update", "language": {"code": "nl"}}


@pytest.mark.parametrize(
    ("faults", "reason"),
    [
        ([Fault(status=500)], "http_5xx"),
        ([Fault(status=503), Fault(status=502)], "http_5xx"),
        ([Fault(status=400, code=130429, title="Rate limit hit")], "130429"),
        ([Fault(status=400, code=131056, title="Pair rate limit hit")], "131056"),
        ([Fault(status=500, delay_s=1.0)], "timeout"),  # longer than the client's 0.5 s
    ],
    ids=["5xx", "two-5xx", "130429", "131056", "timeout"],
)
async def test_retryable_failures_are_retried_with_backoff_then_succeed(
    parts: Parts, redis: Redis, faults: list[Fault], reason: str
) -> None:
    parts.standin.fail_next(EU.id, *faults)
    await queue_reply(redis, EU.id, "r1")
    await send_all(parts.sender)
    assert (await delivery_of(redis, EU.id, "r1")).status == "accepted"
    assert len(parts.standin.sent) == 1
    assert len(parts.waits) == len(faults)  # one backoff wait per retry
    assert all(wait > 0 for wait in parts.waits)
    assert counted(
        parts.registry, "parley_outbound_retries_total", channel=EU.id, reason=reason
    ) == len(faults)


async def test_a_failure_that_outlasts_the_retries_fails_visibly(
    parts: Parts, redis: Redis
) -> None:
    parts.standin.fail_next(EU.id, *[Fault(status=500)] * 5)
    await queue_reply(redis, EU.id, "r1")
    await send_all(parts.sender)
    failed = await delivery_of(redis, EU.id, "r1")
    assert failed.status == "failed"
    assert failed.error is not None and "(HTTP 500)" in failed.error
    assert len(parts.waits) == 4  # five attempts, four waits
    assert parts.standin.sent == []
    assert (
        counted(parts.registry, "parley_outbound_messages_total", channel=EU.id, outcome="failed")
        == 1
    )


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (
            Fault(status=400, code=131047, title="Re-engagement message"),
            "131047 Re-engagement message",
        ),
        (
            Fault(status=401, code=190, title="Invalid OAuth access token"),
            "190 Invalid OAuth access token",
        ),
        (Fault(status=400, code=100, title="Invalid parameter"), "100 Invalid parameter"),
    ],
    ids=["131047", "190", "100"],
)
async def test_other_client_errors_fail_at_once_with_the_reason(
    parts: Parts, redis: Redis, fault: Fault, expected: str
) -> None:
    parts.standin.fail_next(EU.id, fault, Fault(status=500))  # a retry would take the 500
    await queue_reply(redis, EU.id, "r1")
    await send_all(parts.sender)
    failed = await delivery_of(redis, EU.id, "r1")
    assert failed.status == "failed"
    assert failed.error is not None and failed.error.startswith(expected)
    assert parts.waits == []  # not retried


async def test_a_bad_token_of_our_own_is_refused_by_the_stand_in(
    parts: Parts, redis: Redis
) -> None:
    parts.standin.tokens[EU.id] = "rotated-elsewhere"
    await queue_reply(redis, EU.id, "r1")
    await send_all(parts.sender)
    failed = await delivery_of(redis, EU.id, "r1")
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.startswith("190 ")
    assert EU.access_token not in failed.error


async def test_a_conversations_replies_go_out_in_order(parts: Parts, redis: Redis) -> None:
    parts.standin.fail_next(EU.id, Fault(status=500))  # the first one is retried
    for n in range(5):
        await queue_reply(redis, EU.id, f"r{n}", text=f"part {n}")
    await send_all(parts.sender)
    assert [sent.body["text"]["body"] for sent in parts.standin.sent] == [
        f"part {n}" for n in range(5)
    ]


async def test_only_an_active_channel_sends(parts: Parts, redis: Redis) -> None:
    await redis.sadd(keys.CHANNELS, "999000")  # known, but neither in the file nor active
    await queue_reply(redis, "999000", "r1")
    await send_all(parts.sender)
    failed = await delivery_of(redis, "999000", "r1")
    assert (failed.status, failed.error) == ("failed", "channel is not active")
    assert parts.standin.sent == []


async def test_a_send_interrupted_before_its_record_is_unconfirmed_never_sent_twice(
    parts: Parts, redis: Redis
) -> None:
    # WhatsApp takes the message, but the engine dies before it hears back.
    parts.standin.fail_next(EU.id, Fault(status=200, delay_s=30))
    await queue_reply(redis, EU.id, "r1")
    first = parts.make_sender("first")
    await first.run_once()
    for _ in range(500):  # until the stand-in has it
        if parts.standin.sent:
            break
        await asyncio.sleep(0.01)
    await first.cancel()  # the crash: no record, no acknowledgement
    assert (await delivery_of(redis, EU.id, "r1")).status == "queued"

    second = parts.make_sender("second", claim_idle_s=0.05)
    await asyncio.sleep(0.1)
    assert await second.run_once() == 0  # nothing new: the reply is pending, not re-read
    assert await second.recover() == 1
    unconfirmed = await delivery_of(redis, EU.id, "r1")
    assert unconfirmed.status == "unconfirmed"
    assert len(parts.standin.sent) == 1  # sent once, and said so
    assert await redis.xpending(keys.outbox(EU.id), GROUP) == {
        "pending": 0,
        "min": None,
        "max": None,
        "consumers": [],
    }


async def test_recovery_leaves_a_reply_still_being_retried_alone(
    parts: Parts, redis: Redis
) -> None:
    release = asyncio.Event()

    async def slow_wait(seconds: float) -> None:
        await release.wait()

    sender = parts.make_sender("busy", claim_idle_s=0.0, sleep=slow_wait)
    parts.standin.fail_next(EU.id, Fault(status=500))
    await queue_reply(redis, EU.id, "r1")
    await sender.run_once()
    await asyncio.sleep(0.1)  # the first attempt failed; the retry waits
    assert await sender.recover() == 0  # ours, in hand: not marked
    release.set()
    await sender.drain()
    assert (await delivery_of(redis, EU.id, "r1")).status == "accepted"


# End to end: webhook -> receiver -> Kafka -> engine -> outbox -> sender -> stand-in,
# and the stand-in's status webhooks back through the receiver.


@pytest.fixture
async def stack(
    aiohttp_client: AiohttpClient,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    settings: Settings,
    channels: list[Channel],
    redis: Redis,
) -> AsyncIterator[tuple[TestClient, StandIn]]:  # type: ignore[type-arg]
    standin = StandIn(
        {EU.id: EU.access_token, US.id: US.access_token},
        app_secrets={EU.id: EU.app_secret, US.id: US.app_secret},
    )
    server = await aiohttp_server(create_standin(standin))
    settings = msgspec.structs.replace(settings, graph_url=str(server.make_url("/v21.0")))
    await start_engine(aiohttp_client, settings, channels)
    api = await start_api(aiohttp_client, settings, channels)
    standin.webhook_url = str(api.make_url("/webhooks/whatsapp"))
    yield api, standin


async def eventually(read: Callable[[], Awaitable[Any]], check: Callable[[Any], bool]) -> Any:
    for _ in range(200):
        value = await read()
        if check(value):
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"never: last {value!r}")


class Replied(msgspec.Struct):
    """A contributor's reply to a customer, sent and accepted: how to read the
    conversation again, and what the stand-in received."""

    read: Callable[[], Awaitable[Any]]
    sent: Any  # the stand-in's SentMessage
    ana: dict[str, str]
    path: str


def reply_of(body: Any) -> Any:
    return body["messages"][-1]


async def replied(api: TestClient, standin: StandIn) -> Replied:  # type: ignore[type-arg]
    ana = await user_with_role(api, "ana", EU.id, "contributor")
    await post_message(api, EU, CUSTOMER, "wamid.IN1", int(time.time()))
    path = f"/v1/conversations/{EU.id}/{CUSTOMER}"

    async def read() -> Any:
        return (await call(api, "GET", path, ana))[1]

    await eventually(read, lambda body: body.get("queue") == "new")
    status, answer = await call(api, "POST", f"{path}/replies", ana, {"text": "Hello!"})
    assert status == 200, answer
    accepted = await eventually(read, lambda body: reply_of(body)["status"] == "accepted")
    [sent] = standin.sent
    assert reply_of(accepted)["wamid"] == sent.wamid
    return Replied(read, sent, ana, path)


async def test_a_contributors_reply_reaches_whatsapp_and_its_statuses_only_move_forward(
    stack: tuple[TestClient, StandIn],  # type: ignore[type-arg]
) -> None:
    api, standin = stack
    reply = await replied(api, standin)
    assert (reply.sent.phone_number_id, reply.sent.body) == (EU.id, TEXT_SHAPE)
    for state in ("sent", "delivered", "read"):
        assert await standin.post_statuses(EU.id, reply.sent.wamid, CUSTOMER, [state]) == [200]
        await eventually(reply.read, lambda body, state=state: reply_of(body)["status"] == state)
    # A late `delivered` after `read` does not move it back.
    assert await standin.post_statuses(EU.id, reply.sent.wamid, CUSTOMER, ["delivered"]) == [200]
    marker = await call(api, "POST", f"{reply.path}/tags", reply.ana, {"tag": "after-late"})
    assert marker[0] == 200  # applied after the late status, on the same partition
    final = await reply.read()
    assert "after-late" in final["tags"]
    assert reply_of(final)["status"] == "read"


async def test_a_failed_delivery_shows_metas_error(
    stack: tuple[TestClient, StandIn],  # type: ignore[type-arg]
) -> None:
    api, standin = stack
    reply = await replied(api, standin)
    await standin.post_statuses(EU.id, reply.sent.wamid, CUSTOMER, ["failed"])
    failed = await eventually(reply.read, lambda body: reply_of(body)["status"] == "failed")
    assert reply_of(failed)["error"].startswith("131026 ")
