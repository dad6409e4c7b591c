"""The engine's app factory: Redis, the Kafka consumer, the Graph API's HTTP session and
the media store as owned resources; the consumer loop, the sender, the media fetcher,
the media expiry and the sweeper as tasks that start together under one stop event and
stop together; /healthz, /readyz and /metrics on
PARLEY_METRICS_PORT.

The probes answer from the first second: the consumer joins its group (seconds) in a
task of its own (engine/joining.py), which `python -m engine` starts before importing
this module. /healthz is 200 while that happens; /readyz is 503 `{"starting": true}`
until the group has been joined.
"""

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable

import aiohttp
from aiohttp import web
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry
from redis.exceptions import RedisError

from engine.appkeys import (
    CHANNELS,
    CLOCK,
    CREDENTIALS,
    FETCHER,
    GRAPH,
    JOINED,
    JOINING,
    LOOP,
    MEDIA,
    METRICS,
    REDIS,
    REGISTRY,
    ROUTER,
    SENDER,
    SETTINGS,
    STORE,
    SWEEPER,
    WORKERS,
)
from engine.applier import Applied, Applier
from engine.consumer import CommitOnRevoke, EngineLoop
from engine.fetcher import Fetcher, run_fetcher
from engine.joining import Joining
from engine.router import Router, routing_wakes
from engine.sender import Credentials, Sender, run_sender
from engine.standing_sync import refresh_all
from engine.sweeper import Sweeper
from engine.template_sync import sync_all
from mediastore import MediaStoreError, open_media_store, retention_cutoff
from metrics import EngineMetrics
from metrics.exposition import metrics_response
from parley.channels import Channel
from parley.graph import GraphClient
from parley.loops import EXPECTED, Workers, run_every
from parley.redis import as_text, connect_redis, redis_reachable
from parley.settings import Settings
from parley.standing import PROBLEMS, problems
from store import reader
from store.channels import channel_ids, seed_channels
from store.conversations import ConversationStore
from store.fetches import Fetches
from store.presence import PresenceStore
from store.routing import routing_channel
from store.standing import standings

log = logging.getLogger(__name__)
# Shutdown fits in the 10 s a SIGTERM allows. Phase one: every task gets the same grace,
# together, to finish what it holds (the consumer its batch and the commit, the sender
# its replies in hand, DRAIN_S). Phase two: what is left is cancelled and gets a hard
# deadline. Then the consumer leaves its group, within its own bound. 5 + 1 + 2 < 10.
STOP_GRACE_S = 5.0
CANCEL_DEADLINE_S = 1.0
CONSUMER_CLOSE_S = 2.0
# A pass that Redis has not finished within this bound is abandoned; the next one resumes
# (each resolution is atomic, so an abandoned pass leaves nothing half done).
SWEEP_TIMEOUT_S = 60.0
ROUTING_INTERVAL_S = 15.0
MEDIA_EXPIRY_S = 3600.0


def create_app(
    settings: Settings,
    channels: Iterable[Channel],
    *,
    clock: Callable[[], float] = time.time,
    registry: CollectorRegistry | None = None,
    sweep: bool = True,
    send: bool = True,
    joining: Joining | None = None,
) -> web.Application:
    """The engine; `joining`: its consumer, already joining (made in the app's loop),
    else the app makes it as it starts."""
    app = web.Application()
    app[SETTINGS] = settings
    app[CHANNELS] = list(channels)
    app[CLOCK] = clock
    app[REGISTRY] = registry if registry is not None else CollectorRegistry()
    app[METRICS] = EngineMetrics(app[REGISTRY])
    app[WORKERS] = Workers(grace_s=STOP_GRACE_S, deadline_s=CANCEL_DEADLINE_S)
    app[JOINED] = asyncio.Event()
    if joining is not None:
        app[JOINING] = joining
    app.cleanup_ctx.append(_kafka)
    app.cleanup_ctx.append(_redis)
    app.cleanup_ctx.append(_consumer)
    if send:
        app.cleanup_ctx.append(_graph)
        app.cleanup_ctx.append(_sender)
        app.cleanup_ctx.append(_fetcher)
    if sweep:
        app.cleanup_ctx.append(_sweeper)
    # Last, so that its cleanup (stopping every task) runs before the resources close.
    app.cleanup_ctx.append(_workers)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


async def _redis(app: web.Application) -> AsyncIterator[None]:
    url = app[SETTINGS].redis_url
    if url is None:
        raise RuntimeError("PARLEY_REDIS_URL is not set (make run starts a local redis-server)")
    client = connect_redis(url, read_timeout_s=None)  # batches carry their own timeout
    store = ConversationStore(client)
    try:
        await store.start()
        await seed_channels(client, app[CHANNELS])
        app[REDIS] = client
        app[STORE] = store
        yield
    finally:
        await client.aclose()


async def _kafka(app: web.Application) -> AsyncIterator[None]:
    """The consumer, joining its group in the background (from here, unless it was
    given already joining); it leaves the group last."""
    if JOINING not in app:
        if app[SETTINGS].kafka_bootstrap is None:
            raise RuntimeError("PARLEY_KAFKA_BOOTSTRAP is not set (make run starts a local broker)")
        app[JOINING] = Joining(app[SETTINGS])
    joining = app[JOINING]
    try:
        yield
    finally:
        # The tasks have stopped (`_workers` cleans up first): the last commit is done.
        # Leaving the group lets the others take the partitions at once; a broker that
        # does not answer in time drops this member after its session timeout instead.
        if not await joining.close(CONSUMER_CLOSE_S):
            log.warning("consumer not closed in time")


async def _consumer(app: web.Application) -> AsyncIterator[None]:
    """The consumer loop over the joining consumer, handling its rebalances."""
    joining = app[JOINING]
    applier = Applier(app[STORE], app[CLOCK])
    loop = EngineLoop(
        joining.consumer, applier, app[STORE], app[METRICS], stopping=app[WORKERS].stopping
    )
    joining.listener.target = CommitOnRevoke(loop)
    app[LOOP] = loop
    yield


async def _graph(app: web.Application) -> AsyncIterator[None]:
    """What the sender and the fetcher share: the Graph API's session, the channels'
    tokens and the media store."""
    media = open_media_store(app[SETTINGS])
    try:
        async with aiohttp.ClientSession() as session:
            app[GRAPH] = GraphClient(session, app[SETTINGS].graph_url)
            app[CREDENTIALS] = Credentials(
                app[REDIS], {channel.id: channel.access_token for channel in app[CHANNELS]}
            )
            app[MEDIA] = media
            yield
    finally:
        await media.close()


def _member() -> str:
    """This process's name in the consumer groups of the outbox and fetch streams."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


async def _sender(app: web.Application) -> AsyncIterator[None]:
    app[SENDER] = Sender(
        app[REDIS],
        app[GRAPH],
        app[CREDENTIALS],
        app[METRICS],
        consumer=_member(),
        media=app[MEDIA],
    )
    yield


async def _fetcher(app: web.Application) -> AsyncIterator[None]:
    client = app[REDIS]

    async def channels() -> list[str]:
        return await channel_ids(client)

    app[FETCHER] = Fetcher(
        Fetches(client, _member()),
        app[GRAPH],
        app[MEDIA],
        app[CREDENTIALS].token,
        app[METRICS],
        channels=channels,
        concurrency=app[SETTINGS].media_fetches,
    )
    yield


async def _sweeper(app: web.Application) -> AsyncIterator[None]:
    """The sweeper and the router (due work and routing run where each other run)."""
    router = Router(app[REDIS], app[STORE], app[METRICS], app[CLOCK])
    app[ROUTER] = router
    app[SWEEPER] = Sweeper(app[REDIS], app[STORE], app[METRICS], app[CLOCK], router.changed)

    def tell_router(results: list[Applied]) -> None:
        for channel in routing_wakes(results):
            router.changed(channel)

    app[LOOP].on_applied = tell_router
    yield


async def _workers(app: web.Application) -> AsyncIterator[None]:
    """Start the tasks under one stop event; on cleanup, stop them together
    (`Workers.stop`: one grace period for all, then cancel with a hard deadline)."""
    workers = app[WORKERS]
    workers.start(_consume(app), "consumer")
    if SENDER in app:
        workers.start(run_sender(app[SENDER], workers.stopping), "sender")
    if FETCHER in app:
        workers.start(run_fetcher(app[FETCHER], workers.stopping), "fetcher")
        workers.start(_expire_media(app), "media-expiry")
        if app[SETTINGS].template_sync_s > 0:
            workers.start(_sync_with_meta(app), "template-sync")
    if SWEEPER in app:
        workers.start(_sweep(app), "sweeper")
        workers.start(_mark_absent(app), "presence")
        workers.start(_route(app), "router")
        workers.start(_hear_routing_wakes(app), "routing-wakes")
    try:
        yield
    finally:
        await workers.stop()


async def _consume(app: web.Application) -> None:
    """Wait for the join, then apply batches until stopping; `EngineLoop.run` finishes
    the batch in hand and commits. A stop during the join lets the join finish (within
    the grace; about 5 s after start on Tansu) and takes no batch: aiokafka cannot cut a
    join short cleanly (a cancelled bootstrap leaks its connection, and closing waits for
    the join in flight anyway), and a member that finished joining leaves the group at
    once instead of being waited out by the others."""
    loop = app[LOOP]
    await app[JOINING].joined()
    app[JOINED].set()
    log.info("consumer joined", extra={"partitions": len(loop.consumer.assignment())})
    await loop.run()


async def _sweep(app: web.Application) -> None:
    sweeper, sweeps = app[SWEEPER], app[METRICS].sweeps

    async def sweep() -> None:
        await sweeper.run_once()

    def failed(error: Exception) -> None:
        sweeps.labels("error").inc()
        log.warning("sweep failed", extra={"error": type(error).__name__})

    await run_every(
        app[SETTINGS].sweep_interval_s,
        sweep,
        app[WORKERS].stopping,
        on_error=failed,
        timeout_s=SWEEP_TIMEOUT_S,
    )


async def _mark_absent(app: web.Application) -> None:
    """Users online or away with no live stream for PARLEY_OFFLINE_AFTER_S go offline
    (every engine runs it; the script is atomic, so each is marked once)."""
    presence, clock, settings = PresenceStore(app[REDIS]), app[CLOCK], app[SETTINGS]
    marked = app[METRICS].marked_offline

    async def mark() -> None:
        now = clock()
        users = await presence.mark_absent_offline(now - settings.offline_after_s, now)
        if users:
            marked.inc(len(users))
            log.info("marked offline", extra={"users": len(users)})
            app[ROUTER].wake()  # what they held may be released

    await run_every(
        min(settings.sweep_interval_s, settings.offline_after_s / 4), mark, app[WORKERS].stopping
    )


async def _route(app: web.Application) -> None:
    """The router's passes: when woken, and over everything at least every
    min(sweep interval, ROUTING_INTERVAL_S), which bounds how late a lost wake-up is
    made up (a release within 60 s of going offline)."""
    interval = min(app[SETTINGS].sweep_interval_s, ROUTING_INTERVAL_S)
    await app[ROUTER].run(app[WORKERS].stopping, interval)


async def _hear_routing_wakes(app: web.Application) -> None:
    """Wake-ups from other processes (the API: an availability, a capacity or a
    channel's routing changed), over Redis pub/sub. A message lost while disconnected
    is made up by the router's interval pass."""
    router, stopping = app[ROUTER], app[WORKERS].stopping

    async def listen() -> None:
        async with app[REDIS].pubsub(ignore_subscribe_messages=True) as pubsub:
            await pubsub.subscribe(routing_channel())
            while not stopping.is_set():
                message = await pubsub.get_message(timeout=1.0)
                if message is not None:
                    router.wake(as_text(message["data"]))

    await run_every(1.0, listen, stopping)


async def _expire_media(app: web.Application) -> None:
    """Files older than the retention are deleted once an hour (each engine tries; a
    file already gone is not an error)."""
    media, clock, settings = app[MEDIA], app[CLOCK], app[SETTINGS]

    async def expire() -> None:
        removed = await media.expire(retention_cutoff(settings, clock()))
        if removed:
            log.info("media expired", extra={"files": removed})

    await run_every(
        MEDIA_EXPIRY_S, expire, app[WORKERS].stopping, expected=(*EXPECTED, MediaStoreError)
    )


async def _sync_with_meta(app: web.Application) -> None:
    """Every business account's templates and every number's standing, read again on
    the template schedule."""
    client, graph, credentials = app[REDIS], app[GRAPH], app[CREDENTIALS]

    async def sync() -> None:
        await sync_all(client, graph, credentials.token, app[CLOCK])
        await refresh_all(client, graph, credentials.token, app[CLOCK])

    await run_every(app[SETTINGS].template_sync_s, sync, app[WORKERS].stopping)


async def healthz(request: web.Request) -> web.Response:
    """200 while every task runs, joining included; 503 once one has ended."""
    ended = request.app[WORKERS].ended
    if ended:
        return web.json_response({"status": "failed", "stopped": ended}, status=503)
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    if not request.app[JOINED].is_set():
        return web.json_response({"starting": True, "partitions": 0}, status=503)
    redis_ok = await redis_reachable(request.app[REDIS])
    partitions = len(request.app[LOOP].consumer.assignment())
    kafka_ok = partitions > 0 or await _kafka_answers(request)
    status = 200 if redis_ok and kafka_ok else 503
    # An engine with no partitions is still ready: a standby when the group has more
    # members than the topic has partitions. `partitions` says which it is.
    body = {"kafka": kafka_ok, "redis": redis_ok, "partitions": partitions}
    return web.json_response(body, status=status)


async def _kafka_answers(request: web.Request) -> bool:
    try:
        async with asyncio.timeout(2):
            await request.app[LOOP].consumer.topics()
            return True
    except (TimeoutError, KafkaError, OSError):
        return False


async def metrics(request: web.Request) -> web.Response:
    await _refresh_from_redis(request.app)
    return metrics_response(request.app[REGISTRY])


async def _refresh_from_redis(app: web.Application) -> None:
    """Queue sizes and numbers' problems are read from Redis at scrape time: one ZCARD
    per channel and queue, one GET per channel."""
    client = app[REDIS]
    try:
        sizes = await reader.queue_sizes_of(client, await channel_ids(client))
    except (RedisError, OSError):
        return  # the last values stay; redis trouble shows in readyz and retries
    gauge = app[METRICS].queue_size
    for channel, queues in sizes.items():
        for queue, size in queues.items():
            gauge.labels(channel, queue).set(size)
    try:
        found = await standings(client, sizes)
    except (RedisError, OSError):
        return
    flags = app[METRICS].number_problems
    for channel, its in found.items():
        has = problems(its)
        for problem in PROBLEMS:
            flags.labels(channel, problem).set(1 if problem in has else 0)
