"""The live stream, GET /v1/stream (docs/inbox.md; issue 12, "must show" 2).

Read as a browser's EventSource reads it (`id:`, `event:`, `data:` lines, comments, a
blank line ending each event), through the real receiver, broker, engine and Redis:
customers write signed webhooks, agents act through the /v1 API, and the stream says
what the engine applied. The feed in Redis (read with the store's own Feed) is the
ground truth a resumed stream is compared with.

One stack (stand-in, engine, receiver) serves the module, as in tests/test_customers.py:
each test writes as customers of its own, so it reads its own changes among whatever the
channel carries. Delivery, resume and reset also run on a Redis Cluster, where the hub
reads one channel per call.
"""

import asyncio
import contextlib
import json
import secrets
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp.test_utils import TestClient

from api import errors
from api import stream as handler
from api.appkeys import FEED_HUB
from api.feed import QUEUE, FeedHub, Subscriber
from api.stream import decode_cursor
from devstack.graph_standin import new_wamid
from devstack.samples import text_message
from devstack.signing import sign
from engine.applier import Applier
from parley.channels import Channel
from parley.redis import RedisClient, connect_redis
from parley.settings import Settings
from parley.state import Outcome
from store import _keys as keys
from store.conversations import WRITES_PER_CALL, ConversationStore
from store.feed import Entry, Feed, newer
from tests import factory as f
from tests import test_customers as customers
from tests.api_tools import ADMIN, AiohttpClient, call, start_api
from tests.clock import Clock
from tests.conftest import EU, US
from tests.test_customers import CHANNELS, OTHER, Stack

Api = TestClient  # type: ignore[type-arg]
Headers = dict[str, str]
WEBHOOK = "/webhooks/whatsapp"
WAIT_S = 15.0  # for what goes through the broker and the engine
PROMPT_S = 1.0  # from a change's place in the feed to a client that reads along


# The stack, once per module (one consumer-group join), on one Redis and on a Cluster:
# tests/test_customers.py's fixtures (module-scoped, so this module gets its own).
one_redis = customers.one_redis
redis_cluster = customers.redis_cluster
any_store = customers.any_store
stack = customers.stack


@contextlib.asynccontextmanager
async def redis_of(stack: Stack) -> AsyncIterator[RedisClient]:
    """A client of the stack's Redis, to read the feed as the store keeps it."""
    client = connect_redis(stack.redis_url)
    try:
        yield client
    finally:
        await client.aclose()


def hub_of(api: Api) -> FeedHub:
    return api.server.app[FEED_HUB]


# An SSE client


class Event(msgspec.Struct, frozen=True):
    name: str
    data: Any
    id: str | None  # the `id:` field of this event, if it had one


class Comment(msgspec.Struct, frozen=True):
    text: str


class Sse:
    """One open stream, parsed line by line as the SSE format says."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.last_id: str | None = None  # what EventSource would send as Last-Event-ID
        self.channels: list[str] = []  # from `ready`
        self.read_bytes = 0

    async def item(self, timeout_s: float = WAIT_S) -> Event | Comment:
        """The next event or comment; EOFError when the server ended the stream."""
        name, data, event_id = "message", [], None
        async with asyncio.timeout(timeout_s):
            while True:
                raw = await self.response.content.readline()
                if not raw:
                    raise EOFError("the stream ended")
                self.read_bytes += len(raw)
                line = raw.decode().removesuffix("\n").removesuffix("\r")
                if line.startswith(":"):
                    return Comment(line[1:].strip())
                if not line:
                    if data:
                        return Event(name, json.loads("\n".join(data)), event_id)
                    name, event_id = "message", None
                    continue
                field, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if field == "event":
                    name = value
                elif field == "data":
                    data.append(value)
                elif field == "id":
                    event_id = self.last_id = value

    async def event(self, timeout_s: float = WAIT_S) -> Event:
        """The next event, heartbeats skipped."""
        while True:
            found = await self.item(timeout_s)
            if isinstance(found, Event):
                return found

    async def changes_until(
        self, done: Callable[[list[Event]], bool], timeout_s: float = WAIT_S
    ) -> list[Event]:
        """Every event (changes and resets) read until `done` holds for them."""
        seen: list[Event] = []
        try:
            async with asyncio.timeout(timeout_s):
                while not done(seen):
                    seen.append(await self.event())
        except TimeoutError:
            raise AssertionError(
                f"not within {timeout_s}s; seen: {[e.data for e in seen]}"
            ) from None
        return seen


@contextlib.asynccontextmanager
async def opened(
    api: Api,
    headers: Headers,
    *,
    channels: Sequence[str] | None = None,
    last_event_id: str | None = None,
    in_query: bool = False,
    session: aiohttp.ClientSession | None = None,
) -> AsyncIterator[Sse]:
    """GET /v1/stream, once its `ready` came; closed on leaving (a client going away).
    Through the test client's session, or `session`."""
    params = {"channels": ",".join(channels)} if channels is not None else {}
    headers = dict(headers)
    if last_event_id is not None:
        if in_query:
            params["last_event_id"] = last_event_id
        else:
            headers["Last-Event-ID"] = last_event_id
    url = api.make_url("/v1/stream")
    async with (session or api.session).get(url, headers=headers, params=params) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "text/event-stream"
        assert response.headers["Cache-Control"] == "no-cache"
        sse = Sse(response)
        ready = await sse.event()
        assert ready.name == "ready", ready
        sse.channels = ready.data["channels"]
        yield sse


def about(customers: set[str]) -> Callable[[Event], bool]:
    return lambda event: event.name == "change" and event.data["customer"] in customers


def count(events: list[Event], customers: set[str], kinds: Sequence[str] | None = None) -> int:
    return sum(
        1
        for event in events
        if about(customers)(event) and (kinds is None or event.data["kind"] in kinds)
    )


def position(event: Event, channel: str) -> str:
    """The feed position of `channel` in an event's cursor (opaque to clients; read here
    to compare with the feed)."""
    assert event.id is not None
    return decode_cursor(event.id)[channel]


# Customers and agents


def new_phone() -> str:
    return "3197" + "".join(str(secrets.randbelow(10)) for _ in range(8))


async def customer_writes(
    api: Api,
    channel: Channel,
    phone: str,
    text: str = "Hi, where is my order?",
    *,
    name: str = "Zoë Ångström",
    count: int = 1,
) -> None:
    """`count` text messages from `phone`, in one webhook signed as Meta signs it."""
    at = int(time.time())
    body = text_message(channel.id, phone, new_wamid(), text, at, name)
    messages = body["entry"][0]["changes"][0]["value"]["messages"]
    for _ in range(count - 1):
        messages.append({**messages[0], "id": new_wamid()})
    raw = json.dumps(body, ensure_ascii=False).encode()
    response = await api.post(
        WEBHOOK, data=raw, headers={"X-Hub-Signature-256": sign(raw, channel.app_secret)}
    )
    assert response.status == 200, await response.text()


async def act(stack: Stack, method: str, path: str, body: Any = None) -> None:
    status, answer = await call(stack.api, method, path, stack.ana, body)
    assert status in (200, 202), answer
    assert status == 202 or answer["outcome"] == "applied", answer


async def feed_after(store: RedisClient, channel: str, after: str) -> list[Entry]:
    """The channel's feed after `after`, as the store keeps it."""
    return await Feed(store).after(channel, after, 100_000)


async def until_in_feed(
    store: RedisClient, channel: str, after: str, done: Callable[[list[Entry]], bool]
) -> list[Entry]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while not done(entries := await feed_after(store, channel, after)):
        assert loop.time() < deadline, entries
        await asyncio.sleep(0.02)
    return entries


def as_sent(entry: Entry) -> dict[str, Any]:
    """A feed entry as the stream's `change` data says it."""
    return json.loads(msgspec.json.encode(entry.change))


# 1. Changes arrive as the engine applies them, in order


async def test_changes_arrive_as_the_engine_applies_them_in_order(any_store: Stack) -> None:
    stack = any_store
    phone = new_phone()
    path = f"/v1/conversations/{EU.id}/{phone}"
    async with opened(stack.api, stack.ana, channels=[EU.id]) as sse:
        assert sse.channels == [EU.id]
        await customer_writes(stack.api, EU, phone, "Hi, where is my order?")
        everything = await sse.changes_until(lambda s: count(s, {phone}) == 1)
        data = everything[-1].data
        assert data == {
            "channel": EU.id,
            "customer": phone,
            "kind": "customer.message",
            "event": data["event"],
            "version": 1,
            "was": None,
            "queue": "new",
            "assignee": None,
            "last_activity_at": data["last_activity_at"],
            "last_customer_message_at": data["last_activity_at"],
            "customer_name": "Zoë Ångström",
            "preview": "Hi, where is my order?",
        }
        assert data["event"].startswith("wamid.")

        # An agent's reply: the conversation is theirs, and open.
        await act(stack, "POST", f"{path}/replies", {"text": "It ships today."})
        everything += await sse.changes_until(lambda s: count(s, {phone}) == 1)
        reply = everything[-1].data
        assert {k: reply[k] for k in ("kind", "version", "was", "queue", "assignee")} == {
            "kind": "agent.reply",
            "version": 2,
            "was": "new",
            "queue": "open",
            "assignee": "ana",
        }
        assert reply["preview"] == "It ships today."

        await act(stack, "POST", f"{path}/tags", {"tag": "vip"})
        await act(stack, "POST", f"{path}/move", {"queue": "pending"})
        await customer_writes(stack.api, EU, phone, "Thanks!")
        everything += await sse.changes_until(lambda s: count(s, {phone}) == 3)

    mine = [e.data for e in everything if about({phone})(e)]
    assert [(c["kind"], c["was"], c["queue"], c["assignee"]) for c in mine] == [
        ("customer.message", None, "new", None),
        ("agent.reply", "new", "open", "ana"),
        ("agent.tag", "open", "open", "ana"),
        ("agent.move", "open", "pending", "ana"),
        ("customer.message", "pending", "open", "ana"),  # the customer wrote: open again
    ]
    assert mine[-1]["preview"] == "Thanks!"
    versions = [c["version"] for c in mine]
    assert versions == sorted(versions) and versions[3] < versions[4]
    # Every change of the channel came in the feed's order, once, as the feed keeps it.
    ids = [position(e, EU.id) for e in everything]
    assert ids == sorted(ids, key=_key) and len(set(ids)) == len(ids)
    async with redis_of(stack) as store:
        feed = {entry.id: as_sent(entry) for entry in await feed_after(store, EU.id, "0-0")}
    assert [feed[position(e, EU.id)] for e in everything] == [e.data for e in everything]


def _key(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq)


# 2. Resume without loss


async def test_a_reconnect_with_last_event_id_loses_nothing_and_repeats_nothing(
    any_store: Stack,
) -> None:
    stack = any_store
    phone, other = new_phone(), new_phone()
    path = f"/v1/conversations/{EU.id}/{phone}"
    both = [EU.id, US.id]
    async with opened(stack.api, stack.ana, channels=both) as sse:
        await customer_writes(stack.api, EU, phone)
        last = (await sse.changes_until(lambda s: count(s, {phone}) == 1))[-1]
        assert last.id == sse.last_id
    after = decode_cursor(last.id or "")

    # Away: the conversation moves on, and a customer writes on the other channel.
    await act(stack, "POST", f"{path}/replies", {"text": "On its way."})
    await act(stack, "POST", f"{path}/notes", {"text": "Called the warehouse"})
    await customer_writes(stack.api, EU, phone, "And the invoice?")
    await customer_writes(stack.api, US, other, "Hello US")
    async with redis_of(stack) as store:
        await until_in_feed(store, EU.id, after[EU.id], lambda e: count_entries(e, phone) == 3)
        await until_in_feed(store, US.id, after[US.id], lambda e: count_entries(e, other) == 1)

        # The header, as EventSource sends it, or ?last_event_id= for clients without it.
        for in_query in (False, True):
            async with opened(
                stack.api, stack.ana, channels=both, last_event_id=last.id, in_query=in_query
            ) as sse:
                resumed = await sse.changes_until(
                    lambda s: count(s, {phone}) == 3 and count(s, {other}) == 1
                )
                marker = new_phone()  # and the stream goes on live
                await customer_writes(stack.api, EU, marker, "I am new here")
                resumed += await sse.changes_until(lambda s, m=marker: count(s, {m}) == 1)
            assert [e.name for e in resumed] == ["change"] * len(resumed)  # no reset
            # Per channel, exactly the feed after the cursor up to the last one read: each
            # once, in order, nothing from before it.
            for channel in both:
                got = [e for e in resumed if e.data["channel"] == channel]
                upto = _key(position(got[-1], channel))
                kept = [
                    entry
                    for entry in await feed_after(store, channel, after[channel])
                    if _key(entry.id) <= upto
                ]
                assert [e.data for e in got] == [as_sent(entry) for entry in kept], channel
                assert [position(e, channel) for e in got] == [entry.id for entry in kept]
            assert last.data not in [e.data for e in resumed]
            mine = [e.data["kind"] for e in resumed if about({phone})(e)]
            assert mine == ["agent.reply", "agent.note", "customer.message"]


async def test_a_reconnect_after_the_last_change_gets_only_what_comes_next(stack: Stack) -> None:
    phone = new_phone()
    async with opened(stack.api, stack.ana, channels=[EU.id]) as sse:
        await customer_writes(stack.api, EU, phone)
        last = (await sse.changes_until(lambda s: count(s, {phone}) == 1))[-1]
    async with opened(stack.api, stack.ana, channels=[EU.id], last_event_id=last.id) as sse:
        await customer_writes(stack.api, EU, phone, "Again")
        seen = await sse.changes_until(lambda s: count(s, {phone}) == 1)
    assert [e.data["preview"] for e in seen if about({phone})(e)] == ["Again"]
    assert last.data not in [e.data for e in seen]


# 3. Resets: a cursor older than what is kept


async def test_a_cursor_older_than_the_feed_keeps_gets_a_reset(
    any_store: Stack, kafka_bootstrap: str, aiohttp_client: AiohttpClient
) -> None:
    """The feed is trimmed to nothing with XTRIM MAXLEN 0 on the store's key (the fast
    way to age a cursor; applying FEED_LENGTH changes would take minutes). The receiver
    that handed the cursor out still has the missed changes in its ring and resumes; a
    receiver started since (a restart, another process behind the load balancer) has
    neither: it resets that channel, and resumes the others."""
    stack = any_store
    phone, other = new_phone(), new_phone()
    async with opened(stack.api, stack.ana, channels=[EU.id, US.id]) as sse:
        await customer_writes(stack.api, EU, phone)
        last = (await sse.changes_until(lambda s: count(s, {phone}) == 1))[-1]
    await customer_writes(stack.api, EU, phone, "Anyone there?")
    async with redis_of(stack) as store:
        after = position(last, EU.id)
        await until_in_feed(store, EU.id, after, lambda e: count_entries(e, phone) == 1)
        await store.xtrim(keys.feed(EU.id), maxlen=0, approximate=False)
        assert await store.xlen(keys.feed(EU.id)) == 0

    # The same receiver: its ring still holds the change.
    async with opened(stack.api, stack.ana, channels=[EU.id], last_event_id=last.id) as sse:
        seen = await sse.changes_until(lambda s: count(s, {phone}) == 1)
    assert [e.name for e in seen] == ["change"] * len(seen)
    assert [e.data["preview"] for e in seen if about({phone})(e)] == ["Anyone there?"]

    # A receiver that never saw it.
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        redis_url=stack.redis_url,
        topic=f"parley-test-{uuid.uuid4().hex[:12]}",
        topic_partitions=1,
    )
    fresh = await start_api(aiohttp_client, settings, CHANNELS)
    async with opened(fresh, ADMIN, channels=[EU.id, US.id], last_event_id=last.id) as sse:
        reset = await sse.event()
        assert reset.name == "reset", reset
        assert reset.data["channel"] == EU.id
        assert reset.id is not None and sse.last_id == reset.id
        await customer_writes(stack.api, US, other, "US is fine")
        await customer_writes(stack.api, EU, phone, "After the reset")
        seen = await sse.changes_until(lambda s: count(s, {other}) == 1 and count(s, {phone}) == 1)
        assert [e.name for e in seen] == ["change"] * len(seen)  # one reset only
        assert [e.data["preview"] for e in seen if about({phone})(e)] == ["After the reset"]
    # The reset's cursor resumes after it: nothing older comes back.
    async with opened(fresh, ADMIN, channels=[EU.id], last_event_id=reset.id) as sse:
        again = await sse.changes_until(lambda s: count(s, {phone}) == 1)
        assert [e.name for e in again] == ["change"] * len(again)
        assert [e.data["preview"] for e in again if about({phone})(e)] == ["After the reset"]


def count_entries(entries: list[Entry], customer: str) -> int:
    return sum(1 for entry in entries if entry.change.customer == customer)


@pytest.mark.parametrize(
    "garbage",
    [
        "garbage",
        "!!!",
        "eyJub3QiOiAianNvbiJ9x",  # base64 that is not a cursor
        "WzEsMiwzXQ",  # base64 of [1,2,3]
        "eyIxMDY1NDAzNTIyNDI5MjIiOiJub3QtYW4taWQifQ",  # {"<EU>": "not-an-id"}
    ],
)
async def test_a_garbage_last_event_id_starts_fresh(stack: Stack, garbage: str) -> None:
    phone = new_phone()
    await customer_writes(stack.api, EU, phone, "Before")
    await until_view(stack, EU, phone)
    async with opened(stack.api, stack.ana, channels=[EU.id], last_event_id=garbage) as sse:
        await customer_writes(stack.api, EU, phone, "After")
        seen = await sse.changes_until(lambda s: count(s, {phone}) == 1)
    assert [e.name for e in seen] == ["change"] * len(seen)
    assert [e.data["preview"] for e in seen if about({phone})(e)] == ["After"]


async def until_view(stack: Stack, channel: Channel, customer: str) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while True:
        status, view = await call(
            stack.api, "GET", f"/v1/conversations/{channel.id}/{customer}", ADMIN
        )
        if status == 200:
            return view  # type: ignore[no-any-return]
        assert loop.time() < deadline, (status, view)
        await asyncio.sleep(0.02)


# 4. The role matrix over the stream


async def test_each_role_sees_exactly_the_channels_it_may_see(stack: Stack) -> None:
    """Viewer, contributor and supervisor (direct grants), a team's role, no grant, an
    admin user and the bootstrap admin, on two channels: each stream carries the changes
    of the channels its caller may see and none of another's."""
    api, tag = stack.api, uuid.uuid4().hex[:6]

    async def user(name: str, admin: bool = False) -> Headers:
        status, body = await call(
            api, "POST", "/v1/users", ADMIN, {"id": f"{name}-{tag}", "name": name, "admin": admin}
        )
        assert status == 201, body
        return {"Authorization": f"Bearer {body['token']}"}

    async def grant(channel: Channel, kind: str, who: str, role: str) -> None:
        path = f"/v1/channels/{channel.id}/access/{kind}/{who}-{tag}"
        status, body = await call(api, "PUT", path, ADMIN, {"role": role})
        assert status == 200, body

    callers = {
        "viewer": await user("vic"),
        "contributor": await user("cora"),
        "supervisor": await user("sam"),
        "team": await user("tess"),
        "no grant": await user("nadia"),
        "admin user": await user("ada", admin=True),
        "admin": ADMIN,
    }
    await grant(EU, "users", "vic", "viewer")
    await grant(US, "users", "cora", "contributor")
    await grant(EU, "users", "sam", "supervisor")
    await grant(US, "users", "sam", "viewer")
    status, body = await call(api, "POST", "/v1/teams", ADMIN, {"id": f"crew-{tag}", "name": "C"})
    assert status == 201, body
    status, body = await call(api, "PUT", f"/v1/teams/crew-{tag}/members/tess-{tag}", ADMIN)
    assert status == 200, body
    await grant(US, "teams", "crew", "contributor")
    everything = sorted(channel.id for channel in CHANNELS)
    sees = {
        "viewer": [EU.id],
        "contributor": [US.id],
        "supervisor": sorted([EU.id, US.id]),
        "team": [US.id],
        "no grant": [],
        "admin user": everything,
        "admin": everything,
    }

    # Asking for a channel by name: 404 where the caller may not see it, as in the API.
    for caller, headers in callers.items():
        for channel in (EU, US):
            response = await api.get("/v1/stream", headers=headers, params={"channels": channel.id})
            async with response:
                if channel.id in sees[caller]:
                    assert response.status == 200, (caller, channel.id)
                    assert response.content_type == "text/event-stream"
                else:
                    assert response.status == 404, (caller, channel.id)
                    body = await response.json()
                    assert body["error"]["code"] == "not_found", body

    async with contextlib.AsyncExitStack() as streams:
        opened_ = {
            caller: await streams.enter_async_context(opened(api, headers))
            for caller, headers in callers.items()
        }
        for caller, sse in opened_.items():
            assert sse.channels == sees[caller], caller
        # One customer writes on each channel; once the admin has both, every stream of
        # this receiver has been offered both (the hub hands a change to all at once).
        eu, us = new_phone(), new_phone()
        await customer_writes(api, EU, eu)
        await customer_writes(api, US, us)
        early = {
            caller: await opened_[caller].changes_until(lambda s: count(s, {eu, us}) == 2)
            for caller in ("admin", "admin user")
        }
        # Then a marker on each: a stream reading up to its markers has read past
        # whatever the first two wrote to it.
        eu_mark, us_mark = new_phone(), new_phone()
        await customer_writes(api, EU, eu_mark)
        await customer_writes(api, US, us_mark)
        for caller, sse in opened_.items():
            marks = {EU.id: eu_mark, US.id: us_mark}
            expected = {marks[channel] for channel in sees[caller] if channel in marks}
            if not expected:
                continue  # subscribed to nothing: nothing can come
            seen = early.get(caller, []) + await sse.changes_until(
                lambda s, want=expected: count(s, want) == len(want)
            )
            got = {e.data["customer"] for e in seen if about({eu, us, eu_mark, us_mark})(e)}
            wanted = {eu, eu_mark} if EU.id in sees[caller] else set()
            wanted |= {us, us_mark} if US.id in sees[caller] else set()
            assert got == wanted, caller
            assert {e.data["channel"] for e in seen if e.name == "change"} <= set(sees[caller])


# 5. A slow client is cut; the others are unaffected


async def test_a_slow_client_is_cut_and_the_others_are_unaffected(stack: Stack) -> None:
    """The slow client stops reading after `ready`: what is sent to it piles up in its
    socket buffers (a small receive window, so that megabytes do not hide in them), then
    the receiver's stream waits on it, and its queue fills. The normal one reads along,
    each change within PROMPT_S of its place in the feed. Each change is about 12 kB
    (the customer's name, 4,096 characters of 3 bytes, which every change carries whole;
    a preview is cut short): customers write rounds of them until the slow client is cut
    (how much the kernel buffers depends on the machine; here some 550 changes, a few
    seconds), then one more."""
    api, hub = stack.api, hub_of(stack.api)
    customers, per_webhook = [new_phone() for _ in range(8)], 10  # ~120 kB of changes
    name = "€" * 4096

    def subscribers() -> set[Subscriber]:
        return set(hub._subscribers.get(EU.id, ()))

    before = subscribers()
    async with opened(api, stack.ana, channels=[EU.id]) as normal:
        [normal_subscriber] = subscribers() - before
        async with (
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(socket_factory=small_window)
            ) as session,
            opened(api, stack.ana, channels=[EU.id], session=session) as slow,
            redis_of(stack) as store,
        ):
            [slow_subscriber] = subscribers() - before - {normal_subscriber}
            received: list[tuple[Event, float]] = []
            flood = 0

            async def read_along() -> None:
                """The normal client reads as changes come, while customers write (a
                client that read only between rounds would fall a round behind)."""
                while True:
                    received.append((await normal.event(timeout_s=3600), time.time()))

            async def keeping_up() -> None:
                """The normal client has read the feed's newest change, or that change
                is younger than PROMPT_S (a change held back until a heartbeat, or never
                sent, fails here rather than as a round's timeout)."""
                _, newest = (await Feed(store).bounds([EU.id]))[EU.id]
                read = position(received[-1][0], EU.id) if received else "0-0"
                behind = time.time() - _key(newest)[0] / 1000
                assert not newer(newest, read) or behind < PROMPT_S, (
                    f"the normal client is {behind:.1f}s behind the feed "
                    f"(read to {read}, the feed at {newest}; {len(received)} events read)"
                )

            async def round_of_changes() -> None:
                """Every customer writes; the normal client reads all of it as it comes."""
                nonlocal flood
                for customer in customers:  # spread over the topic's partitions
                    await customer_writes(api, EU, customer, name=name, count=per_webhook)
                flood += per_webhook * len(customers)
                async with asyncio.timeout(WAIT_S):  # the broker and the engine
                    while count([e for e, _ in received], set(customers)) < flood:
                        assert not reading.done(), reading
                        await keeping_up()
                        await asyncio.sleep(0.01)

            reading = asyncio.create_task(read_along())
            try:
                while not slow_subscriber.cut:
                    # The socket buffers hold a few megabytes at most.
                    assert normal.read_bytes < 64 << 20, "a client that reads nothing was never cut"
                    await round_of_changes()
                await round_of_changes()  # and the normal one goes on
            finally:
                reading.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reading

            # The slow one was cut: unsubscribed, its queue at most full, then its
            # connection ended (after what the socket buffers held).
            assert slow_subscriber.cut is True
            assert slow_subscriber.queue.qsize() <= QUEUE + 1  # and the None that ends it
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5
            while slow_subscriber in subscribers():
                assert loop.time() < deadline, "the cut stream still holds its subscription"
                await asyncio.sleep(0.02)
            buffered: list[Event] = []
            with contextlib.suppress(EOFError, aiohttp.ClientPayloadError):
                while True:
                    buffered.append(await slow.event(timeout_s=5))
            assert count(buffered, set(customers)) < flood

    # The normal client had every change, in order, none twice, none late, and no cut.
    assert normal_subscriber.cut is False
    changes = [(e, at) for e, at in received if e.name == "change"]
    assert [e.name for e, _ in received] == ["change"] * len(received)
    ids = [position(e, EU.id) for e, _ in changes]
    assert ids == sorted(ids, key=_key) and len(set(ids)) == len(ids)
    mine = [(e, at) for e, at in changes if about(set(customers))(e)]
    assert len(mine) == flood
    lags = sorted(at - _key(position(e, EU.id))[0] / 1000 for e, at in mine)
    assert lags[-1] < PROMPT_S, f"the normal client fell behind: worst {lags[-1]:.3f}s"

    # What the slow one got is a gapless start of the same sequence; it resumes the rest.
    prefix = [e for e in buffered if e.name == "change"]
    assert [position(e, EU.id) for e in prefix] == ids[: len(prefix)]
    async with opened(api, stack.ana, channels=[EU.id], last_event_id=prefix[-1].id) as again:
        rest = await again.changes_until(
            lambda s: count(prefix + s, set(customers)) == flood, timeout_s=30
        )
    assert [position(e, EU.id) for e in prefix + rest][: len(ids)] == ids

    # A client that simply left is let go of at the stream's next write (a change, or a
    # heartbeat at the latest): nothing of this test stays subscribed.
    await customer_writes(api, EU, customers[0], "Bye")
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while subscribers() - before:
        assert asyncio.get_running_loop().time() < deadline, subscribers() - before
        await asyncio.sleep(0.02)


async def test_a_burst_bigger_than_a_queue_cuts_no_client_that_reads(stack: Stack) -> None:
    """The engine applies up to WRITES_PER_CALL events of a channel in one step, so a
    catching-up engine puts hundreds of changes on a feed at once, and one read of the
    hub gets them all: a client that reads along must not be cut for it. Applied here by
    the engine's own Applier on the stack's Redis, in one batch."""
    burst = WRITES_PER_CALL  # one apply.lua call
    assert burst > QUEUE
    phones = [new_phone() for _ in range(burst)]
    at = time.time()
    async with opened(stack.api, ADMIN, channels=[OTHER.id]) as sse:
        async with redis_of(stack) as client:
            conversations = ConversationStore(client)
            await conversations.start()
            results = await Applier(conversations, Clock(at)).apply(
                [f.customer(OTHER.id, phone, at) for phone in phones]
            )
        assert {result.outcome for result in results} == {Outcome.APPLIED}
        seen = await sse.changes_until(lambda s: count(s, set(phones)) == burst)
    assert [e.data["customer"] for e in seen] == phones  # in order, none lost, not cut


def small_window(address: Any) -> socket.socket:
    """A client socket with a small receive buffer (4 kB asked, which Linux doubles; no
    autotuning to megabytes)."""
    family, kind, protocol, _, _ = address
    made = socket.socket(family, kind, protocol)
    made.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return made


# 6. Heartbeats


async def test_a_quiet_stream_gets_heartbeats(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HEARTBEAT_S is a module constant of the handler (no setting): shortened here."""
    monkeypatch.setattr(handler, "HEARTBEAT_S", 0.05)
    async with opened(stack.api, ADMIN, channels=[OTHER.id]) as sse:  # nobody writes there
        items = [await sse.item(timeout_s=2) for _ in range(5)]
    assert items == [Comment("heartbeat")] * 5


async def test_a_stream_outlives_the_bound_of_an_api_request(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Other /v1 requests are bounded as a whole (api/errors.py: a hung Redis gets a
    503). A stream is open as long as its client reads: past that bound it still carries
    heartbeats and changes, and no 503 is ever written into it. Both constants shortened
    here."""
    monkeypatch.setattr(errors, "REQUEST_TIMEOUT_S", 0.1)
    monkeypatch.setattr(handler, "HEARTBEAT_S", 0.05)
    phone = new_phone()
    async with opened(stack.api, stack.ana, channels=[EU.id]) as sse:
        loop = asyncio.get_running_loop()
        until = loop.time() + 10 * errors.REQUEST_TIMEOUT_S
        while loop.time() < until:
            await sse.item(timeout_s=2)  # EOFError or TimeoutError: the stream was ended
        await customer_writes(stack.api, EU, phone)
        seen = await sse.changes_until(lambda s: count(s, {phone}) == 1)
    assert seen[-1].data["customer"] == phone
