"""Building the Redis client: one server (`redis://`) or a Redis Cluster (`redis+cluster://`)."""

import asyncio
from typing import Any, cast

import hiredis
from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.connection import Connection
from redis.exceptions import RedisError

CLUSTER_SCHEME = "redis+cluster://"
# RedisCluster speaks the same commands, pipelines and scripts as Redis for keys that
# share a hash tag (all of ours do), so code is written against one type.
RedisClient = Redis
MAX_CONNECTIONS = 128
POOL_WAIT_S = 20.0


class HiredisPackingConnection(Connection):
    """Packs commands with hiredis's C packer. redis-py's async connections pack in
    Python, which was the engine's largest cost (most of a script call's time)."""

    def pack_command(self, *args: Any) -> list[bytes]:
        command = args[0]
        if isinstance(command, str) and " " in command:
            # "SCRIPT LOAD" and the like travel as separate words.
            args = (*command.split(), *args[1:])
        return [hiredis.pack_command(args)]


def connect_redis(url: str, *, read_timeout_s: float | None = 5.0) -> RedisClient:
    """A client for `url`; connections are made lazily, on first use.

    `read_timeout_s` bounds each reply. The engine passes None and bounds whole batches
    instead: a timer per reply costs more than the reply in a 5,000-call pipeline.
    """
    options: dict[str, Any] = {
        "connection_class": HiredisPackingConnection,
        "socket_timeout": read_timeout_s,
        "socket_connect_timeout": 5.0,
    }
    if url.startswith(CLUSTER_SCHEME):
        cluster = RedisCluster.from_url("redis://" + url[len(CLUSTER_SCHEME) :], **options)
        return cast(Redis, cluster)
    # A caller beyond MAX_CONNECTIONS waits for a free connection instead of failing:
    # redis-py's default pool raises once 100 are in use, which a burst of API
    # requests or of replies being sent reaches.
    pool = BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=POOL_WAIT_S, **options
    )
    client = Redis(connection_pool=pool)
    client.auto_close_connection_pool = True  # aclose() closes the pool too
    return client


def is_cluster(client: RedisClient) -> bool:
    """Whether `client` talks to a Redis Cluster (where keys of different slots cannot
    share one command)."""
    return isinstance(client, RedisCluster)


def as_text(value: bytes | str) -> str:
    """A reply value as text (the client answers bytes; its types also allow str)."""
    return value.decode() if isinstance(value, bytes) else value


async def redis_reachable(client: RedisClient, timeout_s: float = 2.0) -> bool:
    """Whether Redis answered a PING within `timeout_s` (for /readyz)."""
    try:
        async with asyncio.timeout(timeout_s):
            return bool(await client.ping())
    except (TimeoutError, RedisError, OSError):
        return False
