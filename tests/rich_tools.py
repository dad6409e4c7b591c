"""Rich messaging end to end, for tests: a whole stack (the Graph stand-in, the engine
with its fetcher and sender, the receiver with the /v1 API) on a real broker, a real
redis-server and a real media store (a local directory or an S3 bucket on moto's
server); customers' media webhooks in Meta's shape; what the stand-in was asked.

A stack is started once per test module and store (a consumer-group join costs
seconds): each test writes as customers of its own (fresh phones, wamids, media ids and
file bytes), so no test sees another's."""

import contextlib
import copy
import hashlib
import json
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import msgspec
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from devstack.graph_standin import StandIn, Template
from devstack.graph_standin import create_app as create_standin
from devstack.signing import sign
from mediastore import MediaStore, open_media_store
from parley.channels import Channel
from parley.settings import Settings
from store import _keys as keys
from tests.api_tools import ADMIN, call, start_api, start_engine, user_with_role
from tests.conftest import EU, US
from tests.kafka_tools import eventually
from tests.s3_tools import ACCESS_KEY, REGION, SECRET_KEY, new_bucket, raw_client, s3_names

PAYLOADS = Path(__file__).parent / "payloads"
WEBHOOK = "/webhooks/whatsapp"
WABA = "102290129340398"  # EU's and US's business account (tests/conftest.py)
CHANNELS = [EU, US]


class MediaCase(msgspec.Struct, frozen=True, kw_only=True):
    """A kind of file a customer sends: the payload file it comes in, its type as the
    webhook and Meta's lookup say, how the API serves it, and its one-line preview."""

    name: str
    payload: str  # tests/payloads/<payload>.json
    kind: str  # the message's type
    mime_type: str
    voice: bool | None = None  # set on the audio object (None: as the payload has it)
    disposition: str  # inline or attachment
    filename: str | None = None  # a document's, as the payload gives it
    preview: str


MEDIA_CASES = [
    MediaCase(
        name="image",
        payload="image",
        kind="image",
        mime_type="image/jpeg",
        disposition="inline",
        preview="Photo: This is the damaged box",
    ),
    MediaCase(
        name="audio",
        payload="audio",
        kind="audio",
        mime_type="audio/mpeg",
        voice=False,
        disposition="inline",
        preview="Audio",
    ),
    MediaCase(
        name="voice",
        payload="audio",
        kind="audio",
        mime_type="audio/ogg; codecs=opus",
        voice=True,
        disposition="inline",
        preview="Voice message",
    ),
    MediaCase(
        name="video",
        payload="video",
        kind="video",
        mime_type="video/mp4",
        disposition="attachment",
        preview="Video: It makes this noise",
    ),
    MediaCase(
        name="document",
        payload="document",
        kind="document",
        mime_type="application/pdf",
        disposition="attachment",
        filename="receipt-1013.pdf",
        preview="Document: My receipt",
    ),
    MediaCase(
        name="sticker",
        payload="sticker",
        kind="sticker",
        mime_type="image/webp",
        disposition="inline",
        preview="Sticker",
    ),
]


T = TypeVar("T")


async def until(check: Callable[[], Awaitable[T | None]], timeout_s: float = 15.0) -> T:
    """`eventually` for a check that answers None until it has its value: the value."""
    found = await eventually(check, timeout_s)
    assert found is not None
    return found


def media_webhook(
    case: MediaCase, channel: str, phone: str, wamid: str, at: int, media_id: str
) -> dict[str, Any]:
    """The payload file's webhook (Meta's own example of the kind), from `phone` to
    `channel`, as message `wamid` sent at `at` naming `media_id`."""
    body: dict[str, Any] = json.loads((PAYLOADS / f"{case.payload}.json").read_text())
    body = copy.deepcopy(body)
    value = body["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = channel
    value["contacts"][0]["wa_id"] = phone
    [message] = value["messages"]
    message.update({"from": phone, "id": wamid, "timestamp": str(at)})
    media = message[case.kind]
    media.update({"id": media_id, "mime_type": case.mime_type})
    if case.voice is not None:
        media["voice"] = case.voice
    return body


async def post_webhook(
    api: TestClient,  # type: ignore[type-arg]
    channel: Channel,
    body: dict[str, Any],
) -> int:
    """Posts `body` as Meta does, signed with the channel's app secret; the status."""
    raw = json.dumps(body).encode()
    response = await api.post(
        WEBHOOK, data=raw, headers={"X-Hub-Signature-256": sign(raw, channel.app_secret)}
    )
    await response.read()
    return response.status


def unique_bytes(case: MediaCase) -> bytes:
    """A file of its kind's look (the first bytes), different in every test: the store
    is content-addressed, so tests must not share files."""
    heads = {
        "image/jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF",
        "image/webp": b"RIFF\x24\x00\x00\x00WEBPVP8 ",
        "application/pdf": b"%PDF-1.7\n",
        "video/mp4": b"\x00\x00\x00\x18ftypmp42",
        "audio/mpeg": b"ID3\x04\x00",
    }
    head = heads.get(case.mime_type.split(";")[0], b"OggS\x00\x02")
    return head + uuid.uuid4().bytes * 64


def new_phone() -> str:
    return "316" + str(uuid.uuid4().int)[:8]


def new_wamid() -> str:
    """A wamid in Meta's style: standard base64, with "+", "/" and "=" in it (a file's
    URL names its message by wamid)."""
    return "wamid.HBgL+" + uuid.uuid4().hex.upper() + "/AA=="


def new_media_id() -> str:
    return str(10**15 + uuid.uuid4().int % (9 * 10**15))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def with_db(redis_url: str, db: int) -> str:
    """The same server's database `db`: a stack's own, never flushed by the `redis`
    fixture (database 0) of the tests that run while the stack lives."""
    parts = urlsplit(redis_url)
    return urlunsplit(parts._replace(path=f"/{db}"))


class Stack(msgspec.Struct, frozen=True, kw_only=True):
    """A running stack and the people on it: ana (contributor on EU and US), vic (a
    viewer on EU), uma (a contributor on US only: EU's conversations are not hers)."""

    store_name: str
    api: TestClient  # type: ignore[type-arg]
    standin: StandIn
    settings: Settings
    redis: Redis
    media: MediaStore  # the store the engine and the API use, opened for looking in
    ana: dict[str, str]
    vic: dict[str, str]
    uma: dict[str, str]
    s3_client: Any = None
    bucket: str | None = None

    async def objects(self) -> list[str]:
        """The names of everything the store holds (local: the files but their types)."""
        if self.bucket is not None:
            return await s3_names(self.s3_client, self.bucket)
        return local_names(Path(self.settings.media_url.removeprefix("file://")))

    async def conversation(
        self, channel: str, phone: str, who: dict[str, str] | None = None
    ) -> dict[str, Any] | None:
        status, body = await call(
            self.api, "GET", f"/v1/conversations/{channel}/{phone}", who or self.ana
        )
        return body if status == 200 else None

    async def customer_id(self, channel: str, phone: str) -> str:
        """Parley's id of the customer (media URLs name it)."""
        body = await self.conversation(channel, phone)
        assert body is not None
        customer: str = body["customer"]["id"]
        return customer

    async def message(self, channel: str, phone: str, message_id: str) -> dict[str, Any] | None:
        """The conversation's message `message_id` (its id or wamid), once it shows."""
        body = await self.conversation(channel, phone)
        for message in (body or {}).get("messages", []):
            if message_id in (message["id"], message.get("wamid")):
                found: dict[str, Any] = message
                return found
        return None

    async def fetches_waiting(self, channel: str) -> int:
        """Media fetch jobs queued or in hand on the channel (a finished one is deleted)."""
        length: int = await self.redis.xlen(keys.fetches(channel))
        return length

    async def settled(self, channel: str, phone: str) -> None:
        """Everything the engine was given about this customer before now is applied:
        a marker action, on the same partition, is applied after it (once the
        conversation shows: an action needs one)."""

        async def shows() -> dict[str, Any] | None:
            return await self.conversation(channel, phone)

        await eventually(shows)
        path = f"/v1/conversations/{channel}/{phone}/tags"
        status, body = await call(self.api, "POST", path, self.ana, {"tag": uuid.uuid4().hex[:8]})
        assert status == 200, body


def local_names(root: Path) -> list[str]:
    """The files of a local media store, but their types."""
    if not root.exists():
        return []
    return sorted(
        path.name for path in root.rglob("*") if path.is_file() and not path.name.endswith(".type")
    )


@contextlib.asynccontextmanager
async def running(
    kafka_bootstrap: str,
    redis_url: str,
    store_name: str,
    s3_endpoint: str | None = None,
    **overrides: Any,
) -> AsyncIterator[Stack]:
    """The stand-in, the engine and the receiver with its API, each on its own port, on
    their own topic and Redis database, with the media store `store_name` ("local": a
    new temporary directory; "s3": a new bucket on `s3_endpoint`); `overrides` are
    settings (the sweep every 0.2 s unless one says otherwise)."""
    topic = f"parley-test-{uuid.uuid4().hex[:12]}"
    clients: list[TestClient] = []  # type: ignore[type-arg]

    async def serve(app: web.Application) -> TestClient:  # type: ignore[type-arg]
        client: TestClient = TestClient(TestServer(app))  # type: ignore[type-arg]
        await client.start_server()
        clients.append(client)
        return client

    redis_url = with_db(redis_url, 1 if store_name == "local" else 2)
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    standin = StandIn(
        {channel.id: channel.access_token for channel in CHANNELS},
        app_secrets={channel.id: channel.app_secret for channel in CHANNELS},
        wabas={channel.id: WABA for channel in CHANNELS},
        templates={WABA: []},
    )
    async with contextlib.AsyncExitStack() as stack:
        s3_client, bucket = None, None
        media_settings: dict[str, Any]
        if store_name == "s3":
            assert s3_endpoint is not None
            s3_client = await stack.enter_async_context(raw_client(s3_endpoint))
            bucket = await new_bucket(s3_client)
            media_settings = {
                "media_url": f"s3://{bucket}",
                "media_s3_endpoint": s3_endpoint,
                "media_s3_region": REGION,
                "media_s3_access_key": ACCESS_KEY,
                "media_s3_secret_key": SECRET_KEY,
            }
        else:
            root = stack.enter_context(tempfile.TemporaryDirectory(prefix="parley-media-"))
            media_settings = {"media_url": f"file://{root}"}
        try:
            graph = await serve(create_standin(standin))
            overrides.setdefault("sweep_interval_s", 0.2)
            settings = Settings(
                kafka_bootstrap=kafka_bootstrap,
                redis_url=redis_url,
                topic=topic,
                topic_partitions=4,
                consumer_group=f"{topic}-engine",
                produce_timeout_s=3.0,
                template_sync_s=0,
                graph_url=str(graph.make_url("/v21.0")),
                **media_settings,
                **overrides,
            )
            await start_engine(serve, settings, CHANNELS)
            api = await start_api(serve, settings, CHANNELS)
            standin.webhook_url = str(api.make_url(WEBHOOK))
            ana = await user_with_role(api, "ana", EU.id, "contributor")
            status, body = await call(
                api, "PUT", f"/v1/channels/{US.id}/access/users/ana", ADMIN, {"role": "contributor"}
            )
            assert status == 200, body
            vic = await user_with_role(api, "vic", EU.id, "viewer")
            uma = await user_with_role(api, "uma", US.id, "contributor")
            media = open_media_store(settings)
            try:
                yield Stack(
                    store_name=store_name,
                    api=api,
                    standin=standin,
                    settings=settings,
                    redis=redis,
                    media=media,
                    ana=ana,
                    vic=vic,
                    uma=uma,
                    s3_client=s3_client,
                    bucket=bucket,
                )
            finally:
                await media.close()
        finally:
            for client in reversed(clients):
                await client.close()
            await redis.aclose()


def template(name: str, components: list[dict[str, Any]], language: str = "en_US") -> Template:
    return Template(name=name, language=language, components=components)
