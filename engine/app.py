"""The engine's app factory: Redis, the consumer loop and the sweeper as owned resources,
plus /healthz, /readyz and /metrics on PARLEY_METRICS_PORT."""

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable

import aiohttp
from aiohttp import web
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry
from redis.exceptions import RedisError

from engine.appkeys import (
    CHANNELS,
    CLOCK,
    LOOP,
    METRICS,
    REDIS,
    REGISTRY,
    SENDER,
    SETTINGS,
    STOPPING,
    STORE,
    SWEEPER,
    TASKS,
)
from engine.applier import Applier
from engine.consumer import CommitOnRevoke, EngineLoop
from engine.sender import Credentials, Sender, run_sender
from engine.sweeper import Sweeper
from metrics import EngineMetrics
from metrics.exposition import metrics_response
from parley.channels import Channel
from parley.graph import GraphClient
from parley.kafka import ensure_topics
from parley.redis import connect_redis, redis_reachable
from parley.settings import Settings
from store import reader
from store.channels import channel_ids, seed_channels
from store.conversations import ConversationStore

log = logging.getLogger(__name__)
# Phase one of shutdown: let the batch in hand finish and commit; then cancel.
STOP_GRACE_S = 6.0
# A pass that Redis has not finished within this bound is abandoned; the next one resumes
# (each resolution is atomic, so an abandoned pass leaves nothing half done).
SWEEP_TIMEOUT_S = 60.0
FETCH_MAX_WAIT_MS = 25


def create_app(
    settings: Settings,
    channels: Iterable[Channel],
    *,
    clock: Callable[[], float] = time.time,
    registry: CollectorRegistry | None = None,
    sweep: bool = True,
    send: bool = True,
) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings
    app[CHANNELS] = list(channels)
    app[CLOCK] = clock
    app[REGISTRY] = registry if registry is not None else CollectorRegistry()
    app[METRICS] = EngineMetrics(app[REGISTRY])
    app[TASKS] = []
    app[STOPPING] = asyncio.Event()
    app.cleanup_ctx.append(_redis)
    app.cleanup_ctx.append(_consumer)
    if send:
        app.cleanup_ctx.append(_sender)
    if sweep:
        app.cleanup_ctx.append(_sweeper)
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


async def _consumer(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if settings.kafka_bootstrap is None:
        raise RuntimeError("PARLEY_KAFKA_BOOTSTRAP is not set (make run starts a local broker)")
    await ensure_topics(settings.kafka_bootstrap, {settings.topic: settings.topic_partitions})
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.consumer_group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # An agent's action waits on the engine: Tansu holds a fetch for half its max
        # wait even when records are there (aiokafka's default 500 ms made every reply
        # take 250 ms). Kafka answers as soon as records arrive; this only adds empty
        # fetches while idle.
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
    )
    applier = Applier(app[STORE], app[CLOCK])
    loop = EngineLoop(consumer, applier, app[STORE], app[METRICS])
    consumer.subscribe([settings.topic], listener=CommitOnRevoke(loop))
    await consumer.start()
    app[LOOP] = loop
    task = asyncio.create_task(loop.run(), name="engine-loop")
    app[TASKS].append(task)
    try:
        yield
    finally:
        loop.stop()
        await _finish(task)
        await consumer.stop()


async def _sweeper(app: web.Application) -> AsyncIterator[None]:
    sweeper = Sweeper(app[REDIS], app[STORE], app[METRICS], app[CLOCK])
    app[SWEEPER] = sweeper
    stopping = app[STOPPING]
    interval = app[SETTINGS].sweep_interval_s

    async def every_interval() -> None:
        while not stopping.is_set():
            try:
                async with asyncio.timeout(SWEEP_TIMEOUT_S):
                    await sweeper.run_once()
            except (RedisError, OSError) as error:  # TimeoutError is an OSError
                app[METRICS].sweeps.labels("error").inc()
                log.warning("sweep failed", extra={"error": type(error).__name__})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), interval)

    task = asyncio.create_task(every_interval(), name="sweeper")
    app[TASKS].append(task)
    try:
        yield
    finally:
        stopping.set()
        await _finish(task)


async def _sender(app: web.Application) -> AsyncIterator[None]:
    stopping = app[STOPPING]
    async with aiohttp.ClientSession() as session:
        credentials = Credentials(
            app[REDIS], {channel.id: channel.access_token for channel in app[CHANNELS]}
        )
        sender = Sender(
            app[REDIS],
            GraphClient(session, app[SETTINGS].graph_url),
            credentials,
            app[METRICS],
            consumer=f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}",
        )
        app[SENDER] = sender
        task = asyncio.create_task(run_sender(sender, stopping), name="sender")
        app[TASKS].append(task)
        try:
            yield
        finally:
            stopping.set()
            await _finish(task)


async def _finish(task: "asyncio.Task[None]") -> None:
    """Wait out the grace period, then cancel; a crash of the task is reported."""
    done, _ = await asyncio.wait([task], timeout=STOP_GRACE_S)
    if not done:
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def healthz(request: web.Request) -> web.Response:
    tasks = request.app[TASKS]
    dead = [task.get_name() for task in tasks if task.done()]
    if dead:
        return web.json_response({"status": "failed", "stopped": dead}, status=503)
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
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
    await _refresh_queue_sizes(request.app)
    return metrics_response(request.app[REGISTRY])


async def _refresh_queue_sizes(app: web.Application) -> None:
    """Queue sizes are read from Redis at scrape time: one ZCARD per channel and queue."""
    client = app[REDIS]
    try:
        sizes = await reader.queue_sizes_of(client, await channel_ids(client))
    except (RedisError, OSError):
        return  # the last values stay; redis trouble shows in readyz and retries
    gauge = app[METRICS].queue_size
    for channel, queues in sizes.items():
        for queue, size in queues.items():
            gauge.labels(channel, queue).set(size)
