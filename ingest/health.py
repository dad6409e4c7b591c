"""/healthz (the process is alive), /readyz (Kafka and Redis answer), /metrics."""

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from ingest.appkeys import PRODUCER, REDIS, REGISTRY

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    kafka, redis_ok = await asyncio.gather(
        request.app[PRODUCER].reachable(), redis_reachable(request)
    )
    status = 200 if kafka and redis_ok else 503
    return web.json_response({"kafka": kafka, "redis": redis_ok}, status=status)


async def redis_reachable(request: web.Request) -> bool:
    try:
        async with asyncio.timeout(2):
            return bool(await request.app[REDIS].ping())
    except (TimeoutError, RedisError, OSError):
        return False


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
