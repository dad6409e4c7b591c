"""`python -m engine show` and `queues`, as an operator runs them."""

import asyncio
import json
import os
import sys
from pathlib import Path

from redis.asyncio import Redis

from engine.applier import Applier
from store.channels import seed_channels
from store.conversations import ConversationStore
from tests import factory as f
from tests.conftest import EU

ROOT = Path(__file__).resolve().parents[1]


async def run(redis_url: str, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "engine",
        *args,
        cwd=ROOT,
        env={**os.environ, "PARLEY_REDIS_URL": redis_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


async def test_show_and_queues_print_json(redis: Redis, redis_url: str) -> None:
    scripts = ConversationStore(redis)
    await scripts.start()
    await seed_channels(redis, [EU])
    at = 1_790_000_000.0
    await Applier(scripts, lambda: at).apply(
        [f.customer(EU.id, "16315551181", at), f.tag(EU.id, "16315551181", "vip", at + 1)]
    )

    code, out, _ = await run(redis_url, "queues", EU.id)
    assert code == 0
    assert json.loads(out) == {"new": 1, "open": 0, "pending": 0, "resolved": 0}

    code, out, _ = await run(redis_url, "show", f"{EU.id}:16315551181")
    assert code == 0
    shown = json.loads(out)
    assert (shown["queue"], shown["assignee"], shown["tags"]) == ("new", None, ["vip"])
    assert shown["last_activity_at"] == "2026-09-21T14:13:21Z"


async def test_both_exit_1_with_a_message_when_nothing_exists(redis: Redis, redis_url: str) -> None:
    code, out, err = await run(redis_url, "queues", "999")
    assert (code, out) == (1, "")
    assert "no channel 999" in err
    code, out, err = await run(redis_url, "show", f"{EU.id}:000")
    assert (code, out) == (1, "")
    assert f"no conversation {EU.id}:000" in err
