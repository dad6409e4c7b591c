"""The /v1 API for tests: the receiver app with an admin token, and people with roles."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from engine.app import create_app as create_engine
from ingest.app import create_app as create_receiver
from parley.channels import Channel
from parley.settings import Settings
from parley.state import Conversation, Queue
from store import _keys as keys
from store._codec import state_arguments

ADMIN_TOKEN = "test-admin-token-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

AiohttpClient = Callable[..., Awaitable[TestClient]]  # type: ignore[type-arg]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def start_api(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    channels: list[Channel],
    *,
    action_wait_s: float = 2.0,
    clock: Callable[[], float] = time.time,
) -> TestClient:  # type: ignore[type-arg]
    settings = msgspec.structs.replace(
        settings, admin_token=ADMIN_TOKEN, action_wait_s=action_wait_s
    )
    return await aiohttp_client(create_receiver(settings, channels, clock=clock))


async def start_engine(
    aiohttp_client: AiohttpClient, settings: Settings, channels: list[Channel]
) -> TestClient:  # type: ignore[type-arg]
    """The engine app, once its consumer owns partitions: an action produced before
    that would wait for the group to form."""
    engine = await aiohttp_client(create_engine(settings, channels))
    for _ in range(200):
        if (await (await engine.get("/readyz")).json()).get("partitions"):
            break
        await asyncio.sleep(0.05)
    return engine


async def call(
    api: TestClient,  # type: ignore[type-arg]
    method: str,
    path: str,
    headers: dict[str, str],
    body: Any = None,
    **params: Any,
) -> tuple[int, Any]:
    """(status, JSON body or None)."""
    response = await api.request(method, path, headers=headers, json=body, params=params or None)
    data = await response.json() if response.content_type == "application/json" else None
    return response.status, data


async def user_with_role(
    api: TestClient,  # type: ignore[type-arg]
    user_id: str,
    channel: str | None = None,
    role: str | None = None,
) -> dict[str, str]:
    """Create `user_id` (granted `role` on `channel` when given); their auth headers."""
    status, created = await call(api, "POST", "/v1/users", ADMIN, {"id": user_id, "name": user_id})
    assert status == 201, created
    if channel and role:
        status, body = await call(
            api, "PUT", f"/v1/channels/{channel}/access/users/{user_id}", ADMIN, {"role": role}
        )
        assert status == 200, body
    return bearer(created["token"])


async def put_conversation(
    redis: Redis, channel: str, wa_id: str, queue: Queue, at: float, assignee: str | None = None
) -> None:
    """A conversation as the engine would have stored it, for read-side tests."""
    # The customer wrote at `at`: replies are inside the 24-hour window from then.
    state = Conversation(
        queue=queue, assignee=assignee, last_activity_at=at, opened_at=at, last_customer_at=at
    )
    names = ("q", "a", "la", "oa", "lc", "fr")
    fields = {n: v for n, v in zip(names, state_arguments(state), strict=True) if v}
    await redis.hset(keys.conversation(channel, wa_id), mapping={**fields, "v": 1})
    await redis.zadd(keys.queue(channel, queue), {wa_id: round(at * 1000)})
