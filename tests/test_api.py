"""The /v1 API end to end: receiver and engine apps, a real broker, a real redis-server."""

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from engine.app import create_app as create_engine
from parley.channels import Channel
from parley.settings import Settings
from parley.state import Queue
from store.channels import load_channel_settings
from tests.api_tools import (
    ADMIN,
    AiohttpClient,
    call,
    put_conversation,
    start_api,
    start_engine,
    user_with_role,
)
from tests.conftest import EU, US
from tests.http_tools import post_message

T0 = int(time.time()) - 600


@pytest.fixture
async def engine(
    aiohttp_client: AiohttpClient, settings: Settings, channels: list[Channel], redis: Redis
) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    yield await start_engine(aiohttp_client, settings, channels)


@pytest.fixture
async def api(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    channels: list[Channel],
    engine: TestClient,  # type: ignore[type-arg]
) -> TestClient:  # type: ignore[type-arg]
    return await start_api(aiohttp_client, settings, channels)


async def wait_for(api: TestClient, path: str, headers: dict[str, str]) -> dict:  # type: ignore[type-arg]
    for _ in range(200):
        status, body = await call(api, "GET", path, headers)
        if status == 200:
            return body  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


@pytest.mark.parametrize(("channel", "assigned"), [(EU, True), (US, False)])
async def test_a_contributors_reply_assigns_them_when_the_channel_auto_assigns(
    api: TestClient,  # type: ignore[type-arg]
    channel: Channel,
    assigned: bool,
) -> None:
    ana = await user_with_role(api, "ana", channel.id, "contributor")
    await post_message(api, channel, "31611111111", "wamid.A1", T0)
    path = f"/v1/conversations/{channel.id}/31611111111"
    before = await wait_for(api, path, ana)
    assert (before["queue"], before["assignee"]) == ("new", None)

    status, answer = await call(api, "POST", f"{path}/replies", ana, {"text": "Hello!"})
    assert status == 200, answer
    assert answer["outcome"] == "applied"
    conversation = answer["conversation"]
    if assigned:
        assert (conversation["queue"], conversation["assignee"]) == ("open", "ana")
    else:
        assert (conversation["queue"], conversation["assignee"]) == ("new", None)
    reply = conversation["messages"][-1]
    assert (reply["direction"], reply["text"], reply["user"]) == ("outbound", "Hello!", "ana")
    assert conversation["messages"][0]["text"] == "Hi, where is my order?"


async def test_a_refused_action_is_a_409_with_the_engines_reason(
    api: TestClient,  # type: ignore[type-arg]
) -> None:
    ana = await user_with_role(api, "ana", EU.id, "contributor")
    await post_message(api, EU, "31622222222", "wamid.B1", T0)
    path = f"/v1/conversations/{EU.id}/31622222222"
    await wait_for(api, path, ana)
    status, answer = await call(api, "POST", f"{path}/move", ana, {"queue": "resolved"})
    assert status == 200 and answer["conversation"]["queue"] == "resolved"
    status, answer = await call(api, "PUT", f"{path}/assignee", ana, {"user": "ana"})
    assert status == 409
    assert answer["error"] == {
        "code": "rejected",
        "message": "resolved conversations have no assignee",
    }
    status, answer = await call(api, "POST", f"{path}/move", ana, {"queue": "resolved"})
    assert (status, answer["outcome"], answer["reason"]) == (200, "ignored", "already resolved")


async def test_annotations_show_on_the_conversation(
    api: TestClient,  # type: ignore[type-arg]
) -> None:
    viewer = await user_with_role(api, "vic", EU.id, "viewer")
    await post_message(api, EU, "31633333333", "wamid.C1", T0)
    path = f"/v1/conversations/{EU.id}/31633333333"
    await wait_for(api, path, viewer)
    for suffix, body in [
        ("tags", {"tag": "vip"}),
        ("topics", {"topic": "billing"}),
        ("notes", {"text": "Called them back"}),
        ("move", {"queue": "pending"}),
    ]:
        status, answer = await call(api, "POST", f"{path}/{suffix}", viewer, body)
        assert status == 200, answer
    conversation = answer["conversation"]
    assert conversation["queue"] == "pending"
    assert (conversation["tags"], conversation["topics"]) == (["vip"], ["billing"])
    assert [(n["user"], n["text"]) for n in conversation["notes"]] == [("vic", "Called them back")]


async def test_without_the_engine_an_action_is_accepted_and_can_be_followed(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    channels: list[Channel],
    redis: Redis,
) -> None:
    api = await start_api(aiohttp_client, settings, channels, action_wait_s=0.2)
    ana = await user_with_role(api, "ana", EU.id, "contributor")
    await put_conversation(redis, EU.id, "31644444444", Queue.NEW, T0)
    path = f"/v1/conversations/{EU.id}/31644444444"
    status, answer = await call(api, "POST", f"{path}/tags", ana, {"tag": "later"})
    assert status == 202, answer
    status, followed = await call(api, "GET", answer["status_url"], ana)
    assert (status, followed["status"]) == (200, "pending")

    engine = await aiohttp_client(create_engine(settings, channels))
    for _ in range(200):
        status, followed = await call(api, "GET", answer["status_url"], ana)
        if followed["status"] != "pending":
            break
        await asyncio.sleep(0.05)
    assert followed == {"event_id": answer["event_id"], "status": "applied", "reason": None}
    await engine.close()


async def test_an_admin_sets_a_channels_send_rate(
    aiohttp_client: AiohttpClient, settings: Settings, channels: list[Channel], redis: Redis
) -> None:
    api = await start_api(aiohttp_client, settings, channels)
    path = f"/v1/channels/{EU.id}"
    status, body = await call(api, "PATCH", path, ADMIN, {"send_rate": 5})
    assert (status, body["send_rate"]) == (200, 5)
    assert (await load_channel_settings(redis, EU.id)).send_rate == 5  # type: ignore[union-attr]
    status, body = await call(api, "PATCH", path, ADMIN, {"send_rate": None})
    assert (status, body["send_rate"]) == (200, None)
    status, body = await call(api, "PATCH", path, ADMIN, {"send_rate": 0})
    assert (status, body["error"]["field"]) == (422, "send_rate")
    assert (await load_channel_settings(redis, EU.id)).send_rate is None  # type: ignore[union-attr]
