"""Customers' files (issue 13, must show 5), each figure against a baseline in the same run:

1. The receiver: webhooks holding 100 media messages each, against webhooks holding 100
   text messages each (`python -m ingest`, 50 connections).
2. The engine's apply rate: media messages (each also queues its fetch) against text
   messages (Kafka to Redis, offsets committed).
3. Fetching: `python -m engine` as shipped, downloading from a Graph API whose every
   file takes FETCH_DELAY_S: how many downloads run at once, how many jobs one engine
   holds (bounded), and the rate against the same engine fetching one at a time.
"""

import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

import aiohttp
from aiohttp import web
from aiokafka import AIOKafkaProducer

from devstack.samples import webhook
from devstack.servers import free_port, wait_for_port
from devstack.signing import sign
from parley.events import CustomerMessage, Event, Identity, Media, encode
from parley.kafka import ensure_topics
from parley.redis import connect_redis
from parley.runtime import tune_gc
from tests.bench.api_bench import channels_file, stop, wait_ready
from tests.bench.common import p99, report, servers
from tests.bench.engine_bench import drain
from tests.bench.ingest_bench import ROOT, load
from tests.conftest import EU

PER_WEBHOOK = 100
APPLY_EVENTS = 30_000
FETCH_DELAY_S = 0.25
FILES, SERIAL_FILES = 800, 24  # more files than one engine holds (500)
FILE = b"\x89PNG\r\n\x1a\n" + bytes(4096)


def webhooks(count: int, media: bool) -> list[tuple[bytes, str]]:
    """Signed webhooks of PER_WEBHOOK messages each, images or texts."""
    now = int(time.time())
    calls = []
    for n in range(count):
        messages, contacts = [], []
        for m in range(PER_WEBHOOK):
            wa_id = f"1555{(n * PER_WEBHOOK + m) % 20_000:07d}"
            message: dict[str, object] = {
                "from": wa_id, "id": f"wamid.m.{n}.{m}", "timestamp": str(now),
            }  # fmt: skip
            if media:
                message |= {"type": "image", "image": {
                    "id": f"{n}{m:03d}", "mime_type": "image/jpeg",
                    "sha256": "x" * 44, "caption": "the broken part",
                }}  # fmt: skip
            else:
                message |= {"type": "text", "text": {"body": "the broken part"}}
            messages.append(message)
            contacts.append({"profile": {"name": "Sheena"}, "wa_id": wa_id})
        body = json.dumps(webhook(EU.id, {"contacts": contacts, "messages": messages})).encode()
        calls.append((body, sign(body, EU.app_secret)))
    return calls


async def receiver(bootstrap: str, redis_url: str, tmp: str) -> list[tuple[str, str]]:
    text_calls, media_calls = webhooks(200, media=False), webhooks(200, media=True)
    port = free_port()
    env = {
        **os.environ,
        "PARLEY_KAFKA_BOOTSTRAP": bootstrap,
        "PARLEY_REDIS_URL": redis_url,
        "PARLEY_HTTP_PORT": str(port),
        "PARLEY_HTTP_WORKERS": "1",  # as its figures were taken (the README)
        "PARLEY_CHANNELS_FILE": str(channels_file(tmp)),
        "PARLEY_LOG_LEVEL": "WARNING",
        "PARLEY_MEDIA_URL": f"file://{tmp}/media",
    }
    process = subprocess.Popen([sys.executable, "-m", "ingest"], cwd=ROOT, env=env)
    try:
        wait_for_port(port, process, 30)
        url = f"http://127.0.0.1:{port}/webhooks/whatsapp"
        text_rate, text_latencies, text_failures = await load(url, text_calls)
        media_rate, media_latencies, media_failures = await load(url, media_calls)
    finally:
        stop(process)
    assert text_failures == 0 and media_failures == 0, (text_failures, media_failures)
    text_p99, media_p99 = p99(text_latencies) * 1000, p99(media_latencies) * 1000
    return [
        (f"{PER_WEBHOOK} texts a webhook (baseline)", f"{text_rate:,.0f} req/s  p99 {text_p99:.1f} ms"),
        (f"{PER_WEBHOOK} images a webhook", f"{media_rate:,.0f} req/s  p99 {media_p99:.1f} ms"),
        ("ratio", f"rate {media_rate / text_rate:.2f}, p99 {media_p99 / text_p99:.2f}   "
                  "(target: rate >= 0.9, p99 <= 1.1x)"),
    ]  # fmt: skip


def apply_events(count: int, media: bool) -> list[Event]:
    t0 = time.time() - 3600
    events = []
    for n in range(count):
        wamid = f"wamid.a.{uuid.uuid4().hex}"
        payload = CustomerMessage(wamid=wamid, type="text", text="the broken part")
        if media:
            file = Media(id=f"m{n}", mime_type="image/jpeg")
            payload = CustomerMessage(wamid=wamid, type="image", text="caption", media=file)
        events.append(
            Event(
                id=wamid,
                channel=EU.id,
                identity=Identity(phone=f"1555{n % 5000:07d}"),
                occurred_at=t0 + n * 0.01,
                received_at=t0 + n * 0.01,
                payload=payload,
            )
        )
    return events


async def engine_apply(bootstrap: str, redis_url: str) -> list[tuple[str, str]]:
    from tests.kafka_tools import produce

    rates = {}
    for media in (False, True):
        topic = f"bench-media-apply-{media}"
        await ensure_topics(bootstrap, {topic: 8})
        await produce(bootstrap, topic, apply_events(APPLY_EVENTS, media))
        rates[media] = APPLY_EVENTS / await drain(bootstrap, redis_url, topic, APPLY_EVENTS, False)
    return [
        ("text messages (baseline)", f"{rates[False]:,.0f} events/s"),
        ("image messages (+ their fetch jobs)", f"{rates[True]:,.0f} events/s"),
        ("ratio", f"{rates[True] / rates[False]:.2f}   (target >= 0.9)"),
    ]


class SlowGraph:
    """The Graph API's media endpoints, each download taking FETCH_DELAY_S, counting
    how many run at once."""

    def __init__(self) -> None:
        self.running = self.peak = self.served = 0

    def app(self, base: str) -> web.Application:
        async def lookup(request: web.Request) -> web.Response:
            media_id = request.match_info["media_id"]
            return web.json_response(
                {"url": f"{base}/files/{media_id}", "mime_type": "image/png",
                 "sha256": "x", "file_size": len(FILE), "id": media_id}
            )  # fmt: skip

        async def download(request: web.Request) -> web.Response:
            self.running += 1
            self.peak = max(self.peak, self.running)
            try:
                await asyncio.sleep(FETCH_DELAY_S)
            finally:
                self.running -= 1
            self.served += 1
            return web.Response(body=FILE, content_type="image/png")

        app = web.Application()
        app.router.add_get("/v21.0/files/{media_id}", download)
        app.router.add_get("/v21.0/{media_id}", lookup)
        return app


async def produce_files(bootstrap: str, topic: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        events = apply_events(count, media=True)
        for event in events:
            await producer.send(topic, key=event.key.encode(), value=encode(event))
        await producer.flush()
    finally:
        await producer.stop()


def in_hand(metrics_url: str) -> float:
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        text = response.read().decode()
    found = re.search(r"^parley_media_fetches_in_hand ([0-9.e+]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def fetch_run(
    bootstrap: str, redis_url: str, tmp: str, files: int, concurrency: int
) -> tuple[float, int, float]:
    """(files a second, peak downloads at once, most jobs held) for one engine."""
    client = connect_redis(redis_url)
    await client.flushdb()  # the apply run's fetch jobs are not this run's
    await client.aclose()
    graph = SlowGraph()
    graph_port, metrics_port = free_port(), free_port()
    runner = web.AppRunner(graph.app(f"http://127.0.0.1:{graph_port}/v21.0"))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", graph_port).start()
    topic = f"bench-media-fetch-{uuid.uuid4().hex[:6]}"
    await ensure_topics(bootstrap, {topic: 4})
    env = {
        **os.environ,
        "PARLEY_KAFKA_BOOTSTRAP": bootstrap,
        "PARLEY_REDIS_URL": redis_url,
        "PARLEY_TOPIC": topic,
        "PARLEY_CONSUMER_GROUP": topic,
        "PARLEY_METRICS_PORT": str(metrics_port),
        "PARLEY_CHANNELS_FILE": str(channels_file(tmp)),
        "PARLEY_GRAPH_URL": f"http://127.0.0.1:{graph_port}/v21.0",
        "PARLEY_MEDIA_URL": f"file://{tmp}/media-{concurrency}",
        "PARLEY_MEDIA_FETCHES": str(concurrency),
        "PARLEY_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen([sys.executable, "-m", "engine"], cwd=ROOT, env=env)
    held = 0.0
    try:
        wait_for_port(metrics_port, process, 30)
        async with aiohttp.ClientSession() as session:
            await wait_ready(session, f"http://127.0.0.1:{metrics_port}/readyz")
        started = time.perf_counter()
        await produce_files(bootstrap, topic, files)
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        deadline = started + 120
        while graph.served < files and time.perf_counter() < deadline:
            held = max(held, await asyncio.to_thread(in_hand, metrics_url))
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
    finally:
        stop(process)
        await runner.cleanup()
    assert graph.served >= files, f"{graph.served} of {files} files fetched"
    return files / elapsed, graph.peak, held


async def fetching(bootstrap: str, redis_url: str, tmp: str) -> list[tuple[str, str]]:
    serial_rate, serial_peak, _ = await fetch_run(bootstrap, redis_url, tmp, SERIAL_FILES, 1)
    rate, peak, held = await fetch_run(bootstrap, redis_url, tmp, FILES, 32)
    verdict = "met" if peak >= 20 else "MISSED"
    return [
        ("one download at a time (baseline)", f"{serial_rate:,.1f} files/s  peak {serial_peak}"),
        ("as shipped (PARLEY_MEDIA_FETCHES=32)",
         f"{rate:,.1f} files/s  peak {peak} at once  most held {held:.0f} (bound 500)"),
        ("ratio", f"{rate / serial_rate:.1f}x   (target: >= 20 at once: {verdict})"),
    ]  # fmt: skip


async def main() -> None:
    tune_gc()
    with servers() as (bootstrap, redis_url, _), tempfile.TemporaryDirectory() as tmp:
        rows = await receiver(bootstrap, redis_url, tmp)
        report(f"receiver: webhooks of {PER_WEBHOOK} messages, 50 connections", rows)
        rows = await engine_apply(bootstrap, redis_url)
        report("engine apply rate with files (one process, Kafka -> Redis)", rows)
        rows = await fetching(bootstrap, redis_url, tmp)
        report(f"media fetches, each download {FETCH_DELAY_S * 1000:.0f} ms", rows)


if __name__ == "__main__":
    asyncio.run(main())
