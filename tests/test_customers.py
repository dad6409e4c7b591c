"""Customers, not phone numbers, end to end (docs/customers.md, docs/transitions.md).

Signed webhooks in Meta's 2026 shapes (tests/payloads/) go through the real receiver, a
real broker, the engine and a real redis-server; agents act through the /v1 API; replies
go out to the Graph stand-in, whose signed status webhooks come back the same way.

One stack (stand-in, engine, receiver with its API) serves the whole module, so the file
pays for one consumer-group join rather than one per test: each test writes as people of
its own (fresh phones, BSUIDs, usernames, group ids and wamids), so no test can see
another's customers. The username customer's flow also runs on a Redis Cluster, as the
end-to-end tests do (tests/test_end_to_end.py).
"""

import asyncio
import base64
import contextlib
import json
import os
import secrets
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from devstack.graph_standin import SentMessage, StandIn, new_wamid, status_webhook
from devstack.graph_standin import create_app as create_standin
from devstack.samples import text_message
from devstack.signing import sign
from parley.channels import Channel, ChannelSettings
from parley.graph import Recipient
from parley.redis import connect_redis
from parley.settings import Settings
from tests.api_tools import ADMIN, call, start_api, start_engine, user_with_role
from tests.conftest import EU, US

ROOT = Path(__file__).resolve().parents[1]
PAYLOADS = Path(__file__).parent / "payloads"
WEBHOOK = "/webhooks/whatsapp"
W1 = "102290129340398"  # EU's and US's business account; the payloads' first entry
W2 = "209876543210987"  # template_updates_two_wabas.json's second entry
# A third number, on another business account once an admin says so.
OTHER = Channel(
    id="106540352242924",
    app_secret="other-app-secret-5555555555",
    verify_token="other-verify-token",
    access_token="other-graph-token",
    settings=ChannelSettings(display_name="Support Other"),
)
CHANNELS = [EU, US, OTHER]

# The person of the payload files (Meta's own example) and the identifiers they change
# to; every test swaps them for people of its own.
SHEENA = "Sheena Nelson"
FILE_PHONE = "16315551234"
FILE_USER = "US.13491208655302741918"
FILE_PARENT = "US.ENT.11815799212886844830"
FILE_USERNAME = "@realsheenanelson"
FILE_NEW_PHONE = "16315559876"  # system_customer_changed_number.json
FILE_NEW_USER = "US.70594187326410958273"  # system_user_changed_user_id.json
FILE_NEW_PARENT = "US.ENT.52618093746152039847"
FILE_GROUP = "Y2FwaV9ncm91cDoxNTU1MDc4Mzg4MToxMjAzNjM0MDQ2OTQyMzM4MjAZD"
FILE_REACTED = "wamid.HBgLMTYzMTU1NTEyMzQVAgARGBI5RDlDOTRFNjZFMUE4RkE3MDYA"  # reaction*.json
FILE_REACTION = "wamid.HBgLMTYzMTU1NTEyMzQVAgASGBQzQUQ0QjRGQkM2NDk3MDhCMEI4NAA="
FILE_ECHO = "wamid.HBgLMTYzMTU1NTEyMzQVAgARGBIyRjlBMEM0RTdCMTNENThBNkMA"


# People


def _digits(count: int) -> str:
    return "".join(str(secrets.randbelow(10)) for _ in range(count))


class Person(msgspec.Struct, frozen=True, kw_only=True):
    phone: str
    user_id: str  # their BSUID
    parent_user_id: str
    username: str  # as Meta sends it, with its @
    name: str = SHEENA

    def swap(self) -> dict[str, str]:
        """The payload files' person -> this one."""
        return {
            FILE_PHONE: self.phone,
            FILE_USER: self.user_id,
            FILE_PARENT: self.parent_user_id,
            FILE_USERNAME: self.username,
        }


def someone(name: str = SHEENA) -> Person:
    return Person(
        phone="1631" + _digits(7),
        user_id="US." + _digits(20),
        parent_user_id="US.ENT." + _digits(20),
        username="@sheena" + secrets.token_hex(4),
        name=name,
    )


def group_id() -> str:
    """A group id in Meta's style (base64 of capi_group:<number>:<id>, then ZD), kept to
    letters and digits so that it can stand in a URL path as it is."""
    while True:
        raw = f"capi_group:15550783881:{_digits(18)}".encode()
        encoded = base64.b64encode(raw).decode().rstrip("=") + "ZD"
        if encoded.isalnum():
            return encoded


# Meta's payloads, as this test's people send them


class Meta:
    """The payload files as Meta would send them during one test: its people, times and
    wamids (every wamid of a file becomes a fresh one, the same each time that file's
    wamid appears, so an edit still names the message it edits)."""

    def __init__(self, api: TestClient) -> None:  # type: ignore[type-arg]
        self.api = api
        self.wamids: dict[str, str] = {}

    def wamid(self, in_file: str) -> str:
        return self.wamids.setdefault(in_file, new_wamid())

    def load(self, name: str, at: int, swap: Mapping[str, str]) -> dict[str, Any]:
        """tests/payloads/`name`.json with every timestamp at `at`; a value equal to a
        key of `swap` replaced by its value, identifiers in text replaced too (a system
        message's body names them)."""

        def change(node: Any, key: str = "") -> Any:
            if isinstance(node, dict):
                return {k: change(v, k) for k, v in node.items()}
            if isinstance(node, list):
                return [change(v) for v in node]
            if key == "timestamp":  # a string in messages webhooks, an int in some others
                return str(at) if isinstance(node, str) else at
            if not isinstance(node, str):
                return node
            if node in swap:
                return swap[node]
            if node.startswith("wamid."):
                return self.wamid(node)
            for old, new in swap.items():
                node = node.replace(old, new)
            return node

        loaded: dict[str, Any] = change(json.loads((PAYLOADS / f"{name}.json").read_text()))
        return loaded

    async def post(self, body: dict[str, Any], channel: Channel = EU) -> dict[str, Any]:
        """Signed with the channel's app secret, as Meta does; asserts 200."""
        raw = json.dumps(body).encode()
        response = await self.api.post(
            WEBHOOK, data=raw, headers={"X-Hub-Signature-256": sign(raw, channel.app_secret)}
        )
        assert response.status == 200, await response.text()
        answer: dict[str, Any] = await response.json()
        return answer

    async def text(
        self,
        who: Person,
        at: int,
        *,
        phone: bool = True,
        user_id: bool = True,
        username: bool = False,
        channel: Channel = EU,
        text: str = "Hi, where is my order?",
    ) -> str:
        """A text message from `who`, by phone, BSUID or both; its wamid."""
        wamid = new_wamid()
        await self.post(
            text_message(
                channel.id,
                who.phone if phone else None,
                wamid,
                text,
                at,
                who.name,
                user_id=who.user_id if user_id else None,
                username=who.username if username else None,
            ),
            channel,
        )
        return wamid


def message(body: dict[str, Any]) -> dict[str, Any]:
    """The first message of a `messages` webhook's first change."""
    found: dict[str, Any] = body["entry"][0]["changes"][0]["value"]["messages"][0]
    return found


# The stack


class Stack(msgspec.Struct, frozen=True, kw_only=True):
    api: TestClient  # type: ignore[type-arg]
    engine: TestClient  # type: ignore[type-arg]
    standin: StandIn
    redis_url: str
    ana: dict[str, str]  # a contributor on every channel


@contextlib.asynccontextmanager
async def running(kafka_bootstrap: str, redis_url: str) -> AsyncIterator[Stack]:
    """The stand-in, the engine (consuming its own topic) and the receiver with the API,
    each on its own port, against `redis_url`; closed in reverse order."""
    topic = f"parley-test-{uuid.uuid4().hex[:12]}"
    clients: list[TestClient] = []  # type: ignore[type-arg]

    async def serve(app: web.Application) -> TestClient:  # type: ignore[type-arg]
        client: TestClient = TestClient(TestServer(app))  # type: ignore[type-arg]
        await client.start_server()
        clients.append(client)
        return client

    standin = StandIn(
        {channel.id: channel.access_token for channel in CHANNELS},
        app_secrets={channel.id: channel.app_secret for channel in CHANNELS},
    )
    try:
        graph = await serve(create_standin(standin))
        settings = Settings(
            kafka_bootstrap=kafka_bootstrap,
            redis_url=redis_url,
            topic=topic,
            topic_partitions=4,
            consumer_group=f"{topic}-engine",
            produce_timeout_s=3.0,
            sweep_interval_s=0.2,
            graph_url=str(graph.make_url("/v21.0")),
        )
        engine = await start_engine(serve, settings, CHANNELS)
        api = await start_api(serve, settings, CHANNELS)
        standin.webhook_url = str(api.make_url(WEBHOOK))
        ana = await user_with_role(api, "ana", EU.id, "contributor")
        for channel in (US, OTHER):
            status, body = await call(
                api,
                "PUT",
                f"/v1/channels/{channel.id}/access/users/ana",
                ADMIN,
                {"role": "contributor"},
            )
            assert status == 200, body
        yield Stack(api=api, engine=engine, standin=standin, redis_url=redis_url, ana=ana)
    finally:
        for client in reversed(clients):
            await client.close()


@pytest.fixture(scope="module")
async def one_redis(kafka_bootstrap: str, redis_url: str) -> AsyncIterator[Stack]:
    client = Redis.from_url(redis_url)
    await client.flushdb()
    await client.aclose()
    async with running(kafka_bootstrap, redis_url) as stack:
        yield stack


@pytest.fixture(scope="module")
async def redis_cluster(kafka_bootstrap: str, redis_cluster_url: str) -> AsyncIterator[Stack]:
    client = connect_redis(redis_cluster_url)
    await client.flushall()  # every primary
    await client.aclose()
    async with running(kafka_bootstrap, redis_cluster_url) as stack:
        yield stack


@pytest.fixture(params=["one redis", "redis cluster"])
def any_store(request: pytest.FixtureRequest) -> Stack:
    """The same flow against one redis-server and a three-primary Redis Cluster."""
    stack: Stack = request.getfixturevalue(request.param.replace(" ", "_"))
    return stack


@pytest.fixture
def stack(one_redis: Stack) -> Stack:
    return one_redis


@pytest.fixture
def meta(stack: Stack) -> Meta:
    return Meta(stack.api)


# Waiting and reading


async def eventually(
    read: Callable[[], Awaitable[Any]], check: Callable[[Any], bool], timeout_s: float = 10.0
) -> Any:
    """Poll `read` every 20 ms until `check` holds for its value (returned); fail with the
    last value after `timeout_s`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        value = await read()
        if check(value):
            return value
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout_s}s; last: {value!r}")
        await asyncio.sleep(0.02)


def reader(stack: Stack, identifier: str, channel: Channel = EU) -> Callable[[], Awaitable[Any]]:
    """Reads the conversation named by `identifier` through the API; None while there is
    none (404)."""

    async def read() -> Any:
        status, body = await call(
            stack.api, "GET", f"/v1/conversations/{channel.id}/{identifier}", stack.ana
        )
        assert status in (200, 404), (status, body)
        return body if status == 200 else None

    return read


async def shown(stack: Stack, identifier: str, channel: Channel = EU) -> dict[str, Any]:
    """The conversation as soon as it exists."""
    view: dict[str, Any] = await eventually(reader(stack, identifier, channel), bool)
    return view


def last(view: dict[str, Any] | None) -> dict[str, Any]:
    return view["messages"][-1] if view and view["messages"] else {}


async def reply(
    stack: Stack, identifier: str, text: str, channel: Channel = EU
) -> tuple[dict[str, Any], SentMessage]:
    """A contributor's reply through the API, accepted by the stand-in: the conversation
    then, and what the stand-in received."""
    path = f"/v1/conversations/{channel.id}/{identifier}/replies"
    status, body = await call(stack.api, "POST", path, stack.ana, {"text": text})
    assert status in (200, 202), body  # 202: the engine took longer than the API waits
    assert status == 202 or body["outcome"] == "applied", body
    view = await eventually(
        reader(stack, identifier, channel),
        lambda v: last(v).get("text") == text and last(v).get("status") == "accepted",
    )
    [sent] = [sent for sent in stack.standin.sent if sent.wamid == last(view)["wamid"]]
    return view, sent


async def resolve(stack: Stack, identifier: str, channel: Channel = EU) -> dict[str, Any]:
    """A contributor resolves the conversation; the conversation once it shows resolved."""
    path = f"/v1/conversations/{channel.id}/{identifier}/move"
    status, body = await call(stack.api, "POST", path, stack.ana, {"queue": "resolved"})
    assert status in (200, 202), body
    read = reader(stack, identifier, channel)
    resolved: dict[str, Any] = await eventually(read, lambda v: v["queue"] == "resolved")
    return resolved


async def applied_events(stack: Stack, kind: str, outcome: str) -> float:
    """The engine's count of `kind` events with `outcome`, from its /metrics."""
    text = await (await stack.engine.get("/metrics")).text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "parley_events_applied_total" and sample.labels == {
                "kind": kind,
                "outcome": outcome,
            }:
                return sample.value
    return 0.0


async def engine_show(redis_url: str, key: str) -> dict[str, Any]:
    """`python -m engine show KEY`, as an operator runs it; its JSON."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "engine",
        "show",
        key,
        cwd=ROOT,
        env={**os.environ, "PARLEY_REDIS_URL": redis_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    shown: dict[str, Any] = json.loads(out)
    return shown


# 1. The username customer


async def test_a_username_customer_is_one_customer_by_bsuid_phone_username_and_id(
    any_store: Stack,
) -> None:
    stack = any_store
    meta = Meta(stack.api)
    sheena = someone()
    now = int(time.time())

    # She writes with her username and no phone: only her BSUID names her.
    first = await meta.text(sheena, now - 60, phone=False, username=True)
    by_bsuid = reader(stack, sheena.user_id)
    opened = await eventually(by_bsuid, lambda v: v is not None and v["queue"] == "new")
    assert opened["customer"] == {
        "id": sheena.user_id,
        "phone": None,
        "user_id": sheena.user_id,
        "username": sheena.username,
        "name": SHEENA,
        "group_id": None,
        "marketing_opt_out": False,
    }
    assert [m["id"] for m in opened["messages"]] == [first]

    # A contributor answers: to her BSUID, since no phone is known.
    answered, sent = await reply(stack, sheena.user_id, "Hello Sheena!")
    assert (answered["queue"], answered["assignee"]) == ("open", "ana")  # EU auto-assigns
    assert sent.phone_number_id == EU.id
    assert sent.body["recipient"] == sheena.user_id
    assert sent.body["recipient_type"] == "individual"
    assert "to" not in sent.body
    assert sent.to is None

    # Meta's statuses for a send to a BSUID carry only recipient_user_id.
    to_bsuid = Recipient(user_id=sheena.user_id)
    shape = status_webhook(EU.id, sent.wamid, to_bsuid, "read", now)
    [status] = shape["entry"][0]["changes"][0]["value"]["statuses"]
    assert {"recipient_id", "recipient_user_id"} & status.keys() == {"recipient_user_id"}
    answers = await stack.standin.post_statuses(
        EU.id, sent.wamid, to_bsuid, ["sent", "delivered", "read"]
    )
    assert answers == [200, 200, 200]
    await eventually(by_bsuid, lambda v: last(v)["status"] == "read")

    # She answers a contact request: her number is proven hers.
    share = meta.load("contact_shares_phone", now - 30, sheena.swap())
    share_wamid = message(share)["id"]
    assert "from" not in message(share)
    assert message(share)["contacts"][0]["origin"] == "contact_request"
    await meta.post(share)
    shared = await eventually(by_bsuid, lambda v: last(v)["id"] == share_wamid)
    assert shared["customer"]["phone"] == sheena.phone

    # Later she writes from that phone alone: the same conversation.
    by_phone = await meta.text(sheena, now - 10, user_id=False, text="It's me again")
    later = await eventually(by_bsuid, lambda v: last(v)["id"] == by_phone)
    reply_id = answered["messages"][-1]["id"]
    assert [m["id"] for m in later["messages"]] == [first, reply_id, share_wamid, by_phone]
    assert later["messages"][1]["status"] == "read"
    assert (later["queue"], later["assignee"]) == ("open", "ana")
    assert later["opened_at"] == opened["opened_at"]  # the same cycle goes on
    assert later["version"] > shared["version"]
    assert later["customer"] == {**opened["customer"], "phone": sheena.phone}

    # Any of her identifiers finds it, through the API...
    names = [sheena.user_id, sheena.phone, sheena.username, sheena.username.removeprefix("@")]
    for identifier in [*names, later["customer"]["id"]]:
        assert await reader(stack, identifier)() == later, identifier
    # ...and the operator's CLI.
    on_phone, on_bsuid = await asyncio.gather(
        engine_show(stack.redis_url, f"{EU.id}:{sheena.phone}"),
        engine_show(stack.redis_url, f"{EU.id}:{sheena.user_id}"),
    )
    assert on_phone == on_bsuid
    assert on_phone["conversation"] == f"{EU.id}:{sheena.user_id}"
    assert on_phone["customer"] == later["customer"]
    assert [m["id"] for m in on_phone["messages"]] == [m["id"] for m in later["messages"]]

    # With her phone known, the next reply goes to the phone (and only there).
    _, again = await reply(stack, sheena.phone, "Your order ships today.")
    assert again.body["to"] == sheena.phone
    assert "recipient" not in again.body
    assert again.body["recipient_type"] == "individual"


# 2. The new rows of the state machine, each end to end


async def test_a_group_is_a_customer_of_its_own(stack: Stack, meta: Meta) -> None:
    sheena, ana_souza = someone(), someone("Ana Souza")
    group = group_id()
    stack.standin.groups[group] = [(sheena.phone, sheena.user_id), (None, ana_souza.user_id)]
    now = int(time.time())

    # Sheena's own conversation first.
    await meta.text(sheena, now - 120)
    own = await eventually(reader(stack, sheena.user_id), lambda v: v is not None)

    # Then she writes in the group: the group's conversation, not hers.
    said = meta.load("group_message", now - 60, {**sheena.swap(), FILE_GROUP: group})
    await meta.post(said)
    in_group = await shown(stack, f"g.{group}")
    assert in_group["customer"]["id"] == f"g.{group}"
    assert in_group["customer"]["group_id"] == group
    assert in_group["queue"] == "new"
    [line] = in_group["messages"]
    assert (line["id"], line["direction"]) == (message(said)["id"], "inbound")
    assert line["author"] == SHEENA
    assert line["text"] == "Can someone confirm the pickup time for Saturday?"
    assert await reader(stack, sheena.user_id)() == own  # hers is untouched
    assert await reader(stack, sheena.phone)() == own

    # The agent answers the group.
    _, sent = await reply(stack, f"g.{group}", "Saturday, 10:00.")
    assert sent.body["recipient_type"] == "group"
    assert sent.body["to"] == group
    assert "recipient" not in sent.body

    # Both members read it: one status each, two events, neither a duplicate.
    applied = await applied_events(stack, "message.status", "applied")
    duplicates = await applied_events(stack, "message.status", "duplicate")
    to_group = Recipient(group_id=group)
    assert await stack.standin.post_statuses(EU.id, sent.wamid, to_group, ["read"]) == [200]

    async def counted() -> float:
        return await applied_events(stack, "message.status", "applied")

    await eventually(counted, lambda count: count >= applied + 2)
    assert await counted() == applied + 2
    assert await applied_events(stack, "message.status", "duplicate") == duplicates
    read = await eventually(reader(stack, f"g.{group}"), lambda v: last(v)["status"] == "read")
    assert read["queue"] == "open"
    assert await reader(stack, sheena.user_id)() == own


async def test_an_echo_is_an_answer_nobody_in_parley_gave(stack: Stack, meta: Meta) -> None:
    sheena = someone()
    now = int(time.time())
    await meta.text(sheena, now - 120)
    await shown(stack, sheena.user_id)

    # Answered from the WhatsApp Business app while the conversation is new.
    echo = meta.load("smb_message_echoes", now - 60, sheena.swap())
    await meta.post(echo, EU)
    echoed = await eventually(
        reader(stack, sheena.user_id), lambda v: last(v).get("source") == "business_app"
    )
    line = last(echoed)
    assert line["direction"] == "outbound"
    assert line["user"] is None
    assert line["text"] == "Yes! It also comes in navy and forest green."
    assert line["id"] == echo["entry"][0]["changes"][0]["value"]["message_echoes"][0]["id"]
    assert echoed["first_response_at"] is not None
    assert (echoed["queue"], echoed["assignee"]) == ("new", None)

    # An echo on a resolved conversation leaves it resolved.
    resolved = await resolve(stack, sheena.user_id)
    later = meta.load("smb_message_echoes", now + 60, {**sheena.swap(), FILE_ECHO: new_wamid()})
    await meta.post(later)
    after = await eventually(
        reader(stack, sheena.user_id),
        lambda v: sum(m.get("source") == "business_app" for m in v["messages"]) == 2,
    )
    assert (after["queue"], after["assignee"]) == ("resolved", None)
    assert after["opened_at"] == resolved["opened_at"]
    assert after["last_activity_at"] == resolved["last_activity_at"]


async def test_an_edit_and_a_revoke_annotate_and_never_reopen(stack: Stack, meta: Meta) -> None:
    sheena = someone()
    now = int(time.time())
    asked = meta.load("text", now - 120, sheena.swap())
    answered = meta.load("text_reply", now - 100, sheena.swap())
    await meta.post(asked)
    await meta.post(answered)
    both = await eventually(
        reader(stack, sheena.phone), lambda v: v is not None and len(v["messages"]) == 2
    )
    resolved = await resolve(stack, sheena.phone)

    edit = meta.load("edit", now + 60, sheena.swap())
    assert message(edit)["edit"]["original_message_id"] == message(asked)["id"]
    await meta.post(edit)
    edited = await eventually(reader(stack, sheena.phone), lambda v: v["messages"][0]["edited"])
    assert edited["messages"][0]["text"] == "Does it come in another colour, maybe navy?"
    assert [m["id"] for m in edited["messages"]] == [m["id"] for m in both["messages"]]
    assert edited["queue"] == "resolved"
    assert edited["last_activity_at"] == resolved["last_activity_at"]

    revoke = meta.load("revoke", now + 120, sheena.swap())
    assert message(revoke)["revoke"]["original_message_id"] == message(answered)["id"]
    await meta.post(revoke)
    revoked = await eventually(reader(stack, sheena.phone), lambda v: v["messages"][1]["deleted"])
    assert revoked["messages"][1]["text"] is None
    assert revoked["messages"][0]["edited"]
    assert len(revoked["messages"]) == 2
    assert (revoked["queue"], revoked["assignee"]) == ("resolved", None)
    assert revoked["last_activity_at"] == resolved["last_activity_at"]
    assert revoked["last_customer_message_at"] == resolved["last_customer_message_at"]


async def test_a_reaction_shows_on_the_message_and_is_not_activity(
    stack: Stack, meta: Meta
) -> None:
    sheena = someone()
    now = int(time.time())
    await meta.text(sheena, now - 120)
    await shown(stack, sheena.user_id)
    answered, sent = await reply(stack, sheena.user_id, "It comes in navy too.")

    reaction = meta.load("reaction", now + 30, {**sheena.swap(), FILE_REACTED: sent.wamid})
    await meta.post(reaction)
    reacted = await eventually(reader(stack, sheena.user_id), lambda v: last(v)["reaction"])
    assert last(reacted)["reaction"] == "👍"
    assert last(reacted)["wamid"] == sent.wamid
    assert reacted["last_activity_at"] == answered["last_activity_at"]
    assert reacted["last_customer_message_at"] == answered["last_customer_message_at"]

    removed = meta.load("reaction_removed", now + 40, {**sheena.swap(), FILE_REACTED: sent.wamid})
    assert "emoji" not in message(removed)["reaction"]
    await meta.post(removed)
    await eventually(reader(stack, sheena.user_id), lambda v: last(v)["reaction"] is None)

    resolved = await resolve(stack, sheena.user_id)
    again = meta.load(
        "reaction",
        now + 3600,
        {**sheena.swap(), FILE_REACTED: sent.wamid, FILE_REACTION: new_wamid()},
    )
    message(again)["reaction"]["emoji"] = "❤️"
    await meta.post(again)
    after = await eventually(reader(stack, sheena.user_id), lambda v: last(v)["reaction"] == "❤️")
    assert (after["queue"], after["assignee"]) == ("resolved", None)
    assert after["last_activity_at"] == resolved["last_activity_at"]
    assert len(after["messages"]) == len(resolved["messages"])


async def test_a_number_change_keeps_the_customer_and_moves_nothing(
    stack: Stack, meta: Meta
) -> None:
    sheena = someone()
    new_phone, new_user = "1631" + _digits(7), "US." + _digits(20)
    now = int(time.time())
    await meta.text(sheena, now - 120)
    await shown(stack, sheena.user_id)
    before, _ = await reply(stack, sheena.user_id, "How can I help?")
    assert before["queue"] == "open"

    change = meta.load(
        "system_customer_changed_number",
        now + 60,
        {**sheena.swap(), FILE_NEW_PHONE: new_phone},
    )
    system = message(change)["system"]
    del system["new_wa_id"]  # Meta's 2026 shape: the new number and the new BSUID
    system.update(wa_id=new_phone, user_id=new_user, type="user_changed_number")
    assert system["body"] == f"{SHEENA} changed from {sheena.phone} to {new_phone}"
    await meta.post(change)
    changed = await eventually(
        reader(stack, sheena.user_id), lambda v: last(v)["direction"] == "system"
    )
    line = last(changed)
    assert (line["type"], line["text"]) == ("user_changed_number", system["body"])
    assert (changed["queue"], changed["assignee"]) == ("open", "ana")
    assert changed["last_customer_message_at"] == before["last_customer_message_at"]
    assert changed["last_activity_at"] == before["last_activity_at"]
    assert (changed["customer"]["phone"], changed["customer"]["user_id"]) == (new_phone, new_user)

    from_new_phone = await meta.text(
        msgspec.structs.replace(sheena, phone=new_phone), now + 90, user_id=False
    )
    await eventually(reader(stack, sheena.user_id), lambda v: last(v)["id"] == from_new_phone)
    from_new_user = await meta.text(
        msgspec.structs.replace(sheena, user_id=new_user), now + 100, phone=False
    )
    after = await eventually(
        reader(stack, sheena.user_id), lambda v: last(v)["id"] == from_new_user
    )
    assert after["customer"]["id"] == sheena.user_id
    assert after["opened_at"] == before["opened_at"]
    for identifier in (new_phone, new_user, sheena.phone):
        assert (await reader(stack, identifier)())["customer"]["id"] == sheena.user_id


async def test_a_new_bsuid_named_only_in_the_body_keeps_the_customer(
    stack: Stack, meta: Meta
) -> None:
    sheena = someone()
    new_user, new_parent = "US." + _digits(20), "US.ENT." + _digits(20)
    now = int(time.time())
    await meta.text(sheena, now - 120, phone=False, username=True)
    await shown(stack, sheena.user_id)

    change = meta.load(
        "system_user_changed_user_id",
        now - 60,
        {**sheena.swap(), FILE_NEW_USER: new_user, FILE_NEW_PARENT: new_parent},
    )
    assert {"from", "from_user_id"}.isdisjoint(message(change))  # no sender field at all
    assert sheena.user_id in message(change)["system"]["body"]
    await meta.post(change)
    changed = await eventually(
        reader(stack, sheena.user_id), lambda v: last(v)["type"] == "user_changed_user_id"
    )
    assert changed["customer"]["user_id"] == new_user
    assert changed["queue"] == "new"

    later = await meta.text(
        msgspec.structs.replace(sheena, user_id=new_user), now - 30, phone=False
    )
    after = await eventually(reader(stack, sheena.user_id), lambda v: last(v)["id"] == later)
    assert after["customer"]["id"] == sheena.user_id
    assert (await reader(stack, new_user)())["customer"]["id"] == sheena.user_id


async def test_request_welcome_opens_a_conversation_and_its_window(
    stack: Stack, meta: Meta
) -> None:
    sheena = someone()
    welcome = meta.load("request_welcome", int(time.time()) - 5, sheena.swap())
    await meta.post(welcome)
    opened = await shown(stack, sheena.phone)
    assert opened["queue"] == "new"
    assert [(m["id"], m["type"]) for m in opened["messages"]] == [
        (message(welcome)["id"], "request_welcome")
    ]
    assert opened["last_customer_message_at"] is not None

    path = f"/v1/conversations/{EU.id}/{sheena.phone}/replies"
    status, body = await call(stack.api, "POST", path, stack.ana, {"text": "Welcome!"})
    assert status in (200, 202), body  # not 409 template_required: the window is open

    async def sent_to_her() -> list[SentMessage]:
        return [sent for sent in stack.standin.sent if sent.to == sheena.phone]

    [sent] = await eventually(sent_to_her, bool)
    assert sent.body["text"]["body"] == "Welcome!"


async def test_a_marketing_stop_is_kept_on_the_customer(stack: Stack, meta: Meta) -> None:
    sheena = someone()
    now = int(time.time())
    await meta.text(sheena, now - 120)
    before = await shown(stack, sheena.user_id)
    assert before["customer"]["marketing_opt_out"] is False

    stop = meta.load("user_preferences", now + 60, sheena.swap())
    [item] = stop["entry"][0]["changes"][0]["value"]["user_preferences"]
    assert (item["value"], item["timestamp"]) == ("stop", now + 60)  # an integer here
    await meta.post(stop)
    after = await eventually(
        reader(stack, sheena.user_id), lambda v: v["customer"]["marketing_opt_out"]
    )
    assert after["queue"] == before["queue"]
    assert after["last_activity_at"] == before["last_activity_at"]


async def test_a_late_read_is_not_activity(stack: Stack, meta: Meta) -> None:
    sheena = someone()
    now = int(time.time())
    await meta.text(sheena, now - 120)
    await shown(stack, sheena.user_id)
    answered, sent = await reply(stack, sheena.user_id, "On its way.")

    # Read an hour later, by Meta's clock.
    read = status_webhook(
        EU.id,
        sent.wamid,
        Recipient(phone=sheena.phone, user_id=sheena.user_id),
        "read",
        now + 3600,
    )
    await meta.post(read)
    after = await eventually(reader(stack, sheena.user_id), lambda v: last(v)["status"] == "read")
    assert after["last_activity_at"] == answered["last_activity_at"]
    assert after["queue"] == answered["queue"]


async def test_a_template_webhook_changes_its_business_accounts_channels_only(
    stack: Stack, meta: Meta
) -> None:
    for channel, waba in ((EU, W1), (US, W1), (OTHER, W2)):
        path = f"/v1/channels/{channel.id}"
        status, body = await call(stack.api, "PATCH", path, ADMIN, {"waba_id": waba})
        assert (status, body["waba_id"]) == (200, waba), body
        for name, language, category in (
            ("abandoned_cart", "en_US", "MARKETING"),
            ("welcome_template", "pt_BR", "UTILITY"),
        ):
            path = f"/v1/channels/{channel.id}/templates/{name}/{language}"
            status, body = await call(stack.api, "PUT", path, ADMIN, {"category": category})
            assert (status, body["status"]) == (200, "APPROVED"), body

    # W1's entry rejects abandoned_cart; W2's moves welcome_template to marketing.
    await meta.post(meta.load("template_updates_two_wabas", int(time.time()), {}), OTHER)

    async def templates() -> dict[str, dict[str, tuple[str, str, str | None]]]:
        found = {}
        for channel in CHANNELS:
            status, body = await call(
                stack.api, "GET", f"/v1/channels/{channel.id}/templates", ADMIN
            )
            assert status == 200, body
            found[channel.id] = {
                t["name"]: (t["status"], t["category"], t.get("reason")) for t in body["templates"]
            }
        return found

    found = await eventually(templates, lambda t: t[EU.id]["abandoned_cart"][0] == "REJECTED")
    on_w1 = {
        "abandoned_cart": ("REJECTED", "MARKETING", "INVALID_FORMAT"),
        "welcome_template": ("APPROVED", "UTILITY", None),
    }
    assert found[EU.id] == on_w1
    assert found[US.id] == on_w1
    assert found[OTHER.id] == {
        "abandoned_cart": ("APPROVED", "MARKETING", None),
        "welcome_template": ("APPROVED", "MARKETING", None),
    }
