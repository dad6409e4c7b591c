"""PARLEY_HTTP_WORKERS: `python -m ingest` as several processes on one port, against the
session's Kafka and Redis. Both workers answer and /metrics adds them up; a channel
registered through one worker is taken by every worker; SIGTERM or SIGINT stops them all
gracefully; a worker that dies takes the receiver down with a non-zero status (for the
orchestrator to restart it); one worker is today's single process."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from pytest_aiohttp import AiohttpServer
from redis.asyncio import Redis

from devstack.graph_standin import StandIn
from devstack.graph_standin import create_app as create_standin
from devstack.samples import text_message
from devstack.servers import free_port
from devstack.signing import sign
from ingest.app import REGISTERED_REFRESH_S
from parley.runtime import KILL_WORKERS_AFTER_S
from parley.settings import Settings, SettingsError, available_cores, settings_from_env
from tests.conftest import EU
from tests.engine_proc import CLOSED_GRAPH_URL

ROOT = Path(__file__).resolve().parents[1]
ADMIN_TOKEN = "workers-admin-token-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CHANNELS = (
    f'[[channels]]\nid = "{EU.id}"\napp_secret = "{EU.app_secret}"\n'
    f'verify_token = "{EU.verify_token}"\naccess_token = "{EU.access_token}"\n'
    'display_name = "Support EU"\n'
)
NEW = "106540352242999"
NEW_SECRET = "nl-app-secret-0123456789"
# Under load a worker may take seconds to start; the receiver must answer before this.
START_S = 60.0


class Receiver(NamedTuple):
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def lines(self) -> list[dict[str, Any]]:
        """Its JSON log lines so far (each line must be JSON)."""
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    async def workers(self) -> list[int]:
        """The pids the supervisor logged when it started its workers."""
        deadline = time.monotonic() + START_S
        while not (
            found := [line for line in self.lines() if line["message"] == "workers started"]
        ):
            assert time.monotonic() < deadline, "no workers started"
            await asyncio.sleep(0.05)
        pids: list[int] = found[0]["pids"]
        return pids


@asynccontextmanager
async def receiver(
    settings: Settings, tmp_path: Path, workers: int, graph_url: str = CLOSED_GRAPH_URL
) -> AsyncIterator[Receiver]:
    """`python -m ingest` with `workers` workers, once it is ready; stopped (SIGTERM, else
    killed) afterwards if the test did not stop it."""
    channels = tmp_path / "channels.toml"
    channels.write_text(CHANNELS)
    port = free_port()
    log = tmp_path / f"ingest-{port}.log"
    env = {
        **os.environ,
        "PARLEY_KAFKA_BOOTSTRAP": settings.kafka_bootstrap or "",
        "PARLEY_REDIS_URL": settings.redis_url or "",
        "PARLEY_TOPIC": settings.topic,
        "PARLEY_HTTP_PORT": str(port),
        "PARLEY_HTTP_WORKERS": str(workers),
        "PARLEY_CHANNELS_FILE": str(channels),
        "PARLEY_MEDIA_URL": settings.media_url,
        "PARLEY_ADMIN_TOKEN": ADMIN_TOKEN,
        "PARLEY_GRAPH_URL": graph_url,
    }
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "ingest"], cwd=ROOT, env=env, stderr=stderr
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_S
        async with aiohttp.ClientSession() as session:
            while True:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the receiver did not get ready"
                try:
                    async with session.get(f"{url}/readyz") as ready:
                        if ready.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.05)
        yield Receiver(process, url, log)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                await asyncio.to_thread(process.wait, 15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def fresh_connections() -> aiohttp.ClientSession:
    # A new connection per call, so that the kernel picks a worker for each.
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))


async def post_webhook(
    session: aiohttp.ClientSession, url: str, channel: str, secret: str
) -> tuple[int, Any]:
    wamid = f"wamid.workers.{uuid.uuid4().hex}"
    body = json.dumps(text_message(channel, "16315551181", wamid, "hi", 1_790_000_000)).encode()
    headers = {"X-Hub-Signature-256": sign(body, secret), "Content-Type": "application/json"}
    async with session.post(f"{url}/webhooks/whatsapp", data=body, headers=headers) as response:
        return response.status, await response.json()


def ok_by_worker(pids: list[int]) -> dict[int, float]:
    """Webhook calls each worker answered 200, from its own metrics file (prometheus_client's
    multiprocess mode keeps one a process, in the directory the supervisor made)."""
    environ = Path(f"/proc/{pids[0]}/environ").read_bytes().split(b"\0")
    [directory] = [
        v.split(b"=", 1)[1] for v in environ if v.startswith(b"PROMETHEUS_MULTIPROC_DIR=")
    ]
    counts = {}
    for pid in pids:
        path = Path(directory.decode()) / f"counter_{pid}.db"
        merged = MultiProcessCollector.merge([str(path)]) if path.exists() else []  # type: ignore[no-untyped-call]
        counts[pid] = sum(
            sample.value
            for metric in merged
            for sample in metric.samples
            if sample.name == "parley_webhook_requests_total"
            and sample.labels == {"method": "POST", "outcome": "ok"}
        )
    return counts


async def until_every_worker_answered(
    session: aiohttp.ClientSession, running: Receiver, pids: list[int]
) -> int:
    """Signed calls on new connections until each worker has answered some; how many."""
    sent = 0
    deadline = time.monotonic() + START_S
    while not all(ok_by_worker(pids).values()):
        assert time.monotonic() < deadline, ok_by_worker(pids)
        for _ in range(10):
            status, _ = await post_webhook(session, running.url, EU.id, EU.app_secret)
            assert status == 200
            sent += 1
    return sent


def children(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()


def gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in status


async def test_both_workers_answer_and_metrics_add_up(
    settings: Settings, tmp_path: Path, redis: Redis
) -> None:
    async with receiver(settings, tmp_path, workers=2) as running, fresh_connections() as session:
        pids = await running.workers()
        assert len(set(pids)) == 2
        sent = await until_every_worker_answered(session, running, pids)
        for _ in range(40):
            async with session.get(f"{running.url}/healthz") as health:
                assert health.status == 200
        by_worker = ok_by_worker(pids)
        assert sum(by_worker.values()) == sent
        # Whichever worker a scrape reaches, it shows every worker's calls.
        for _ in range(6):
            async with session.get(f"{running.url}/metrics") as metrics:
                text = await metrics.text()
            assert f'parley_webhook_requests_total{{method="POST",outcome="ok"}} {sent}.0' in text


async def test_a_channel_registered_through_one_worker_is_taken_by_every_worker(
    settings: Settings, tmp_path: Path, redis: Redis, aiohttp_server: AiohttpServer
) -> None:
    standin = StandIn({EU.id: EU.access_token}, app_secrets={EU.id: EU.app_secret})
    graph = await aiohttp_server(create_standin(standin))
    graph_url = str(graph.make_url("/v21.0"))
    async with (
        receiver(settings, tmp_path, workers=2, graph_url=graph_url) as running,
        fresh_connections() as session,
    ):
        pids = await running.workers()
        # Both run before the number is registered: only one hears the API's callback.
        await until_every_worker_answered(session, running, pids)
        assert (await post_webhook(session, running.url, NEW, NEW_SECRET))[0] == 401

        async def api(path: str, body: dict[str, str]) -> None:
            async with session.post(f"{running.url}/v1{path}", json=body, headers=ADMIN) as answer:
                assert answer.status in (200, 201), await answer.text()

        await api(
            "/channels",
            {
                "id": NEW,
                "display_name": "Support NL",
                "access_token": "nl-graph-token-0123456789",
                "app_secret": NEW_SECRET,
                "verify_token": "nl-verify-token-0123456789",
            },
        )
        registration = f"/channels/{NEW}/registration"
        await api(f"{registration}/request_code", {"method": "SMS"})
        code = standin.code_for(NEW)
        assert code is not None
        await api(f"{registration}/verify_code", {"code": code})
        await api(f"{registration}/register", {"pin": "246810"})
        registered = time.monotonic()

        # Every worker takes the new number's calls within a refresh (and some slack for
        # a loaded machine): 20 calls in a row on new connections, each accepted.
        before = ok_by_worker(pids)
        in_a_row = 0
        while in_a_row < 20:
            status, answer = await post_webhook(session, running.url, NEW, NEW_SECRET)
            if status == 200:
                assert answer == {"accepted": 1, "dead_lettered": 0}
                in_a_row += 1
            else:
                assert status == 401
                assert time.monotonic() - registered < REGISTERED_REFRESH_S + 5
                in_a_row = 0
        after = ok_by_worker(pids)
        assert all(after[pid] > before[pid] for pid in pids), (before, after)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_stops_every_worker_gracefully(
    settings: Settings, tmp_path: Path, redis: Redis, stop: signal.Signals
) -> None:
    async with receiver(settings, tmp_path, workers=2) as running, fresh_connections() as session:
        pids = await running.workers()
        await until_every_worker_answered(session, running, pids)
        running.process.send_signal(stop)
        started = time.monotonic()
        assert await asyncio.to_thread(running.process.wait, 10) == 0
        assert time.monotonic() - started < 10
        assert all(gone(pid) for pid in pids)
        assert [line for line in running.lines() if line["level"] == "ERROR"] == []


async def test_a_worker_that_dies_stops_the_receiver_with_a_failure(
    settings: Settings, tmp_path: Path, redis: Redis
) -> None:
    async with receiver(settings, tmp_path, workers=2) as running:
        dead, other = await running.workers()
        os.kill(dead, signal.SIGKILL)
        code = await asyncio.to_thread(running.process.wait, KILL_WORKERS_AFTER_S + 1)
        assert code == 1
        assert gone(other)
        # The supervisor names the dead worker, once. The other worker is stopped as it
        # stands, possibly still starting (the receiver was ready when one worker was),
        # so what it logs meanwhile is not this test's subject: an orderly stop's log is
        # checked clean by the SIGTERM tests above. (Once in CI a second ERROR line came
        # here; its text is in the assertion below when a failure shows it again.)
        errors = [line for line in running.lines() if line["level"] == "ERROR"]
        unasked = [
            line for line in errors if line["message"].endswith("unasked; stopping the others")
        ]
        assert len(unasked) == 1, errors
        [line] = unasked
        assert (line["pid"], line["code"]) == (dead, -signal.SIGKILL), errors
        assert not [e for e in errors if e.get("pid") == dead and e is not line], errors


async def test_one_worker_is_the_single_process_of_old(
    settings: Settings, tmp_path: Path, redis: Redis
) -> None:
    async with receiver(settings, tmp_path, workers=1) as running, fresh_connections() as session:
        pid = running.process.pid
        assert children(pid) == []
        assert (await post_webhook(session, running.url, EU.id, EU.app_secret))[0] == 200
        running.process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(running.process.wait, 10) == 0
        assert "workers started" not in [line["message"] for line in running.lines()]


def test_workers_default_to_one_and_the_cores_this_process_may_use_are_known() -> None:
    assert settings_from_env({}).http_workers == 1
    assert 1 <= available_cores() <= (os.cpu_count() or 1)
    assert settings_from_env({"PARLEY_HTTP_WORKERS": "2"}).http_workers == 2
    with pytest.raises(SettingsError, match="PARLEY_HTTP_WORKERS"):
        settings_from_env({"PARLEY_HTTP_WORKERS": "0"})
