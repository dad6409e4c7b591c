"""The /v1 API for tests: the receiver app with an admin token, and people with roles."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from devstack.graph_standin import StandIn
from devstack.graph_standin import create_app as create_standin
from engine.app import create_app as create_engine
from engine.applier import Applier
from ingest.app import create_app as create_receiver
from mediastore import MediaStore
from parley.channels import Channel
from parley.settings import Settings
from parley.state import Queue
from store.conversations import ConversationStore
from store.fetches import Fetches, MediaRecord
from tests import factory as f
from tests.clock import Clock

ADMIN_TOKEN = "test-admin-token-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

AiohttpClient = Callable[..., Awaitable[TestClient]]  # type: ignore[type-arg]


async def put_file_message(
    redis: Redis, media: MediaStore, channel: str, wa_id: str, at: float, wamid: str, data: bytes
) -> str:
    """A customer's image in their conversation, already fetched into `media` as the
    engine's fetcher leaves it (its job taken and finished); the file's key."""
    store = ConversationStore(redis)
    await store.start()
    [result] = await Applier(store, Clock(at)).apply([f.customer_file(channel, wa_id, at, wamid)])
    assert result.decision is not None, result
    stored = await media.put(data, "image/png")
    fetches = Fetches(redis, "test-fetcher")
    [job] = [job for job in await fetches.take(channel, 100) if job.job.wamid == wamid]
    record = MediaRecord(
        state="stored", key=stored.key, mime_type=stored.mime_type, size=stored.size
    )
    await fetches.finish(job, record)
    return stored.key


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
    """A conversation as the engine stores it, for read-side tests. The customer whose
    phone is `wa_id` writes at `at`, then an agent takes the conversation to `queue`
    (assigned to `assignee`): every event at `at`, decided and written by the engine's
    own Applier on the store, so the hash, queue set, aliases, log and report counters
    (the opening is counted) are what the engine writes.

    The customer wrote at `at`, so replies are inside the 24-hour window from then. An
    open conversation always has an assignee (alice unless one is named); a new or
    resolved one never has one (ValueError). On an existing conversation the machine's
    rules apply: activity never moves back, and an unresolved cycle keeps its opening
    time. Given a pipeline, the writes happen now, not when it executes (each decision
    needs a read first). The channel must be seeded (start_api does it). Raises
    AssertionError when the engine did not reach that state."""
    if queue in (Queue.NEW, Queue.RESOLVED) and assignee is not None:
        raise ValueError(f"a {queue} conversation has no assignee")
    if queue is Queue.OPEN:
        assignee = assignee or "alice"
    client = Redis(connection_pool=redis.connection_pool) if isinstance(redis, Pipeline) else redis
    store = ConversationStore(client)
    await store.start()
    events = [f.customer(channel, wa_id, at)]  # a new cycle, or new/open again
    if assignee is not None:
        events.append(f.assign(channel, wa_id, assignee, at))
    elif queue is not Queue.RESOLVED:
        events.append(f.unassign(channel, wa_id, at))
    if queue in (Queue.PENDING, Queue.RESOLVED):
        events.append(f.move(channel, wa_id, queue.value, at))
    results = await Applier(store, Clock(at)).apply(events)
    final = results[-1].decision
    reached = final.state if final is not None else None
    assert reached is not None and (reached.queue, reached.assignee) == (queue, assignee), results


async def api_with_standin(
    aiohttp_client: AiohttpClient,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    settings: Settings,
    channels: list[Channel],
    **standin_options: Any,
) -> tuple[TestClient, StandIn]:  # type: ignore[type-arg]
    """The receiver (API and webhook) with the Graph stand-in playing Meta for it: the
    API calls the stand-in, and the stand-in posts its signed webhooks to the receiver.
    `standin_options` go to StandIn (wabas, verified_names, ...)."""
    standin = StandIn(
        {channel.id: channel.access_token for channel in channels},
        app_secrets={channel.id: channel.app_secret for channel in channels},
        **standin_options,
    )
    graph = await aiohttp_server(create_standin(standin))
    settings = msgspec.structs.replace(settings, graph_url=str(graph.make_url("/v21.0")))
    api = await start_api(aiohttp_client, settings, channels)
    standin.webhook_url = str(api.make_url("/webhooks/whatsapp"))
    return api, standin
