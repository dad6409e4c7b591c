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
every Redis key, every file of the store).
"""

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import EU
from tests.kafka_tools import eventually
from tests.rich_tools import (
    MEDIA_CASES,
    MediaCase,
    Stack,
    media_webhook,
    new_media_id,
    new_phone,
    new_wamid,
    post_webhook,
    running,
    sha256,
    unique_bytes,
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
    assert await post_webhook(stack.api, EU, body) == 200
    # Answered with nothing downloaded: the file is fetched off the webhook's path.
    assert [d for d in standin.media_downloads if d[0] == media_id] == []

    async def shown() -> dict[str, Any] | None:
        return await stack.message(EU.id, phone, wamid)

    message = await eventually(shown)
    assert message["media"]["state"] == "fetching"
    assert message["media"]["url"] is None
    assert message["preview"] == case.preview
    await eventually(lambda: _true(media_id in standin.media_lookups))
    release.set()

    async def stored() -> dict[str, Any] | None:
        found = await shown()
        return found if found and found["media"]["state"] != "fetching" else None

    message = await eventually(stored)
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


async def _true(value: bool) -> bool:
    return value


async def test_a_media_id_meta_does_not_have_fails_visibly(any_store: Stack) -> None:
    stack, case = any_store, MEDIA_CASES[0]
    phone, wamid, media_id = new_phone(), new_wamid(), new_media_id()  # never seeded
    body = media_webhook(case, EU.id, phone, wamid, int(time.time()), media_id)
    assert await post_webhook(stack.api, EU, body) == 200

    async def failed() -> dict[str, Any] | None:
        found = await stack.message(EU.id, phone, wamid)
        return found if found and found["media"]["state"] == "failed" else None

    media = (await eventually(failed))["media"]
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
