"""Every /v1 endpoint, and the OpenAPI document built from the same list."""

from typing import Any

from aiohttp import web

from api import (
    availability,
    channels,
    conversations,
    inbox_lists,
    media,
    numbers,
    people,
    profile,
    session,
    standing,
    stream,
    templates,
)
from api.spec import Endpoint, openapi

TITLE = "Parley API"
VERSION = "1"


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(DOCUMENT)


ENDPOINTS: list[Endpoint] = [
    *people.ENDPOINTS,
    *availability.ENDPOINTS,
    *channels.ENDPOINTS,
    *conversations.ENDPOINTS,
    *numbers.ENDPOINTS,
    *profile.ENDPOINTS,
    *standing.ENDPOINTS,
    *templates.ENDPOINTS,
    *media.ENDPOINTS,
    *inbox_lists.ENDPOINTS,
    *stream.ENDPOINTS,
    *session.ENDPOINTS,
    Endpoint("GET", "/v1/openapi.json", openapi_json, "This document", 200, dict[str, Any],
             public=True, tag="meta"),
]  # fmt: skip
DOCUMENT = openapi(ENDPOINTS, title=TITLE, version=VERSION)
