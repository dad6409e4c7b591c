"""GET /v1/stream: the changes of the channels the caller may see, as Server-Sent Events
(docs/inbox.md). Resumable with `Last-Event-ID`; a `reset` says a channel's gap is
older than its feed; a heartbeat comment every `HEARTBEAT_S`; a client that falls too
far behind is cut (it reconnects and resumes)."""

import asyncio
import base64
import binascii
import contextlib

import msgspec
from aiohttp import web

from api import errors
from api.access import caller, visible_channels
from api.appkeys import FEED_HUB
from api.body import read_query
from api.feed import Subscriber
from api.schemas import ChangeEvent, StreamQuery
from api.spec import Endpoint
from store.feed import START, Entry, newer

HEARTBEAT_S = 15.0
_cursor_decoder = msgspec.json.Decoder(dict[str, str])


def encode_cursor(positions: dict[str, str]) -> str:
    """The SSE id: every channel's position in this stream, opaque to clients."""
    return base64.urlsafe_b64encode(msgspec.json.encode(positions)).decode().rstrip("=")


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
    try:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",  # no proxy buffering
            }
        )
        await response.prepare(request)
        positions = {channel: resumed.get(channel, hub.position(channel)) for channel in channels}
        await response.write(_event("ready", msgspec.json.encode({"channels": channels})))
        for channel in channels:
            if channel not in resumed:
                continue
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
        await _live(response, subscriber, positions)
    finally:
        hub.unsubscribe(subscriber)
    return response


async def _live(
    response: web.StreamResponse, subscriber: Subscriber, positions: dict[str, str]
) -> None:
    cut = asyncio.ensure_future(subscriber.cut.wait())
    try:
        while True:
            get = asyncio.ensure_future(subscriber.queue.get())
            done, _ = await asyncio.wait(
                {get, cut}, timeout=HEARTBEAT_S, return_when="FIRST_COMPLETED"
            )
            if get not in done:
                get.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await get
            if cut in done:
                return  # too far behind: the client reconnects and resumes
            if get in done:
                await _send(response, get.result(), positions)
            else:
                await response.write(b": heartbeat\n\n")
    finally:
        cut.cancel()


async def _send(response: web.StreamResponse, entry: Entry, positions: dict[str, str]) -> None:
    if not newer(entry.id, positions.get(entry.channel, START)):
        return  # replayed already
    positions[entry.channel] = entry.id
    await response.write(_event("change", _encoder.encode(entry.change), encode_cursor(positions)))


_encoder = msgspec.json.Encoder()

ENDPOINTS = [
    Endpoint("GET", "/v1/stream", stream,
             "Live changes of the channels the caller may see (Server-Sent Events)", 200,
             ChangeEvent, query=StreamQuery, errors=(404,), tag="stream",
             media="text/event-stream"),
]  # fmt: skip
