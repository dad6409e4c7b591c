"""`python -m engine` as a process: it serves its probes and stops cleanly on SIGTERM."""

import asyncio
import signal
import time
from pathlib import Path

import aiohttp

from devstack.servers import free_port
from parley.settings import Settings
from tests import factory as f
from tests.conftest import EU, US
from tests.engine_proc import QUIET_CHANNELS, committed_everything, start_engine
from tests.kafka_tools import eventually, produce


async def test_probes_then_sigterm_exits_0_within_10_seconds(
    settings: Settings, tmp_path: Path
) -> None:
    channels = tmp_path / "channels.toml"
    channels.write_text(QUIET_CHANNELS.format(eu=EU.id, us=US.id))
    bootstrap = settings.kafka_bootstrap or ""
    await produce(bootstrap, settings.topic, [f.customer(EU.id, "16315551181", time.time())])
    port = free_port()
    engine = start_engine(
        bootstrap, settings.redis_url or "", settings.topic, "sigterm", channels, port
    )
    try:
        await eventually(lambda: committed_everything(bootstrap, settings.topic, "sigterm"))
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/healthz") as health:
                assert health.status == 200
            async with session.get(f"http://127.0.0.1:{port}/readyz") as ready:
                assert ready.status == 200
                assert await ready.json() == {"kafka": True, "redis": True, "partitions": 4}
        engine.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert await asyncio.to_thread(engine.wait, 10) == 0
        assert time.monotonic() - started < 10
    finally:
        if engine.poll() is None:
            engine.kill()
            engine.wait()
