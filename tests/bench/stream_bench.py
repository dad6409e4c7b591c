"""The live stream at 1,000 clients: from an event entering Kafka to every client having
it, through `python -m ingest` and `python -m engine` as shipped.

The baseline, in the same run, is one client: what the path itself costs (the engine's
fetch and apply, the feed, the hub, one SSE write). The clients run in this process on
one event loop, so their own parsing is part of what is measured; the figure is an
upper bound on what the receiver adds.
"""

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid

import aiohttp
import msgspec
from aiokafka import AIOKafkaProducer

from devstack.servers import free_port, wait_for_port
from parley.events import CustomerMessage, Event, Identity, encode
from tests.bench.api_bench import ADMIN_TOKEN, ROOT, channels_file, stop, wait_ready
from tests.bench.common import p99, report, servers
from tests.conftest import EU

CLIENTS = 1000
EVENTS = 100
PACE_S = 0.04  # 25 events a second: a busy channel
TOPIC = "parley.bench.stream"
TARGET_MS = 250.0


class Sample(msgspec.Struct):
    seq: int
    ms: float


async def viewer_token(session: aiohttp.ClientSession, base: str) -> str:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with session.post(
        f"{base}/v1/users", json={"id": "watcher", "name": "W"}, headers=admin
    ) as r:
        assert r.status == 201, await r.text()
        token = str((await r.json())["token"])
    grant = f"{base}/v1/channels/{EU.id}/access/users/watcher"
    async with session.put(grant, json={"role": "viewer"}, headers=admin) as r:
        assert r.status == 200, await r.text()
    return token


class Client:
    """One stream: when each bench event's change arrived (monotonic seconds)."""

    def __init__(self) -> None:
        self.arrived: dict[int, float] = {}
        self.ready = asyncio.Event()

    async def run(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with session.get(
            url, headers=headers, timeout=aiohttp.ClientTimeout(total=None)
        ) as r:
            assert r.status == 200, await r.text()
            event = ""
            async for raw in r.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                    if event == "ready":
                        self.ready.set()
                elif line.startswith("data: ") and event == "change":
                    preview = msgspec.json.decode(line[6:]).get("preview") or ""
                    if preview.startswith("bench "):
                        self.arrived[int(preview[6:])] = time.monotonic()


async def produce(bootstrap: str, first: int, count: int) -> dict[int, float]:
    """Bench events, paced; when each entered Kafka (acknowledged)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    entered: dict[int, float] = {}
    try:
        for seq in range(first, first + count):
            now = time.time()
            event = Event(
                id=f"wamid.bench.{uuid.uuid4().hex}",
                channel=EU.id,
                identity=Identity(phone=f"1555{seq % 50:07d}"),
                occurred_at=now,
                received_at=now,
                payload=CustomerMessage(wamid=f"wamid.{seq}", type="text", text=f"bench {seq}"),
            )
            await producer.send_and_wait(TOPIC, key=event.key.encode(), value=encode(event))
            entered[seq] = time.monotonic()
            await asyncio.sleep(PACE_S)
    finally:
        await producer.stop()
    return entered


async def measure(
    bootstrap: str, url: str, token: str, clients: int, first: int
) -> tuple[list[float], int]:
    """Latencies (ms) of every (client, event), and how many deliveries were missed."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        readers = [Client() for _ in range(clients)]
        tasks = [asyncio.create_task(c.run(session, url, token)) for c in readers]
        await asyncio.wait_for(asyncio.gather(*(c.ready.wait() for c in readers)), 120)
        entered = await produce(bootstrap, first, EVENTS)
        await asyncio.sleep(2.0)  # the last ones' way through
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    latencies, missed = [], 0
    for reader in readers:
        for seq, at in entered.items():
            if seq in reader.arrived:
                latencies.append((reader.arrived[seq] - at) * 1000)
            else:
                missed += 1
    return latencies, missed


async def main() -> None:
    with servers() as (bootstrap, redis_url, _), tempfile.TemporaryDirectory() as tmp:
        port, engine_port = free_port(), free_port()
        common = {
            **os.environ,
            "PARLEY_KAFKA_BOOTSTRAP": bootstrap,
            "PARLEY_REDIS_URL": redis_url,
            "PARLEY_TOPIC": TOPIC,
            "PARLEY_CHANNELS_FILE": str(channels_file(tmp)),
            "PARLEY_LOG_LEVEL": "WARNING",
        }
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "ingest"],
                cwd=ROOT,
                env={
                    **common,
                    "PARLEY_HTTP_PORT": str(port),
                    "PARLEY_HTTP_WORKERS": "1",  # as its figures were taken (the README)
                    "PARLEY_ADMIN_TOKEN": ADMIN_TOKEN,
                },
            ),
            subprocess.Popen(
                [sys.executable, "-m", "engine"],
                cwd=ROOT,
                env={**common, "PARLEY_METRICS_PORT": str(engine_port)},
            ),
        ]
        try:
            wait_for_port(port, processes[0], 30)
            wait_for_port(engine_port, processes[1], 30)
            base = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as session:
                await wait_ready(session, f"http://127.0.0.1:{engine_port}/readyz")
                token = await viewer_token(session, base)
            url = f"{base}/v1/stream?channels={EU.id}"
            one, one_missed = await measure(bootstrap, url, token, 1, 0)
            many, many_missed = await measure(bootstrap, url, token, CLIENTS, EVENTS)
        finally:
            for process in processes:
                stop(process)

    def figures(latencies: list[float], missed: int) -> str:
        latencies.sort()
        p50 = latencies[len(latencies) // 2]
        return f"p50 {p50:.0f} ms  p99 {p99(latencies):.0f} ms  missed {missed}"

    verdict = "met" if many and p99(many) <= TARGET_MS and not many_missed else "MISSED"
    report(
        f"live stream: {EVENTS} changes at {1 / PACE_S:.0f}/s, Kafka to every client",
        [
            ("1 client (baseline)", figures(one, one_missed)),
            (f"{CLIENTS:,} clients", figures(many, many_missed)),
            (
                "ratio of p99s",
                f"{p99(many) / p99(one):.1f}x   (target p99 <= {TARGET_MS:.0f} ms: {verdict})",
            ),
        ],
    )


if __name__ == "__main__":
    asyncio.run(main())
