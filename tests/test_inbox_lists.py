"""What an agent's inbox lists besides a queue's pages (api/inbox_lists.py): the queue
counts, the search by phone, BSUID, username or name, and the channel's saved replies.

Customers write signed webhooks to the real receiver, the engine applies them through a
real broker into a real redis-server, agents act through the /v1 API: one stack for the
module (tests/test_customers.py's), each test with customers of its own.
"""

import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from devstack.graph_standin import new_wamid
from devstack.samples import text_message
from devstack.signing import sign
from parley.channels import Channel
from parley.redis import connect_redis
from tests.api_tools import ADMIN, call, user_with_role
from tests.conftest import EU, US
from tests.test_customers import OTHER, Stack, eventually, running

Api = TestClient  # type: ignore[type-arg]
WEBHOOK = "/webhooks/whatsapp"


@pytest.fixture(scope="module")
async def stack(kafka_bootstrap: str, redis_url: str) -> AsyncIterator[Stack]:
    client = connect_redis(redis_url)
    await client.flushdb()
    await client.aclose()
    async with running(kafka_bootstrap, redis_url) as stack:
        yield stack


def digits(count: int) -> str:
    return "".join(str(secrets.randbelow(10)) for _ in range(count))


def new_phone() -> str:
    return "3198" + digits(8)


async def writes(
    stack: Stack,
    phone: str | None,
    name: str,
    *,
    channel: Channel = EU,
    user_id: str | None = None,
    username: str | None = None,
    text: str = "Hello",
) -> None:
    """A customer's text message, signed as Meta signs it."""
    body = text_message(
        channel.id,
        phone,
        new_wamid(),
        text,
        int(time.time()),
        name,
        user_id=user_id,
        username=username,
    )
    raw = json.dumps(body).encode()
    response = await stack.api.post(
        WEBHOOK, data=raw, headers={"X-Hub-Signature-256": sign(raw, channel.app_secret)}
    )
    assert response.status == 200, await response.text()


async def shown(stack: Stack, channel: Channel, identifier: str, **fields: Any) -> dict[str, Any]:
    """The conversation once the engine applied it (with these fields, if given)."""

    async def read() -> Any:
        path = f"/v1/conversations/{channel.id}/{identifier}"
        status, body = await call(stack.api, "GET", path, ADMIN)
        return body if status == 200 else None

    view: dict[str, Any] = await eventually(
        read,
        lambda v: v is not None and all(v["customer"].get(k) == x for k, x in fields.items()),
    )
    return view


async def act(stack: Stack, channel: Channel, customer: str, action: str, body: Any) -> None:
    path = f"/v1/conversations/{channel.id}/{customer}/{action}"
    status, answer = await call(stack.api, "POST", path, stack.ana, body)
    assert status in (200, 202), answer


# Queue counts


async def counts(stack: Stack, channel: Channel, headers: dict[str, str] = ADMIN) -> Any:
    status, body = await call(stack.api, "GET", f"/v1/channels/{channel.id}/queues", headers)
    assert status == 200, body
    return body


async def test_queue_counts_follow_applied_events(stack: Stack) -> None:
    """On a channel of its own (OTHER): every count, after each step the engine applies."""
    channel = OTHER
    viewer = await user_with_role(stack.api, f"vic-{uuid.uuid4().hex[:6]}", channel.id, "viewer")
    assert await counts(stack, channel, viewer) == {
        "new": 0,
        "open": 0,
        "pending": 0,
        "resolved": 0,
    }

    async def until(expected: dict[str, int]) -> None:
        await eventually(lambda: counts(stack, channel, viewer), lambda c: c == expected)

    ann, bob = new_phone(), new_phone()
    await writes(stack, ann, "Ann", channel=channel)
    await until({"new": 1, "open": 0, "pending": 0, "resolved": 0})
    await writes(stack, bob, "Bob", channel=channel)
    await writes(stack, ann, "Ann", channel=channel, text="Still there?")  # no new one
    await until({"new": 2, "open": 0, "pending": 0, "resolved": 0})
    await act(stack, channel, ann, "replies", {"text": "Yes!"})  # ann's is taken: open
    await until({"new": 1, "open": 1, "pending": 0, "resolved": 0})
    await act(stack, channel, ann, "move", {"queue": "pending"})
    await until({"new": 1, "open": 0, "pending": 1, "resolved": 0})
    await act(stack, channel, bob, "move", {"queue": "resolved"})
    await until({"new": 0, "open": 0, "pending": 1, "resolved": 1})
    await writes(stack, ann, "Ann", channel=channel, text="Any news?")  # pending: open again
    await until({"new": 0, "open": 1, "pending": 0, "resolved": 1})
    await writes(stack, bob, "Bob", channel=channel, text="One more thing")  # a new cycle
    await until({"new": 1, "open": 1, "pending": 0, "resolved": 0})
    # Each count is the length of its queue's list.
    for queue, size in (await counts(stack, channel)).items():
        path = f"/v1/channels/{channel.id}/conversations?queue={queue}"
        status, page = await call(stack.api, "GET", path, ADMIN)
        assert (status, len(page["conversations"])) == (200, size), queue


# Search


async def search(stack: Stack, q: str, channel: Channel = EU, **params: Any) -> list[str]:
    """The phone (else the id) of each conversation found, in the order answered."""
    path = f"/v1/channels/{channel.id}/search"
    status, body = await call(stack.api, "GET", path, stack.ana, q=q, **params)
    assert status == 200, body
    return [c["customer"]["phone"] or c["customer"]["id"] for c in body["conversations"]]


async def test_search_finds_a_customer_by_phone_bsuid_and_username(stack: Stack) -> None:
    tag = digits(6)
    phone, bsuid, username = new_phone(), f"NL.{digits(20)}", f"@searchme{tag}"
    await writes(stack, phone, f"Quinn {tag}", user_id=bsuid, username=username)
    view = await shown(stack, EU, phone, username=username)
    customer = view["customer"]["id"]
    for q in (phone, bsuid, username, username.removeprefix("@"), customer):
        assert await search(stack, q) == [phone], q
    path = f"/v1/channels/{EU.id}/search"
    status, body = await call(stack.api, "GET", path, stack.ana, q=bsuid)
    assert status == 200, body
    [found] = body["conversations"]
    assert found["customer"] == view["customer"]
    assert (found["queue"], found["preview"]) == ("new", "Hello")
    # Exact only for identifiers: a part of a phone or BSUID finds nobody.
    assert await search(stack, phone[:-1]) == []
    assert await search(stack, bsuid[:-2]) == []
    # Per channel: not on another one.
    assert await search(stack, phone, US) == []


async def test_search_finds_the_start_of_a_name_or_username_case_folded(stack: Stack) -> None:
    tag = digits(6)  # every name starts with something of this test's own
    people = {
        "zoe": (new_phone(), f"Zoë{tag} Ångström", None),
        "zoltan": (new_phone(), f"Zoltan{tag}", None),
        "omega": (new_phone(), f"Ωmega{tag} Ltd", None),
        "li": (new_phone(), f"李{tag}小龍", None),
        "handle": (new_phone(), f"Kim{tag}", f"@straße{tag}"),
    }
    for phone, name, username in people.values():
        await writes(stack, phone, name, username=username)
    for phone, name, _ in people.values():
        await shown(stack, EU, phone, name=name)

    def phones(*names: str) -> set[str]:
        return {people[name][0] for name in names}

    cases = {
        f"zoë{tag}": phones("zoe"),
        f"ZOË{tag} å": phones("zoe"),
        f"Zoë{tag} Ångström": phones("zoe"),
        f"ΩMEGA{tag}": phones("omega"),
        f"ωmega{tag} l": phones("omega"),
        f"李{tag}": phones("li"),
        f"zoltan{tag}": phones("zoltan"),
        f"  Zoltan{tag}  ": phones("zoltan"),  # spaces around are not part of it
        f"straße{tag}": phones("handle"),  # the username, without its @
        f"@STRASSE{tag}": phones("handle"),  # ... with it; ß folds to ss
        f"kim{tag}": phones("handle"),
    }
    for q, expected in cases.items():
        assert set(await search(stack, q)) == expected, q
    found = set(await search(stack, "zo", limit=50))
    assert phones("zoe", "zoltan") <= found
    assert phones("omega", "li", "handle").isdisjoint(found)
    # Not the start of a name: not found by it.
    assert phones("omega").isdisjoint(await search(stack, "ltd"))
    assert phones("zoe").isdisjoint(await search(stack, "ångström"))
    assert await search(stack, f"nobody{tag}") == []


async def test_search_honours_the_limit(stack: Stack) -> None:
    tag = digits(6)
    phones = [new_phone() for _ in range(4)]
    for phone in phones:
        await writes(stack, phone, f"Limit{tag}")
    for phone in phones:
        await shown(stack, EU, phone)
    assert sorted(await search(stack, f"limit{tag}")) == sorted(phones)
    assert len(await search(stack, f"limit{tag}", limit=2)) == 2
    for bad in ({"limit": 0}, {"limit": 51}, {"q": ""}, {"q": "x" * 129}):
        params = {"q": "limit", **bad}
        status, body = await call(
            stack.api, "GET", f"/v1/channels/{EU.id}/search", stack.ana, **params
        )
        assert (status, body["error"]["code"]) == (400, "invalid_parameter"), bad


async def test_a_renamed_customer_is_found_under_the_new_name_only(stack: Stack) -> None:
    tag = digits(6)
    phone = new_phone()
    await writes(stack, phone, f"Oldname{tag}", username=f"@oldhandle{tag}")
    await shown(stack, EU, phone, name=f"Oldname{tag}")
    assert await search(stack, f"oldname{tag}") == [phone]
    await writes(stack, phone, f"Newname{tag}", username=f"@newhandle{tag}", text="It's me")
    await shown(stack, EU, phone, name=f"Newname{tag}", username=f"@newhandle{tag}")
    assert await search(stack, f"newname{tag}") == [phone]
    assert await search(stack, f"newhandle{tag}") == [phone]
    assert await search(stack, f"@newhandle{tag}") == [phone]
    assert await search(stack, f"oldname{tag}") == []
    assert await search(stack, f"oldhandle{tag}") == []
    assert await search(stack, f"@oldhandle{tag}") == []


# Saved replies


def saved(channel: Channel, name: str = "") -> str:
    path = f"/v1/channels/{channel.id}/saved-replies"
    return f"{path}/{name}" if name else path


async def test_saved_replies_are_kept_listed_and_forgotten(stack: Stack) -> None:
    api, channel = stack.api, US
    viewer = await user_with_role(api, f"val-{uuid.uuid4().hex[:6]}", channel.id, "viewer")
    assert await call(api, "GET", saved(channel), viewer) == (200, {"saved_replies": []})

    for name, text in [
        ("welcome", "Hi! How can we help?"),
        ("Refund policy", "  Refunds take 5 days.\n"),
        ("a.b-c_d 1", "Bye 👋"),
        ("ünïcode", "Ça marche"),
    ]:
        status, body = await call(api, "PUT", saved(channel, name), ADMIN, {"text": text})
        assert (status, body) == (200, {"name": name, "text": text.strip()}), name
    status, body = await call(api, "PUT", saved(channel, "welcome"), ADMIN, {"text": "Hello!"})
    assert status == 200, body  # kept again: replaced
    expected = [
        {"name": "Refund policy", "text": "Refunds take 5 days."},
        {"name": "a.b-c_d 1", "text": "Bye 👋"},
        {"name": "welcome", "text": "Hello!"},
        {"name": "ünïcode", "text": "Ça marche"},
    ]
    assert await call(api, "GET", saved(channel), viewer) == (200, {"saved_replies": expected})
    assert await call(api, "GET", saved(EU), ADMIN) == (200, {"saved_replies": []})  # per channel

    # Viewers list them; only admins keep or forget them.
    status, body = await call(api, "PUT", saved(channel, "welcome"), viewer, {"text": "Mine"})
    assert (status, body["error"]["code"]) == (403, "forbidden")
    status, body = await call(api, "DELETE", saved(channel, "welcome"), viewer)
    assert (status, body["error"]["code"]) == (403, "forbidden")

    assert await call(api, "DELETE", saved(channel, "welcome"), ADMIN) == (204, None)
    status, body = await call(api, "DELETE", saved(channel, "welcome"), ADMIN)
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, body = await call(api, "GET", saved(channel), viewer)
    assert [reply["name"] for reply in body["saved_replies"]] == [
        "Refund policy",
        "a.b-c_d 1",
        "ünïcode",
    ]


@pytest.mark.parametrize("text", ["", " ", "\n\t ", "x" * 4097])
async def test_a_blank_saved_reply_is_422(stack: Stack, text: str) -> None:
    status, body = await call(stack.api, "PUT", saved(EU, "blank"), ADMIN, {"text": text})
    assert (status, body["error"]["code"]) == (422, "invalid_field"), body
    assert body["error"]["field"] == "text", body
    status, body = await call(stack.api, "GET", saved(EU), ADMIN)
    assert "blank" not in [reply["name"] for reply in body["saved_replies"]]


@pytest.mark.parametrize(
    "name",
    ["bad!name", "x" * 65, "semi;colon", "tab%09", "new%0Aline", "quote%22", "a*"],
)
async def test_a_bad_saved_reply_name_is_400(stack: Stack, name: str) -> None:
    for method, body in (("PUT", {"text": "Hi"}), ("DELETE", None)):
        status, answer = await call(stack.api, method, saved(EU, name), ADMIN, body)
        assert (status, answer["error"]["code"]) == (400, "invalid_parameter"), (method, name)
    status, answer = await call(stack.api, "GET", saved(EU), ADMIN)
    assert answer == {"saved_replies": []} or all(
        reply["name"] != name for reply in answer["saved_replies"]
    )
