"""`python -m ingest` under 50 concurrent connections of signed webhooks, against a bare
aiohttp handler measured the same way in the same run."""

import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp

from devstack.samples import text_message
from devstack.servers import free_port, wait_for_port
from devstack.signing import sign
from tests.bench.common import p99, report, servers
from tests.conftest import EU

ROOT = Path(__file__).resolve().parents[2]
CONCURRENCY = 50
DURATION_S = 8.0
WARMUP_S = 1.0


def bodies(count: int) -> list[tuple[bytes, str]]:
    now = int(time.time())
    calls = []
    for n in range(count):
        body = json.dumps(
            text_message(
                EU.id, f"1555{n % 5000:07d}", f"wamid.bench.{n}", "Where is my order #4411?", now
            )
        ).encode()
        calls.append((body, sign(body, EU.app_secret)))
    return calls


async def load(url: str, calls: list[tuple[bytes, str]]) -> tuple[float, list[float], int]:
    """Requests/s, latencies and non-200 answers over DURATION_S after a warm-up."""
    latencies: list[float] = []
    failures = 0
    counter = 0
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        measure_from = start + WARMUP_S
        stop_at = measure_from + DURATION_S

        async def worker() -> None:
            nonlocal counter, failures
            while (now := time.perf_counter()) < stop_at:
                body, signature = calls[counter % len(calls)]
                counter += 1
                headers = {"X-Hub-Signature-256": signature, "Content-Type": "application/json"}
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    done = time.perf_counter()
                    if done >= measure_from:
                        latencies.append(done - now)
                        failures += response.status != 200

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return len(latencies) / DURATION_S, latencies, failures


def produce_quantiles(metrics_url: str) -> str:
    """How long Kafka took to acknowledge, from the receiver's own histogram."""
    with urllib.request.urlopen(metrics_url, timeout=10) as response:
        text = response.read().decode()
    buckets = {
        float(le): float(count)
        for le, count in re.findall(
            r'parley_produce_seconds_bucket\{le="([0-9.e+-]+)"\} ([0-9.e+]+)', text
        )
    }
    total = max(buckets.values())
    return "  ".join(
        f"<= {le * 1000:g} ms: {buckets[le] / total:.1%}" for le in (0.005, 0.01, 0.025)
    )


async def main() -> None:
    calls = bodies(20_000)
    with servers() as (bootstrap, redis_url, _), tempfile.TemporaryDirectory() as tmp:
        channels = Path(tmp) / "channels.toml"
        channels.write_text(
            f'[[channels]]\nid = "{EU.id}"\napp_secret = "{EU.app_secret}"\n'
            f'verify_token = "v"\naccess_token = "t"\ndisplay_name = "EU"\n'
        )
        port, bare_port = free_port(), free_port()
        env = {
            **os.environ,
            "PARLEY_KAFKA_BOOTSTRAP": bootstrap,
            "PARLEY_REDIS_URL": redis_url,
            "PARLEY_HTTP_PORT": str(port),
            "PARLEY_CHANNELS_FILE": str(channels),
            "PARLEY_LOG_LEVEL": "WARNING",
        }
        receiver = subprocess.Popen([sys.executable, "-m", "ingest"], cwd=ROOT, env=env)
        bare = subprocess.Popen(
            [sys.executable, "-m", "tests.bench.bare_server", str(bare_port)], cwd=ROOT
        )
        try:
            wait_for_port(port, receiver, 30)
            wait_for_port(bare_port, bare, 30)
            bare_rate, bare_latencies, bare_failures = await load(
                f"http://127.0.0.1:{bare_port}/webhooks/whatsapp", calls
            )
            rate, latencies, failures = await load(
                f"http://127.0.0.1:{port}/webhooks/whatsapp", calls
            )
            produce = produce_quantiles(f"http://127.0.0.1:{port}/metrics")
        finally:
            for process in (receiver, bare):
                process.terminate()
                process.wait(timeout=15)
    report(
        f"receiver: signed webhooks, {CONCURRENCY} connections, {DURATION_S:.0f} s each",
        [
            (
                "bare aiohttp (read body, 200)",
                f"{bare_rate:,.0f} req/s  p99 {p99(bare_latencies) * 1000:.1f} ms",
            ),
            (
                "python -m ingest (verify, parse, Kafka ack)",
                f"{rate:,.0f} req/s  p99 {p99(latencies) * 1000:.1f} ms  non-200: {failures}",
            ),
            ("ratio", f"{rate / bare_rate:.2f}   (target >= 0.5, p99 <= 15 ms)"),
            ("Kafka acknowledgement, share of calls", produce),
        ],
    )
    assert bare_failures == 0


if __name__ == "__main__":
    asyncio.run(main())
