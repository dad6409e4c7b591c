"""Answering with a struct as JSON, encoded by msgspec."""

from typing import Any

import msgspec
from aiohttp import web

_encoder = msgspec.json.Encoder()


def json(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=_encoder.encode(value), status=status, content_type="application/json")
