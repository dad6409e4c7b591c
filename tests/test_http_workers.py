"""PARLEY_HTTP_WORKERS: `python -m ingest` as several processes on one port, against the
session's Kafka and Redis. Both workers answer and /metrics adds them up; a channel
registered through one worker is taken by every worker; SIGTERM or SIGINT stops them all
gracefully, whenever it comes; a worker that dies, or does not stop, takes the receiver
down with a non-zero status (for the orchestrator to restart it); one worker is the
single process of old; the default is a worker per core the receiver may use."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
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


def start(
    settings: Settings,
    tmp_path: Path,
    workers: int | None,
    graph_url: str = CLOSED_GRAPH_URL,
    *,
    own_group: bool = False,
) -> Receiver:
    """`python -m ingest` with `workers` workers (None: PARLEY_HTTP_WORKERS unset), just
    started; `own_group`: in a process group of its own, to signal as a terminal would."""
    channels = tmp_path / "channels.toml"
    channels.write_text(CHANNELS)
    port = free_port()
    log = tmp_path / f"ingest-{port}.log"
    env = {
        **{name: value for name, value in os.environ.items() if name != "PARLEY_HTTP_WORKERS"},
        "PARLEY_KAFKA_BOOTSTRAP": settings.kafka_bootstrap or "",
        "PARLEY_REDIS_URL": settings.redis_url or "",
        "PARLEY_TOPIC": settings.topic,
        "PARLEY_HTTP_PORT": str(port),
        "PARLEY_CHANNELS_FILE": str(channels),
        "PARLEY_MEDIA_URL": settings.media_url,
        "PARLEY_ADMIN_TOKEN": ADMIN_TOKEN,
        "PARLEY_GRAPH_URL": graph_url,
    }
    if workers is not None:
        env["PARLEY_HTTP_WORKERS"] = str(workers)
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "ingest"],
            cwd=ROOT,
            env=env,
            stderr=stderr,
            start_new_session=own_group,
        )
    return Receiver(process, f"http://127.0.0.1:{port}", log)


@asynccontextmanager
async def stopped_after(running: Receiver) -> AsyncIterator[Receiver]:
    """Stopped (SIGTERM, else killed) afterwards if the test did not stop it, and any
    worker it leaves behind (a test may have frozen them) killed."""
    try:
        yield running
    finally:
        if running.process.poll() is None:
            running.process.terminate()
            try:
                await asyncio.to_thread(running.process.wait, 15)
            except subprocess.TimeoutExpired:
                running.process.kill()
                running.process.wait()
        for line in running.lines():
            for pid in line.get("pids", []) if line["message"] == "workers started" else []:
                if not gone(pid):
                    os.kill(pid, signal.SIGKILL)


@asynccontextmanager
async def receiver(
    settings: Settings,
    tmp_path: Path,
    workers: int,
    graph_url: str = CLOSED_GRAPH_URL,
    *,
    own_group: bool = False,
) -> AsyncIterator[Receiver]:
    """`python -m ingest` with `workers` workers, once it is ready; stopped afterwards."""
    running = start(settings, tmp_path, workers, graph_url, own_group=own_group)
    async with stopped_after(running):
        deadline = time.monotonic() + START_S
        async with aiohttp.ClientSession() as session:
            while True:
                assert running.process.poll() is None, running.log.read_text()
                assert time.monotonic() < deadline, "the receiver did not get ready"
                try:
                    async with session.get(f"{running.url}/readyz") as ready:
                        if ready.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.05)
        yield running


async def stops_cleanly(running: Receiver, pids: list[int]) -> None:
    """The receiver, just signalled, exits 0 within 10 s, its workers gone, its log clean
    (JSON lines only: no traceback; no ERROR)."""
    started = time.monotonic()
    assert await asyncio.to_thread(running.process.wait, 10) == 0, running.log.read_text()
    assert time.monotonic() - started < 10
    assert all(gone(pid) for pid in pids)
    assert [line for line in running.lines() if line["level"] == "ERROR"] == []


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


async def until(condition: Callable[[], bool], what: str) -> None:
    """Until `condition` holds (polled often: a start-up moment can be short)."""
    deadline = time.monotonic() + START_S
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.002)


async def until_loaded(pid: int, library: str) -> None:
    """Until the process has `library` (a part of a shared object's path) mapped."""
    await until(lambda: loaded(pid, library), f"{library} not loaded")


def loaded(pid: int, library: str) -> bool:
    return library in Path(f"/proc/{pid}/maps").read_text()


async def until_handled(pid: int, signum: int) -> None:
    """Until the process has a handler for `signum` (its SigCgt mask in /proc)."""
    await until(lambda: handles(pid, signum), f"{pid} does not handle {signum}")


def handles(pid: int, signum: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    [caught] = [line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")]
    return bool(int(caught, 16) >> (signum - 1) & 1)


async def test_two_workers_are_one_receiver_until_ctrl_c_stops_both(
    settings: Settings, tmp_path: Path, redis: Redis, aiohttp_server: AiohttpServer
) -> None:
    """Both answer, /metrics adds them up, a channel registered through one is taken by
    both; Ctrl-C stops both gracefully. (One receiver for all of it: each start costs
    seconds.)"""
    standin = StandIn({EU.id: EU.access_token}, app_secrets={EU.id: EU.app_secret})
    graph = await aiohttp_server(create_standin(standin))
    graph_url = str(graph.make_url("/v21.0"))
    async with (
        receiver(settings, tmp_path, workers=2, graph_url=graph_url, own_group=True) as running,
        fresh_connections() as session,
    ):
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

        # Both run before the number is registered: only one hears the API's callback.
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

        # Ctrl-C: SIGINT to every process of the group. The workers ignore theirs; the
        # supervisor tells each to stop (SIGTERM), once.
        os.killpg(running.process.pid, signal.SIGINT)
        await stops_cleanly(running, pids)


async def test_a_worker_that_dies_stops_the_receiver_with_a_failure(
    settings: Settings, tmp_path: Path, redis: Redis
) -> None:
    running = start(settings, tmp_path, workers=2)
    async with stopped_after(running):
        dead, other = await running.workers()
        # Dead once it runs the receiver (past its imports); the other is stopped wherever
        # it stands, importing, starting or serving, and as cleanly.
        await until_handled(dead, signal.SIGTERM)
        os.kill(dead, signal.SIGKILL)
        code = await asyncio.to_thread(running.process.wait, KILL_WORKERS_AFTER_S + 1)
        assert code == 1
        assert gone(other)
        # The supervisor names the dead worker, once, and nothing else is an error. (Once
        # in CI a second ERROR line came here, its text not kept: the other worker, stopped
        # while it started, could miss its SIGTERM and be killed, or leave its Kafka
        # producer open; both are fixed.)
        errors = [line for line in running.lines() if line["level"] == "ERROR"]
        assert [(line["message"], line["pid"], line["code"]) for line in errors] == [
            ("worker exited unasked; stopping the others", dead, -signal.SIGKILL)
        ], errors


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


async def test_stop_signals_while_the_receiver_imports_stop_it_with_success(
    settings: Settings, tmp_path: Path
) -> None:
    """The receiver imports for a second or more (more under load) before it handles
    signals: a SIGTERM then killed it (status -15, 143 in a shell), a SIGINT ended it in
    a KeyboardInterrupt traceback (-2, or 1). A stress run found it in 39 of 150 SIGTERMs
    sent within 4.5 s of the start. Now `python -m ingest` holds both from its first line
    until the runtime handles them. Both are sent here, each able to fail it on its own.
    PARLEY_HTTP_WORKERS is unset: the default."""
    running = start(settings, tmp_path, workers=None)
    async with stopped_after(running):
        # msgspec's extension is loaded by the receiver's first import of its own: the
        # rest of its imports (most of a second) are still to come.
        await until_loaded(running.process.pid, "/msgspec/_core.")
        running.process.send_signal(signal.SIGINT)
        running.process.send_signal(signal.SIGTERM)
        await stops_cleanly(running, [])
    [starting] = [line for line in running.lines() if line["message"] == "starting receiver"]
    assert starting["workers"] == available_cores()


async def test_workers_that_do_not_stop_are_killed_in_time(
    settings: Settings, tmp_path: Path
) -> None:
    """A stop ends the receiver whatever its workers do: those still running
    KILL_WORKERS_AFTER_S after it are killed (status 1). Once in CI (status 1) a worker
    missed its SIGTERM: uvloop, whose signal handler it used, sees a signal only while
    the loop runs, and the SIGTERM came just before. And the supervisor waited for a
    worker to exit before it looked at its deadline: with every worker deaf (5 of 6
    stress runs that widened that moment) it never exited. Workers frozen (SIGSTOP) once
    they handle SIGTERM are deaf to it. (Before, SIGTERM kills a worker, frozen or not.)"""
    running = start(settings, tmp_path, workers=2)
    async with stopped_after(running):
        pids = await running.workers()
        for pid in pids:
            await until_handled(pid, signal.SIGTERM)
            os.kill(pid, signal.SIGSTOP)
        running.process.send_signal(signal.SIGTERM)
        # The kill is due in 9.5 s; the rest of 10 s is the exit's, which a loaded
        # machine may stretch.
        assert await asyncio.to_thread(running.process.wait, KILL_WORKERS_AFTER_S + 3) == 1
        assert all(gone(pid) for pid in pids)
        killed = [line["pid"] for line in running.lines() if line["message"] == "worker killed"]
        assert sorted(killed) == sorted(pids)


def test_workers_default_to_the_cores_this_process_may_use() -> None:
    cores = available_cores()
    assert settings_from_env({}).http_workers == cores
    # Its CPU affinity, capped by a container's CPU quota (none here, most likely).
    affinity = os.sched_getaffinity(0)
    assert 1 <= cores <= len(affinity)
    if cores == len(affinity) > 1:
        # It follows the affinity (taskset, a CPU manager): one core allowed, one worker.
        try:
            os.sched_setaffinity(0, {min(affinity)})
            assert settings_from_env({}).http_workers == 1
        finally:
            os.sched_setaffinity(0, affinity)
        assert settings_from_env({}).http_workers == cores
    assert settings_from_env({"PARLEY_HTTP_WORKERS": "3"}).http_workers == 3
    assert settings_from_env({"PARLEY_HTTP_WORKERS": "1"}).http_workers == 1
    for wrong in ("0", "257", "two"):
        with pytest.raises(SettingsError, match="PARLEY_HTTP_WORKERS"):
            settings_from_env({"PARLEY_HTTP_WORKERS": wrong})
