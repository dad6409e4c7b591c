"""Outbound: the sender's sends/s to the Graph stand-in with the rate limit off, against
raw GraphClient calls at the same concurrency in the same run (no Redis); then two
channels sending together, each held to its own `send_rate`.

The stand-in runs as a child process (`python -m devstack.graph_standin`, on uvloop like
production): in the benchmark's own event loop its handlers would take turns with the
sender's, and every figure would include the stand-in's work. The sender runs in this
process against a real redis-server (devstack.servers), as `python -m engine` runs it: one
default aiohttp session, so at most 100 Graph calls in flight (the connector's limit).
"""

import asyncio
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from redis.exceptions import RedisError

from devstack.servers import free_port, start_redis, wait_for_port
from engine.sender import Credentials, Sender, burst, run_sender
from metrics import EngineMetrics
from parley.channels import Channel, ChannelSettings
from parley.graph import GraphClient, Recipient
from parley.redis import as_text, connect_redis
from parley.runtime import tune_gc
from store import _keys as keys
from store import delivery
from store.channels import save_channel_settings
from store.outbox import GROUP, Outgoing
from tests.bench.common import p99, report
from tests.conftest import EU, US

ROOT = Path(__file__).resolve().parents[2]
SENDS = 20_000
CONVERSATIONS = 5_000  # 4 replies each, interleaved: the sender keeps each one's order
# aiohttp's default connector allows 100 connections; engine/app.py gives the sender a
# default session, so 100 is the most Graph calls it can have in flight.
CONCURRENCY = 100
SHIPPED_REPLIES = 2_000  # the sender's max_in_hand: a full hand, one per conversation
RATES = {EU.id: 50, US.id: 200}  # send_rate of each channel in the rate-limit run
RATE_SECONDS = 5  # replies queued per channel: this many seconds' worth of its rate
REPLIES_PER_CONVERSATION = 2  # in the rate-limit run
_encoder = msgspec.json.Encoder()


class TimedGraph(GraphClient):
    """A GraphClient that keeps each send's latency, when each text went out (wall
    clock, as the stand-in's `at`), and how many calls are open at once."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        super().__init__(session, base_url)
        self.latencies: list[float] = []
        self.started: dict[str, float] = {}
        self.open = 0
        self.most_open = 0

    async def send(
        self,
        phone_number_id: str,
        token: str,
        to: Recipient,
        message: Mapping[str, Any],
        *,
        reply_to: str | None = None,
    ) -> str:
        self.started[message.get("text", {}).get("body", "")] = time.time()
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        began = time.perf_counter()
        try:
            return await super().send(phone_number_id, token, to, message, reply_to=reply_to)
        finally:
            self.latencies.append(time.perf_counter() - began)
            self.open -= 1


def wa_id(n: int) -> str:
    return f"1555{n:07d}"


def text(channel: str, n: int) -> str:
    """Each reply's own text, so the stand-in's record of it can be told apart."""
    return f"Your parcel is on its way. [{channel}-{n}]"


def channels_file(directory: str) -> Path:
    path = Path(directory) / "channels.toml"
    path.write_text(
        "".join(
            f'[[channels]]\nid = "{channel.id}"\napp_secret = "{channel.app_secret}"\n'
            f'verify_token = "v"\naccess_token = "{channel.access_token}"\n'
            f'display_name = "{channel.id}"\n'
            for channel in (EU, US)
        )
    )
    return path


@contextmanager
def standin() -> Iterator[str]:
    """A fresh stand-in (nothing in its `sent`) as a child process; its base URL."""
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = {
            **os.environ,
            "PARLEY_CHANNELS_FILE": str(channels_file(tmp)),
            "PARLEY_LOG_LEVEL": "WARNING",  # it logs every accepted message at INFO
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "devstack.graph_standin", "--port", str(port)],
            cwd=ROOT,
            env=env,
        )
        try:
            wait_for_port(port, process, 30)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=15)


def sender_client(url: str) -> Redis:
    """The engine's client, as `python -m engine` builds it."""
    return connect_redis(url, read_timeout_s=None)


async def fill_outbox(client: Redis, channel: str, count: int, conversations: int) -> None:
    """`count` replies over `conversations` conversations, round robin, XADDed as
    apply.lua does (field "m", the Outgoing as JSON)."""
    await save_channel_settings(
        client, channel, ChannelSettings(display_name=channel, send_rate=None)
    )
    for start in range(0, count, 5_000):
        pipe = client.pipeline(transaction=False)
        for n in range(start, min(start + 5_000, count)):
            outgoing = Outgoing(
                id=f"bench-{channel}-{n}",
                wa_id=wa_id(n % conversations),
                user="alice",
                text=text(channel, n),
            )
            pipe.xadd(keys.outbox(channel), {"m": _encoder.encode(outgoing)})
        await pipe.execute()


def new_sender(
    client: Redis, graph: GraphClient, channels: list[Channel], registry: CollectorRegistry
) -> Sender:
    return Sender(
        client,
        graph,
        Credentials(client, {channel.id: channel.access_token for channel in channels}),
        EngineMetrics(registry),
        consumer="bench",
    )


def finished(registry: CollectorRegistry, channels: list[Channel]) -> float:
    """Replies the sender recorded (accepted, failed or unconfirmed), all channels."""
    return sum(
        registry.get_sample_value(
            "parley_outbound_messages_total", {"channel": channel.id, "outcome": outcome}
        )
        or 0.0
        for channel in channels
        for outcome in (delivery.ACCEPTED, delivery.FAILED, delivery.UNCONFIRMED)
    )


async def pending(client: Redis, channel: str) -> int:
    answer = await client.xpending(keys.outbox(channel), GROUP)
    return int(answer["pending"])


async def as_shipped(redis_url: str, base: str) -> tuple[str, str]:
    """A full hand of replies, each its own conversation, on the engine's client: every
    one must be sent. (redis-py's default pool raised MaxConnectionsError past 100
    connections inside the chains, which left replies pending; connect_redis now waits
    for a connection, and the sender bounds its sends in flight.)"""
    client = connect_redis(redis_url, read_timeout_s=None)
    loop = asyncio.get_running_loop()
    died: Counter[str] = Counter()
    loop.set_exception_handler(
        lambda _, context: died.update([type(context.get("exception")).__name__])
    )
    try:
        await client.flushdb()
        await fill_outbox(client, EU.id, SHIPPED_REPLIES, SHIPPED_REPLIES)
        async with aiohttp.ClientSession() as session:
            graph = GraphClient(session, base + "/v21.0")
            sender = new_sender(client, graph, [EU], CollectorRegistry())
            taken, deadline = 0, time.monotonic() + 10
            while taken < SHIPPED_REPLIES and time.monotonic() < deadline:
                try:
                    taken += await sender.run_once()
                except RedisError as error:  # run_sender waits a second here
                    died.update([f"{type(error).__name__} in run_once"])
                    await asyncio.sleep(0.05)
            await sender.drain()
        left = await pending(client, EU.id)
        gc.collect()  # the dead chains' "exception was never retrieved", counted above
    finally:
        loop.set_exception_handler(None)
        await client.flushdb()
        await client.aclose()
    causes = ", ".join(f"{name} x{count:,}" for name, count in died.most_common()) or "none"
    return (
        f"a burst of {SHIPPED_REPLIES:,} conversations at once",
        f"{left:,} of {SHIPPED_REPLIES:,} replies left pending, never sent  "
        f"{'PASS' if left == 0 else 'MISS'}  (chains that died unobserved: {causes})",
    )


async def run_until_recorded(
    client: Redis, graph: GraphClient, channels: list[Channel], total: int
) -> tuple[float, float, list[int]]:
    """Runs a Sender (run_sender, as the engine does) until it recorded `total` replies;
    the seconds it took, this process's CPU seconds meanwhile, and the replies in hand
    sampled every 10 ms."""
    registry = CollectorRegistry()
    sender = new_sender(client, graph, channels, registry)
    stopping = asyncio.Event()
    in_hand: list[int] = []
    started, cpu = time.perf_counter(), time.process_time()
    task = asyncio.create_task(run_sender(sender, stopping, recover_every_s=3600))
    while finished(registry, channels) < total:
        if task.done():
            task.result()
            raise RuntimeError("the sender stopped early")
        in_hand.append(sender.in_hand)
        await asyncio.sleep(0.01)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    stopping.set()
    await task
    for channel in channels:
        left = await pending(client, channel.id), await client.xlen(keys.outbox(channel.id))
        assert left == (0, 0), (channel.id, left)
    return elapsed, cpu, in_hand


async def recorded_wamids(client: Redis, channel: str, conversations: int) -> int:
    """The `e:` fields holding a wamid, over the channel's conversations."""
    pipe = client.pipeline(transaction=False)
    for n in range(conversations):
        pipe.hgetall(keys.messages(channel, wa_id(n)))
    found = 0
    for fields in await pipe.execute():
        for name, value in fields.items():
            if as_text(name).startswith("w:") and as_text(value).startswith("wamid."):
                found += 1
    return found


async def raw_client(base: str) -> tuple[float, TimedGraph]:
    """The baseline: SENDS GraphClient.send_text calls from CONCURRENCY callers on a
    default session, no Redis; the seconds they took."""
    async with aiohttp.ClientSession() as session:
        graph = TimedGraph(session, base)
        numbers = iter(range(SENDS))

        async def caller() -> None:
            for n in numbers:
                await graph.send_text(
                    EU.id,
                    EU.access_token,
                    Recipient(phone=wa_id(n % CONVERSATIONS)),
                    text(EU.id, n),
                )

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(CONCURRENCY)))
        return time.perf_counter() - started, graph


async def throughput(redis_url: str) -> list[tuple[str, str]]:
    client = sender_client(redis_url)
    try:
        with standin() as base:
            shipped = await as_shipped(redis_url, base)
            await fill_outbox(client, EU.id, SENDS, CONVERSATIONS)
            async with aiohttp.ClientSession() as session:
                graph = TimedGraph(session, base + "/v21.0")
                elapsed, cpu, in_hand = await run_until_recorded(client, graph, [EU], SENDS)
            recorded = await recorded_wamids(client, EU.id, CONVERSATIONS)
            raw_elapsed, raw = await raw_client(base + "/v21.0")
    finally:
        await client.flushdb()
        await client.aclose()
    rate, raw_rate = SENDS / elapsed, SENDS / raw_elapsed
    verdict = "PASS" if recorded == SENDS else "MISS"
    return [
        (
            "sender, send_rate off",
            f"{rate:7,.0f} sends/s  ({SENDS:,} replies over {CONVERSATIONS:,} conversations"
            f" in {elapsed:.2f} s; {recorded:,} wamids recorded {verdict})",
        ),
        ("  Graph call latency", latency(graph)),
        (
            "  load",
            f"send calls open max {graph.most_open:,}; replies in hand median "
            f"{statistics.median(in_hand):,.0f}; this process {cpu / elapsed:.0%} of a core",
        ),
        (
            f"raw GraphClient.send_text, {CONCURRENCY} callers",
            f"{raw_rate:7,.0f} sends/s  ({SENDS:,} calls in {raw_elapsed:.2f} s, no Redis)",
        ),
        ("  Graph call latency", latency(raw)),
        ("ratio", f"{rate / raw_rate:.2f} of the raw client's rate"),
        shipped,
    ]


def latency(graph: TimedGraph) -> str:
    samples = graph.latencies
    return (
        f"p50 {statistics.median(samples) * 1000:5.1f} ms  p99 {p99(samples) * 1000:5.1f} ms"
        "  (send, waiting for a free connection included)"
    )


def busiest_second(times: list[float]) -> int:
    """The most sends in any 1 s window [t, t + 1) of `times` (sorted): the busiest
    window of a run always opens at a send."""
    most, end = 0, 0
    for first in range(len(times)):
        while end < len(times) and times[end] < times[first] + 1.0:
            end += 1
        most = max(most, end - first)
    return most


async def rate_limits(redis_url: str) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    client = sender_client(redis_url)
    try:
        with standin() as base:
            for channel, rate in RATES.items():
                count = rate * RATE_SECONDS
                await fill_outbox(client, channel, count, count // REPLIES_PER_CONVERSATION)
                await save_channel_settings(
                    client, channel, ChannelSettings(display_name=channel, send_rate=rate)
                )
            total = sum(rate * RATE_SECONDS for rate in RATES.values())
            async with aiohttp.ClientSession() as session:
                graph = TimedGraph(session, base + "/v21.0")
                await run_until_recorded(client, graph, [EU, US], total)
                async with session.get(f"{base}/_standin/sent") as answer:
                    sent: list[dict[str, Any]] = await answer.json()
    finally:
        await client.flushdb()
        await client.aclose()
    for channel, rate in RATES.items():
        mine = [message for message in sent if message["phone_number_id"] == channel]
        assert len(mine) == rate * RATE_SECONDS, (channel, len(mine))
        arrived = sorted(message["at"] for message in mine)
        # How long each send took to reach the stand-in after the limiter let it go.
        transit = [
            message["at"] - graph.started[message["body"]["text"]["body"]] for message in mine
        ]
        spread = max(transit) - min(transit)
        went = sorted(graph.started[message["body"]["text"]["body"]] for message in mine)
        # The sender's limiter is a leaky bucket of capacity burst(rate) (a tenth of a
        # second's worth) leaking `rate` a second: from any instant it lets through at
        # most burst + rate * seconds, so a 1 s window holds at most rate + burst. The stand-in's clock adds the
        # transit jitter: a 1 s window of its `at` spans up to 1 s + (slowest - fastest
        # transit) of the limiter's.
        allowance = int(burst(rate))
        bound = rate + allowance + rate * spread
        most, most_went = busiest_second(arrived), busiest_second(went)
        span = arrived[-1] - arrived[0]
        # After the first burst, the last of n sends goes (n - burst) / rate s later.
        expected = len(mine) * rate / (len(mine) - allowance)
        verdict = "PASS" if most <= bound else "MISS"
        rows += [
            (
                f"channel {channel}, send_rate {rate}/s",
                f"{len(mine):,} sends in {span:.2f} s: {len(mine) / span:6.1f}/s"
                f" (at the rate after a first burst of {allowance}: {expected:.1f}/s)",
            ),
            (
                "  busiest 1 s at the stand-in",
                f"{most} sends, bound {bound:.0f} = {rate} + burst {allowance} + transit jitter"
                f" {spread * 1000:.0f} ms x rate  {verdict}",
            ),
            (
                "  busiest 1 s as the sender sent",
                f"{most_went} sends (bound {rate + allowance} = {rate} + burst {allowance})"
                f"  {'PASS' if most_went <= rate + allowance else 'MISS'}",
            ),
        ]
    return rows


async def main() -> None:
    tune_gc()  # as `python -m engine` does
    server = start_redis()
    redis_url = f"redis://127.0.0.1:{server.port}/0"
    try:
        sends = await throughput(redis_url)
        limits = await rate_limits(redis_url)
    finally:
        server.stop()
    report(
        f"outbound sends to the Graph stand-in (one sender, the stand-in a child process,"
        f" {CONCURRENCY} connections)",
        sends,
    )
    report(
        f"per-channel send_rate, {len(RATES)} channels sending together"
        f" ({RATE_SECONDS} s worth each)",
        limits,
    )


if __name__ == "__main__":
    asyncio.run(main())
