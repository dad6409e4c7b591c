"""Request bodies and query strings into typed structs, or an error naming the field."""

from typing import TypeVar

import msgspec
from aiohttp import web

from api.errors import ApiError, bad_parameter, invalid
from mediastore import CHUNK_BYTES

T = TypeVar("T")


async def read_file(request: web.Request, limit: int, too_large: ApiError) -> bytes:
    """The request's body (a file), `too_large` raised as soon as it passes `limit`: at
    once when Content-Length says so, else before the rest is read."""
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    data = bytearray()
    async for chunk in request.content.iter_chunked(CHUNK_BYTES):
        data += chunk
        if len(data) > limit:
            raise too_large
    return bytes(data)


async def read_body(request: web.Request, shape: type[T]) -> T:
    """The JSON body as `shape`: 400 when it is not JSON, 422 naming the field that
    does not fit. Nothing has happened yet when either is raised."""
    raw = await request.read()
    try:
        return msgspec.json.decode(raw, type=shape)
    except msgspec.ValidationError as error:
        # msgspec stops at the first field that does not fit, which can come before
        # the point where the text stops being JSON: that is still not JSON.
        try:
            msgspec.json.decode(raw)
        except (msgspec.DecodeError, UnicodeDecodeError):
            raise ApiError(400, "malformed_json", "the body is not valid JSON") from None
        field, message = split_message(str(error))
        raise invalid(field or "body", message) from None
    except (msgspec.DecodeError, UnicodeDecodeError):  # bad UTF-8 in a string: the latter
        raise ApiError(400, "malformed_json", "the body is not valid JSON") from None


def read_query(request: web.Request, shape: type[T]) -> T:
    """The query string as `shape`; 400 naming the parameter that does not fit."""
    try:
        return msgspec.convert(dict(request.query), shape, strict=False)
    except msgspec.ValidationError as error:
        field, message = split_message(str(error))
        raise bad_parameter(field or "query", message) from None


def split_message(message: str) -> tuple[str | None, str]:
    """(field, message) of a msgspec error: "Expected `int`, got `str` - at `$.limit`"
    names `limit`; "Object missing required field `id`" names `id`."""
    head, _, path = message.partition(" - at `$")
    field = path.rstrip("`").lstrip(".") or None
    if head.startswith(("Object missing required field", "Object contains unknown field")):
        name = head[head.index("`") + 1 : -1]  # the whole name, backticks and all
        field = f"{field}.{name}" if field else name
    return field, head
