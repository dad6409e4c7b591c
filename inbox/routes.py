"""`GET /` (the page) and `GET /inbox/{file}` (its modules, styles and icon), each with
the page's Content-Security-Policy (docs/inbox.md).

Only the files shipped in `static/` are served, found by exact name in a table read
once: a name is a dictionary key, never a path, so there is no traversal and no
listing. Responses carry an ETag and `no-cache`, so a browser revalidates (a cheap 304)
and always runs the scripts of the running release."""

import hashlib
from importlib import resources
from typing import Final, NamedTuple

from aiohttp import web

# img-src and media-src 'self': customers' photos, stickers and voice notes come from
# /v1/media on this origin; nothing is loaded from anywhere else.
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
CONTENT_TYPES: Final = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}
INDEX: Final = "index.html"
PREFIX: Final = "/inbox"


class Asset(NamedTuple):
    body: bytes
    content_type: str
    etag: str


def _load() -> dict[str, Asset]:
    assets = {}
    for entry in (resources.files("inbox") / "static").iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in CONTENT_TYPES:
            body = entry.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            assets[entry.name] = Asset(body, CONTENT_TYPES[suffix], etag)
    return assets


ASSETS: Final = _load()
routes = web.RouteTableDef()


def _answer(request: web.Request, name: str) -> web.Response:
    asset = ASSETS.get(name)
    if asset is None:
        return web.Response(status=404, text="not found", headers=SECURITY_HEADERS)
    headers = {**SECURITY_HEADERS, "ETag": asset.etag, "Cache-Control": "no-cache"}
    if asset.etag in (tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")):
        return web.Response(status=304, headers=headers)
    return web.Response(
        body=asset.body, content_type=asset.content_type, charset="utf-8", headers=headers
    )


@routes.get("/")
async def page(request: web.Request) -> web.Response:
    return _answer(request, INDEX)


@routes.get(PREFIX + "/{file:.*}")  # anything under /inbox/: a 404 still has the CSP
async def asset(request: web.Request) -> web.Response:
    name = request.match_info["file"]
    # index.html has one address, `/`: relative URLs in it resolve against that.
    return _answer(request, "" if name == INDEX else name)
