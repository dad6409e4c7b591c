"""The media store: one contract suite, run against the local directory store and against a
real S3-speaking server (moto's, on a free loopback port, spoken to over HTTP through
aiobotocore like any bucket: tests/s3_tools.py), then what is particular to each and the factory.

Age: retention goes by the time an object was stored, which the tests move back rather than
wait for. Each backend says how (`Backend.age`): the local store's files get an older
modification time (`os.utime`, what `expire` reads); the S3 objects get an older
`LastModified` in the in-process moto server's own state, the one thing no S3 request can
set, and the only place these tests reach past the protocol.
"""

import asyncio
import hashlib
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends

from mediastore import (
    BadMimeType,
    LocalMediaStore,
    MediaStore,
    Stored,
    TooLarge,
    Unavailable,
    open_media_store,
    retention_cutoff,
)
from mediastore.s3 import S3MediaStore
from parley.settings import Settings
from tests.s3_tools import ACCESS_KEY, SECRET_KEY, moto_server, new_bucket, raw_client, s3_names

LIMIT = 6 * 1024 * 1024
MIB = 1024 * 1024
DAY = 24 * 3600.0


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Backend:
    name: str
    store: MediaStore
    # Moves an object's stored time back by this many seconds.
    age: Callable[[str, float], Awaitable[None]]
    # Everything the backend holds for the store (object names, or files but the types).
    names: Callable[[], Awaitable[list[str]]]


# The S3-speaking server, once per session.


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    yield from moto_server()


@pytest.fixture
async def s3_client(s3_endpoint: str) -> AsyncIterator[Any]:
    async with raw_client(s3_endpoint) as client:
        yield client


@pytest.fixture
async def bucket(s3_client: Any) -> str:
    return await new_bucket(s3_client)


def backdate_s3(bucket: str, name: str, seconds: float) -> None:
    stored = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_bucket(bucket).keys[name]
    stored.last_modified -= timedelta(seconds=seconds)


def s3_store(endpoint: str, bucket: str, **options: Any) -> S3MediaStore:
    return S3MediaStore(
        bucket,
        max_bytes=options.pop("max_bytes", LIMIT),
        endpoint_url=endpoint,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        **options,
    )


def local_files(root: Path) -> list[str]:
    if not root.exists():
        return []
    return sorted(
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and not path.name.endswith(".type")
    )


@pytest.fixture(params=["local", "s3"])
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path, s3_endpoint: str
) -> AsyncIterator[Backend]:
    if request.param == "local":
        root = tmp_path / "media"
        store: MediaStore = LocalMediaStore(root, max_bytes=LIMIT)

        async def age_file(key: str, seconds: float) -> None:
            path = root / key[:2] / key
            then = path.stat().st_mtime - seconds
            os.utime(path, (then, then))

        async def files() -> list[str]:
            return local_files(root)

        yield Backend("local", store, age_file, files)
        await store.close()
        return
    async with raw_client(s3_endpoint) as client:
        name = await new_bucket(client)
        store = s3_store(s3_endpoint, name)

        async def age_object(key: str, seconds: float) -> None:
            backdate_s3(name, key, seconds)

        async def objects() -> list[str]:
            return await s3_names(client, name)

        try:
            yield Backend("s3", store, age_object, objects)
        finally:
            await store.close()


# The contract, for both.


async def test_round_trip_keeps_bytes_and_type(backend: Backend) -> None:
    data = b"\xff\xd8\xff\xe0 a photo of a broken kettle"
    stored = await backend.store.put(data, "image/jpeg")
    assert stored == Stored(sha(data), "image/jpeg", len(data))
    assert await backend.store.get(stored.key) == (data, "image/jpeg")
    assert await backend.store.exists(stored.key)
    assert len(await backend.names()) == 1


async def test_a_mime_type_with_parameters_is_kept_as_given(backend: Backend) -> None:
    stored = await backend.store.put(b"OggS voice note", "audio/ogg; codecs=opus")
    assert stored.mime_type == "audio/ogg; codecs=opus"
    assert await backend.store.get(stored.key) == (b"OggS voice note", "audio/ogg; codecs=opus")


async def test_the_same_bytes_are_stored_once(backend: Backend) -> None:
    data = b"the same sticker, sent twice"
    first = await backend.store.put(data, "image/webp")
    # A duplicate webhook, or the same bytes under another name: one object, the first type.
    second = await backend.store.put(data, "application/octet-stream")
    assert second == first
    assert len(await backend.names()) == 1
    other = await backend.store.put(data + b"!", "image/webp")
    assert other.key != first.key
    assert other.key == sha(data + b"!")
    assert len(await backend.names()) == 2


async def test_concurrent_puts_of_the_same_bytes_make_one_whole_object(backend: Backend) -> None:
    data = os.urandom(MIB + 17)
    results = await asyncio.gather(*(backend.store.put(data, "video/mp4") for _ in range(12)))
    assert {result.key for result in results} == {sha(data)}
    assert {result.size for result in results} == {len(data)}
    # No temporary file or second copy is left behind.
    assert len(await backend.names()) == 1
    assert await backend.store.get(sha(data)) == (data, "video/mp4")


async def test_more_than_the_limit_is_refused_and_nothing_stored(backend: Backend) -> None:
    with pytest.raises(TooLarge) as refused:
        await backend.store.put(b"\0" * (LIMIT + 1), "video/mp4")
    assert (refused.value.size, refused.value.max_bytes) == (LIMIT + 1, LIMIT)
    assert str(LIMIT) in str(refused.value)
    assert await backend.names() == []
    assert not await backend.store.exists(sha(b"\0" * (LIMIT + 1)))
    # Exactly the limit is still kept.
    assert (await backend.store.put(b"\1" * LIMIT, "video/mp4")).size == LIMIT


@pytest.mark.parametrize("mime", ["jpeg", "text/html\r\nSet-Cookie: x=1", "a/" + "b" * 300])
async def test_a_malformed_mime_type_is_refused(backend: Backend, mime: str) -> None:
    with pytest.raises(BadMimeType, match="not a MIME type"):
        await backend.store.put(b"data", mime)
    assert await backend.names() == []


@pytest.mark.parametrize("mime", ["", "   "])
async def test_no_mime_type_is_kept_as_a_download(backend: Backend, mime: str) -> None:
    stored = await backend.store.put(b"data", mime)
    assert stored.mime_type == "application/octet-stream"
    assert await backend.store.get(stored.key) == (b"data", "application/octet-stream")


async def test_a_missing_key_is_none(backend: Backend) -> None:
    absent = sha(b"never stored")
    assert await backend.store.get(absent) is None
    assert await backend.store.stream(absent) is None
    assert not await backend.store.exists(absent)
    assert not await backend.store.delete(absent)


@pytest.mark.parametrize("key", ["", "../../etc/passwd", "AB" * 32, "ab" * 31, "ab" * 33])
async def test_a_malformed_key_names_nothing(backend: Backend, key: str) -> None:
    await backend.store.put(b"something", "text/plain")
    assert await backend.store.get(key) is None
    assert await backend.store.stream(key) is None
    assert not await backend.store.exists(key)
    assert not await backend.store.delete(key)
    assert len(await backend.names()) == 1


async def test_a_large_object_streams_in_chunks(backend: Backend) -> None:
    data = os.urandom(5 * MIB + 123)
    stored = await backend.store.put(data, "application/pdf")
    stream = await backend.store.stream(stored.key, chunk_bytes=MIB)
    assert stream is not None
    assert (stream.key, stream.mime_type, stream.size) == (stored.key, "application/pdf", len(data))
    async with stream:
        chunks = [chunk async for chunk in stream]
    assert len(chunks) >= 6
    assert all(0 < len(chunk) <= MIB for chunk in chunks)
    assert b"".join(chunks) == data


async def test_a_reader_that_stops_early_releases_what_it_held(backend: Backend) -> None:
    data = os.urandom(3 * MIB)
    stored = await backend.store.put(data, "video/mp4")
    # More early stops than the S3 client has connections (10): a leak would hang here.
    for _ in range(25):
        stream = await asyncio.wait_for(backend.store.stream(stored.key, chunk_bytes=64 * 1024), 10)
        assert stream is not None
        async with stream:
            async for chunk in stream:
                assert chunk == data[: len(chunk)]
                break
    assert await backend.store.get(stored.key) == (data, "video/mp4")


async def test_delete(backend: Backend) -> None:
    kept = await backend.store.put(b"kept", "text/plain")
    gone = await backend.store.put(b"gone", "text/plain")
    assert await backend.store.delete(gone.key)
    assert await backend.store.get(gone.key) is None
    assert not await backend.store.exists(gone.key)
    assert not await backend.store.delete(gone.key)
    assert len(await backend.names()) == 1
    assert await backend.store.get(kept.key) == (b"kept", "text/plain")
    # Stored again after a delete, it is back.
    assert await backend.store.put(b"gone", "text/csv") == Stored(gone.key, "text/csv", 4)
    assert await backend.store.get(gone.key) == (b"gone", "text/csv")


async def test_expire_deletes_what_is_past_its_retention(backend: Backend) -> None:
    old = await backend.store.put(b"from last season", "image/png")
    older = await backend.store.put(b"from last year", "image/png")
    new = await backend.store.put(b"from this morning", "image/png")
    await backend.age(old.key, 31 * DAY)
    await backend.age(older.key, 400 * DAY)
    await backend.age(new.key, 3600)
    cutoff = time.time() - 30 * DAY
    assert await backend.store.expire(cutoff) == 2
    assert not await backend.store.exists(old.key)
    assert not await backend.store.exists(older.key)
    assert await backend.store.get(new.key) == (b"from this morning", "image/png")
    assert await backend.store.expire(cutoff) == 0
    assert len(await backend.names()) == 1


async def test_a_duplicate_put_renews_the_retention(backend: Backend) -> None:
    sticker = await backend.store.put(b"a popular sticker", "image/webp")
    await backend.age(sticker.key, 40 * DAY)
    # Sent again today by another customer: today's message must keep it.
    assert await backend.store.put(b"a popular sticker", "image/webp") == sticker
    assert await backend.store.expire(time.time() - 30 * DAY) == 0
    assert await backend.store.get(sticker.key) == (b"a popular sticker", "image/webp")


async def test_expire_on_an_empty_store(backend: Backend) -> None:
    assert await backend.store.expire(time.time()) == 0


async def test_close_twice(backend: Backend) -> None:
    await backend.store.put(b"x", "text/plain")
    await backend.store.close()
    await backend.store.close()


# The local directory store.


async def test_local_layout_fans_out_with_the_type_beside(tmp_path: Path) -> None:
    store = LocalMediaStore(tmp_path / "media", max_bytes=LIMIT)
    stored = await store.put(b"%PDF-1.7 invoice", "application/pdf")
    folder = tmp_path / "media" / stored.key[:2]
    assert sorted(path.name for path in folder.iterdir()) == [stored.key, f"{stored.key}.type"]
    assert (folder / stored.key).read_bytes() == b"%PDF-1.7 invoice"
    assert (folder / f"{stored.key}.type").read_text() == "application/pdf"


async def test_local_expire_clears_what_dead_writers_left(tmp_path: Path) -> None:
    store = LocalMediaStore(tmp_path, max_bytes=LIMIT)
    stored = await store.put(b"kept", "text/plain")
    folder = tmp_path / stored.key[:2]
    dead = folder / ".tmp-dead"
    dead.write_bytes(b"half a file")
    orphan = folder / f"{'0' * 64}.type"
    orphan.write_text("image/png")
    then = time.time() - 2 * 3600
    for path in (dead, orphan):
        os.utime(path, (then, then))
    busy = folder / ".tmp-busy"
    busy.write_bytes(b"being written now")
    assert await store.expire(time.time() - 30 * DAY) == 0
    assert sorted(path.name for path in folder.iterdir()) == sorted(
        [".tmp-busy", stored.key, f"{stored.key}.type"]
    )


async def test_local_type_missing_is_served_as_octet_stream(tmp_path: Path) -> None:
    store = LocalMediaStore(tmp_path, max_bytes=LIMIT)
    stored = await store.put(b"bytes", "image/png")
    (tmp_path / stored.key[:2] / f"{stored.key}.type").unlink()
    assert await store.get(stored.key) == (b"bytes", "application/octet-stream")


async def test_local_disk_failure_is_unavailable(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the media folder should be")
    store = LocalMediaStore(blocked, max_bytes=LIMIT)
    with pytest.raises(Unavailable):
        await store.put(b"data", "text/plain")


# The S3 store.


async def test_s3_objects_carry_their_content_type(
    s3_endpoint: str, s3_client: Any, bucket: str
) -> None:
    store = s3_store(s3_endpoint, bucket)
    try:
        stored = await store.put(b"\x89PNG screenshot", "image/png")
    finally:
        await store.close()
    head = await s3_client.head_object(Bucket=bucket, Key=stored.key)
    assert head["ContentType"] == "image/png"
    assert head["ContentLength"] == len(b"\x89PNG screenshot")


async def test_s3_prefix_and_foreign_objects(s3_endpoint: str, s3_client: Any, bucket: str) -> None:
    await s3_client.put_object(Bucket=bucket, Key="README.txt", Body=b"not media")
    backdate_s3(bucket, "README.txt", 400 * DAY)
    store = s3_store(s3_endpoint, bucket, prefix="/parley/media/")
    try:
        stored = await store.put(b"shared bucket", "text/plain")
        assert await s3_names(s3_client, bucket) == ["README.txt", f"parley/media/{stored.key}"]
        backdate_s3(bucket, f"parley/media/{stored.key}", 400 * DAY)
        assert await store.expire(time.time() - 30 * DAY) == 1
    finally:
        await store.close()
    # Only content addresses under the prefix are the store's to expire.
    assert await s3_names(s3_client, bucket) == ["README.txt"]


async def test_s3_unreachable_is_unavailable_and_tells_no_secret() -> None:
    store = S3MediaStore(
        "media",
        max_bytes=LIMIT,
        endpoint_url=f"http://127.0.0.1:{closed_port()}",
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
    )
    try:
        with pytest.raises(Unavailable) as failed:
            await store.put(b"data", "text/plain")
    finally:
        await store.close()
    assert SECRET_KEY not in str(failed.value)
    assert SECRET_KEY not in repr(store)


async def test_s3_after_close_is_unavailable(s3_endpoint: str, bucket: str) -> None:
    store = s3_store(s3_endpoint, bucket)
    await store.put(b"x", "text/plain")
    await store.close()
    with pytest.raises(Unavailable, match="closed"):
        await store.get(sha(b"x"))


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# The factory.


def test_file_urls_open_a_local_store(tmp_path: Path) -> None:
    relative = open_media_store(Settings(media_url="file://media", media_max_bytes=4096))
    assert isinstance(relative, LocalMediaStore)
    assert (relative.root, relative.max_bytes) == (Path("media"), 4096)
    absolute = open_media_store(Settings(media_url=f"file://{tmp_path}/media"))
    assert isinstance(absolute, LocalMediaStore)
    assert absolute.root == tmp_path / "media"
    assert absolute.max_bytes == Settings().media_max_bytes


async def test_the_default_settings_store_round_trips(tmp_path: Path) -> None:
    store = open_media_store(Settings(media_url=f"file://{tmp_path}"))
    stored = await store.put(b"hello", "text/plain")
    assert await store.get(stored.key) == (b"hello", "text/plain")
    await store.close()


async def test_s3_urls_open_an_s3_store(s3_endpoint: str, bucket: str) -> None:
    settings = Settings(
        media_url=f"s3://{bucket}/inbox",
        media_s3_endpoint=s3_endpoint,
        media_s3_region="eu-west-1",
        media_s3_access_key=ACCESS_KEY,
        media_s3_secret_key=SECRET_KEY,
        media_max_bytes=2048,
    )
    store = open_media_store(settings)
    assert isinstance(store, S3MediaStore)
    assert (store.bucket, store.prefix, store.region, store.max_bytes) == (
        bucket,
        "inbox/",
        "eu-west-1",
        2048,
    )
    assert SECRET_KEY not in repr(store)
    try:
        stored = await store.put(b"through the settings", "text/plain")
        assert await store.get(stored.key) == (b"through the settings", "text/plain")
        with pytest.raises(TooLarge):
            await store.put(b"x" * 2049, "text/plain")
    finally:
        await store.close()


def test_s3_without_keys_uses_botocores_chain() -> None:
    store = open_media_store(Settings(media_url="s3://media-bucket"))
    assert isinstance(store, S3MediaStore)
    assert (store.bucket, store.prefix, store.endpoint_url) == ("media-bucket", "", None)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://files.example.com/media", "unknown scheme"),
        ("/var/lib/parley/media", "unknown scheme"),
        ("gs://bucket", "unknown scheme"),
        ("s3://", "no bucket"),
        ("file://", "no directory"),
    ],
)
def test_a_bad_media_url_is_refused(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"PARLEY_MEDIA_URL: {message}"):
        open_media_store(Settings(media_url=url))


def test_one_s3_key_alone_is_refused() -> None:
    with pytest.raises(ValueError, match="both"):
        open_media_store(Settings(media_url="s3://bucket", media_s3_access_key="AKIA"))


def test_retention_cutoff() -> None:
    settings = Settings(media_retention_days=30)
    assert retention_cutoff(settings, 100 * DAY) == 70 * DAY
