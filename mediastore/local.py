"""The media store in a local directory: `make run`, tests, single-host deployments.

Layout: `<root>/<first two hex of the key>/<key>` holds the bytes (256 fan-out folders,
so no folder grows to millions of entries) and `<key>.type` beside it the MIME type.
A write goes to a `.tmp-*` file in the same folder, is flushed to disk, then renamed
onto its name (`os.replace`, atomic on one filesystem): the type first, the bytes last,
so a visible data file always has its type, and a reader sees no file or a whole one.
Two writers of the same key each rename a complete, identical file; the last rename wins
and nothing is lost. Retention goes by the data file's modification time, which a
duplicate `put` renews (see `base.REFRESH_AFTER_S`); `expire` looks at each file's time
just before removing it, so only a duplicate `put` landing between that look and the
unlink (a window of microseconds, for an object already past its retention) loses it.

Blocking file I/O runs through `asyncio.to_thread`, not aiofiles: aiofiles is itself a
thread pool with one hop per call (open, write, flush, close, each separately) and has no
atomic rename, utime or scandir of its own, while one `to_thread` call runs a whole step
(look, write, fsync, rename) in a single hop, with no extra dependency.
"""

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import BinaryIO, ParamSpec, TypeVar

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

P = ParamSpec("P")
R = TypeVar("R")

TYPE_SUFFIX = ".type"
TEMP_PREFIX = ".tmp-"
# A temporary file this old belongs to a writer that died: `expire` removes it.
TEMP_MAX_AGE_S = 3600.0


class LocalMediaStore:
    """Media kept in files under `root` (created on the first `put`).

    Every method may raise `Unavailable` (wrapping the `OSError`) when the disk fails.
    """

    def __init__(self, root: Path | str, *, max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes

    def __repr__(self) -> str:
        return f"LocalMediaStore(root={str(self.root)!r}, max_bytes={self.max_bytes})"

    async def put(self, data: bytes, mime_type: str) -> Stored:
        """Keep `data`; see `MediaStore.put`. Raises `TooLarge`, `BadMimeType`, `Unavailable`."""
        mime = check_put(data, mime_type, self.max_bytes)
        key = await digest(data)
        return await self._io(self._put, key, data, mime)

    async def get(self, key: str) -> tuple[bytes, str] | None:
        if not is_key(key):
            return None
        return await self._io(self._get, key)

    async def stream(self, key: str, chunk_bytes: int = CHUNK_BYTES) -> Stream | None:
        if not is_key(key):
            return None
        opened = await self._io(self._open, key)
        if opened is None:
            return None
        file, mime, size = opened

        async def chunks() -> AsyncIterator[bytes]:
            while True:
                try:
                    chunk = await asyncio.to_thread(file.read, chunk_bytes)
                except OSError as error:
                    raise Unavailable(f"reading media {key}: {error}") from error
                if not chunk:
                    return
                yield chunk

        async def release() -> None:
            file.close()

        return Stream(key, mime, size, chunks(), release)

    async def exists(self, key: str) -> bool:
        if not is_key(key):
            return False
        return await self._io(self._path(key).is_file)

    async def delete(self, key: str) -> bool:
        if not is_key(key):
            return False
        return await self._io(self._delete, key)

    async def expire(self, older_than: float) -> int:
        """Delete what was last stored before `older_than` (file modification time), and
        temporary files left by writers that died; how many objects went."""
        return await self._io(self._expire, older_than)

    async def close(self) -> None:
        """Nothing to release: files are opened and closed per call."""

    # The blocking parts, each run whole in one worker thread.

    async def _io(self, step: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await asyncio.to_thread(step, *args, **kwargs)
        except OSError as error:
            raise Unavailable(f"media directory {str(self.root)!r}: {error}") from error

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / key

    def _put(self, key: str, data: bytes, mime: str) -> Stored:
        path = self._path(key)
        try:
            status = path.stat()
        except FileNotFoundError:
            pass
        else:
            if time.time() - status.st_mtime > REFRESH_AFTER_S:
                os.utime(path)
            return Stored(key, _read_type(path), status.st_size)
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(_type_path(path), mime.encode("ascii"))
        _write_atomically(path, data)
        _sync_folder(path.parent)
        return Stored(key, mime, len(data))

    def _get(self, key: str) -> tuple[bytes, str] | None:
        path = self._path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        return data, _read_type(path)

    def _open(self, key: str) -> tuple[BinaryIO, str, int] | None:
        path = self._path(key)
        try:
            file = path.open("rb")
        except FileNotFoundError:
            return None
        try:
            size = os.fstat(file.fileno()).st_size
            mime = _read_type(path)
        except BaseException:
            file.close()
            raise
        return file, mime, size

    def _delete(self, key: str) -> bool:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        finally:
            # The bytes go first: a type without its data file is never served.
            _type_path(path).unlink(missing_ok=True)
        return True

    def _expire(self, older_than: float) -> int:
        if not self.root.is_dir():
            return 0
        temp_cutoff = time.time() - TEMP_MAX_AGE_S
        removed = 0
        for folder in self.root.iterdir():
            if len(folder.name) != 2 or not folder.is_dir():
                continue
            with os.scandir(folder) as entries:
                for entry in list(entries):
                    removed += self._expire_entry(folder, entry, older_than, temp_cutoff)
        return removed

    def _expire_entry(
        self, folder: Path, entry: os.DirEntry[str], older_than: float, temp_cutoff: float
    ) -> int:
        name = entry.name
        # Looked at now, not when the folder was listed: a duplicate `put` may have renewed
        # it since (the window left is one stat wide, see the module's docstring).
        modified = _modified(entry.path)
        if is_key(name):
            return int(modified < older_than and self._delete(name))
        orphan_type = (
            name.endswith(TYPE_SUFFIX) and not (folder / name[: -len(TYPE_SUFFIX)]).exists()
        )
        if (name.startswith(TEMP_PREFIX) or orphan_type) and modified < temp_cutoff:
            Path(entry.path).unlink(missing_ok=True)
        return 0


def _type_path(path: Path) -> Path:
    return path.with_name(path.name + TYPE_SUFFIX)


def _read_type(path: Path) -> str:
    try:
        return _type_path(path).read_text("ascii").strip() or FALLBACK_MIME
    except (FileNotFoundError, UnicodeDecodeError):
        return FALLBACK_MIME


def _modified(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except FileNotFoundError:
        return float("inf")


def _write_atomically(target: Path, data: bytes) -> None:
    temporary = target.with_name(f"{TEMP_PREFIX}{uuid.uuid4().hex}")
    try:
        with temporary.open("xb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _sync_folder(folder: Path) -> None:
    """Make the renames themselves durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
