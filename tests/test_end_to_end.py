"""Webhook -> receiver -> real broker -> engine -> real redis-server, and back out."""

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from engine.app import create_app as create_engine
from engine.cli import NotFound, show_conversation
from ingest.app import create_app as create_receiver
from parley.channels import Channel
from parley.redis import connect_redis
from parley.settings import Settings
from store.reader import Reader
from tests import factory as f
from tests.conftest import EU, US
from tests.http_tools import post_message
from tests.kafka_tools import eventually, produce
from tests.redis_tools import decided_count

# Recent: the engine's sweeper runs on the real clock (30-day auto-resolve periods).
T0 = int(time.time()) - 3600


@pytest.fixture(params=["one redis", "redis cluster"])
async def store(
    request: pytest.FixtureRequest, redis_url: str, redis_cluster_url: str
) -> AsyncIterator[tuple[str, Redis]]:
    """The same tests against one redis-server and a three-primary Redis Cluster."""
    url = redis_url if request.param == "one redis" else redis_cluster_url
    client = connect_redis(url)
    await client.flushall()  # on a cluster: every primary
    yield url, client
    await client.aclose()


@pytest.fixture
def redis(store: tuple[str, Redis]) -> Redis:
    return store[1]


@pytest.fixture
async def engine(
    aiohttp_client: Callable[..., Awaitable[TestClient]],  # type: ignore[type-arg]
    settings: Settings,
    channels: list[Channel],
    store: tuple[str, Redis],  # first: it empties the database, then the engine seeds it
) -> TestClient:  # type: ignore[type-arg]
    """The engine app (consumer, sweeper, /metrics) on its own port."""
    settings = msgspec.structs.replace(settings, redis_url=store[0])
    return await aiohttp_client(create_engine(settings, channels))


@pytest.fixture
async def receiver(
    aiohttp_client: Callable[..., Awaitable[TestClient]],  # type: ignore[type-arg]
    settings: Settings,
    channels: list[Channel],
    store: tuple[str, Redis],
    engine: TestClient,  # type: ignore[type-arg]
) -> TestClient:  # type: ignore[type-arg]
    settings = msgspec.structs.replace(settings, redis_url=store[0])
    return await aiohttp_client(create_receiver(settings, channels))


def conversation(redis: Redis, channel: Channel, wa_id: str) -> Callable[[], Awaitable[Any]]:
    async def read() -> Any:
        try:
            return await show_conversation(Reader(redis), f"{channel.id}:{wa_id}")
        except NotFound:
            return None

    return read


def in_state(
    redis: Redis, channel: Channel, wa_id: str, queue: str, assignee: str | None
) -> Callable[[], Awaitable[Any]]:
    read = conversation(redis, channel, wa_id)

    async def check() -> Any:
        shown = await read()
        return shown if shown and (shown["queue"], shown["assignee"]) == (queue, assignee) else None

    return check


async def test_the_conversation_rules_end_to_end(
    receiver: TestClient, redis: Redis, settings: Settings
) -> None:  # type: ignore[type-arg]
    bootstrap = settings.kafka_bootstrap or ""
    await post_message(receiver, EU, "16315550001", "wamid.E2E.1", T0)
    await eventually(in_state(redis, EU, "16315550001", "new", None))

    await produce(bootstrap, settings.topic, [f.reply(EU.id, "16315550001", T0 + 30, user="alice")])
    await eventually(in_state(redis, EU, "16315550001", "open", "alice"))

    await produce(bootstrap, settings.topic, [f.move(EU.id, "16315550001", "resolved", T0 + 60)])
    await eventually(in_state(redis, EU, "16315550001", "resolved", None))

    await post_message(receiver, EU, "16315550001", "wamid.E2E.2", T0 + 90)
    reopened = await eventually(in_state(redis, EU, "16315550001", "new", None))
    assert datetime.fromisoformat(reopened["opened_at"]) == datetime.fromtimestamp(
        T0 + 90, UTC
    )  # a new cycle


async def test_without_auto_assignment_end_to_end(
    receiver: TestClient, redis: Redis, settings: Settings
) -> None:  # type: ignore[type-arg]
    await post_message(receiver, US, "16315550002", "wamid.E2E.3", T0)
    await eventually(in_state(redis, US, "16315550002", "new", None))
    marker = f.tag(US.id, "16315550002", "after-reply", T0 + 31)
    await produce(
        settings.kafka_bootstrap or "",
        settings.topic,
        [f.reply(US.id, "16315550002", T0 + 30, user="alice"), marker],
    )

    # The tag is applied after the reply (same partition, in order): then look.
    async def tagged() -> Any:
        shown = await conversation(redis, US, "16315550002")()
        return shown if shown and shown["tags"] == ["after-reply"] else None

    shown = await eventually(tagged)
    assert (shown["queue"], shown["assignee"]) == ("new", None)


async def test_the_same_webhook_twice_is_applied_once(receiver: TestClient, redis: Redis) -> None:  # type: ignore[type-arg]
    await post_message(receiver, EU, "16315550003", "wamid.E2E.4", T0)
    await post_message(receiver, EU, "16315550003", "wamid.E2E.4", T0)
    await post_message(receiver, EU, "16315550003", "wamid.E2E.5", T0 + 1)

    async def all_seen() -> Any:
        return await decided_count(redis, EU.id) == 2

    await eventually(all_seen)

    async def metrics_counted() -> Any:
        text = await (await receiver.get("/metrics")).text()
        return text

    shown = await conversation(redis, EU, "16315550003")()
    assert shown["version"] == 2  # two distinct messages applied, the repeat refused


async def test_the_engine_reports_what_it_did(
    receiver: TestClient,  # type: ignore[type-arg]
    engine: TestClient,  # type: ignore[type-arg]
    redis: Redis,
    settings: Settings,
) -> None:
    await post_message(receiver, EU, "16315550009", "wamid.E2E.9", T0)
    await post_message(receiver, EU, "16315550009", "wamid.E2E.9", T0)  # Meta re-delivers
    await produce(
        settings.kafka_bootstrap or "",
        settings.topic,
        [
            f.reply(EU.id, "16315550009", T0 + 5, user="alice"),
            f.assign(EU.id, "16315550404", "bob", T0 + 6),  # no such conversation
        ],
    )
    await eventually(in_state(redis, EU, "16315550009", "open", "alice"))

    async def scraped() -> str:
        text = await (await engine.get("/metrics")).text()
        done = 'parley_events_applied_total{kind="agent.assign",outcome="rejected"} 1.0'
        return text if done in text else ""

    text = await eventually(scraped)
    for sample in [
        'parley_events_applied_total{kind="customer.message",outcome="applied"} 1.0',
        'parley_events_applied_total{kind="customer.message",outcome="duplicate"} 1.0',
        'parley_events_applied_total{kind="agent.reply",outcome="applied"} 1.0',
        f'parley_assignments_total{{channel="{EU.id}",mode="auto"}} 1.0',
        f'parley_first_response_seconds_count{{channel="{EU.id}"}} 1.0',
        f'parley_first_response_seconds_bucket{{channel="{EU.id}",le="15.0"}} 1.0',
        f'parley_queue_conversations{{channel="{EU.id}",queue="open"}} 1.0',
        f'parley_queue_conversations{{channel="{EU.id}",queue="new"}} 0.0',
        "parley_apply_batch_seconds_count",
        f'parley_consumer_lag_events{{partition="0",topic="{settings.topic}"}}',
        "parley_sweeper_last_success_timestamp_seconds",
    ]:
        assert sample in text, sample
    ready = await engine.get("/readyz")
    assert await ready.json() == {"kafka": True, "redis": True, "partitions": 4}
