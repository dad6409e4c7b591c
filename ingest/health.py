"""/healthz (the process is alive), /readyz (Kafka and Redis answer), /metrics."""

import asyncio

from aiohttp import web

from ingest.appkeys import PRODUCER, REDIS, REGISTRY
from metrics.exposition import metrics_response
from parley.redis import redis_reachable

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    kafka, redis_ok = await asyncio.gather(
        request.app[PRODUCER].reachable(), redis_reachable(request.app[REDIS])
    )
    status = 200 if kafka and redis_ok else 503
    return web.json_response({"kafka": kafka, "redis": redis_ok}, status=status)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    return metrics_response(request.app[REGISTRY])
