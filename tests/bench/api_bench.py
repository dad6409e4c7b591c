"""The /v1 API under 50 concurrent clients: a queue page and a conversation read, and the
reply round trip (POST to the applied state, through Kafka and the engine), each against
/healthz on the same receiver under the same load, measured in the same run.

`python -m ingest` and `python -m engine` run as child processes, as in production: in
the benchmark's own event loop, 50 client workers and the servers' handlers would queue
behind each other and every latency would include the other side's work.
"""

import asyncio
import functools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from redis.asyncio import Redis

from devstack.servers import free_port, wait_for_port
from parley.events import Event
from parley.state import Queue
from store import _keys as keys
from tests import factory as f
from tests.bench.common import p99, report, servers
from tests.conftest import EU
from tests.engine_proc import wait_committed
from tests.kafka_tools import produce

ROOT = Path(__file__).resolve().parents[2]
CONCURRENCY = 50
DURATION_S = 5.0
WARMUP_S = 1.0
CONVERSATIONS = 10_000  # in the channel's "new" queue, the one the page lists
DETAILED = CONCURRENCY  # of them with tags, topics, notes and a few messages each
REPLY_POOL = 20_000  # fresh conversations for each reply run, one reply each
ENGINE_GROUP = "parley-engine"  # the default PARLEY_CONSUMER_GROUP
TOPIC = "bench.api.events"
ADMIN_TOKEN = "bench-admin-token-0123456789"
READ_P99_MS = 50.0
REPLY_P99_MS = 150.0
# The engine's consumer as it ships (fetch_max_wait_ms 25), then with aiokafka's default
# 500 for comparison. Tansu does not answer a fetch as soon as records arrive, as Kafka
# does: it sleeps up to half the fetch's max wait, which is part of every reply's round
# trip; hence the engine's short wait.
FETCH_WAITS_MS = (None, 500)

# One call of worker `index`, its `n`th: (HTTP status, a label counted per scenario).
Worker = Callable[[aiohttp.ClientSession, int, int], Awaitable[tuple[int, str]]]


class Figures:
    def __init__(
        self, latencies: list[float], statuses: Counter[int], labels: Counter[str]
    ) -> None:
        self.latencies = latencies
        self.statuses = statuses
        self.labels = labels
        self.rate = len(latencies) / DURATION_S

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies) * 1000

    @property
    def p99_ms(self) -> float:
        return p99(self.latencies) * 1000

    def line(self) -> str:
        return f"{self.rate:7,.0f} req/s  p50 {self.p50_ms:6.1f} ms  p99 {self.p99_ms:6.1f} ms"


async def load(session: aiohttp.ClientSession, one: Worker) -> Figures:
    """CONCURRENCY workers calling `one(session, worker, n)` back to back for DURATION_S
    after WARMUP_S; each call's latency and HTTP status."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    labels: Counter[str] = Counter()
    start = time.perf_counter()
    measure_from = start + WARMUP_S
    stop_at = measure_from + DURATION_S

    async def worker(index: int) -> None:
        n = 0
        while (began := time.perf_counter()) < stop_at:
            status, label = await one(session, index, n)
            n += 1
            done = time.perf_counter()
            if done >= measure_from:
                latencies.append(done - began)
                statuses[status] += 1
                labels[label] += 1

    await asyncio.gather(*(worker(index) for index in range(CONCURRENCY)))
    return Figures(latencies, statuses, labels)


def wa_id(n: int) -> str:
    return f"1555{n:07d}"


def seed_events(now: float) -> list[Event]:
    """CONVERSATIONS customers who wrote in the last hour; the first DETAILED of them
    also have a longer history (messages both ways, tags, a topic, notes)."""
    events = [f.customer(EU.id, wa_id(n), now - 3600 + n * 0.3) for n in range(CONVERSATIONS)]
    for n in range(DETAILED):
        at = now - 600 + n
        events += [
            f.customer(EU.id, wa_id(n), at),
            f.tag(EU.id, wa_id(n), "vip", at + 1),
            f.tag(EU.id, wa_id(n), "order", at + 2),
            f.tag(EU.id, wa_id(n), "returns", at + 3),
            f.topic(EU.id, wa_id(n), "shipping", at + 4),
            f.note(EU.id, wa_id(n), "Asked for the tracking number twice.", at + 5),
            f.note(EU.id, wa_id(n), "Parcel left the warehouse on Monday.", at + 6),
            f.reply(EU.id, wa_id(n), at + 7),  # assigns alice: open
            f.unassign(EU.id, wa_id(n), at + 8),  # back to new
            f.customer(EU.id, wa_id(n), at + 9),
        ]
    return events


def channels_file(directory: str) -> Path:
    path = Path(directory) / "channels.toml"
    path.write_text(
        f'[[channels]]\nid = "{EU.id}"\napp_secret = "{EU.app_secret}"\n'
        f'verify_token = "v"\naccess_token = "t"\ndisplay_name = "EU"\n'
        'auto_resolve_new = "off"\nauto_resolve_pending = "off"\n'
    )
    return path


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=15)


def run_engine(fetch_max_wait_ms: int) -> None:
    """`python -m engine` with the consumer's fetch_max_wait_ms changed, for this
    benchmark only (started as `python -c`, see start_engine)."""
    from aiokafka import AIOKafkaConsumer

    import engine.joining
    from engine.__main__ import main

    # The consumer is made (and its join begun) in engine/joining.py, before the app.
    engine.joining.AIOKafkaConsumer = functools.partial(  # type: ignore[attr-defined]
        AIOKafkaConsumer, fetch_max_wait_ms=fetch_max_wait_ms
    )
    sys.exit(main())


def start_engine(env: dict[str, str], fetch_max_wait_ms: int | None) -> subprocess.Popen[bytes]:
    if fetch_max_wait_ms is None:
        command = [sys.executable, "-m", "engine"]
    else:
        code = f"from tests.bench.api_bench import run_engine; run_engine({fetch_max_wait_ms})"
        command = [sys.executable, "-c", code]
    return subprocess.Popen(command, cwd=ROOT, env=env)


async def wait_ready(session: aiohttp.ClientSession, url: str, timeout_s: float = 60) -> None:
    """Until the engine owns partitions: an action produced before waits for the group."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            async with session.get(url) as response:
                if (await response.json()).get("partitions"):
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the engine did not join its group within {timeout_s:.0f} s")


async def agents(session: aiohttp.ClientSession, base: str) -> list[dict[str, str]]:
    """One contributor per client, created through the API as an admin would."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    headers = []
    for n in range(CONCURRENCY):
        user = f"agent{n:02d}"
        body = {"id": user, "name": f"Agent {n}"}
        async with session.post(f"{base}/v1/users", json=body, headers=admin) as response:
            assert response.status == 201, await response.text()
            token = (await response.json())["token"]
        grant = f"{base}/v1/channels/{EU.id}/access/users/{user}"
        async with session.put(grant, json={"role": "contributor"}, headers=admin) as response:
            assert response.status == 200, await response.text()
        headers.append({"Authorization": f"Bearer {token}"})
    return headers


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
        engine_env = {**common, "PARLEY_METRICS_PORT": str(engine_port)}
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
            start_engine(engine_env, FETCH_WAITS_MS[0]),
        ]

        def restart_engine(fetch_max_wait_ms: int | None) -> None:
            """Stop the engine (it leaves the group) and start one with the setting."""
            stop(processes.pop())
            processes.append(start_engine(engine_env, fetch_max_wait_ms))
            wait_for_port(engine_port, processes[-1], 30)

        redis = Redis.from_url(redis_url)
        try:
            wait_for_port(port, processes[0], 30)
            wait_for_port(engine_port, processes[1], 30)
            rows = await scenarios(
                f"http://127.0.0.1:{port}",
                f"http://127.0.0.1:{engine_port}/readyz",
                bootstrap,
                redis,
                restart_engine,
            )
        finally:
            await redis.aclose()
            for process in processes:
                stop(process)

    report(
        f"/v1 API: {CONCURRENCY} clients, {DURATION_S:.0f} s each, "
        f"{CONVERSATIONS:,} conversations in the queue",
        rows,
    )


async def scenarios(
    base: str,
    readyz: str,
    bootstrap: str,
    redis: Redis,
    restart_engine: Callable[[int | None], None],
) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        await wait_ready(session, readyz)
        await seed(bootstrap, seed_events(time.time()))
        assert await redis.zcard(keys.queue(EU.id, Queue.NEW)) == CONVERSATIONS
        people = await agents(session, base)
        cursors: list[str | None] = [None] * CONCURRENCY
        page = f"{base}/v1/channels/{EU.id}/conversations"

        async def healthz(session: aiohttp.ClientSession, worker: int, n: int) -> tuple[int, str]:
            async with session.get(f"{base}/healthz") as response:
                await response.read()
                return response.status, ""

        async def list_page(session: aiohttp.ClientSession, worker: int, n: int) -> tuple[int, str]:
            # Each client pages through the queue, back to the start after the last page.
            params = {"queue": "new", "limit": "50"}
            if cursor := cursors[worker]:
                params["cursor"] = cursor
            async with session.get(page, params=params, headers=people[worker]) as response:
                body = await response.json()
                if response.status == 200:
                    assert len(body["conversations"]) == 50 or not body["next_cursor"]
                    cursors[worker] = body["next_cursor"]
                return response.status, ""

        async def get_one(session: aiohttp.ClientSession, worker: int, n: int) -> tuple[int, str]:
            url = f"{base}/v1/conversations/{EU.id}/{wa_id(worker)}"
            async with session.get(url, headers=people[worker]) as response:
                body = await response.json()
                if response.status == 200:
                    assert len(body["tags"]) == 3 and len(body["messages"]) == 4, body
                return response.status, ""

        baseline = await load(session, healthz)
        listed = await load(session, list_page)
        got = await load(session, get_one)
        rows += [
            ("GET /healthz (the floor: aiohttp + client)", baseline.line()),
            (
                "GET queue page (new, limit 50)",
                f"{listed.line()}  {verdict(listed, READ_P99_MS)}  "
                f"{listed.rate / baseline.rate:.3f} of /healthz{others(listed, 200)}",
            ),
            (
                "GET conversation (3 tags, 2 notes, 4 msgs)",
                f"{got.line()}  {verdict(got, READ_P99_MS)}  "
                f"{got.rate / baseline.rate:.3f} of /healthz{others(got, 200)}",
            ),
        ]
        for run, fetch_wait in enumerate(FETCH_WAITS_MS):
            if run:
                restart_engine(fetch_wait)
                await wait_ready(session, readyz)
            replied = await replies(session, base, bootstrap, people, run)
            setting = "as shipped" if fetch_wait is None else f"fetch_max_wait_ms={fetch_wait}"
            rows += [
                (
                    f"POST reply, to applied state ({setting})",
                    f"{replied.line()}  {verdict(replied, REPLY_P99_MS)}",
                ),
                (
                    "  answers",
                    f"200: {replied.statuses[200]:,}  202: {replied.statuses[202]:,}"
                    f"{others(replied, 200, 202)}  (of the 200s, assigned the conversation: "
                    f"{replied.labels['assigned']:,})",
                ),
            ]
    rows.append(
        ("targets", f"reads p99 <= {READ_P99_MS:.0f} ms, reply p99 <= {REPLY_P99_MS:.0f} ms")
    )
    return rows


async def seed(bootstrap: str, events: list[Event]) -> None:
    """Produce, and wait until the engine applied and committed all of it."""
    await produce(bootstrap, TOPIC, events)
    await wait_committed(bootstrap, TOPIC, ENGINE_GROUP)


async def replies(
    session: aiohttp.ClientSession,
    base: str,
    bootstrap: str,
    people: list[dict[str, str]],
    run: int,
) -> Figures:
    """Every reply goes to a conversation nobody answered yet (new, unassigned), so each
    one assigns it to the agent (new -> open): REPLY_POOL fresh ones for this run."""
    first = (run + 1) * 1_000_000
    now = time.time()
    await seed(bootstrap, [f.customer(EU.id, wa_id(first + n), now) for n in range(REPLY_POOL)])
    fresh = iter(range(first, first + REPLY_POOL))
    body = {"text": "Your parcel is on its way."}

    async def reply(session: aiohttp.ClientSession, worker: int, n: int) -> tuple[int, str]:
        # Past the pool, the client's own conversation: assigned to them already.
        index = next(fresh, None)
        target = wa_id(worker if index is None else index)
        url = f"{base}/v1/conversations/{EU.id}/{target}/replies"
        async with session.post(url, json=body, headers=people[worker]) as response:
            answer: dict[str, Any] = await response.json()
            label = ""
            if response.status == 200:
                assert answer["outcome"] == "applied", answer
                conversation = answer["conversation"]
                assert conversation["assignee"] == f"agent{worker:02d}", conversation
                label = "" if index is None else "assigned"
            return response.status, label

    return await load(session, reply)


def verdict(figures: Figures, target_ms: float) -> str:
    return "PASS" if figures.p99_ms <= target_ms else "MISS"


def others(figures: Figures, *expected: int) -> str:
    rest = {status: count for status, count in figures.statuses.items() if status not in expected}
    return f"  other statuses: {rest}" if rest else ""


if __name__ == "__main__":
    asyncio.run(main())
