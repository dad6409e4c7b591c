"""The README's walkthrough: `make run`'s stack, one signed webhook, the queues."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from devstack.samples import text_message
from devstack.servers import free_port
from devstack.signing import sign
from devstack.stack import DEMO_CHANNELS, ENV_FILE
from parley.channels import load_channels

ROOT = Path(__file__).resolve().parents[1]


async def test_the_stack_takes_a_webhook_and_shows_the_conversation_within_a_minute() -> None:
    started = time.monotonic()
    http_port, metrics_port = free_port(), free_port()
    env = {
        name: value
        for name, value in os.environ.items()
        if name
        not in {
            "PARLEY_KAFKA_BOOTSTRAP",
            "PARLEY_REDIS_URL",
            "PARLEY_CHANNELS_FILE",
            "PARLEY_ADMIN_TOKEN",
            "PARLEY_GRAPH_URL",
        }
    }
    graph_port = free_port()
    env |= {
        "PARLEY_HTTP_PORT": str(http_port),
        "PARLEY_METRICS_PORT": str(metrics_port),
        "PARLEY_GRAPH_STANDIN_PORT": str(graph_port),
    }
    stack = subprocess.Popen(
        [sys.executable, "-m", "devstack.stack"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert stack.stdout is not None
        banner = ""
        while "Ctrl-C stops everything." not in banner:
            line = await asyncio.to_thread(stack.stdout.readline)
            assert line, f"the stack ended before its banner: {banner}"
            banner += line
        assert f"http://127.0.0.1:{http_port}/webhooks/whatsapp" in banner

        channel = load_channels(str(DEMO_CHANNELS))[0]
        body = json.dumps(
            text_message(channel.id, "16315551181", "wamid.walkthrough", "Hi", int(time.time()))
        ).encode()
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"http://127.0.0.1:{http_port}/webhooks/whatsapp",
                data=body,
                headers={"X-Hub-Signature-256": sign(body, channel.app_secret)},
            ) as response,
        ):
            assert response.status == 200

        stack_env = dict(line.split("=", 1) for line in ENV_FILE.read_text().splitlines())
        queues = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "engine",
            "queues",
            channel.id,
            cwd=ROOT,
            env={**env, **stack_env},
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await queues.communicate()
        assert json.loads(out) == {"new": 1, "open": 0, "pending": 0, "resolved": 0}

        # The API part: a user, a grant, and their reply makes them the assignee.
        api = stack_env["PARLEY_API"]
        admin = {"Authorization": f"Bearer {stack_env['PARLEY_ADMIN_TOKEN']}"}
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{api}/users", json={"id": "ana", "name": "Ana"}, headers=admin
            ) as response:
                assert response.status == 201
                ana = {"Authorization": f"Bearer {(await response.json())['token']}"}
            async with session.put(
                f"{api}/channels/{channel.id}/access/users/ana",
                json={"role": "contributor"},
                headers=admin,
            ) as response:
                assert response.status == 200
            async with session.post(
                f"{api}/conversations/{channel.id}/16315551181/replies",
                json={"text": "Hi! It ships today."},
                headers=ana,
            ) as response:
                answer = await response.json()
                assert response.status == 200, answer
        assert (answer["conversation"]["queue"], answer["conversation"]["assignee"]) == (
            "open",
            "ana",
        )
        # The reply reaches the local Graph stand-in, whose statuses come back: read.
        conversation = f"{api}/conversations/{channel.id}/16315551181"
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                async with session.get(conversation, headers=ana) as response:
                    reply = (await response.json())["messages"][-1]
                if reply["status"] == "read":
                    break
                await asyncio.sleep(0.1)
            async with session.get(f"http://127.0.0.1:{graph_port}/_standin/sent") as response:
                [sent] = await response.json()
        assert reply["status"] == "read"
        assert (sent["to"], sent["wamid"]) == ("16315551181", reply["wamid"])
        assert time.monotonic() - started < 60
    finally:
        stack.send_signal(signal.SIGINT)  # Ctrl-C
        assert await asyncio.to_thread(stack.wait, 20) == 0
        if stack.stdout:
            stack.stdout.close()
    assert not ENV_FILE.exists()  # cleaned up on the way out
