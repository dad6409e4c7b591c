"""Files: agents upload what they will send, and users who may see a conversation
download its files (the customer's, once fetched, and the agents').

A download is never something a browser would run: the type is the stored one with
`nosniff`, a sandboxing CSP, and `Content-Disposition: attachment` unless the type is
an image or audio format browsers only display (never SVG, HTML or anything scriptable).
"""

from urllib.parse import quote

from aiohttp import web

from api import errors
from api.access import on_channel
from api.appkeys import MEDIA, READER
from api.body import read_file, read_query
from api.responses import json
from api.schemas import Upload, UploadQuery
from api.spec import Endpoint
from assign import Action
from mediastore import MediaStoreError, TooLarge, Unavailable
from parley import whatsapp

# Shown in the page (an <img> or <audio>); every other type is a download.
INLINE_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/gif",
        "audio/aac",
        "audio/amr",
        "audio/mpeg",
        "audio/mp4",
        "audio/ogg",
    }
)
MEDIA_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "private, max-age=3600",
    "Cross-Origin-Resource-Policy": "same-origin",
}
FILENAME_MAX = 240


async def upload(request: web.Request) -> web.Response:
    """The request's body, kept for sending: refused (422) when WhatsApp would refuse
    it as `kind` (default: what its type is sent as), 413 past the largest file
    WhatsApp takes or the store keeps."""
    channel = request.match_info["channel"]
    await on_channel(request, channel, Action.REPLY)
    mime_type = request.headers.get("Content-Type", "").strip()
    if not mime_type or "/" not in mime_type:
        raise errors.bad_parameter("Content-Type", "send the file's type, e.g. image/jpeg")
    query = read_query(request, UploadQuery)
    kind = query.kind or whatsapp.media_kind(mime_type)
    filename = _filename(query.filename)
    store = request.config_dict[MEDIA]
    limit = min(store.max_bytes, whatsapp.MEDIA_RULES[kind].max_bytes)
    data = await read_file(request, limit, _too_large(kind, limit))
    problem = whatsapp.media_problem(
        kind, mime_type, len(data), animated=whatsapp.animated_webp(data[:32])
    )
    if problem is not None:
        raise errors.invalid("file", problem)
    try:
        stored = await store.put(data, mime_type)
    except TooLarge:
        raise _too_large(kind, limit) from None
    except Unavailable:
        raise _store_unavailable() from None
    except MediaStoreError as error:  # a type the store cannot keep
        raise errors.invalid("Content-Type", str(error)) from None
    answer = Upload(
        key=stored.key,
        kind=kind,
        mime_type=stored.mime_type,
        size=stored.size,
        filename=filename,
    )
    return json(answer, status=201)


def _filename(name: str | None) -> str | None:
    if name is None:
        return None
    name = name.strip()
    if not name or len(name) > FILENAME_MAX or any(c in name for c in '/\\\0\r\n"'):
        raise errors.bad_parameter(
            "filename", f"1 to {FILENAME_MAX} characters, without / \\ or quotes"
        )
    return name


def _too_large(kind: str, limit: int) -> errors.ApiError:
    return errors.ApiError(
        413, "file_too_large", f"a {kind} may be at most {limit // 1024:,} KB", "file"
    )


def _store_unavailable() -> errors.ApiError:
    return errors.ApiError(503, "media_unavailable", "the media store failed; try again")


async def download(request: web.Request) -> web.StreamResponse:
    """A message's file, for users who may see its conversation (404 for anyone else,
    as for the conversation itself)."""
    channel = request.match_info["channel"]
    identifier, message = request.match_info["customer"], request.match_info["message"]
    await on_channel(request, channel, Action.SEE)
    reader = request.config_dict[READER]
    customer = await reader.find_customer(channel, identifier)
    media = None if customer is None else await reader.media(channel, customer, message)
    if media is None or media.key is None:
        raise errors.not_found(f"no file for message {message}")
    try:
        stream = await request.config_dict[MEDIA].stream(media.key)
    except Unavailable:
        raise _store_unavailable() from None
    if stream is None:
        raise errors.not_found(f"the file of message {message} is past its retention")
    async with stream:
        response = web.StreamResponse(headers=MEDIA_HEADERS)
        response.content_type = stream.mime_type
        response.content_length = stream.size
        base = stream.mime_type.split(";")[0].strip().lower()
        disposition = "inline" if base in INLINE_TYPES else "attachment"
        response.headers["Content-Disposition"] = _disposition(disposition, media.filename)
        await response.prepare(request)
        try:
            async for chunk in stream:
                await response.write(chunk)
            await response.write_eof()
        except ConnectionResetError:
            pass  # the user went away mid-file: nothing to answer
    return response


def _disposition(kind: str, filename: str | None) -> str:
    if not filename:
        return kind
    # RFC 6266: an ASCII fallback and the UTF-8 name.
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename)
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


UPLOADS = "/v1/channels/{channel}/uploads"
ENDPOINTS = [
    Endpoint("POST", UPLOADS, upload,
             "Upload a file to send (the body is the file; Content-Type its type; "
             "?kind= and ?filename= optional). Contributors and up", 201, Upload,
             query=UploadQuery, errors=(403, 404, 413, 422), tag="media",
             file_body=True),
    Endpoint("GET", "/v1/media/{channel}/{customer}/{message}", download,
             "A message's file (a download unless it is an image or audio a browser only "
             "shows)", 200, None, errors=(404,), tag="media", media="*/*"),
]  # fmt: skip
