"""Where customers' and agents' media is kept: content-addressed, size-limited, expiring.

`open_media_store(settings)` picks the backend from `media_url`:

- `file://<directory>` (relative to the working directory, or `file:///absolute`):
  `local.LocalMediaStore`, the default for `make run`;
- `s3://<bucket>` or `s3://<bucket>/<prefix>`: `s3.S3MediaStore`, any S3-compatible
  server at `media_s3_endpoint` (AWS when unset), with the settings' keys or botocore's
  own credential chain.

Both keep the promises of `base.MediaStore` (one contract suite, tests/test_mediastore.py,
runs against each). This package sits beside the kernel: of Parley's own it imports only
`parley` (for Settings); the engine and the API import it.
"""

from urllib.parse import urlsplit

from mediastore.base import (
    CHUNK_BYTES,
    BadMimeType,
    MediaStore,
    MediaStoreError,
    Stored,
    Stream,
    TooLarge,
    Unavailable,
    is_key,
)
from mediastore.local import LocalMediaStore
from parley.settings import Settings

__all__ = [
    "CHUNK_BYTES",
    "BadMimeType",
    "LocalMediaStore",
    "MediaStore",
    "MediaStoreError",
    "Stored",
    "Stream",
    "TooLarge",
    "Unavailable",
    "is_key",
    "open_media_store",
    "retention_cutoff",
]

DAY_S = 24 * 3600.0


def open_media_store(settings: Settings) -> MediaStore:
    """The media store `settings.media_url` names, limited to `settings.media_max_bytes`.

    Does no I/O (the directory is made on the first `put`, the S3 client on first use).
    Raises `ValueError` naming PARLEY_MEDIA_URL for an unknown scheme or a URL without a
    directory or bucket, and for only one of the two S3 keys set.
    """
    url = settings.media_url.strip()
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme == "file" and rest:
        return LocalMediaStore(rest, max_bytes=settings.media_max_bytes)
    if scheme == "s3":
        # Imported here: aiobotocore costs a fifth of a second at start-up, for nothing
        # with files on disk.
        from mediastore.s3 import S3MediaStore

        parts = urlsplit(url)
        if not parts.netloc:
            raise ValueError(f"PARLEY_MEDIA_URL: no bucket in {url!r} (s3://<bucket>)")
        return S3MediaStore(
            parts.netloc,
            prefix=parts.path,
            max_bytes=settings.media_max_bytes,
            endpoint_url=settings.media_s3_endpoint,
            region=settings.media_s3_region,
            access_key=settings.media_s3_access_key,
            secret_key=settings.media_s3_secret_key,
            max_connections=max(10, settings.media_fetches),
        )
    if scheme == "file":
        raise ValueError(f"PARLEY_MEDIA_URL: no directory in {url!r} (file://<directory>)")
    raise ValueError(
        f"PARLEY_MEDIA_URL: unknown scheme in {url!r}: use file://<directory> or s3://<bucket>"
    )


def retention_cutoff(settings: Settings, now: float) -> float:
    """The `older_than` for `MediaStore.expire` that keeps `media_retention_days` of media."""
    return now - settings.media_retention_days * DAY_S
