"""Building the Redis client: one server (`redis://`) or a Redis Cluster (`redis+cluster://`)."""

from typing import cast

from redis.asyncio import Redis, RedisCluster

CLUSTER_SCHEME = "redis+cluster://"
# RedisCluster speaks the same commands, pipelines and scripts as Redis for keys that
# share a hash tag (all of ours do), so code is written against one type.
RedisClient = Redis


def connect_redis(url: str) -> RedisClient:
    """A client for `url`; connections are made lazily, on first use."""
    if url.startswith(CLUSTER_SCHEME):
        return cast(Redis, RedisCluster.from_url("redis://" + url[len(CLUSTER_SCHEME) :]))
    return Redis.from_url(url)


def as_text(value: bytes | str) -> str:
    """A reply value as text (the client answers bytes; its types also allow str)."""
    return value.decode() if isinstance(value, bytes) else value
