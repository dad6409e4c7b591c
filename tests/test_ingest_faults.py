"""The receiver when Kafka fails, and when it is told to stop."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import msgspec
import pytest
from aiohttp.test_utils import TestClient

from devstack.samples import text_message
from devstack.servers import Server, free_port, start_kafka
from devstack.signing import sign
from ingest.app import create_app
from parley.settings import Settings
from tests.conftest import EU
from tests.kafka_tools import read_all

MakeClient = Callable[..., Awaitable[TestClient]]  # type: ignore[type-arg]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def own_broker() -> Iterator[Server]:
    server = start_kafka()
    try:
        yield server
    finally:
        if server.process.poll() is None:
            os.kill(server.process.pid, signal.SIGCONT)
        server.stop()


def signed(wamid: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(text_message(EU.id, "16315551181", wamid, "hi", 1_790_000_000)).encode()
    return body, {"X-Hub-Signature-256": sign(body, EU.app_secret)}


async def test_a_stalled_broker_gets_503_in_bounded_time_then_the_same_call_is_accepted(
    aiohttp_client: MakeClient, settings: Settings, own_broker: Server
) -> None:
    bootstrap = f"127.0.0.1:{own_broker.port}"
    local = msgspec.structs.replace(settings, kafka_bootstrap=bootstrap, produce_timeout_s=2.0)
    client = await aiohttp_client(create_app(local, [EU]))
    body, headers = signed("wamid.STALL")

    os.kill(own_broker.process.pid, signal.SIGSTOP)  # the broker stops answering
    started = time.monotonic()
    response = await client.post("/webhooks/whatsapp", data=body, headers=headers)
    assert response.status == 503
    assert (await response.json())["error"]["code"] == "kafka_unavailable"
    assert time.monotonic() - started <= 10
    os.kill(own_broker.process.pid, signal.SIGCONT)

    retried = await client.post("/webhooks/whatsapp", data=body, headers=headers)
    assert retried.status == 200, await retried.text()
    ids = {msgspec.json.decode(r.value)["id"] for r in await read_all(bootstrap, local.topic)}
    assert ids == {"wamid.STALL"}


async def test_a_broker_that_is_gone_gets_503_never_200(
    aiohttp_client: MakeClient, settings: Settings, own_broker: Server
) -> None:
    local = msgspec.structs.replace(
        settings, kafka_bootstrap=f"127.0.0.1:{own_broker.port}", produce_timeout_s=2.0
    )
    client = await aiohttp_client(create_app(local, [EU]))
    own_broker.stop()
    body, headers = signed("wamid.GONE")
    started = time.monotonic()
    response = await client.post("/webhooks/whatsapp", data=body, headers=headers)
    assert response.status == 503
    assert time.monotonic() - started <= 10
    ready = await client.get("/readyz")
    assert ready.status == 503
    assert (await ready.json())["kafka"] is False


async def test_sigterm_stops_the_receiver_cleanly_within_10_seconds(
    settings: Settings, tmp_path: Path
) -> None:
    channels = tmp_path / "channels.toml"
    channels.write_text(
        f'[[channels]]\nid = "{EU.id}"\napp_secret = "{EU.app_secret}"\n'
        f'verify_token = "{EU.verify_token}"\naccess_token = "{EU.access_token}"\n'
        'display_name = "Support EU"\n'
    )
    port = free_port()
    env = {
        **os.environ,
        "PARLEY_KAFKA_BOOTSTRAP": settings.kafka_bootstrap or "",
        "PARLEY_REDIS_URL": settings.redis_url or "",
        "PARLEY_TOPIC": settings.topic,
        "PARLEY_HTTP_PORT": str(port),
        "PARLEY_HTTP_WORKERS": "1",  # this process; workers: tests/test_http_workers.py
        "PARLEY_CHANNELS_FILE": str(channels),
        "PARLEY_MEDIA_URL": settings.media_url,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "ingest"], cwd=ROOT, env=env, stderr=subprocess.PIPE
    )
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    async with session.get(f"http://127.0.0.1:{port}/readyz") as ready:
                        if ready.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.05)
            body, headers = signed("wamid.TERM")
            async with session.post(
                f"http://127.0.0.1:{port}/webhooks/whatsapp", data=body, headers=headers
            ) as response:
                assert response.status == 200
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = await asyncio.to_thread(process.wait, 10)
        assert code == 0
        assert time.monotonic() - started < 10
    finally:
        if process.poll() is None:
            process.kill()
    assert process.stderr is not None
    with process.stderr:
        logs = process.stderr.read().decode()
    # JSON lines, and no secret or message text in any of them
    for line in filter(None, logs.splitlines()):
        json.loads(line)
    assert EU.app_secret not in logs
    assert EU.verify_token not in logs
    assert '"hi"' not in logs
