"""Real servers for the whole session, a clean slate for every test.

A Tansu broker and a redis-server start on free loopback ports (or set
PARLEY_TEST_KAFKA_BOOTSTRAP / PARLEY_TEST_REDIS_URL to use running ones). Each test gets
its own topic names and an empty Redis database.
"""

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from devstack.servers import (
    LOCAL_SESSION_TIMEOUT_S,
    LocalCluster,
    Server,
    start_kafka,
    start_redis,
)
from parley.channels import Channel, ChannelSettings
from parley.settings import Settings

EU = Channel(
    id="106540352242922",
    app_secret="eu-app-secret-0123456789",
    verify_token="eu-verify-token",
    access_token="eu-graph-token",
    # Both numbers belong to the business account of the sample payloads.
    settings=ChannelSettings(display_name="Support EU", waba_id="102290129340398"),
)
US = Channel(
    id="106540352242923",
    app_secret="us-app-secret-9876543210",
    verify_token="us-verify-token",
    access_token="us-graph-token",
    settings=ChannelSettings(
        display_name="Support US", auto_assign=False, waba_id="102290129340398"
    ),
)


def kafka_session_timeout_s() -> float:
    """The engine's Kafka session for the tests' broker: the local broker's, as `make
    run` sets it (Tansu holds a new member's join for half of it, so an engine owns its
    partitions after about 1 s, not 3 s, and a killed one's move after 2 s, not 6 s); on
    an external broker (PARLEY_TEST_KAFKA_BOOTSTRAP) the product's default, the least a
    stock Kafka broker accepts."""
    if os.environ.get("PARLEY_TEST_KAFKA_BOOTSTRAP"):
        return Settings().kafka_session_timeout_s
    return LOCAL_SESSION_TIMEOUT_S


def running_or_external(variable: str, start: Callable[[], Server], address: str) -> Iterator[str]:
    """The address in `variable` when set; else a server started now (stopped after)."""
    external = os.environ.get(variable)
    if external:
        yield external
        return
    server = start()
    try:
        yield address.format(port=server.port)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    yield from running_or_external("PARLEY_TEST_KAFKA_BOOTSTRAP", start_kafka, "127.0.0.1:{port}")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    yield from running_or_external(
        "PARLEY_TEST_REDIS_URL", start_redis, "redis://127.0.0.1:{port}/0"
    )


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def topic() -> str:
    return f"parley-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def settings(kafka_bootstrap: str, redis_url: str, topic: str, tmp_path: Path) -> Settings:
    return Settings(
        media_url=f"file://{tmp_path / 'media'}",
        kafka_bootstrap=kafka_bootstrap,
        redis_url=redis_url,
        topic=topic,
        topic_partitions=4,
        consumer_group=f"{topic}-engine",
        produce_timeout_s=3.0,
        sweep_interval_s=0.2,
        kafka_session_timeout_s=kafka_session_timeout_s(),
        # Nothing may call the real Graph API: a closed port unless a test starts the
        # stand-in.
        graph_url="http://127.0.0.1:9/v21.0",
    )


@pytest.fixture
def channels() -> list[Channel]:
    return [EU, US]


@pytest.fixture(scope="session")
def redis_cluster_url() -> Iterator[str]:
    """A real three-primary Redis Cluster on loopback (or PARLEY_TEST_REDIS_CLUSTER_URL)."""
    external = os.environ.get("PARLEY_TEST_REDIS_CLUSTER_URL")
    if external:
        yield external
        return
    cluster = LocalCluster(masters=3)
    try:
        yield cluster.url
    finally:
        cluster.stop()
