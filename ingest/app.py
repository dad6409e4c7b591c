"""The receiver's app factory: what it owns is set up and torn down in cleanup contexts."""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable

import aiohttp
from aiohttp import web
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry
from redis.exceptions import RedisError

from ingest import health, webhooks
from ingest.api import routes as api
from ingest.api.numbers import active_channel
from ingest.appkeys import (
    CHANNELS,
    CLOCK,
    DIRECTORY,
    GRAPH,
    METRICS,
    PRODUCER,
    REDIS,
    REGISTRY,
    SETTINGS,
)
from ingest.producer import EventProducer
from ingest.routing import ChannelDirectory
from metrics import IngestMetrics
from parley import registration
from parley.channels import Channel
from parley.graph import GraphClient
from parley.kafka import ensure_topics
from parley.redis import RedisClient, connect_redis
from parley.settings import Settings
from store import registrations
from store.channels import channel_ids, seed_channels
from store.directory import Directory

log = logging.getLogger(__name__)
DEAD_LETTER_PARTITIONS = 1
SEED_TIMEOUT_S = 5.0
REGISTERED_REFRESH_S = 5.0


def create_app(
    settings: Settings,
    channels: Iterable[Channel],
    *,
    clock: Callable[[], float] = time.time,
    registry: CollectorRegistry | None = None,
) -> web.Application:
    """The receiver and the /v1 API. Needs `settings.kafka_bootstrap` and `settings.redis_url` set."""
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[CHANNELS] = ChannelDirectory(channels)
    app[CLOCK] = clock
    app[REGISTRY] = registry if registry is not None else CollectorRegistry()
    app[METRICS] = IngestMetrics(app[REGISTRY])
    app.cleanup_ctx.extend([_kafka, _redis, _graph, _registered_channels])
    app.add_routes(webhooks.routes)
    app.add_routes(health.routes)
    api.setup(app)
    return app


async def _kafka(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if settings.kafka_bootstrap is None:
        raise RuntimeError("PARLEY_KAFKA_BOOTSTRAP is not set (make run starts a local broker)")
    await ensure_topics(
        settings.kafka_bootstrap,
        {
            settings.topic: settings.topic_partitions,
            settings.dead_letter_topic: DEAD_LETTER_PARTITIONS,
        },
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=settings.kafka_idempotence,
        # Bounds a stalled request; the receiver answers 503 earlier (produce_timeout_s).
        request_timeout_ms=int(settings.produce_timeout_s * 1000) + 1000,
    )
    await producer.start()
    app[PRODUCER] = EventProducer(
        producer,
        settings.topic,
        settings.dead_letter_topic,
        settings.produce_timeout_s,
        app[METRICS],
    )
    try:
        yield
    finally:
        await producer.stop()  # flushes what is still buffered


async def _redis(app: web.Application) -> AsyncIterator[None]:
    url = app[SETTINGS].redis_url
    if url is None:
        raise RuntimeError("PARLEY_REDIS_URL is not set (make run starts a local redis-server)")
    # No per-reply timer (a 50-row page is 50 replies); the API bounds whole requests.
    client = connect_redis(url, read_timeout_s=None)
    app[REDIS] = client
    app[DIRECTORY] = Directory(client, app[CLOCK])
    await _seed(client, app[CHANNELS].by_id.values())
    try:
        yield
    finally:
        await client.aclose()


async def _seed(client: RedisClient, channels: Iterable[Channel]) -> None:
    """The API lists channels from Redis; the engine seeds them too, but the receiver
    may start first. Best effort: webhooks must not wait on Redis."""
    try:
        async with asyncio.timeout(SEED_TIMEOUT_S):
            await seed_channels(client, list(channels))
    except (TimeoutError, RedisError, OSError) as error:
        log.warning("channels not seeded; the engine will", extra={"error": type(error).__name__})


async def _graph(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession() as session:
        app[GRAPH] = GraphClient(session, app[SETTINGS].graph_url)
        yield


async def _registered_channels(app: web.Application) -> AsyncIterator[None]:
    """Channels registered through the API (by this receiver or another): their
    webhooks are taken once they are active."""

    async def refresh() -> None:
        while True:
            with contextlib.suppress(RedisError, OSError):  # TimeoutError included
                async with asyncio.timeout(SEED_TIMEOUT_S):
                    await load_registered(app[REDIS], app[CHANNELS])
            await asyncio.sleep(REGISTERED_REFRESH_S)

    task = asyncio.create_task(refresh(), name="registered-channels")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def load_registered(client: RedisClient, directory: ChannelDirectory) -> None:
    for channel in await channel_ids(client):
        if channel in directory.by_id:
            continue
        record = await registrations.load(client, channel)
        if record is not None and record.status is registration.Status.ACTIVE:
            directory.add(active_channel(record))
