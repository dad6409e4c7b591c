"""Rich messaging against real parts: customers' files fetched into the media store and
served to agents; agents' files, templates, buttons, lists, reactions and quoted
replies in Meta's documented shapes; read receipts and typing; template sync.

Signed webhooks in Meta's shape (tests/payloads/) go through the real receiver, a real
broker (Tansu), the engine (its fetcher and sender) and a real redis-server; the Graph
stand-in answers over HTTP; the media store is a local directory or an S3 bucket on
moto's server, spoken to over the S3 protocol. Nothing of Parley's own is mocked.

One stack per store serves the module (tests/rich_tools.py): each test writes as
customers of its own. What must be refused is checked against the API alone, where
"nothing produced and nothing written" can be seen exactly (the topic's end offsets,
every Redis key, every file of the store). WhatsApp's rules themselves, against the
stand-in's, are tests/test_whatsapp_rules.py's (hypothesis).
"""

import io
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import msgspec
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaConsumer, TopicPartition
from redis.asyncio import Redis

from devstack.graph_standin import Fault, SentMessage, StandIn, Template
from devstack.graph_standin import create_app as create_standin
from engine.sender import Credentials
from engine.template_sync import sync_all
from mediastore import open_media_store
from parley import whatsapp
from parley.channels import Channel
from parley.graph import GraphClient
from parley.settings import Settings
from parley.state import Queue
from store import _keys as keys
from store.channels import seed_channels
from store.templates import Template as StoredTemplate
from store.templates import save_template
from store.templates import templates as stored_templates
from tests.api_tools import (
    ADMIN,
    AiohttpClient,
    call,
    put_conversation,
    start_api,
    user_with_role,
)
from tests.conftest import EU, US
from tests.http_tools import post_message
from tests.kafka_tools import eventually
from tests.rich_tools import (
    MEDIA_CASES,
    WABA,
    MediaCase,
    Stack,
    local_names,
    media_webhook,
    new_media_id,
    new_phone,
    new_wamid,
    post_webhook,
    running,
    sha256,
    unique_bytes,
    until,
)
from tests.s3_tools import moto_server


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    yield from moto_server()


@pytest.fixture(scope="module")
async def local_stack(kafka_bootstrap: str, redis_url: str) -> AsyncIterator[Stack]:
    async with running(kafka_bootstrap, redis_url, "local") as stack:
        yield stack


@pytest.fixture(scope="module")
async def s3_stack(kafka_bootstrap: str, redis_url: str, s3_endpoint: str) -> AsyncIterator[Stack]:
    async with running(kafka_bootstrap, redis_url, "s3", s3_endpoint) as stack:
        yield stack


@pytest.fixture(params=["local", "s3"])
def any_store(request: pytest.FixtureRequest) -> Stack:
    """The same flow with the media in a local directory and in an S3 bucket."""
    stack: Stack = request.getfixturevalue(f"{request.param}_stack")
    return stack


@pytest.fixture
def stack(local_stack: Stack) -> Stack:
    """For what does not touch the media store: the local one."""
    return local_stack


# 1, 2: customers' files, end to end, on both stores


@pytest.mark.parametrize("case", MEDIA_CASES, ids=[case.name for case in MEDIA_CASES])
async def test_a_customers_file_is_fetched_after_the_webhook_is_answered_and_served_to_agents(
    any_store: Stack, case: MediaCase
) -> None:
    stack, standin = any_store, any_store.standin
    phone, wamid, media_id, data = new_phone(), new_wamid(), new_media_id(), unique_bytes(case)
    standin.seed_media(media_id, data, case.mime_type)
    release = standin.hold_media(media_id)  # Meta's answer waits for the test
    standin.expire_next_media_url(media_id)  # and the first URL is dead on arrival

    body = media_webhook(case, EU.id, phone, wamid, int(time.time()), media_id)
    # Answered while Meta holds the file: a webhook that waited for the download would
    # hang here. Nothing was downloaded before the answer.
    assert await post_webhook(stack.api, EU, body) == 200
    assert [d for d in standin.media_downloads if d[0] == media_id] == []

    async def shown() -> dict[str, Any] | None:
        return await stack.message(EU.id, phone, wamid)

    message = await until(shown)
    assert message["media"]["state"] == "fetching"
    assert message["media"]["url"] is None
    assert message["preview"] == case.preview

    async def asked() -> bool:  # the engine's fetcher is waiting on Meta now
        return media_id in standin.media_lookups

    await eventually(asked)
    release.set()

    async def stored() -> dict[str, Any] | None:
        found = await shown()
        return found if found and found["media"]["state"] != "fetching" else None

    message = await until(stored)
    media = message["media"]
    assert media == {
        "kind": case.kind,
        "state": "stored",
        "mime_type": case.mime_type,
        "filename": case.filename,
        "voice": bool(case.voice),
        "size": len(data),
        "error": None,
        "url": f"/v1/media/{EU.id}/{await stack.customer_id(EU.id, phone)}/{quote(wamid, safe='')}",
    }
    # The expired URL was asked for again from the media id, and downloaded once.
    assert standin.media_lookups.count(media_id) == 2
    assert [d for d in standin.media_downloads if d[0] == media_id] == [
        (media_id, 404),
        (media_id, 200),
    ]
    assert await stack.media.get(sha256(data)) == (data, case.mime_type)
    # The live stream heard of it: a page showing "fetching" reloads the message.
    customer = await stack.customer_id(EU.id, phone)
    changes = [
        msgspec.json.decode(fields[b"c"])
        for _, fields in await stack.redis.xrange(keys.feed(EU.id))
    ]
    assert [c["kind"] for c in changes if c["customer"] == customer][-1] == "media.fetched"

    answer = await stack.api.get(media["url"], headers=stack.vic)  # a viewer may see it
    assert answer.status == 200
    assert await answer.read() == data
    assert answer.headers["Content-Type"] == case.mime_type
    disposition = case.disposition
    if case.filename:
        disposition += f"; filename=\"{case.filename}\"; filename*=UTF-8''{case.filename}"
    assert answer.headers["Content-Disposition"] == disposition
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in answer.headers["Content-Security-Policy"]

    for outsider in (stack.uma, {}):  # a role on another channel only; nobody
        refused = await stack.api.get(media["url"], headers=outsider)
        assert refused.status == (404 if outsider else 401), await refused.text()


async def test_a_media_id_meta_does_not_have_fails_visibly(any_store: Stack) -> None:
    stack, case = any_store, MEDIA_CASES[0]
    phone, wamid, media_id = new_phone(), new_wamid(), new_media_id()  # never seeded
    body = media_webhook(case, EU.id, phone, wamid, int(time.time()), media_id)
    assert await post_webhook(stack.api, EU, body) == 200

    async def failed() -> dict[str, Any] | None:
        found = await stack.message(EU.id, phone, wamid)
        return found if found and found["media"]["state"] == "failed" else None

    media = (await until(failed))["media"]
    assert media["url"] is None
    assert media["error"].startswith("100 ") and media["error"].endswith("(HTTP 400)")
    assert f"'{media_id}' does not exist" in media["error"]
    # Not retried (Meta will not have it later) and nothing to download.
    assert stack.standin.media_lookups.count(media_id) == 1
    customer = await stack.customer_id(EU.id, phone)
    path = f"/v1/media/{EU.id}/{customer}/{quote(wamid, safe='')}"
    answer = await stack.api.get(path, headers=stack.ana)
    assert answer.status == 404, await answer.text()


async def test_a_duplicate_webhook_fetches_and_stores_nothing_twice(any_store: Stack) -> None:
    stack, standin, case = any_store, any_store.standin, MEDIA_CASES[4]
    phone, wamid, media_id, data = new_phone(), new_wamid(), new_media_id(), unique_bytes(case)
    standin.seed_media(media_id, data, case.mime_type)
    release = standin.hold_media(media_id)
    body = media_webhook(case, EU.id, phone, wamid, int(time.time()), media_id)
    objects_before = await stack.objects()
    assert await post_webhook(stack.api, EU, body) == 200
    assert await post_webhook(stack.api, EU, body) == 200  # Meta delivers again
    await stack.settled(EU.id, phone)  # both applied
    release.set()

    async def stored() -> dict[str, Any] | None:
        found = await stack.message(EU.id, phone, wamid)
        return found if found and found["media"]["state"] == "stored" else None

    await eventually(stored)
    assert await post_webhook(stack.api, EU, body) == 200  # and once more, after the fetch
    await stack.settled(EU.id, phone)

    async def no_fetch_waiting() -> bool:
        return await stack.fetches_waiting(EU.id) == 0

    await eventually(no_fetch_waiting)
    assert standin.media_lookups.count(media_id) == 1
    assert [d for d in standin.media_downloads if d[0] == media_id] == [(media_id, 200)]
    conversation = await stack.conversation(EU.id, phone)
    assert conversation is not None
    assert [m["id"] for m in conversation["messages"] if m["direction"] == "inbound"] == [wamid]
    added = sorted(set(await stack.objects()) - set(objects_before))
    assert [name.rsplit("/", 1)[-1] for name in added] == [sha256(data)]


# 3: what agents send reaches WhatsApp in Meta's documented shape


def envelope(phone: str, **message: Any) -> dict[str, Any]:
    """A send's body as Meta documents it: the envelope around one message object."""
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": phone,
        **message,
    }


async def customer_writes(
    stack: Stack, phone: str, text: str = "Hi, where is my order?", channel: Channel = EU
) -> str:
    """The customer's text message, applied; its wamid."""
    wamid = new_wamid()
    await post_message(stack.api, channel, phone, wamid, int(time.time()), text)

    async def shown() -> dict[str, Any] | None:
        return await stack.message(channel.id, phone, wamid)

    await eventually(shown)
    return wamid


async def act(
    stack: Stack, phone: str, action: str, body: Any = None, channel: Channel = EU
) -> dict[str, Any]:
    """Ana's action on the conversation (`replies`, `reactions`, `read`, `typing`),
    decided by the engine; the API's answer (`outcome` applied or ignored)."""
    path = f"/v1/conversations/{channel.id}/{phone}/{action}"
    status, answer = await call(stack.api, "POST", path, stack.ana, body)
    assert status == 200, answer
    found: dict[str, Any] = answer
    return found


async def reply(
    stack: Stack, phone: str, body: dict[str, Any], channel: Channel = EU
) -> dict[str, Any]:
    """An agent's reply, applied by the engine; the API's answer."""
    answer = await act(stack, phone, "replies", body, channel)
    assert answer["outcome"] == "applied", answer
    return answer


async def sent_to(standin: StandIn, phone: str, count: int) -> list[SentMessage]:
    """What the stand-in accepted for `phone`, once there are `count` sends."""

    async def arrived() -> list[SentMessage] | None:
        found = [sent for sent in standin.sent if sent.to == phone]
        return found if len(found) >= count else None

    found = await until(arrived)
    assert len(found) == count, found  # nothing more than asked for
    return found


async def upload(stack: Stack, data: bytes, mime_type: str, **params: str) -> dict[str, Any]:
    response = await stack.api.post(
        f"/v1/channels/{EU.id}/uploads",
        data=data,
        headers={**stack.ana, "Content-Type": mime_type},
        params=params or None,
    )
    answer: dict[str, Any] = await response.json()
    assert response.status == 201, answer
    return answer


def uploaded_id(standin: StandIn, data: bytes) -> str:
    """The media id the stand-in gave the upload of `data` (by EU's number)."""
    [found] = [
        media
        for media in standin.media.values()
        if media.sha256 == sha256(data) and media.phone_number_id == EU.id
    ]
    return found.id


OUTBOUND_FILES = [
    # (kind, MIME type, first bytes, caption, filename)
    ("image", "image/png", b"\x89PNG\r\n\x1a\n", "The new part", None),
    ("document", "application/pdf", b"%PDF-1.7\n", "Your invoice", "invoice-1013.pdf"),
    ("audio", "audio/mpeg", b"ID3\x04\x00", None, None),  # WhatsApp shows no caption on audio
    ("video", "video/mp4", b"\x00\x00\x00\x18ftypmp42", "How to fit it", None),
]


async def test_agents_files_go_out_uploaded_with_their_captions(any_store: Stack) -> None:
    stack, standin = any_store, any_store.standin
    phone = new_phone()
    await customer_writes(stack, phone)
    for count, (kind, mime_type, head, caption, filename) in enumerate(OUTBOUND_FILES, 1):
        data = head + uuid.uuid4().bytes * 32
        params = {"filename": filename} if filename else {}
        kept = await upload(stack, data, mime_type, **params)
        assert kept == {
            "key": sha256(data),
            "kind": kind,
            "mime_type": mime_type,
            "size": len(data),
            "filename": filename,
        }
        attachment = {"key": kept["key"], **({"filename": filename} if filename else {})}
        answer = await reply(
            stack, phone, {"attachment": attachment, **({"text": caption} if caption else {})}
        )
        sent = (await sent_to(standin, phone, count))[-1]
        media_id = uploaded_id(standin, data)
        expected: dict[str, Any] = {"id": media_id}
        if caption:
            expected["caption"] = caption
        if filename:
            expected["filename"] = filename
        assert sent.body == envelope(phone, type=kind, **{kind: expected})
        assert (standin.media[media_id].data, standin.media[media_id].mime_type) == (
            data,
            mime_type,
        )
        # The conversation shows the agent's file, downloadable from Parley.
        [mine] = [m for m in answer["conversation"]["messages"] if m["id"] == answer["event_id"]]
        assert (mine["type"], mine["media"]["state"], mine["text"]) == (kind, "stored", caption)
        assert mine["media"]["size"] == len(data)
        download = await stack.api.get(mine["media"]["url"], headers=stack.vic)
        assert (download.status, await download.read()) == (200, data)


ORDER_SHIPPED: list[dict[str, Any]] = [
    {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW1hZ2U="]}},
    {
        "type": "BODY",
        "text": "Hi {{1}}, your order {{2}} is on its way.",
        "example": {"body_text": [["Ana", "#1013"]]},
    },
    {"type": "FOOTER", "text": "Parley Shop"},
    {
        "type": "BUTTONS",
        "buttons": [
            {
                "type": "URL",
                "text": "Track it",
                "url": "https://shop.example.com/track/{{1}}",
                "example": ["https://shop.example.com/track/1013"],
            },
            {"type": "QUICK_REPLY", "text": "Thanks"},
        ],
    },
]


async def test_a_template_with_header_media_body_variables_and_a_url_button(stack: Stack) -> None:
    standin = stack.standin
    standin.set_templates(WABA, [Template("order_shipped", "en_US", ORDER_SHIPPED)])
    status, synced = await call(stack.api, "POST", f"/v1/channels/{EU.id}/templates/sync", ADMIN)
    assert (status, synced) == (200, {"waba_id": WABA, "templates": 1}), synced
    phone = new_phone()
    await customer_writes(stack, phone)
    photo = b"\x89PNG\r\n\x1a\n" + uuid.uuid4().bytes * 32
    header = await upload(stack, photo, "image/png")
    parameters = {
        "header_media": {"key": header["key"]},
        "body": ["Ana", "#1013"],
        "buttons": {"0": "1013"},
    }
    await reply(
        stack, phone, {"template": "order_shipped", "language": "en_US", "parameters": parameters}
    )
    [sent] = await sent_to(standin, phone, 1)
    components = [
        {
            "type": "header",
            "parameters": [{"type": "image", "image": {"id": uploaded_id(standin, photo)}}],
        },
        {
            "type": "body",
            "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "#1013"}],
        },
        {
            "type": "button",
            "sub_type": "url",
            "index": "0",
            "parameters": [{"type": "text", "text": "1013"}],
        },
    ]
    template = {"name": "order_shipped", "language": {"code": "en_US"}, "components": components}
    assert sent.body == envelope(phone, type="template", template=template)


async def test_reply_buttons_and_a_list(stack: Stack) -> None:
    phone = new_phone()
    await customer_writes(stack, phone)
    buttons = {
        "body": "Did the new part fit?",
        "header": "Order #1013",
        "footer": "Parley Shop",
        "buttons": [{"id": "fit-yes", "title": "Yes"}, {"id": "fit-no", "title": "No"}],
    }
    await reply(stack, phone, {"interactive": buttons})
    choices = {
        "body": "Which size do you need?",
        "button": "Sizes",
        "sections": [
            {
                "title": "Common",
                "rows": [
                    {"id": "s", "title": "Small", "description": "Up to 20 cm"},
                    {"id": "m", "title": "Medium"},
                ],
            },
            {"title": "Rare", "rows": [{"id": "xl", "title": "Extra large"}]},
        ],
    }
    answer = await reply(stack, phone, {"interactive": choices})
    first, second = await sent_to(stack.standin, phone, 2)
    assert first.body == envelope(
        phone,
        type="interactive",
        interactive={
            "type": "button",
            "header": {"type": "text", "text": "Order #1013"},
            "body": {"text": "Did the new part fit?"},
            "footer": {"text": "Parley Shop"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": "fit-yes", "title": "Yes"}},
                    {"type": "reply", "reply": {"id": "fit-no", "title": "No"}},
                ]
            },
        },
    )
    assert second.body == envelope(
        phone,
        type="interactive",
        interactive={
            "type": "list",
            "body": {"text": "Which size do you need?"},
            "action": {"button": "Sizes", "sections": choices["sections"]},
        },
    )
    [mine] = [m for m in answer["conversation"]["messages"] if m["id"] == answer["event_id"]]
    assert mine["preview"] == "List: Which size do you need?"
    assert mine["interactive"]["sections"][1]["rows"] == [
        {"id": "xl", "title": "Extra large", "description": None}
    ]


async def test_a_reaction_and_a_quoted_reply(stack: Stack) -> None:
    phone = new_phone()
    wamid = await customer_writes(stack, phone, "The part arrived broken")
    answer = await act(stack, phone, "reactions", {"message": wamid, "emoji": "👍"})
    assert answer["outcome"] == "applied", answer
    answer = await reply(
        stack, phone, {"text": "Sorry! A new one is on its way.", "reply_to": wamid}
    )
    reaction, quoted = await sent_to(stack.standin, phone, 2)
    assert reaction.body == envelope(
        phone, type="reaction", reaction={"message_id": wamid, "emoji": "👍"}
    )
    assert quoted.body == envelope(
        phone,
        type="text",
        text={"preview_url": False, "body": "Sorry! A new one is on its way."},
        context={"message_id": wamid},
    )
    messages = {m["id"]: m for m in answer["conversation"]["messages"]}
    assert messages[wamid]["business_reaction"] == "👍"
    mine = messages[answer["event_id"]]
    assert mine["reply_to"] == wamid
    assert mine["quoted"] == {
        "id": wamid,
        "direction": "inbound",
        "preview": "The part arrived broken",
    }


# 4: read receipts and typing


def reads_of(standin: StandIn, *wamids: str) -> list[tuple[str, str, bool]]:
    """The read receipts sent for these messages: (number, wamid, typing), in order."""
    return [
        (read.phone_number_id, read.message_id, read.typing)
        for read in standin.reads
        if read.message_id in wamids
    ]


async def reads_become(
    standin: StandIn, wamids: tuple[str, ...], expected: list[tuple[str, str, bool]]
) -> None:
    async def arrived() -> bool:
        return len(reads_of(standin, *wamids)) >= len(expected)

    await eventually(arrived)
    assert reads_of(standin, *wamids) == expected


async def nothing_more_is_sent(stack: Stack, phone: str, channel: Channel = EU) -> None:
    """A reply queued after the actions so far has gone out: the sender works through a
    conversation in order, so whatever those actions queued has gone before it."""
    before = len([sent for sent in stack.standin.sent if sent.to == phone])
    await reply(stack, phone, {"text": "Still there?"}, channel)
    await sent_to(stack.standin, phone, before + 1)


async def test_opening_marks_the_last_message_read_once_and_typing_shows(stack: Stack) -> None:
    standin, phone = stack.standin, new_phone()
    first = await customer_writes(stack, phone, "Hello?")
    last = await customer_writes(stack, phone, "Anyone there?")
    mine: tuple[str, ...] = (first, last)

    assert (await act(stack, phone, "read"))["outcome"] == "applied"
    await reads_become(standin, mine, [(EU.id, last, False)])
    again = await act(stack, phone, "read")  # opened a second time
    assert (again["outcome"], again["reason"]) == ("ignored", "already marked read")

    assert (await act(stack, phone, "typing"))["outcome"] == "applied"
    assert (await act(stack, phone, "read", {"typing": True}))["outcome"] == "applied"
    await reads_become(
        standin, mine, [(EU.id, last, False), (EU.id, last, True), (EU.id, last, True)]
    )

    newer = await customer_writes(stack, phone, "Hello??")
    mine += (newer,)
    assert (await act(stack, phone, "read"))["outcome"] == "applied"
    await reads_become(
        standin,
        mine,
        [(EU.id, last, False), (EU.id, last, True), (EU.id, last, True), (EU.id, newer, False)],
    )
    assert (await act(stack, phone, "read"))["outcome"] == "ignored"
    await nothing_more_is_sent(stack, phone)
    assert len(reads_of(standin, *mine)) == 4


async def test_read_receipts_off_sends_neither_reads_nor_typing(stack: Stack) -> None:
    standin, phone = stack.standin, new_phone()
    status, body = await call(
        stack.api, "PATCH", f"/v1/channels/{US.id}", ADMIN, {"read_receipts": False}
    )
    assert (status, body["read_receipts"]) == (200, False), body
    try:
        wamid = await customer_writes(stack, phone, channel=US)
        off = "read receipts are off on this channel"
        for action, sent in (("read", None), ("typing", None), ("read", {"typing": True})):
            answer = await act(stack, phone, action, sent, US)
            assert (answer["outcome"], answer["reason"]) == ("ignored", off), action
        await nothing_more_is_sent(stack, phone, US)
        assert reads_of(standin, wamid) == []
    finally:
        status, body = await call(
            stack.api, "PATCH", f"/v1/channels/{US.id}", ADMIN, {"read_receipts": True}
        )
        assert status == 200, body
    # Back on, the same conversation's opening marks it read.
    assert (await act(stack, phone, "read", channel=US))["outcome"] == "applied"
    await reads_become(standin, (wamid,), [(US.id, wamid, False)])


# 3: what WhatsApp would refuse is refused before anything is produced or written


class Quiet(msgspec.Struct, frozen=True, kw_only=True):
    """The API alone (no engine) on a conversation of WA, with what the refusals name:
    ana's uploads by kind, a file too large to send as an image, the customer's wamid."""

    api: TestClient  # type: ignore[type-arg]
    redis: Redis
    settings: Settings
    consumer: AIOKafkaConsumer
    ana: dict[str, str]
    keys: dict[str, str]
    wamid: str

    async def records(self) -> int:
        """How many records the events topic has ever had (its end offsets added up)."""
        partitions = [
            TopicPartition(self.settings.topic, p) for p in range(self.settings.topic_partitions)
        ]
        return sum((await self.consumer.end_offsets(partitions)).values())

    async def files(self) -> list[str]:
        return local_names(Path(self.settings.media_url.removeprefix("file://")))

    async def snapshot(self) -> tuple[int, list[str], dict[Any, Any]]:
        """The topic's records, the store's files and every Redis key's value and expiry."""
        keys = sorted(await self.redis.keys("*"))
        written = {
            key: (await self.redis.dump(key), await self.redis.pttl(key) > 0) for key in keys
        }
        return await self.records(), await self.files(), written


WA = "31600000001"
CONVERSATION = f"/v1/conversations/{EU.id}/{WA}"
T0 = float(int(time.time()) - 600)  # inside the 24-hour window


@pytest.fixture
async def quiet(
    aiohttp_client: AiohttpClient, settings: Settings, channels: list[Channel], redis: Redis
) -> AsyncIterator[Quiet]:
    api = await start_api(aiohttp_client, settings, channels, action_wait_s=0.05)
    ana = await user_with_role(api, "ana", EU.id, "contributor")
    await put_conversation(redis, EU.id, WA, Queue.NEW, T0)
    path = f"/v1/channels/{EU.id}/templates/order_shipped/en_US"
    status, body = await call(
        api, "PUT", path, ADMIN, {"category": "UTILITY", "components": ORDER_SHIPPED}
    )
    assert status == 200, body
    keys: dict[str, str] = {}
    for name, mime_type, head in [
        ("audio", "audio/mpeg", b"ID3\x04\x00"),
        ("image", "image/png", b"\x89PNG\r\n\x1a\n"),
        ("video", "video/mp4", b"\x00\x00\x00\x18ftypmp42"),
    ]:
        response = await api.post(
            f"/v1/channels/{EU.id}/uploads",
            data=head + uuid.uuid4().bytes,
            headers={**ana, "Content-Type": mime_type},
        )
        assert response.status == 201, await response.text()
        keys[name] = (await response.json())["key"]
    # A customer's photo fetched into the store can be larger than an agent may send.
    store = open_media_store(settings)
    try:
        big = b"\x89PNG\r\n\x1a\n" + b"\0" * whatsapp.MEDIA_RULES["image"].max_bytes
        keys["big_image"] = (await store.put(big, "image/png")).key
    finally:
        await store.close()
    status, conversation = await call(api, "GET", CONVERSATION, ana)
    assert status == 200, conversation
    [message] = conversation["messages"]
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    try:
        yield Quiet(
            api=api,
            redis=redis,
            settings=settings,
            consumer=consumer,
            ana=ana,
            keys=keys,
            wamid=message["id"],
        )
    finally:
        await consumer.stop()


async def refused_without_effect(
    quiet: Quiet, request: Callable[[], Awaitable[tuple[int, Any]]]
) -> tuple[int, dict[str, Any]]:
    """A request that must be refused: nothing produced, nothing stored, nothing written."""
    before = await quiet.snapshot()
    status, answer = await request()
    assert 400 <= status < 500, (status, answer)
    assert set(answer) == {"error"}, answer
    assert await quiet.snapshot() == before
    error: dict[str, Any] = answer["error"]
    return status, error


def template_reply(**parameters: Any) -> Callable[[Quiet], dict[str, Any]]:
    """order_shipped with its variables: these, over a full set that fits."""

    def body(quiet: Quiet) -> dict[str, Any]:
        given = {
            "header_media": {"key": quiet.keys["image"]},
            "body": ["Ana", "#1013"],
            "buttons": {"0": "1013"},
            **parameters,
        }
        given = {name: value for name, value in given.items() if value is not None}
        return {"template": "order_shipped", "language": "en_US", "parameters": given}

    return body


def choices(count: int) -> list[dict[str, str]]:
    return [{"id": f"c{n}", "title": f"Choice {n}"} for n in range(count)]


REFUSED_REPLIES: list[Any] = [
    pytest.param(template_reply(body=["Ana"]), "parameters.body", id="a-body-variable-missing"),
    pytest.param(template_reply(buttons={}), "parameters.buttons.0", id="the-url-variable-missing"),
    pytest.param(template_reply(header_media=None), "parameters.header_media", id="no-header"),
    pytest.param(
        lambda q: template_reply(header_media={"key": q.keys["video"]})(q),
        "parameters.header_media",
        id="a-video-for-an-image-header",
    ),
    pytest.param(
        lambda q: {"template": "no_such_template", "language": "en_US"},
        "template",
        id="an-unknown-template",
    ),
    pytest.param(
        lambda q: {"attachment": {"key": q.keys["big_image"]}},
        "attachment",
        id="a-file-too-large-for-its-kind",
    ),
    pytest.param(
        lambda q: {"attachment": {"key": q.keys["audio"]}, "text": "Listen"},
        "text",
        id="a-caption-on-audio",
    ),
    pytest.param(
        lambda q: {"attachment": {"key": q.keys["image"]}, "text": "x" * 1025},
        "text",
        id="a-caption-too-long",
    ),
    pytest.param(
        lambda q: {"attachment": {"key": sha256(b"never uploaded")}},
        "attachment.key",
        id="a-file-never-uploaded",
    ),
    pytest.param(
        lambda q: {"interactive": {"body": "Pick one", "buttons": choices(4)}},
        "interactive.buttons",
        id="too-many-buttons",
    ),
    pytest.param(
        lambda q: {
            "interactive": {
                "body": "Pick one",
                "button": "Options",
                "sections": [{"rows": choices(11)}],
            }
        },
        "interactive.sections",
        id="too-many-rows",
    ),
    pytest.param(
        lambda q: {"interactive": {"body": "Pick", "buttons": [{"id": "a", "title": "x" * 21}]}},
        "interactive.buttons[0].title",
        id="a-button-title-too-long",
    ),
    pytest.param(
        lambda q: {"text": "Yes", "reply_to": "wamid.not-in-this-conversation"},
        "reply_to",
        id="quoting-a-message-of-another-conversation",
    ),
]


@pytest.mark.parametrize(("body", "field"), REFUSED_REPLIES)
async def test_a_reply_whatsapp_would_refuse_is_a_422_naming_the_field(
    quiet: Quiet, body: Callable[[Quiet], dict[str, Any]], field: str
) -> None:
    status, error = await refused_without_effect(
        quiet, lambda: call(quiet.api, "POST", f"{CONVERSATION}/replies", quiet.ana, body(quiet))
    )
    assert (status, error["code"], error.get("field")) == (422, "invalid_field", field), error
    assert error["message"]


@pytest.mark.parametrize(
    ("emoji", "message", "field"),
    [("ok", None, "emoji"), ("👍", "wamid.unknown", "message")],
    ids=["not-an-emoji", "an-unknown-message"],
)
async def test_a_reaction_whatsapp_would_refuse_is_a_422(
    quiet: Quiet, emoji: str, message: str | None, field: str
) -> None:
    body = {"emoji": emoji, "message": message or quiet.wamid}
    status, error = await refused_without_effect(
        quiet, lambda: call(quiet.api, "POST", f"{CONVERSATION}/reactions", quiet.ana, body)
    )
    assert (status, error["code"], error.get("field")) == (422, "invalid_field", field), error


MB = 1024 * 1024


@pytest.mark.parametrize(
    ("mime_type", "size", "params", "status", "field"),
    [
        ("image/png", 5 * MB + 1, {}, 413, "file"),
        ("image/gif", 1000, {}, 422, "file"),
        ("image/webp", 100 * 1024 + 1, {}, 422, "file"),  # a static sticker's limit
        ("image/png", 1000, {"kind": "audio"}, 422, "file"),
    ],
    ids=["an-image-too-large", "a-type-whatsapp-refuses", "a-sticker-too-large", "wrong-kind"],
)
async def test_an_upload_whatsapp_would_refuse_is_refused_and_nothing_kept(
    quiet: Quiet, mime_type: str, size: int, params: dict[str, str], status: int, field: str
) -> None:
    async def upload() -> tuple[int, Any]:
        response = await quiet.api.post(
            f"/v1/channels/{EU.id}/uploads",
            data=io.BytesIO(b"\x89PNG" + b"\0" * (size - 4)),
            headers={**quiet.ana, "Content-Type": mime_type},
            params=params or None,
        )
        return response.status, await response.json()

    got, error = await refused_without_effect(quiet, upload)
    assert (got, error.get("field")) == (status, field), error


async def test_the_refusal_check_sees_what_valid_requests_do(quiet: Quiet) -> None:
    """The control: the same requests, fitting, produce an event (202: no engine here)
    or keep a file, so `refused_without_effect` would catch a leak."""
    records, files, _ = await quiet.snapshot()
    for body in [
        template_reply()(quiet),
        {"attachment": {"key": quiet.keys["audio"]}},
        {"interactive": {"body": "Pick one", "buttons": choices(3)}},
        {"text": "Yes", "reply_to": quiet.wamid},
    ]:
        status, answer = await call(quiet.api, "POST", f"{CONVERSATION}/replies", quiet.ana, body)
        assert status == 202, answer
    status, answer = await call(
        quiet.api,
        "POST",
        f"{CONVERSATION}/reactions",
        quiet.ana,
        {"message": quiet.wamid, "emoji": "👍"},
    )
    assert status == 202, answer
    assert await quiet.records() == records + 5
    response = await quiet.api.post(
        f"/v1/channels/{EU.id}/uploads",
        data=io.BytesIO(b"\x89PNG" + b"\0" * (5 * MB - 4)),
        headers={**quiet.ana, "Content-Type": "image/png"},
    )
    assert response.status == 201, await response.text()
    assert len(await quiet.files()) == len(files) + 1


# Templates synced from the business account


WELCOME = Template(
    "welcome_back",
    "pt_BR",
    [{"type": "BODY", "text": "Olá {{1}}!"}],
    status="PENDING",
    category="MARKETING",
)


@pytest.fixture
async def standin_url(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> tuple[StandIn, str]:
    standin = StandIn(
        {EU.id: EU.access_token, US.id: US.access_token},
        wabas={EU.id: WABA, US.id: WABA},
        templates={WABA: []},
    )
    server = await aiohttp_server(create_standin(standin))
    return standin, str(server.make_url("/v21.0"))


async def templates_of(api: TestClient, channel: str) -> list[dict[str, Any]]:  # type: ignore[type-arg]
    status, body = await call(api, "GET", f"/v1/channels/{channel}/templates", ADMIN)
    assert status == 200, body
    found: list[dict[str, Any]] = body["templates"]
    return found


def as_listed(known: Template) -> dict[str, Any]:
    return {
        "name": known.name,
        "language": known.language,
        "status": known.status,
        "category": known.category,
        "components": known.components,
    }


async def test_syncing_a_channel_replaces_its_templates_with_the_accounts_list(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    channels: list[Channel],
    redis: Redis,
    standin_url: tuple[StandIn, str],
) -> None:
    standin, url = standin_url
    api = await start_api(
        aiohttp_client, msgspec.structs.replace(settings, graph_url=url), channels
    )
    for name, channel in [("hand_made", EU.id), ("order_shipped", EU.id), ("hand_made", US.id)]:
        path = f"/v1/channels/{channel}/templates/{name}/en_US"
        status, body = await call(api, "PUT", path, ADMIN, {"category": "UTILITY"})
        assert status == 200, body
    standin.set_templates(WABA, [Template("order_shipped", "en_US", ORDER_SHIPPED), WELCOME])
    sync = f"/v1/channels/{EU.id}/templates/sync"

    ana = await user_with_role(api, "ana", EU.id, "contributor")
    status, body = await call(api, "POST", sync, ana)
    assert status == 403, body  # admins only

    standin.fail_next(WABA, Fault(status=500))
    status, body = await call(api, "POST", sync, ADMIN)
    assert (status, body["error"]["code"]) == (502, "graph_unavailable"), body
    assert [t["name"] for t in await templates_of(api, EU.id)] == ["hand_made", "order_shipped"]

    status, body = await call(api, "POST", sync, ADMIN)
    assert (status, body) == (200, {"waba_id": WABA, "templates": 2})
    listed = await templates_of(api, EU.id)
    assert [{key: t[key] for key in as_listed(WELCOME)} for t in listed] == [
        as_listed(Template("order_shipped", "en_US", ORDER_SHIPPED)),
        as_listed(WELCOME),
    ]
    assert [t["variables"] for t in listed] == [
        ["header_media:image", "body:2", "button:0"],
        ["body:1"],
    ]
    # Only the channel asked for: US still has its own.
    assert [t["name"] for t in await templates_of(api, US.id)] == ["hand_made"]


async def test_the_engines_sync_gives_every_channel_of_an_account_its_whole_list(
    redis: Redis, standin_url: tuple[StandIn, str]
) -> None:
    standin, url = standin_url
    await seed_channels(redis, [EU, US])
    await save_template(
        redis,
        US.id,
        StoredTemplate(
            name="hand_made", language="en_US", category="UTILITY", status="APPROVED", updated_at=0
        ),
    )
    many = [
        Template(f"notice_{n:03d}", "en_US", [{"type": "BODY", "text": f"Notice {n}"}])
        for n in range(105)  # more than one page of Meta's list
    ]
    standin.set_templates(WABA, many)
    credentials = Credentials(redis, {EU.id: EU.access_token, US.id: US.access_token})
    async with aiohttp.ClientSession() as session:
        graph = GraphClient(session, url)
        standin.fail_next(WABA, Fault(status=500))
        assert await sync_all(redis, graph, credentials.token, lambda: 1000.0) == 0
        assert [t.name for t in await stored_templates(redis, US.id)] == ["hand_made"]

        assert await sync_all(redis, graph, credentials.token, lambda: 2000.0) == 1
    for channel in (EU.id, US.id):
        kept = await stored_templates(redis, channel)
        assert [(t.name, t.status, t.components, t.updated_at) for t in kept] == [
            (t.name, "APPROVED", t.components, 2000.0) for t in many
        ]
