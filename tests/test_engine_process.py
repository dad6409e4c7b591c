"""`python -m engine` as a process: its probes answer from the first second, /readyz
waits for the group join, and it stops cleanly on SIGTERM, joined or still joining."""

import asyncio
import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devstack.servers import free_port
from parley.settings import Settings
from tests import factory as f
from tests.conftest import EU, US
from tests.engine_proc import QUIET_CHANNELS, committed_everything, start_engine
from tests.kafka_tools import eventually, produce

# From spawning the process (interpreter start-up and imports included).
PROBES_WITHIN_S = 1.5
STARTING = {"starting": True, "partitions": 0}


@pytest.fixture
def channels_file(tmp_path: Path) -> Path:
    path = tmp_path / "channels.toml"
    path.write_text(QUIET_CHANNELS.format(eu=EU.id, us=US.id))
    return path


def spawn(
    settings: Settings, channels_file: Path, group: str
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    engine = start_engine(
        settings.kafka_bootstrap or "",
        settings.redis_url or "",
        settings.topic,
        group,
        channels_file,
        port,
    )
    return engine, f"http://127.0.0.1:{port}"


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, Any] | None:
    """(status, body) or None while nothing listens yet."""
    try:
        async with session.get(url) as response:
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.text()
    except aiohttp.ClientConnectionError:
        return None


async def first_answer(session: aiohttp.ClientSession, url: str, since: float) -> tuple[int, Any]:
    """Polled from the spawn until the server answers; asserts it did within 1.5 s."""
    while (answer := await get(session, url)) is None:
        assert time.monotonic() - since < PROBES_WITHIN_S, f"{url}: nothing listening yet"
        await asyncio.sleep(0.02)
    assert time.monotonic() - since < PROBES_WITHIN_S, f"{url}: answered too late"
    return answer


async def sigterm_exits_0_within_10_seconds(engine: subprocess.Popen[bytes]) -> float:
    engine.send_signal(signal.SIGTERM)
    started = time.monotonic()
    assert await asyncio.to_thread(engine.wait, 10) == 0
    elapsed = time.monotonic() - started
    assert elapsed < 10
    return elapsed


def reap(engine: subprocess.Popen[bytes]) -> None:
    if engine.poll() is None:
        engine.kill()
        engine.wait()


async def test_probes_then_sigterm_exits_0_within_10_seconds(
    settings: Settings, channels_file: Path
) -> None:
    bootstrap = settings.kafka_bootstrap or ""
    await produce(bootstrap, settings.topic, [f.customer(EU.id, "16315551181", time.time())])
    engine, base = spawn(settings, channels_file, "sigterm")
    try:
        await eventually(lambda: committed_everything(bootstrap, settings.topic, "sigterm"))
        async with aiohttp.ClientSession() as session:
            assert await get(session, f"{base}/healthz") == (200, {"status": "ok"})
            ready = {"kafka": True, "redis": True, "partitions": 4}
            assert await get(session, f"{base}/readyz") == (200, ready)
        await sigterm_exits_0_within_10_seconds(engine)
    finally:
        reap(engine)


async def test_health_and_metrics_answer_at_once_and_readyz_waits_for_the_join(
    settings: Settings, channels_file: Path
) -> None:
    spawned = time.monotonic()
    engine, base = spawn(settings, channels_file, "start-up")
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            assert await first_answer(session, f"{base}/healthz", spawned) == (
                200,
                {"status": "ok"},
            )
            status, text = await first_answer(session, f"{base}/metrics", spawned)
            assert status == 200
            assert "parley_events_applied_total" in text
            # Joining the group takes seconds: until then, 503 and "starting".
            answers = [await first_answer(session, f"{base}/readyz", spawned)]
            deadline = time.monotonic() + 30
            while answers[-1][0] != 200:
                assert time.monotonic() < deadline, answers[-1]
                await asyncio.sleep(0.05)
                answer = await get(session, f"{base}/readyz")
                assert answer is not None
                answers.append(answer)
            assert answers[0] == (503, STARTING)
            assert all(answer == (503, STARTING) for answer in answers[:-1])
            assert answers[-1] == (200, {"kafka": True, "redis": True, "partitions": 4})
            assert await get(session, f"{base}/healthz") == (200, {"status": "ok"})
        await sigterm_exits_0_within_10_seconds(engine)
    finally:
        reap(engine)


async def test_sigterm_while_joining_the_group_exits_0_within_10_seconds(
    settings: Settings, channels_file: Path
) -> None:
    spawned = time.monotonic()
    engine, base = spawn(settings, channels_file, "early-stop")
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            assert (await first_answer(session, f"{base}/healthz", spawned))[0] == 200
            assert await get(session, f"{base}/readyz") == (503, STARTING)
        await sigterm_exits_0_within_10_seconds(engine)
    finally:
        reap(engine)


async def test_sigterm_while_still_importing_exits_0_without_starting_the_app(
    settings: Settings, channels_file: Path
) -> None:
    """`python -m engine` begins the group join, then imports the engine
    (engine/joining.py): a stop in that window ends start-up there, within the bound,
    where the default SIGTERM would kill a member in the middle of its join."""
    bootstrap = settings.kafka_bootstrap or ""
    engine = start_engine(
        bootstrap,
        settings.redis_url or "",
        settings.topic,
        "importing",
        channels_file,
        stderr=subprocess.PIPE,
        log_level="INFO",
    )
    try:
        assert engine.stderr is not None
        first = json.loads(await asyncio.to_thread(engine.stderr.readline))
        assert first["message"] == "starting engine"  # joining, the engine not yet imported
        await sigterm_exits_0_within_10_seconds(engine)
        rest = engine.stderr.read()
        assert b"consumer joined" not in rest  # the app never ran
        assert b"Traceback" not in rest
    finally:
        reap(engine)
        if engine.stderr is not None:
            engine.stderr.close()
