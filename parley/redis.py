"""Building the Redis client: one server (`redis://`) or a Redis Cluster (`redis+cluster://`)."""

from redis.asyncio import Redis, RedisCluster

CLUSTER_SCHEME = "redis+cluster://"
RedisClient = Redis | RedisCluster


def connect_redis(url: str) -> RedisClient:
    """A client for `url`; connections are made lazily, on first use."""
    if url.startswith(CLUSTER_SCHEME):
        return RedisCluster.from_url("redis://" + url[len(CLUSTER_SCHEME) :])
    return Redis.from_url(url)
