"""What a media store promises the engine and the API, whichever backend keeps the bytes.

Keys are the SHA-256 of the bytes, in lowercase hex: the store is content-addressed. A
duplicate webhook, or the same sticker from a thousand customers, is one object, and `put`
looks before it writes. Two writers racing on the same new key are harmless by
construction: both write the same bytes under the same name, each write is atomic (a
rename on disk, a single PUT on S3), so a reader sees nothing or one complete copy, and
the last writer merely replaces identical bytes.

Reading large files: `stream(key)` answers an open `Stream` (type, length, then an async
iterator of chunks) rather than a file object from `open(key)`. The API must know the
type and length before the first byte (the headers) and must answer 404 before it starts
a response, and the S3 backend's body is an HTTP response, not a file: one async shape
that maps straight onto `aiohttp.web.StreamResponse.write`, the same for both backends,
with no blocking read reaching the event loop.

Errors, all `MediaStoreError`: `TooLarge` and `BadMimeType` (permanent refusals of a
`put`, do not retry), `Unavailable` (the backend failed: disk, network, S3 refused; retry
later). An empty MIME type is kept as `application/octet-stream` (served as a download).
A malformed key is not an error: it names nothing, so it is absent.
"""

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Protocol, Self

import msgspec

KEY = re.compile(r"[0-9a-f]{64}")
# Hashing 100 MB takes a few hundred milliseconds: off the loop above this size.
HASH_INLINE_BYTES = 64 * 1024
CHUNK_BYTES = 1024 * 1024
# A duplicate `put` renews the object's retention, but only once it is this old: a burst
# of duplicate webhooks costs one look each, not one write each.
REFRESH_AFTER_S = 24 * 3600.0
MAX_MIME_LENGTH = 255
FALLBACK_MIME = "application/octet-stream"


class MediaStoreError(Exception):
    """Anything a media store refuses or fails to do."""


class TooLarge(MediaStoreError):
    """`put` was given more than the store's `max_bytes`; nothing was stored."""

    def __init__(self, size: int, max_bytes: int) -> None:
        super().__init__(f"media of {size} bytes is over the limit of {max_bytes} bytes")
        self.size = size
        self.max_bytes = max_bytes


class BadMimeType(MediaStoreError, ValueError):
    """`put` was given a MIME type that is not `type/subtype` in printable ASCII (at most
    255 characters); nothing was stored. Permanent, like `TooLarge`."""


class Unavailable(MediaStoreError):
    """The backend failed (an I/O error, S3 unreachable or refusing); worth a retry."""


class Stored(msgspec.Struct, frozen=True):
    """What `put` kept: the content address, the MIME type it is served with, its size.

    When the bytes were already there, `mime_type` is the type they were first stored
    with (the same bytes are one object, whatever a later caller called them).
    """

    key: str
    mime_type: str
    size: int


class Stream:
    """One stored object opened for reading: its type and size, then its bytes in chunks.

    Iterate it once. Use it as an async context manager (or call `aclose`) so that the
    open file or HTTP connection is released even when the reader stops early.
    """

    def __init__(
        self,
        key: str,
        mime_type: str,
        size: int,
        chunks: AsyncIterator[bytes],
        release: Callable[[], Awaitable[None]],
    ) -> None:
        self.key = key
        self.mime_type = mime_type
        self.size = size
        self._chunks = chunks
        self._release = release
        self._closed = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        aclose = getattr(self._chunks, "aclose", None)
        try:
            if aclose is not None:
                await aclose()
        finally:
            await self._release()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"Stream(key={self.key!r}, mime_type={self.mime_type!r}, size={self.size})"


class MediaStore(Protocol):
    """Customers' and agents' media, content-addressed, size-limited, with a retention.

    Every method may raise `Unavailable` when the backend fails.
    """

    max_bytes: int

    async def put(self, data: bytes, mime_type: str) -> Stored:
        """Keep `data` under its SHA-256; store nothing when those bytes are already kept.

        An empty `mime_type` is kept as `application/octet-stream`. Raises `TooLarge` over
        `max_bytes` and `BadMimeType` for a MIME type that is not `type/subtype`, too long
        or not printable ASCII (nothing stored for either).
        """
        ...

    async def get(self, key: str) -> tuple[bytes, str] | None:
        """The bytes and MIME type under `key`, or None when nothing is."""
        ...

    async def stream(self, key: str, chunk_bytes: int = CHUNK_BYTES) -> Stream | None:
        """The object under `key` opened for reading in chunks of at most `chunk_bytes`,
        or None when nothing is there."""
        ...

    async def exists(self, key: str) -> bool:
        """Whether an object is kept under `key`."""
        ...

    async def delete(self, key: str) -> bool:
        """Remove the object under `key`; whether there was one."""
        ...

    async def expire(self, older_than: float) -> int:
        """Delete every object last stored before the Unix time `older_than`; how many."""
        ...

    async def close(self) -> None:
        """Release connections; the store is not used after. Safe to call twice."""
        ...


def is_key(key: str) -> bool:
    """Whether `key` could be a content address (64 lowercase hex characters)."""
    return KEY.fullmatch(key) is not None


async def digest(data: bytes) -> str:
    """The content address of `data`, hashed off the event loop when it is large."""
    if len(data) <= HASH_INLINE_BYTES:
        return hashlib.sha256(data).hexdigest()
    return await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())


def check_put(data: bytes, mime_type: str, max_bytes: int) -> str:
    """The MIME type to keep, after the checks every backend makes before it writes."""
    if len(data) > max_bytes:
        raise TooLarge(len(data), max_bytes)
    cleaned = mime_type.strip()
    if not cleaned:
        return FALLBACK_MIME
    if (
        len(cleaned) > MAX_MIME_LENGTH
        or "/" not in cleaned
        or not all(" " <= char <= "~" for char in cleaned)
    ):
        raise BadMimeType(f"not a MIME type: {mime_type!r}")
    return cleaned
