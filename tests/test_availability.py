"""Availability through the real receiver (its API and live stream), the engine (its
presence pass) and a real redis-server: users set online, away or offline; a user whose
live streams are all gone for PARLEY_OFFLINE_AFTER_S goes offline by itself, and one
with a stream connected stays as they are; who may answer on a channel, and how
available they are."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import msgspec
import pytest
from aiohttp.test_utils import TestClient

from parley.channels import Channel
from parley.settings import Settings
from tests.api_tools import ADMIN, AiohttpClient, call, start_api, start_engine, user_with_role
from tests.conftest import EU

OFFLINE_AFTER_S = 1.5
Api = TestClient  # type: ignore[type-arg]


@pytest.fixture
async def api(
    aiohttp_client: AiohttpClient, settings: Settings, channels: list[Channel], redis: Any
) -> Api:
    settings = msgspec.structs.replace(
        settings, offline_after_s=OFFLINE_AFTER_S, sweep_interval_s=0.2
    )
    await start_engine(aiohttp_client, settings, channels)
    return await start_api(aiohttp_client, settings, channels)


async def availability(api: Api, who: dict[str, str]) -> dict[str, Any]:
    status, body = await call(api, "GET", "/v1/me/availability", who)
    assert status == 200, body
    return dict(body)


async def choose(api: Api, who: dict[str, str], status: str) -> dict[str, Any]:
    answer, body = await call(api, "PUT", "/v1/me/availability", who, {"status": status})
    assert answer == 200, body
    return dict(body)


@contextlib.asynccontextmanager
async def live_stream(api: Api, who: dict[str, str]) -> AsyncIterator[None]:
    """A live stream connected (and read, as a browser would) while inside."""
    response = await api.get("/v1/stream", headers=who)
    assert response.status == 200

    async def read() -> None:
        async for _ in response.content:
            pass

    reader = asyncio.create_task(read())
    try:
        yield
    finally:
        reader.cancel()
        response.close()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


async def test_a_user_sets_their_availability_and_never_set_is_offline(api: Api) -> None:
    ana = await user_with_role(api, "ana", EU.id, "contributor")
    assert await availability(api, ana) == {
        "user": "ana",
        "status": "offline",
        "since": None,
        "auto": False,
    }
    before = time.time()
    chosen = await choose(api, ana, "away")
    assert (chosen["user"], chosen["status"], chosen["auto"]) == ("ana", "away", False)
    assert before - 1 <= datetime.fromisoformat(chosen["since"]).timestamp() <= time.time() + 1
    assert await availability(api, ana) == chosen


@pytest.mark.parametrize(
    ("body", "field"),
    [({"status": "busy"}, "status"), ({}, "status"), ({"status": "online", "x": 1}, "x")],
    ids=["unknown-status", "missing", "unknown-field"],
)
async def test_a_bad_availability_is_refused_naming_the_field(
    api: Api, body: dict[str, Any], field: str
) -> None:
    ana = await user_with_role(api, "ana", EU.id, "contributor")
    status, answer = await call(api, "PUT", "/v1/me/availability", ana, body)
    assert status == 422, answer
    assert field in answer["error"]["message"] or answer["error"].get("field") == field
    assert (await availability(api, ana))["status"] == "offline"


async def test_without_a_token_there_is_no_availability(api: Api) -> None:
    status, _ = await call(api, "PUT", "/v1/me/availability", {}, {"status": "online"})
    assert status == 401


async def test_online_stays_online_while_a_stream_is_connected_and_goes_offline_after(
    api: Api,
) -> None:
    ana = await user_with_role(api, "ana", EU.id, "contributor")
    bob = await user_with_role(api, "bob", EU.id, "contributor")
    await choose(api, ana, "online")
    await choose(api, bob, "online")  # bob never opens a stream
    async with live_stream(api, ana):
        await asyncio.sleep(OFFLINE_AFTER_S * 3)
        assert (await availability(api, ana))["status"] == "online"
        gone = await availability(api, bob)
        assert (gone["status"], gone["auto"]) == ("offline", True)
    closed = time.monotonic()
    while (await availability(api, ana))["status"] != "offline":
        # Within the grace, one pass and a heartbeat's slack.
        assert time.monotonic() - closed < OFFLINE_AFTER_S + 2.0, "still online"
        await asyncio.sleep(0.05)
    assert (await availability(api, ana))["auto"] is True
    assert time.monotonic() - closed >= OFFLINE_AFTER_S * 0.5  # not at once: a grace


async def test_a_stream_never_makes_someone_offline_online(api: Api) -> None:
    ana = await user_with_role(api, "ana", EU.id, "contributor")
    await choose(api, ana, "online")
    await choose(api, ana, "offline")  # her choice, page still open
    async with live_stream(api, ana):
        await asyncio.sleep(OFFLINE_AFTER_S)
        got = await availability(api, ana)
        assert (got["status"], got["auto"]) == ("offline", False)


async def test_who_may_answer_on_a_channel_and_how_available(api: Api) -> None:
    ana = await user_with_role(api, "ana", EU.id, "contributor")
    await user_with_role(api, "sam", EU.id, "supervisor")
    vic = await user_with_role(api, "vic", EU.id, "viewer")
    uma = await user_with_role(api, "uma")  # no role on EU
    await choose(api, ana, "away")

    status, agents = await call(api, "GET", f"/v1/channels/{EU.id}/agents", vic)
    assert status == 200, agents
    assert [(agent["id"], agent["availability"]["status"]) for agent in agents] == [
        ("ana", "away"),
        ("sam", "offline"),
    ]
    status, body = await call(api, "GET", f"/v1/channels/{EU.id}/agents", uma)
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, _ = await call(api, "GET", f"/v1/channels/{EU.id}/agents", ADMIN)
    assert status == 200
