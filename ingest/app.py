"""The receiver's app factory: what it owns is set up and torn down in cleanup contexts."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable

import aiohttp
from aiohttp import web
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from redis.exceptions import RedisError

from api.app import MOUNT as API_MOUNT
from api.app import create_app as create_api
from api.appkeys import (
    DIRECTORY,
    FEED_HUB,
    GRAPH,
    MEDIA,
    PRESENCE,
    READER,
    ROUTING,
    SESSIONS,
    TOKENS,
)
from api.feed import FeedHub
from inbox.routes import routes as inbox_routes
from ingest import handlers, health
from ingest.appkeys import CHANNELS, CLOCK, METRICS, PRODUCER, REDIS, REGISTRY, SETTINGS
from ingest.routing import ChannelRegistry
from mediastore import open_media_store
from metrics import IngestMetrics
from parley import registration
from parley.channels import Channel
from parley.graph import GraphClient
from parley.kafka import cached_partitioner, ensure_topics
from parley.logs import setup_logging
from parley.loops import run_every
from parley.producer import EventProducer
from parley.redis import RedisClient, connect_redis, is_cluster
from parley.registration import active_channel
from parley.runtime import serve
from parley.settings import Settings
from store import registrations
from store.channels import channel_ids, seed_channels
from store.directory import Directory
from store.feed import Feed
from store.presence import PresenceStore
from store.reader import Reader
from store.routing import RoutingStore
from store.sessions import Sessions

log = logging.getLogger(__name__)
DEAD_LETTER_PARTITIONS = 1
SEED_TIMEOUT_S = 5.0
# A channel registered through another receiver, or another worker of this one (which
# alone hears the API's callback), is taken within this long. Before that its calls are
# refused (401: Meta retries) or, when signed by an app we know, dead-lettered as
# unknown_channel (re-drivable). A refresh is one set read, and a hash read per channel
# this receiver does not know: cheap enough every second.
REGISTERED_REFRESH_S = 1.0


def create_app(
    settings: Settings,
    channels: Iterable[Channel],
    *,
    clock: Callable[[], float] = time.time,
    registry: CollectorRegistry | None = None,
    metrics_dir: str | None = None,
) -> web.Application:
    """The receiver, with the /v1 API mounted at /v1. Needs `settings.kafka_bootstrap` and
    `settings.redis_url` set.

    The API is a sub-application: it reads what this app holds under api/appkeys' keys
    (settings, clock, Redis, the store's reader, the directory, the producer, the Graph
    API client), and calls back with each channel that registration makes active, so
    the receiver takes its webhooks at once.

    `metrics_dir`: this process is one of several workers on one port, with
    prometheus_client in multiprocess mode on that directory (PROMETHEUS_MULTIPROC_DIR,
    set before it was imported). A scrape reaches any one worker, so /metrics adds up
    every worker's files rather than showing this one's counts."""
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    directory = app[CHANNELS] = ChannelRegistry(channels)
    app[CLOCK] = clock
    app[REGISTRY] = registry if registry is not None else CollectorRegistry()
    if metrics_dir is None:
        app[METRICS] = IngestMetrics(app[REGISTRY])
    else:
        # The metrics write to this worker's files whatever registry holds them; /metrics
        # reads them all through the collector instead.
        app[METRICS] = IngestMetrics(CollectorRegistry())
        MultiProcessCollector(app[REGISTRY], path=metrics_dir)  # type: ignore[no-untyped-call]
    app.cleanup_ctx.extend([_kafka, _redis, _graph, _registered_channels, _feed])
    app.add_routes(handlers.routes)
    app.add_routes(health.routes)
    app.add_routes(inbox_routes)  # the agent inbox page at / (docs/inbox.md)
    app.add_subapp(API_MOUNT, create_api(on_channel_active=directory.add))
    return app


def run_worker(settings: Settings, channels: list[Channel], metrics_dir: str) -> None:
    """One of PARLEY_HTTP_WORKERS processes (parley.runtime.run_workers), each the whole
    receiver on the shared port. Here rather than in __main__, which multiprocessing
    does not import in the processes it spawns."""
    setup_logging(settings.log_level)
    app = create_app(settings, channels, metrics_dir=metrics_dir)
    serve(app, settings.http_host, settings.http_port, worker=True)


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
        partitioner=cached_partitioner,
    )
    try:
        await producer.start()
        app[PRODUCER] = EventProducer(
            producer,
            settings.topic,
            settings.dead_letter_topic,
            settings.produce_timeout_s,
            app[METRICS],
        )
        yield
    finally:
        # Flushes what is still buffered; closes a producer whose start was cut short (a
        # SIGTERM during start-up) or failed.
        await producer.stop()


async def _redis(app: web.Application) -> AsyncIterator[None]:
    url = app[SETTINGS].redis_url
    if url is None:
        raise RuntimeError("PARLEY_REDIS_URL is not set (make run starts a local redis-server)")
    # No per-reply timer (a 50-row page is 50 replies); the API bounds whole requests.
    client = connect_redis(url, read_timeout_s=None)
    app[REDIS] = client
    app[READER] = Reader(client)
    app[DIRECTORY] = Directory(client, app[CLOCK])
    app[SESSIONS] = Sessions(client)
    app[PRESENCE] = PresenceStore(client)
    app[ROUTING] = RoutingStore(client)
    try:
        await _seed(client, app[CHANNELS].by_id.values())
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
    """The Graph API client, the channels' tokens and the media store, for the API."""
    directory = app[CHANNELS]

    def token(channel: str) -> str | None:
        found = directory.by_id.get(channel)
        return None if found is None else found.access_token

    media = open_media_store(app[SETTINGS])
    try:
        async with aiohttp.ClientSession() as session:
            app[GRAPH] = GraphClient(session, app[SETTINGS].graph_url)
            app[TOKENS] = token
            app[MEDIA] = media
            yield
    finally:
        await media.close()


async def _registered_channels(app: web.Application) -> AsyncIterator[None]:
    """Channels registered through the API (by this receiver or another): their
    webhooks are taken once they are active."""

    stopping = asyncio.Event()

    async def refresh() -> None:
        await load_registered(app[REDIS], app[CHANNELS])

    # Redis trouble is logged and ridden out (run_every); each refresh is bounded.
    task = asyncio.create_task(
        run_every(REGISTERED_REFRESH_S, refresh, stopping, timeout_s=SEED_TIMEOUT_S),
        name="registered-channels",
    )
    try:
        yield
    finally:
        stopping.set()
        await task  # a refresh in progress ends within SEED_TIMEOUT_S; a crash surfaces


async def load_registered(client: RedisClient, directory: ChannelRegistry) -> None:
    for channel in await channel_ids(client):
        if channel in directory.by_id:
            continue
        record = await registrations.load(client, channel)
        if record is not None and record.status is registration.Status.ACTIVE:
            directory.add(active_channel(record))


async def _feed(app: web.Application) -> AsyncIterator[None]:
    """The process's one reader of the change feeds, for every live stream it serves; on
    a client of its own, whose blocking reads never hold the API's connections."""
    url = app[SETTINGS].redis_url
    assert url is not None  # checked by _redis
    client = connect_redis(url, read_timeout_s=None)
    hub = FeedHub(Feed(client), lambda: channel_ids(app[REDIS]), per_channel=is_cluster(client))
    app[FEED_HUB] = hub
    stopping = asyncio.Event()
    task = asyncio.create_task(hub.run(stopping), name="feed-hub")
    try:
        yield
    finally:
        stopping.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()
