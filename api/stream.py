"""GET /v1/stream: the changes of the channels the caller may see, as Server-Sent Events
(docs/inbox.md). Resumable with `Last-Event-ID`; a `reset` says a channel's gap is
older than its feed; a heartbeat comment every `HEARTBEAT_S`; a client that falls too
far behind is cut (it reconnects and resumes)."""

import asyncio
import base64
import binascii
import functools
import logging
from collections.abc import Awaitable, Callable

import msgspec
from aiohttp import web
from redis.exceptions import RedisError

from api import errors
from api.access import caller, visible_channels
from api.appkeys import CLOCK, FEED_HUB, PRESENCE, SETTINGS
from api.body import read_query
from api.feed import Subscriber
from api.schemas import ChangeEvent, StreamQuery
from api.spec import Endpoint
from store.feed import START, Entry, newer

log = logging.getLogger(__name__)
HEARTBEAT_S = 15.0
# The API bounds a request as a whole (api/errors.py), but not a stream, which is open
# as long as its client reads: the stream bounds each of its own Redis steps instead.
REDIS_BOUND_S = errors.REQUEST_TIMEOUT_S
_cursor_decoder = msgspec.json.Decoder(dict[str, str])


def encode_cursor(positions: dict[str, str]) -> str:
    """The SSE id: every channel's position in this stream, opaque to clients."""
    return _cursor(tuple(sorted(positions.items())))


@functools.lru_cache(maxsize=4096)
def _cursor(positions: tuple[tuple[str, str], ...]) -> str:
    # Cached: the clients of one channel share each change's cursor.
    return base64.urlsafe_b64encode(msgspec.json.encode(dict(positions))).decode().rstrip("=")


def decode_cursor(text: str) -> dict[str, str]:
    """Positions from a cursor; {} for one this API did not hand out (a fresh start)."""
    try:
        positions = _cursor_decoder.decode(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        for position in positions.values():
            newer(position, START)  # a stream id, or ValueError
    except (binascii.Error, ValueError, msgspec.DecodeError):
        return {}
    return positions


def _event(name: str, data: bytes, event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: ".encode() + data + b"\n\n"


async def stream(request: web.Request) -> web.StreamResponse:
    async with asyncio.timeout(REDIS_BOUND_S):  # TimeoutError: a 503 (api/errors.py)
        user = await caller(request)
        query = read_query(request, StreamQuery)
        visible = {access.channel for access, _ in await visible_channels(request, user)}
        if query.channels:
            wanted = [channel for channel in query.channels.split(",") if channel]
            for channel in wanted:
                if channel not in visible:
                    raise errors.not_found(f"no channel {channel}")
            channels = sorted(set(wanted))
        else:
            channels = sorted(visible)
        hub = request.config_dict[FEED_HUB]
        await hub.ready.wait()
    resumed = decode_cursor(request.headers.get("Last-Event-ID") or query.last_event_id or "")
    # Subscribe before replaying, so nothing falls between the replay and the live feed.
    subscriber = hub.subscribe(channels)
    subscriber.on_cut = functools.partial(_hang_up, request)
    try:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",  # no proxy buffering
            }
        )
        await response.prepare(request)
        presence, clock = request.config_dict[PRESENCE], request.config_dict[CLOCK]

        async def touch() -> None:
            # Keeps an online or away user from going offline while this is connected.
            async with asyncio.timeout(REDIS_BOUND_S):
                await presence.seen(user.id, clock())

        await touch()
        positions = {channel: resumed.get(channel, hub.position(channel)) for channel in channels}
        await response.write(_event("ready", msgspec.json.encode({"channels": channels})))
        for channel in channels:
            if channel not in resumed:
                continue
            async with asyncio.timeout(REDIS_BOUND_S):
                missed = await hub.since(channel, resumed[channel])
            if missed is None:
                positions[channel] = hub.position(channel)
                reset = {"channel": channel, "reason": "older than the feed keeps: reload it"}
                await response.write(
                    _event("reset", msgspec.json.encode(reset), encode_cursor(positions))
                )
                continue
            for entry in missed:
                await _send(response, entry, positions)
        beat = min(HEARTBEAT_S, request.config_dict[SETTINGS].offline_after_s / 3)
        await _live(response, subscriber, positions, touch, beat)
    except ConnectionResetError:
        pass  # the client left, or was cut while it did not read (_hang_up)
    except (TimeoutError, RedisError, OSError) as error:
        # After the 200 no other answer can be sent (a 503 would land inside the body):
        # the stream ends, and the client reconnects and resumes.
        log.warning("stream ended early", extra={"error": type(error).__name__})
    finally:
        hub.unsubscribe(subscriber)
    return response


def _hang_up(request: web.Request) -> None:
    """End the connection of a stream that was cut: its writes may be waiting on a
    client that stopped reading, and would wait as long as the client stays connected,
    holding the subscription. The client reconnects and resumes."""
    if request.transport is not None:
        request.transport.abort()


async def _live(
    response: web.StreamResponse,
    subscriber: Subscriber,
    positions: dict[str, str],
    touch: Callable[[], Awaitable[None]],
    beat: float,
) -> None:
    """Changes as they come; every `beat` seconds (at most HEARTBEAT_S) the user is
    touched as present, and a quiet stream gets a heartbeat comment."""
    queue = subscriber.queue
    loop = asyncio.get_running_loop()
    touched = loop.time()
    while True:
        if loop.time() - touched >= beat:
            await touch()
            touched = loop.time()
        try:
            entry = queue.get_nowait()  # the common case when changes flow: no timer
        except asyncio.QueueEmpty:
            try:
                async with asyncio.timeout(beat):
                    entry = await queue.get()
            except TimeoutError:
                await response.write(b": heartbeat\n\n")
                continue
        if entry is None:
            return  # too far behind: the client reconnects and resumes
        await _send(response, entry, positions)


async def _send(response: web.StreamResponse, entry: Entry, positions: dict[str, str]) -> None:
    if not newer(entry.id, positions.get(entry.channel, START)):
        return  # replayed already
    positions[entry.channel] = entry.id
    await response.write(_change_frame(entry, encode_cursor(positions)))


@functools.lru_cache(maxsize=4096)
def _change_frame(entry: Entry, cursor: str) -> bytes:
    # Built once for every client at the same position (a change reaches thousands),
    # from the change's JSON as the feed keeps it: never decoded on the way.
    return _event("change", entry.data, cursor)


ENDPOINTS = [
    Endpoint("GET", "/v1/stream", stream,
             "Live changes of the channels the caller may see (Server-Sent Events)", 200,
             ChangeEvent, query=StreamQuery, errors=(404,), tag="stream",
             media="text/event-stream"),
]  # fmt: skip
