"""The 24-hour customer-service window and templates: free-form replies up to and
including 24 hours after the customer's last message, approved templates any time, and
Meta's template status webhooks moving registered templates. No engine runs: an accepted
reply is a 202 and one event on the topic; a refused one produces nothing."""

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp.test_utils import TestClient
from hypothesis import example, given
from hypothesis import strategies as st
from redis.asyncio import Redis

from api.window import WINDOW_S, is_open
from devstack.signing import sign
from parley.channels import Channel
from parley.events import AgentReply, decode_event
from parley.settings import Settings
from parley.state import Conversation, Queue
from store import _keys as keys
from store._codec import STATE_FIELDS, state_arguments
from tests.api_tools import ADMIN, AiohttpClient, call, put_conversation, start_api, user_with_role
from tests.clock import Clock
from tests.conftest import EU, US
from tests.kafka_tools import read_all

T0 = 1_790_000_000  # the customer's last message, in whole seconds
WA_ID = "31677777777"
CONV = f"/v1/conversations/{EU.id}/{WA_ID}"
PAYLOADS = Path(__file__).parent / "payloads"


# 1. Pure: the boundary
def test_the_window_is_24_hours() -> None:
    assert WINDOW_S == 86_400
    assert is_open(T0, T0)
    assert is_open(T0, T0 + WINDOW_S)
    assert not is_open(T0, T0 + WINDOW_S + 1)
    assert not is_open(T0, T0 + WINDOW_S + 0.001)
    assert not is_open(None, T0)


# Times on a 1/1024 s grid: sums and differences are exact, so "exactly 24 hours" is.
GRID = 1024
TIMES = st.integers(0, 4_000_000_000 * GRID).map(lambda n: n / GRID)


@given(last=TIMES, elapsed=st.integers(0, WINDOW_S * GRID).map(lambda n: n / GRID))
@example(last=float(T0), elapsed=float(WINDOW_S))
def test_open_up_to_and_including_24_hours(last: float, elapsed: float) -> None:
    assert is_open(last, last + elapsed)


@given(last=TIMES, beyond=st.integers(1, 400 * 24 * 3600 * GRID).map(lambda n: n / GRID))
@example(last=float(T0), beyond=1.0)
@example(last=float(T0), beyond=1 / GRID)
def test_closed_after_24_hours(last: float, beyond: float) -> None:
    assert not is_open(last, last + WINDOW_S + beyond)


@given(last=TIMES, first=TIMES, second=TIMES)
def test_once_closed_it_stays_closed_until_the_customer_writes(
    last: float, first: float, second: float
) -> None:
    earlier, later = sorted((first, second))
    if earlier >= last and not is_open(last, earlier):
        assert not is_open(last, later)


@given(now=st.floats(allow_nan=False, allow_infinity=False))
def test_never_open_without_a_customer_message(now: float) -> None:
    assert not is_open(None, now)


# 2. Over HTTP, with an injected clock
@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
async def api(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    channels: list[Channel],
    clock: Clock,
    redis: Redis,
) -> TestClient:  # type: ignore[type-arg]
    # No engine: an accepted action is answered 202 at once.
    return await start_api(aiohttp_client, settings, channels, action_wait_s=0, clock=clock)


@pytest.fixture
async def agent(api: TestClient) -> dict[str, str]:  # type: ignore[type-arg]
    return await user_with_role(api, "ana", EU.id, "contributor")


async def produced(settings: Settings) -> list[AgentReply]:
    records = await read_all(settings.kafka_bootstrap or "", settings.topic)
    replies = []
    for record in records:
        payload = decode_event(record.value).payload
        assert isinstance(payload, AgentReply)
        replies.append(payload)
    return replies


async def put_template(
    api: TestClient,  # type: ignore[type-arg]
    name: str,
    language: str,
    status: str = "APPROVED",
    channel: str = EU.id,
) -> None:
    answer = await call(
        api,
        "PUT",
        f"/v1/channels/{channel}/templates/{name}/{language}",
        ADMIN,
        {"category": "UTILITY", "status": status},
    )
    assert answer[0] == 200, answer


async def reply(
    api: TestClient,  # type: ignore[type-arg]
    who: dict[str, str],
    body: dict[str, Any],
    path: str = CONV,
) -> tuple[int, Any]:
    return await call(api, "POST", f"{path}/replies", who, body)


async def test_a_free_form_reply_is_accepted_at_exactly_24_hours_and_refused_a_second_later(
    api: TestClient,  # type: ignore[type-arg]
    agent: dict[str, str],
    clock: Clock,
    redis: Redis,
    settings: Settings,
) -> None:
    await put_conversation(redis, EU.id, WA_ID, Queue.OPEN, T0)
    clock.now = T0 + WINDOW_S
    status, body = await reply(api, agent, {"text": "Sorry for the wait"})
    assert status == 202, body
    assert body["status_url"] == f"{CONV}/actions/{body['event_id']}"
    [sent] = await produced(settings)
    assert (sent.text, sent.template, sent.actor.user) == ("Sorry for the wait", None, "ana")

    clock.now = T0 + WINDOW_S + 1
    status, body = await reply(api, agent, {"text": "Anyone there?"})
    assert status == 409
    assert body["error"]["code"] == "template_required"
    assert "template" in body["error"]["message"]
    assert await produced(settings) == [sent]  # nothing more


async def test_a_conversation_the_customer_never_wrote_in_takes_no_free_form_reply(
    api: TestClient,  # type: ignore[type-arg]
    agent: dict[str, str],
    redis: Redis,
    settings: Settings,
) -> None:
    state = Conversation(queue=Queue.OPEN, last_activity_at=T0, opened_at=T0)
    fields: dict[Any, Any] = {
        n: v for n, v in zip(STATE_FIELDS, state_arguments(state), strict=True) if v
    }
    assert "lc" not in fields  # the customer never wrote
    await redis.hset(keys.conversation(EU.id, WA_ID), mapping={**fields, "v": 1})
    status, body = await reply(api, agent, {"text": "Hello"})
    assert (status, body["error"]["code"]) == (409, "template_required")
    await put_template(api, "welcome", "en_US")
    status, body = await reply(api, agent, {"template": "welcome"})
    assert status == 202, body
    [sent] = await produced(settings)
    assert (sent.template, sent.language, sent.text) == ("welcome", "en_US", None)


async def test_an_approved_template_is_accepted_outside_the_window(
    api: TestClient,  # type: ignore[type-arg]
    agent: dict[str, str],
    clock: Clock,
    redis: Redis,
    settings: Settings,
) -> None:
    await put_conversation(redis, EU.id, WA_ID, Queue.PENDING, T0)
    await put_template(api, "order_update", "en_US")
    clock.now = T0 + 30 * 24 * 3600
    status, body = await reply(api, agent, {"template": "order_update"})
    assert status == 202, body
    status, body = await reply(api, agent, {"template": "order_update", "language": "en_US"})
    assert status == 202, body
    sent = await produced(settings)
    # The language is inferred when the template has only one.
    assert [(s.template, s.language, s.text) for s in sent] == [("order_update", "en_US", None)] * 2


@pytest.mark.parametrize(
    ("registered", "body", "field"),
    [
        ([], {"template": "order_update", "language": "en_US"}, "template"),
        ([], {"template": "order_update"}, "template"),
        ([("order_update", "nl")], {"template": "order_update", "language": "en_US"}, "template"),
        ([("order_update", "en_US", "PENDING")], {"template": "order_update"}, "template"),
        ([("order_update", "en_US", "REJECTED")], {"template": "order_update"}, "template"),
        ([("order_update", "en_US", "PAUSED")], {"template": "order_update"}, "template"),
        ([("order_update", "en_US", "DISABLED")], {"template": "order_update"}, "template"),
        (
            [("order_update", "en_US"), ("order_update", "nl")],
            {"template": "order_update"},
            "language",
        ),
        # Another channel's template is not this channel's.
        ([("order_update", "en_US", "APPROVED", US.id)], {"template": "order_update"}, "template"),
    ],
)
async def test_a_template_must_be_registered_approved_and_unambiguous(
    api: TestClient,  # type: ignore[type-arg]
    agent: dict[str, str],
    clock: Clock,
    redis: Redis,
    settings: Settings,
    registered: list[tuple[str, ...]],
    body: dict[str, str],
    field: str,
) -> None:
    await put_conversation(redis, EU.id, WA_ID, Queue.OPEN, T0)
    for template in registered:
        await put_template(api, *template)
    for now in (T0 + 60, T0 + 2 * WINDOW_S):  # inside the window and outside it
        clock.now = now
        status, answer = await reply(api, agent, body)
        assert status == 422, answer
        assert (answer["error"]["code"], answer["error"]["field"]) == ("invalid_field", field)
        assert body["template"] in answer["error"]["message"]
    assert await produced(settings) == []


async def test_naming_the_language_resolves_an_ambiguous_template(
    api: TestClient,  # type: ignore[type-arg]
    agent: dict[str, str],
    clock: Clock,
    redis: Redis,
    settings: Settings,
) -> None:
    await put_conversation(redis, EU.id, WA_ID, Queue.OPEN, T0)
    await put_template(api, "order_update", "en_US")
    await put_template(api, "order_update", "nl", "REJECTED")
    clock.now = T0 + 2 * WINDOW_S
    assert (await reply(api, agent, {"template": "order_update"}))[0] == 422
    status, _ = await reply(api, agent, {"template": "order_update", "language": "nl"})
    assert status == 422
    status, body = await reply(api, agent, {"template": "order_update", "language": "en_US"})
    assert status == 202, body
    assert [(s.template, s.language) for s in await produced(settings)] == [
        ("order_update", "en_US")
    ]


# 3. Template status webhooks
def status_update(name: str, language: str, event: str, reason: str | None) -> bytes:
    payload = json.loads((PAYLOADS / "template_status_update.json").read_text())
    value = payload["entry"][0]["changes"][0]["value"]
    value.update(
        {
            "event": event,
            "message_template_name": name,
            "message_template_language": language,
            "reason": reason,
        }
    )
    return json.dumps(payload).encode()


async def post_signed(
    api: TestClient,  # type: ignore[type-arg]
    body: bytes,
    secret: str,
) -> tuple[int, Any]:
    response = await api.post(
        "/webhooks/whatsapp", data=body, headers={"X-Hub-Signature-256": sign(body, secret)}
    )
    return response.status, await response.json()


async def templates_of(
    api: TestClient,  # type: ignore[type-arg]
    channel: str = EU.id,
) -> dict[tuple[str, str], tuple[str, str | None, float]]:
    status, body = await call(api, "GET", f"/v1/channels/{channel}/templates", ADMIN)
    assert status == 200, body
    return {
        (t["name"], t["language"]): (t["status"], t["reason"], t["updated_at"])
        for t in body["templates"]
    }


async def test_status_webhooks_move_registered_templates_only(
    api: TestClient,  # type: ignore[type-arg]
    agent: dict[str, str],
    clock: Clock,
    redis: Redis,
    settings: Settings,
) -> None:
    await put_template(api, "order_confirmation", "en_US")
    await put_template(api, "order_confirmation", "nl")
    await put_template(api, "order_confirmation", "en_US", channel=US.id)
    await put_template(api, "welcome", "en_US", "PENDING")
    before = await templates_of(api)
    assert before[("order_confirmation", "en_US")] == ("APPROVED", None, T0)

    clock.now = T0 + 100
    body = status_update("order_confirmation", "en_US", "REJECTED", "INCORRECT_CATEGORY")
    assert await post_signed(api, body, EU.app_secret) == (200, {"accepted": 0, "dead_lettered": 0})
    after = await templates_of(api)
    assert after[("order_confirmation", "en_US")] == ("REJECTED", "INCORRECT_CATEGORY", T0 + 100)
    # The other language and the other template are left alone.
    assert after[("order_confirmation", "nl")] == before[("order_confirmation", "nl")]
    assert after[("welcome", "en_US")] == before[("welcome", "en_US")]
    # Templates belong to the business account: every channel that has it follows.
    assert (await templates_of(api, US.id))[("order_confirmation", "en_US")][:2] == (
        "REJECTED",
        "INCORRECT_CATEGORY",
    )
    # A rejected template can no longer be sent.
    await put_conversation(redis, EU.id, WA_ID, Queue.OPEN, T0)
    status, answer = await reply(
        api, agent, {"template": "order_confirmation", "language": "en_US"}
    )
    assert (status, answer["error"]["field"]) == (422, "template")
    assert "REJECTED" in answer["error"]["message"]

    clock.now = T0 + 200
    body = status_update("order_confirmation", "en_US", "PAUSED", None)
    assert (await post_signed(api, body, US.app_secret))[0] == 200
    assert (await templates_of(api))[("order_confirmation", "en_US")] == (
        "PAUSED",
        None,
        T0 + 200,
    )

    clock.now = T0 + 300
    body = status_update("order_confirmation", "en_US", "APPROVED", "NONE")
    assert (await post_signed(api, body, EU.app_secret))[0] == 200
    assert (await templates_of(api))[("order_confirmation", "en_US")] == (
        "APPROVED",
        None,
        T0 + 300,
    )
    status, answer = await reply(
        api, agent, {"template": "order_confirmation", "language": "en_US"}
    )
    assert status == 202, answer

    # Templates never registered are not created by a webhook.
    settled = await templates_of(api)
    for name, language in [("never_registered", "en_US"), ("welcome", "de")]:
        body = status_update(name, language, "APPROVED", "NONE")
        assert (await post_signed(api, body, EU.app_secret))[0] == 200
    assert await templates_of(api) == settled


async def test_an_unsigned_status_webhook_changes_nothing(
    api: TestClient,  # type: ignore[type-arg]
    clock: Clock,
) -> None:
    await put_template(api, "order_confirmation", "en_US")
    before = await templates_of(api)
    clock.now = T0 + 100
    body = status_update("order_confirmation", "en_US", "REJECTED", "INCORRECT_CATEGORY")
    assert (await post_signed(api, body, "not-a-known-app-secret"))[0] == 401
    response = await api.post("/webhooks/whatsapp", data=body)
    assert response.status == 401
    assert await templates_of(api) == before


async def test_the_sample_payload_approves_a_pending_template(
    api: TestClient,  # type: ignore[type-arg]
    clock: Clock,
) -> None:
    await put_template(api, "order_confirmation", "en_US", "PENDING")
    clock.now = T0 + 5
    body = (PAYLOADS / "template_status_update.json").read_bytes()
    assert (await post_signed(api, body, EU.app_secret))[0] == 200
    assert await templates_of(api) == {("order_confirmation", "en_US"): ("APPROVED", None, T0 + 5)}
    assert msgspec.json.decode(body)["entry"][0]["changes"][0]["value"]["reason"] == "NONE"
