"""What an agent's inbox lists besides a queue's pages: the queue counts, a search by
name, phone or username, and the channel's saved replies (admins keep them)."""

import re

from aiohttp import web

from api import errors
from api.access import on_channel, require_admin
from api.appkeys import READER, REDIS
from api.body import read_body, read_query
from api.responses import json
from api.schemas import (
    QueueCounts,
    SavedReplies,
    SavedReply,
    SavedReplyBody,
    SearchQuery,
    SearchResult,
    summary_out,
)
from api.spec import Endpoint
from assign import Action
from store import saved_replies

ONE = "/v1/channels/{channel}"
SAVED = f"{ONE}/saved-replies/{{name}}"
# Names are short labels an agent picks from a list.
NAME = re.compile(r"^[\w .-]{1,64}$(?!\n)")


async def queue_counts(request: web.Request) -> web.Response:
    channel = request.match_info["channel"]
    await on_channel(request, channel, Action.SEE)
    sizes = await request.config_dict[READER].queue_sizes(channel)
    return json(QueueCounts(**sizes))


async def search(request: web.Request) -> web.Response:
    channel = request.match_info["channel"]
    await on_channel(request, channel, Action.SEE)
    query = read_query(request, SearchQuery)
    found = await request.config_dict[READER].search(channel, query.q, query.limit)
    return json(SearchResult(conversations=[summary_out(row) for row in found]))


async def list_saved(request: web.Request) -> web.Response:
    channel = request.match_info["channel"]
    await on_channel(request, channel, Action.SEE)
    found = await saved_replies.saved_replies(request.config_dict[REDIS], channel)
    return json(SavedReplies(saved_replies=[SavedReply(name=n, text=t) for n, t in found.items()]))


def _name(request: web.Request) -> str:
    name = request.match_info["name"]
    if not NAME.match(name):
        raise errors.bad_parameter("name", "1 to 64 letters, digits, spaces, '.', '-' or '_'")
    return name


async def put_saved(request: web.Request) -> web.Response:
    channel = request.match_info["channel"]
    await on_channel(request, channel, Action.SEE)
    await require_admin(request)
    name = _name(request)
    body = await read_body(request, SavedReplyBody)
    text = body.text.strip()
    if not text:
        raise errors.invalid("text", "must not be blank")
    await saved_replies.save(request.config_dict[REDIS], channel, name, text)
    return json(SavedReply(name=name, text=text))


async def delete_saved(request: web.Request) -> web.Response:
    channel = request.match_info["channel"]
    await on_channel(request, channel, Action.SEE)
    await require_admin(request)
    if not await saved_replies.delete(request.config_dict[REDIS], channel, _name(request)):
        raise errors.not_found(f"no saved reply {request.match_info['name']}")
    return web.Response(status=204)


ENDPOINTS = [
    Endpoint("GET", f"{ONE}/queues", queue_counts, "How many conversations each queue holds",
             200, QueueCounts, errors=(404,), tag="conversations"),
    Endpoint("GET", f"{ONE}/search", search,
             "Find conversations by phone, BSUID, username or the start of a name", 200,
             SearchResult, query=SearchQuery, errors=(404,), tag="conversations"),
    Endpoint("GET", f"{ONE}/saved-replies", list_saved, "The channel's saved replies", 200,
             SavedReplies, errors=(404,), tag="channels"),
    Endpoint("PUT", SAVED, put_saved, "Keep a saved reply (admins)", 200, SavedReply,
             body=SavedReplyBody, errors=(403, 404), tag="channels"),
    Endpoint("DELETE", SAVED, delete_saved, "Forget a saved reply (admins)", 204,
             errors=(403, 404), tag="channels"),
]  # fmt: skip
