"""Shared pieces of the benchmarks: local servers and a figure printer."""

import statistics
from collections.abc import Iterator
from contextlib import contextmanager

from devstack.servers import Server, start_kafka, start_redis


@contextmanager
def servers() -> Iterator[tuple[str, str, Server]]:
    """(kafka bootstrap, redis url, the redis server) on free loopback ports."""
    kafka = start_kafka()
    redis = start_redis()
    try:
        yield f"127.0.0.1:{kafka.port}", f"redis://127.0.0.1:{redis.port}/0", redis
    finally:
        kafka.stop()
        redis.stop()


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98] if len(samples) > 1 else samples[0]


def report(title: str, rows: list[tuple[str, str]]) -> None:
    print(f"\n== {title}")
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name.ljust(width)}  {value}")
