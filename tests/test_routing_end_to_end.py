"""Routing through the real stack: signed webhooks into the receiver, a real broker, the
engine (its consumer, sweeper and router) and a real redis-server; agents and admins act
through the /v1 API.

The sweep runs every 30 s here, so the router's interval pass comes every 15 s: what
happens within a second happened because something woke the router (the consumer, or
the API over pub/sub), not because a periodic scan came by. The reassignment of an
unanswered conversation is a timer: tests/test_timers_end_to_end.py."""

import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest

from tests.api_tools import ADMIN, call, user_with_role
from tests.conftest import EU
from tests.http_tools import post_message
from tests.kafka_tools import eventually
from tests.rich_tools import Stack, new_phone, new_wamid, running

OFFLINE_AFTER_S = 2.0
# What "at once" means here: far below the router's 15 s interval pass.
AT_ONCE_S = 3.0


@pytest.fixture(scope="module")
async def stack(kafka_bootstrap: str, redis_url: str) -> AsyncIterator[Stack]:
    async with running(
        kafka_bootstrap,
        redis_url,
        "local",
        sweep_interval_s=30.0,
        offline_after_s=OFFLINE_AFTER_S,
    ) as stack:
        yield stack


@pytest.fixture(scope="module")
async def bo(stack: Stack) -> dict[str, str]:
    return await user_with_role(stack.api, "bo", EU.id, "contributor")


@pytest.fixture(autouse=True)
async def routing_off_and_everyone_offline(stack: Stack, bo: dict[str, str]) -> None:
    """Each test starts with routing off, nobody online and nothing held."""
    await routing(stack, None)
    for who in (stack.ana, bo, stack.vic):
        await availability(stack, who, "offline")


async def routing(stack: Stack, settings: dict[str, Any] | None) -> None:
    status, body = await call(
        stack.api, "PATCH", f"/v1/channels/{EU.id}", ADMIN, {"routing": settings}
    )
    assert status == 200, body


async def availability(stack: Stack, who: dict[str, str], status: str) -> dict[str, Any]:
    code, body = await call(stack.api, "PUT", "/v1/me/availability", who, {"status": status})
    assert code == 200, body
    return dict(body)


async def conversation(stack: Stack, phone: str) -> dict[str, Any] | None:
    status, body = await call(stack.api, "GET", f"/v1/conversations/{EU.id}/{phone}", ADMIN)
    return body if status == 200 else None


async def writes(stack: Stack, text: str = "Hello", ago_s: int = 0) -> str:
    """A new customer writes (`ago_s` seconds ago: WhatsApp's times are whole seconds)."""
    phone = new_phone()
    await post_message(stack.api, EU, phone, new_wamid(), int(time.time()) - ago_s, text)
    return phone


async def held_by(stack: Stack, phone: str, who: str | None, timeout_s: float = AT_ONCE_S) -> float:
    """Wait until `phone`'s conversation is held by `who` (None: waiting in New); when
    that was seen."""

    async def seen() -> bool:
        found = await conversation(stack, phone)
        if found is None:
            return False
        return found["assignee"] == who and found["queue"] == ("open" if who else "new")

    await eventually(seen, timeout_s=timeout_s)
    return time.time()


async def agents(stack: Stack) -> dict[str, dict[str, Any]]:
    status, body = await call(stack.api, "GET", f"/v1/channels/{EU.id}/agents", stack.ana)
    assert status == 200, body
    return {agent["id"]: agent for agent in body}


async def test_new_conversations_go_to_the_least_loaded_online_agent(
    stack: Stack, bo: dict[str, str]
) -> None:
    # Before routing, bo answers one: assigned on reply, he holds it.
    first = await writes(stack)
    await eventually(lambda: conversation(stack, first), timeout_s=10)
    status, body = await call(
        stack.api, "POST", f"/v1/conversations/{EU.id}/{first}/replies", bo, {"text": "Hi"}
    )
    assert status == 200, body
    await routing(stack, {"capacity": 3})
    await availability(stack, stack.ana, "online")
    await availability(stack, bo, "online")
    await availability(stack, stack.vic, "online")  # a viewer: never handed anything

    second = await writes(stack)
    await held_by(stack, second, "ana")  # 0 against bo's 1
    third = await writes(stack)
    # 1 each: the longest idle (bo, handed his before routing was on).
    await held_by(stack, third, "bo")
    team = await agents(stack)
    assert {name: (team[name]["open"], team[name]["capacity"]) for name in ("ana", "bo")} == {
        "ana": (1, 3),
        "bo": (2, 3),
    }
    assert team["ana"]["availability"]["status"] == "online"
    assert "vic" not in team
    for phone in (first, second, third):
        await call(stack.api, "POST", f"/v1/conversations/{EU.id}/{phone}/move", ADMIN,
                   {"queue": "resolved"})  # fmt: skip


async def test_a_backlog_drains_the_moment_capacity_frees(stack: Stack) -> None:
    await routing(stack, {"capacity": 1})
    await availability(stack, stack.ana, "online")
    phones = []
    for ago in (30, 20, 10):  # the oldest first, each cycle a distinct second
        phones.append(await writes(stack, ago_s=ago))
        await eventually(lambda: conversation(stack, phones[-1]), timeout_s=10)
    await held_by(stack, phones[0], "ana")
    for waiting in phones[1:]:
        assert (await conversation(stack, waiting) or {})["queue"] == "new"
    for held, following in zip(phones, [*phones[1:], None], strict=True):
        started = time.time()
        status, body = await call(
            stack.api, "POST", f"/v1/conversations/{EU.id}/{held}/move", stack.ana,
            {"queue": "resolved"},
        )  # fmt: skip
        assert status == 200, body
        if following is not None:
            # The oldest waiting, at once: the consumer woke the router.
            assert await held_by(stack, following, "ana") - started < AT_ONCE_S


async def test_going_offline_releases_what_was_not_answered(
    stack: Stack, bo: dict[str, str]
) -> None:
    await routing(stack, {"capacity": 2})
    await availability(stack, stack.ana, "online")
    answered, unanswered = await writes(stack), await writes(stack)
    await held_by(stack, answered, "ana")
    await held_by(stack, unanswered, "ana")
    status, body = await call(
        stack.api, "POST", f"/v1/conversations/{EU.id}/{answered}/replies", stack.ana,
        {"text": "On it"},
    )  # fmt: skip
    assert status == 200, body

    # ana says she is offline: the API wakes the routers over pub/sub.
    went = time.time()
    await availability(stack, stack.ana, "offline")
    released = await held_by(stack, unanswered, None)
    assert released - went < AT_ONCE_S
    view = await conversation(stack, unanswered)
    assert view is not None
    assert view["messages"][-1]["preview"] == "Released from ana: went offline"
    assert (await conversation(stack, answered) or {})["assignee"] == "ana"  # answered: kept
    await availability(stack, bo, "online")
    await held_by(stack, unanswered, "bo")  # back in the pool, to whoever is online
    for phone in (answered, unanswered):
        await call(stack.api, "POST", f"/v1/conversations/{EU.id}/{phone}/move", ADMIN,
                   {"queue": "resolved"})  # fmt: skip


async def test_an_agent_with_no_live_stream_goes_offline_and_is_released_within_60_s(
    stack: Stack,
) -> None:
    await routing(stack, {"capacity": 2})
    await availability(stack, stack.ana, "online")  # and never opens a stream
    phone = await writes(stack)
    await held_by(stack, phone, "ana")
    released = await held_by(stack, phone, None, timeout_s=60 + OFFLINE_AFTER_S)
    status, now = await call(stack.api, "GET", "/v1/me/availability", stack.ana)
    assert status == 200 and now["status"] == "offline" and now["auto"], now
    went_offline = datetime.fromisoformat(now["since"]).timestamp()
    assert released - went_offline < 60
    print(f"released {released - went_offline:.1f} s after going offline")
    await call(stack.api, "POST", f"/v1/conversations/{EU.id}/{phone}/move", ADMIN,
               {"queue": "resolved"})  # fmt: skip


async def test_a_customer_back_on_an_offline_agents_pending_one_releases_it(
    stack: Stack, bo: dict[str, str]
) -> None:
    await routing(stack, {"capacity": 2})
    await availability(stack, stack.ana, "online")
    phone = await writes(stack)
    await held_by(stack, phone, "ana")
    path = f"/v1/conversations/{EU.id}/{phone}"
    status, body = await call(stack.api, "POST", f"{path}/replies", stack.ana, {"text": "Hi"})
    assert status == 200, body
    status, body = await call(stack.api, "POST", f"{path}/move", stack.ana, {"queue": "pending"})
    assert status == 200, body
    await availability(stack, stack.ana, "offline")
    await availability(stack, bo, "online")
    # Answered and pending: ana keeps it while the customer is quiet.
    assert (await conversation(stack, phone) or {})["assignee"] == "ana"

    wrote = time.time()
    await post_message(stack.api, EU, phone, new_wamid(), int(wrote), "Any news?")
    assert await held_by(stack, phone, "bo") - wrote < AT_ONCE_S  # released, then routed
    view = await conversation(stack, phone)
    assert view is not None
    previews = [message["preview"] for message in view["messages"]]
    assert "Released from ana: the customer wrote while they were offline" in previews
    await call(stack.api, "POST", f"{path}/move", ADMIN, {"queue": "resolved"})


async def test_routing_settings_are_checked_and_named(stack: Stack) -> None:
    for bad, field in (
        ({"capacity": 0}, "routing.capacity"),
        ({"reassign_after_s": 0}, "routing.reassign_after_s"),
        ({"capacity": "five"}, "routing.capacity"),
        ({"every": 1}, "routing"),
    ):
        status, body = await call(
            stack.api, "PATCH", f"/v1/channels/{EU.id}", ADMIN, {"routing": bad}
        )
        assert status == 422, body
        assert field in str(body), body
    status, body = await call(stack.api, "GET", f"/v1/channels/{EU.id}", ADMIN)
    assert body["routing"] is None  # nothing half-applied
