"""Who is working: each user sets their availability (online, away, offline); Parley
sets it offline when none of their live streams has been connected for
PARLEY_OFFLINE_AFTER_S (the stream keeps it fresh, the engine marks the absent). Anyone
who sees a channel sees who may answer on it, how available and how loaded they are;
admins set each user's own capacity. A change wakes the engines' routers."""

from aiohttp import web

from api import errors
from api.access import caller, on_channel, require_admin
from api.appkeys import CLOCK, DIRECTORY, PRESENCE, REDIS, ROUTING
from api.body import read_body
from api.responses import json
from api.schemas import (
    AgentOut,
    AvailabilityBody,
    AvailabilityOut,
    CapacityBody,
    CapacityOut,
    availability_out,
)
from api.spec import Endpoint
from assign import Action, User, decide
from store.channels import channel_ids, load_channel_settings
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
    await request.config_dict[ROUTING].wake()  # handed work, or released
    return json(availability_out(user.id, record))


async def channel_agents(request: web.Request) -> web.Response:
    """The users who may reply on the channel (admins included), by id, with their
    availability, their load and their capacities."""
    channel = request.match_info["channel"]
    await on_channel(request, channel, Action.SEE)
    directory, routing = request.config_dict[DIRECTORY], request.config_dict[ROUTING]
    client = request.config_dict[REDIS]
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
    loads = await routing.loads(await channel_ids(client))
    capacities = await routing.capacities()
    settings = await load_channel_settings(client, channel)
    capacity = settings.routing.capacity if settings and settings.routing else None
    return json(
        [
            AgentOut(
                id=user.id,
                name=user.name,
                availability=availability_out(user.id, presence[user.id]),
                open=loads.get(channel, {}).get(user.id, 0),
                total_open=sum(found.get(user.id, 0) for found in loads.values()),
                capacity=capacity,
                total_capacity=capacities.get(user.id),
            )
            for user in users
        ]
    )


async def set_capacity(request: web.Request) -> web.Response:
    await require_admin(request)
    user_id = request.match_info["user"]
    if await request.config_dict[DIRECTORY].get_user(user_id) is None:
        raise errors.not_found(f"no user {user_id}")
    body = await read_body(request, CapacityBody)
    await request.config_dict[ROUTING].set_capacity(user_id, body.total_capacity)
    await request.config_dict[ROUTING].wake()
    return json(CapacityOut(user=user_id, total_capacity=body.total_capacity))


async def get_capacity(request: web.Request) -> web.Response:
    await require_admin(request)
    user_id = request.match_info["user"]
    if await request.config_dict[DIRECTORY].get_user(user_id) is None:
        raise errors.not_found(f"no user {user_id}")
    found = await request.config_dict[ROUTING].capacity(user_id)
    return json(CapacityOut(user=user_id, total_capacity=found))


CAPACITY = "/v1/users/{user}/capacity"
ENDPOINTS = [
    Endpoint("GET", ME, get_mine, "Your availability", 200, AvailabilityOut, tag="users"),
    Endpoint("PUT", ME, set_mine, "Set your availability: online, away or offline", 200,
             AvailabilityOut, body=AvailabilityBody, tag="users"),
    Endpoint("GET", "/v1/channels/{channel}/agents", channel_agents,
             "Who may answer on the channel: availability, load and capacity", 200,
             list[AgentOut], errors=(404,), tag="channels"),
    Endpoint("GET", CAPACITY, get_capacity, "A user's own capacity across channels", 200,
             CapacityOut, errors=(403, 404), tag="users"),
    Endpoint("PUT", CAPACITY, set_capacity,
             "Set a user's own capacity across channels (null: none)", 200, CapacityOut,
             body=CapacityBody, errors=(403, 404), tag="users"),
]  # fmt: skip
