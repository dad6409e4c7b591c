"""`make demo`: drive a running `make run` stack like a small support team would.

Customers write (signed webhooks to the receiver), agents reply, put some on pending
and resolve others (agent events straight onto the topic until the /v1 API exists), and
the queue sizes are shown as they change, with a progress line.
"""

import asyncio
import json
import os
import random
import sys
import time
import uuid
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaProducer

from devstack.samples import text_message
from devstack.signing import sign
from parley.channels import load_channels
from parley.events import Actor, AgentReply, Event, Identity, Move, Payload, Role, encode
from parley.redis import connect_redis
from parley.settings import settings_from_env
from store.reader import Reader

ENV_FILE = Path(__file__).resolve().parents[1] / ".run" / "parley.env"
CUSTOMERS = 40
AGENTS = ("alice", "bob", "carol")


def read_env_file() -> dict[str, str]:
    if not ENV_FILE.is_file():
        sys.exit("parley demo: start the stack first (make run) in another terminal")
    pairs = (line.split("=", 1) for line in ENV_FILE.read_text().splitlines() if "=" in line)
    return {name: value for name, value in pairs}


def progress(done: int, total: int, sizes: dict[str, int]) -> None:
    bar = "#" * (30 * done // total)
    queues = "  ".join(f"{name} {count:>3}" for name, count in sizes.items())
    print(f"\r[{bar:<30}] {done:>3}/{total}  {queues}", end="", flush=True)


async def main() -> None:
    settings = settings_from_env({**read_env_file(), **os.environ})
    channel = load_channels(settings.channels_file)[0]
    url = f"http://{settings.http_host}:{settings.http_port}/webhooks/whatsapp"
    rng = random.Random(7)  # noqa: S311 (demo data, not a secret)
    redis = connect_redis(settings.redis_url or "")
    reader = Reader(redis)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    total = CUSTOMERS * 2
    done = 0
    try:
        async with aiohttp.ClientSession() as session:
            customers = [f"1555{rng.randrange(10**7):07d}" for _ in range(CUSTOMERS)]
            for wa_id in customers:
                body = json.dumps(
                    text_message(
                        channel.id,
                        wa_id,
                        f"wamid.demo.{uuid.uuid4().hex}",
                        "Hello!",
                        int(time.time()),
                    )
                ).encode()
                headers = {"X-Hub-Signature-256": sign(body, channel.app_secret)}
                async with session.post(url, data=body, headers=headers) as response:
                    response.raise_for_status()
                done += 1
                progress(done, total, await reader.queue_sizes(channel.id))
                await asyncio.sleep(0.05)
            for wa_id in customers:
                agent = Actor(rng.choice(AGENTS), Role.CONTRIBUTOR)
                payloads: list[Payload] = [AgentReply(actor=agent, text="On it!")]
                roll = rng.random()
                if roll < 0.3:
                    payloads.append(Move(actor=agent, queue="pending"))
                elif roll < 0.6:
                    payloads.append(Move(actor=agent, queue="resolved"))
                for payload in payloads:
                    event = Event(
                        id=uuid.uuid4().hex,
                        channel=channel.id,
                        identity=Identity(phone=wa_id),
                        occurred_at=time.time(),
                        received_at=time.time(),
                        payload=payload,
                    )
                    await producer.send_and_wait(
                        settings.topic, key=event.key.encode(), value=encode(event)
                    )
                done += 1
                progress(done, total, await reader.queue_sizes(channel.id))
                await asyncio.sleep(0.05)
        await asyncio.sleep(1)  # let the engine catch up with the last events
        progress(done, total, await reader.queue_sizes(channel.id))
        print(f"\nqueues of {channel.id}: {json.dumps(await reader.queue_sizes(channel.id))}")
    finally:
        await producer.stop()
        await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
