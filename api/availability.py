"""Who is working: each user sets their availability (online, away, offline); Parley
sets it offline when none of their live streams has been connected for
PARLEY_OFFLINE_AFTER_S (the stream keeps it fresh, the engine marks the absent). Anyone
who sees a channel sees who may answer on it, and how available they are."""

from aiohttp import web

from api.access import caller, on_channel
from api.appkeys import CLOCK, DIRECTORY, PRESENCE
from api.body import read_body
from api.responses import json
from api.schemas import AgentOut, AvailabilityBody, AvailabilityOut, availability_out
from api.spec import Endpoint
from assign import Action, User, decide
from store.presence import Availability

ME = "/v1/me/availability"


async def get_mine(request: web.Request) -> web.Response:
    user = await caller(request)
    return json(availability_out(user.id, await request.config_dict[PRESENCE].get(user.id)))


async def set_mine(request: web.Request) -> web.Response:
    user = await caller(request)
    status = Availability((await read_body(request, AvailabilityBody)).status)
    now = request.config_dict[CLOCK]()
    record = await request.config_dict[PRESENCE].set(user.id, status, now)
    return json(availability_out(user.id, record))


async def channel_agents(request: web.Request) -> web.Response:
    """The users who may reply on the channel (admins included), by id, with their
    availability."""
    channel = request.match_info["channel"]
    await on_channel(request, channel, Action.SEE)
    directory = request.config_dict[DIRECTORY]
    access = await directory.channel_access(channel)
    users = [
        record
        for record in await directory.list_users()
        if decide(
            User(id=record.id, admin=record.admin, teams=frozenset(record.teams)),
            access,
            Action.REPLY,
        ).allowed
    ]
    presence = await request.config_dict[PRESENCE].many([user.id for user in users])
    return json(
        [
            AgentOut(
                id=user.id,
                name=user.name,
                availability=availability_out(user.id, presence[user.id]),
            )
            for user in users
        ]
    )


ENDPOINTS = [
    Endpoint("GET", ME, get_mine, "Your availability", 200, AvailabilityOut, tag="users"),
    Endpoint("PUT", ME, set_mine, "Set your availability: online, away or offline", 200,
             AvailabilityOut, body=AvailabilityBody, tag="users"),
    Endpoint("GET", "/v1/channels/{channel}/agents", channel_agents,
             "Who may answer on the channel, and their availability", 200, list[AgentOut],
             errors=(404,), tag="channels"),
]  # fmt: skip
