"""The media store in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2, ...) via aiobotocore.

Objects are named by the content address (after an optional prefix, for a shared bucket)
and carry their MIME type as `ContentType`. `put` looks first (`head_object`) and writes
only new bytes; two writers racing on the same new key each PUT the same bytes, each PUT
is atomic, so the last one replaces an identical object. A duplicate `put` of an object
older than `base.REFRESH_AFTER_S` copies it onto itself (server-side, no bytes sent) to
renew its `LastModified`, the time retention goes by.

Retention, two ways:
- in production, a bucket lifecycle rule (`Expiration: Days: N`, on the prefix): the
  provider deletes in the background, at no request cost;
- `expire(older_than)`, for servers without lifecycle rules and for `make run`: lists the
  prefix and deletes (in batches of up to 1000) the objects whose `LastModified` is older.
  Both go by `LastModified`, which the renewal above moves, so they agree. Only names that
  are content addresses are touched: anything else in the bucket is left alone.

Credentials come from the settings when both keys are set, otherwise from botocore's own
chain (environment, shared files, container or instance roles). They are handed to the
client and never kept in a repr or written to a log. A server that rejects the CRC
checksums botocore sends by default since 1.36 (some older S3-compatible ones) is served by
`AWS_REQUEST_CHECKSUM_CALCULATION=when_required` in the environment, read by botocore.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from mediastore.base import (
    CHUNK_BYTES,
    FALLBACK_MIME,
    REFRESH_AFTER_S,
    Stored,
    Stream,
    Unavailable,
    check_put,
    digest,
    is_key,
)

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import GetObjectOutputTypeDef, HeadObjectOutputTypeDef

log = logging.getLogger(__name__)

MISSING = frozenset({"404", "NoSuchKey", "NotFound"})
DELETE_BATCH = 1000


class S3MediaStore:
    """Media kept in `bucket` (under `prefix`), through one lazily opened aiobotocore client.

    The constructor does no I/O; the client is made on first use. Every method may raise
    `Unavailable` (wrapping botocore's error) when the server cannot be reached or refuses;
    the constructor raises `ValueError` when only one of the two keys is given.
    """

    def __init__(
        self,
        bucket: str,
        *,
        max_bytes: int,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        max_connections: int = 10,
    ) -> None:
        if not bucket:
            raise ValueError("an S3 media store needs a bucket")
        if (access_key is None) != (secret_key is None):
            raise ValueError("set both the S3 access key and the secret key, or neither")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.max_bytes = max_bytes
        self.endpoint_url = endpoint_url
        self.region = region
        self._access_key = access_key
        self._secret_key = secret_key
        self._config = AioConfig(
            # Custom endpoints (MinIO, Ceph, a test server) are reached by path, not by a
            # bucket subdomain their DNS does not have.
            s3={"addressing_style": "path"} if endpoint_url else {},
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=5,
            read_timeout=60,
            max_pool_connections=max_connections,
        )
        self._client: S3Client | None = None
        self._exits: contextlib.AsyncExitStack | None = None
        self._opening = asyncio.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return (
            f"S3MediaStore(bucket={self.bucket!r}, prefix={self.prefix!r}, "
            f"endpoint_url={self.endpoint_url!r}, region={self.region!r}, "
            f"max_bytes={self.max_bytes})"
        )

    async def put(self, data: bytes, mime_type: str) -> Stored:
        """Keep `data`; see `MediaStore.put`. Raises `TooLarge`, `BadMimeType`, `Unavailable`."""
        mime = check_put(data, mime_type, self.max_bytes)
        key = await digest(data)
        name = self.prefix + key
        client = await self._s3()
        with _failing("put", key):
            head = await self._head(client, name)
            if head is not None:
                kept = head.get("ContentType") or FALLBACK_MIME
                if time.time() - head["LastModified"].timestamp() > REFRESH_AFTER_S:
                    await client.copy_object(
                        Bucket=self.bucket,
                        Key=name,
                        CopySource={"Bucket": self.bucket, "Key": name},
                        MetadataDirective="REPLACE",
                        ContentType=kept,
                    )
                return Stored(key, kept, head["ContentLength"])
            await client.put_object(Bucket=self.bucket, Key=name, Body=data, ContentType=mime)
        return Stored(key, mime, len(data))

    async def _object(self, operation: str, key: str) -> "GetObjectOutputTypeDef | None":
        """GetObject's answer for `key` (its body still to read); None when there is none."""
        if not is_key(key):
            return None
        client = await self._s3()
        with _failing(operation, key):
            try:
                return await client.get_object(Bucket=self.bucket, Key=self.prefix + key)
            except ClientError as error:
                if _missing(error):
                    return None
                raise

    async def get(self, key: str) -> tuple[bytes, str] | None:
        response = await self._object("get", key)
        if response is None:
            return None
        with _failing("get", key):
            async with response["Body"] as body:
                data = await body.read()
        return data, response.get("ContentType") or FALLBACK_MIME

    async def stream(self, key: str, chunk_bytes: int = CHUNK_BYTES) -> Stream | None:
        response = await self._object("stream", key)
        if response is None:
            return None
        body = response["Body"]

        async def chunks() -> AsyncIterator[bytes]:
            with _failing("stream", key):
                async for chunk in body.iter_chunks(chunk_bytes):
                    yield chunk

        async def release() -> None:
            # Closes the HTTP response: a reader that stops early frees the connection.
            await body.__aexit__(None, None, None)

        mime = response.get("ContentType") or FALLBACK_MIME
        return Stream(key, mime, response["ContentLength"], chunks(), release)

    async def exists(self, key: str) -> bool:
        if not is_key(key):
            return False
        client = await self._s3()
        with _failing("exists", key):
            return await self._head(client, self.prefix + key) is not None

    async def delete(self, key: str) -> bool:
        if not is_key(key):
            return False
        client = await self._s3()
        name = self.prefix + key
        with _failing("delete", key):
            # DeleteObject answers 204 whether or not there was one: look first.
            if await self._head(client, name) is None:
                return False
            await client.delete_object(Bucket=self.bucket, Key=name)
        return True

    async def expire(self, older_than: float) -> int:
        """Delete the content-addressed objects whose `LastModified` is before `older_than`;
        how many went. Objects the server refused to delete are logged and not counted."""
        client = await self._s3()
        removed = 0
        with _failing("expire", self.prefix or "(bucket)"):
            pages = client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            async for page in pages:
                old = [
                    item["Key"]
                    for item in page.get("Contents", [])
                    if is_key(item["Key"][len(self.prefix) :])
                    and item["LastModified"].timestamp() < older_than
                ]
                for start in range(0, len(old), DELETE_BATCH):
                    removed += await self._delete_batch(client, old[start : start + DELETE_BATCH])
        return removed

    async def close(self) -> None:
        """Close the client and its connections; safe to call twice."""
        self._closed = True
        exits, self._exits, self._client = self._exits, None, None
        if exits is not None:
            await exits.aclose()

    async def _s3(self) -> "S3Client":
        if self._client is not None:
            return self._client
        async with self._opening:
            if self._closed:
                raise Unavailable("the media store is closed")
            if self._client is None:
                exits = contextlib.AsyncExitStack()
                with _failing("connect", self.bucket):
                    self._client = await exits.enter_async_context(
                        get_session().create_client(
                            "s3",
                            endpoint_url=self.endpoint_url,
                            region_name=self.region,
                            aws_access_key_id=self._access_key,
                            aws_secret_access_key=self._secret_key,
                            config=self._config,
                        )
                    )
                self._exits = exits
            return self._client

    async def _head(self, client: "S3Client", name: str) -> "HeadObjectOutputTypeDef | None":
        try:
            return await client.head_object(Bucket=self.bucket, Key=name)
        except ClientError as error:
            if _missing(error):
                return None
            raise

    async def _delete_batch(self, client: "S3Client", names: list[str]) -> int:
        response = await client.delete_objects(
            Bucket=self.bucket,
            Delete={"Objects": [{"Key": name} for name in names], "Quiet": True},
        )
        errors = response.get("Errors", [])
        if errors:
            first: dict[str, Any] = dict(errors[0])
            log.warning(
                "media expiry: %d of %d objects not deleted (first: %s %s)",
                len(errors),
                len(names),
                first.get("Code"),
                first.get("Message"),
            )
        return len(names) - len(errors)


def _missing(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code")) in MISSING


@contextlib.contextmanager
def _failing(operation: str, key: str) -> Iterator[None]:
    try:
        yield
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        raise Unavailable(f"S3 media {operation} {key}: {code}: {error}") from error
    except (BotoCoreError, OSError) as error:  # OSError covers TimeoutError
        raise Unavailable(f"S3 media {operation} {key}: {error}") from error
