"""Running `python -m engine` as a real process, and comparing Redis states."""

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from redis.asyncio import Redis

from devstack.servers import free_port
from parley.redis import as_text

ROOT = Path(__file__).resolve().parents[1]
QUIET_CHANNELS = """
[[channels]]
id = "{eu}"
app_secret = "a"
verify_token = "v"
access_token = "t"
display_name = "EU"
auto_resolve_new = "off"
auto_resolve_pending = "off"

[[channels]]
id = "{us}"
app_secret = "b"
verify_token = "w"
access_token = "u"
display_name = "US"
auto_assign = false
auto_resolve_new = "off"
auto_resolve_pending = "off"
"""


def start_engine(
    bootstrap: str,
    redis_url: str,
    topic: str,
    group: str,
    channels_file: Path,
    metrics_port: int | None = None,
    stderr: int | None = None,
    **settings: str,
) -> subprocess.Popen[bytes]:
    """`python -m engine`; `settings` adds PARLEY_ variables (sweep_interval_s="0.1");
    `stderr` (subprocess.PIPE) to read its log, else it goes to the test's."""
    env = {
        **os.environ,
        "PARLEY_KAFKA_BOOTSTRAP": bootstrap,
        "PARLEY_REDIS_URL": redis_url,
        "PARLEY_TOPIC": topic,
        "PARLEY_TOPIC_PARTITIONS": "4",
        "PARLEY_CONSUMER_GROUP": group,
        "PARLEY_METRICS_PORT": str(metrics_port or free_port()),
        "PARLEY_CHANNELS_FILE": str(channels_file),
        "PARLEY_LOG_LEVEL": "WARNING",
        # Files in the test's own directory, never the checkout's.
        "PARLEY_MEDIA_URL": f"file://{channels_file.parent / 'media'}",
        # Nothing may call the real Graph API: replies fail fast on a closed port.
        "PARLEY_GRAPH_URL": CLOSED_GRAPH_URL,
        **{f"PARLEY_{name.upper()}": value for name, value in settings.items()},
    }
    return subprocess.Popen(
        [sys.executable, "-m", "engine"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )


async def committed_everything(bootstrap: str, topic: str, group: str) -> bool:
    """True when the group's committed offsets reached the end of every partition."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            if (await consumer.committed(tp) or 0) < ends[tp]:
                return False
        return bool(partitions)
    finally:
        await consumer.stop()


async def wait_committed(bootstrap: str, topic: str, group: str, timeout_s: float = 120) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await committed_everything(bootstrap, topic, group):
        assert asyncio.get_running_loop().time() < deadline, "the engine did not finish in time"
        await asyncio.sleep(0.2)


CLOSED_GRAPH_URL = "http://127.0.0.1:9/v21.0"


_TRANSIENT = re.compile(r"}:(result|wake):")
DUMP_PAGE = 1000


async def canonical_dump(client: Redis) -> dict[str, Any]:
    """Every key the engine's decisions write, with its type and content, order-
    independent, for equality checks. Left out: the sender's work (the outbox streams,
    whose entry ids are times, and the delivery records it writes as it gets to them),
    and what the API waits on (action results and wake-ups), which expire within
    minutes: a dump taken later would lack them.

    Read a page of keys at a time through pipelines: a round trip a page, not one or two
    a key (the fault tests' stream leaves some 65,000 keys: about 20 s a dump key by
    key)."""
    dump: dict[str, Any] = {}
    cursor = 0
    while True:
        cursor, raw_keys = await client.scan(cursor, count=DUMP_PAGE)
        typing = client.pipeline(transaction=False)
        for raw in raw_keys:
            typing.type(raw)
        kept = [
            (raw, as_text(kind))
            for raw, kind in zip(raw_keys, await typing.execute(), strict=True)
            if kind != b"stream" and not _TRANSIENT.search(as_text(raw))
        ]
        reading = client.pipeline(transaction=False)
        for raw, kind in kept:
            if kind == "hash":
                reading.hgetall(raw)
            elif kind == "zset":
                reading.zrange(raw, 0, -1, withscores=True)
            elif kind == "set":
                reading.smembers(raw)
            elif kind == "list":
                reading.lrange(raw, 0, -1)
            else:
                reading.get(raw)
        for (raw, kind), found in zip(kept, await reading.execute(), strict=True):
            value: Any = found
            if kind == "hash":
                value = sorted(i for i in found.items() if not i[0].startswith((b"w:", b"f:")))
                if not value:
                    continue  # only delivery records
            elif kind in ("zset", "set"):
                value = sorted(found)
            dump[as_text(raw)] = (kind, value)
        if cursor == 0:
            return dump


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
