"""Users, teams and team membership: admins manage them; anyone can ask who they are."""

from aiohttp import web

from api import errors
from api.access import BOOTSTRAP_ADMIN, caller, require_admin
from api.appkeys import DIRECTORY, ROUTING
from api.body import read_body
from api.responses import json
from api.schemas import (
    CreatedUser,
    Me,
    NewTeam,
    NewToken,
    NewUser,
    TeamOut,
    UserOut,
    team_out,
    user_out,
)
from api.spec import Endpoint
from store.directory import AlreadyExists, Missing


async def me(request: web.Request) -> web.Response:
    user = await caller(request)
    return json(Me(id=user.id, admin=user.admin, teams=sorted(user.teams)))


async def create_user(request: web.Request) -> web.Response:
    await require_admin(request)
    body = await read_body(request, NewUser)
    if body.id == BOOTSTRAP_ADMIN:
        raise errors.conflict("already_exists", f"user id {BOOTSTRAP_ADMIN} is reserved")
    try:
        record, token = await request.config_dict[DIRECTORY].create_user(
            body.id, body.name, admin=body.admin
        )
    except AlreadyExists as error:
        raise errors.conflict("already_exists", str(error)) from None
    created = CreatedUser(id=record.id, name=record.name, admin=record.admin, token=token)
    return json(created, status=201)


async def list_users(request: web.Request) -> web.Response:
    await require_admin(request)
    capacities = await request.config_dict[ROUTING].capacities()
    return json(
        [
            user_out(user, capacities.get(user.id))
            for user in await request.config_dict[DIRECTORY].list_users()
        ]
    )


async def get_user(request: web.Request) -> web.Response:
    await require_admin(request)
    user_id = request.match_info["user"]
    record = await request.config_dict[DIRECTORY].get_user(user_id)
    if record is None:
        raise errors.not_found(f"no user {user_id}")
    return json(user_out(record, await request.config_dict[ROUTING].capacity(user_id)))


async def delete_user(request: web.Request) -> web.Response:
    await require_admin(request)
    try:
        await request.config_dict[DIRECTORY].delete_user(request.match_info["user"])
    except Missing as error:
        raise errors.not_found(str(error)) from None
    return web.Response(status=204)


async def rotate_token(request: web.Request) -> web.Response:
    await require_admin(request)
    user_id = request.match_info["user"]
    try:
        token = await request.config_dict[DIRECTORY].rotate_token(user_id)
    except Missing as error:
        raise errors.not_found(str(error)) from None
    return json(NewToken(id=user_id, token=token), status=201)


async def create_team(request: web.Request) -> web.Response:
    await require_admin(request)
    body = await read_body(request, NewTeam)
    try:
        team = await request.config_dict[DIRECTORY].create_team(body.id, body.name)
    except AlreadyExists as error:
        raise errors.conflict("already_exists", str(error)) from None
    return json(team_out(team), status=201)


async def list_teams(request: web.Request) -> web.Response:
    await require_admin(request)
    return json([team_out(team) for team in await request.config_dict[DIRECTORY].list_teams()])


async def get_team(request: web.Request) -> web.Response:
    await require_admin(request)
    team_id = request.match_info["team"]
    team = await request.config_dict[DIRECTORY].get_team(team_id)
    if team is None:
        raise errors.not_found(f"no team {team_id}")
    return json(team_out(team))


async def delete_team(request: web.Request) -> web.Response:
    await require_admin(request)
    try:
        await request.config_dict[DIRECTORY].delete_team(request.match_info["team"])
    except Missing as error:
        raise errors.not_found(str(error)) from None
    return web.Response(status=204)


async def add_member(request: web.Request) -> web.Response:
    return await _membership(request, add=True)


async def remove_member(request: web.Request) -> web.Response:
    return await _membership(request, add=False)


async def _membership(request: web.Request, *, add: bool) -> web.Response:
    await require_admin(request)
    team_id, user_id = request.match_info["team"], request.match_info["user"]
    directory = request.config_dict[DIRECTORY]
    try:
        if add:
            await directory.add_member(team_id, user_id)
        else:
            await directory.remove_member(team_id, user_id)
    except Missing as error:
        raise errors.not_found(str(error)) from None
    team = await directory.get_team(team_id)
    if team is None:  # deleted meanwhile
        raise errors.not_found(f"no team {team_id}")
    return json(team_out(team))


MEMBER = "/v1/teams/{team}/members/{user}"
ENDPOINTS = [
    Endpoint("GET", "/v1/me", me, "Who the token belongs to", 200, Me, tag="users"),
    Endpoint("POST", "/v1/users", create_user, "Create a user; the token is shown once", 201,
             CreatedUser, body=NewUser, errors=(403, 409), tag="users"),
    Endpoint("GET", "/v1/users", list_users, "All users", 200, list[UserOut],
             errors=(403,), tag="users"),
    Endpoint("GET", "/v1/users/{user}", get_user, "One user", 200, UserOut,
             errors=(403, 404), tag="users"),
    Endpoint("DELETE", "/v1/users/{user}", delete_user,
             "Delete a user: their token stops working, their grants and memberships go",
             204, errors=(403, 404), tag="users"),
    Endpoint("POST", "/v1/users/{user}/token", rotate_token,
             "A new token for a user; the old one stops working", 201, NewToken,
             errors=(403, 404), tag="users"),
    Endpoint("POST", "/v1/teams", create_team, "Create a team", 201, TeamOut,
             body=NewTeam, errors=(403, 409), tag="teams"),
    Endpoint("GET", "/v1/teams", list_teams, "All teams", 200, list[TeamOut],
             errors=(403,), tag="teams"),
    Endpoint("GET", "/v1/teams/{team}", get_team, "One team with its members", 200,
             TeamOut, errors=(403, 404), tag="teams"),
    Endpoint("DELETE", "/v1/teams/{team}", delete_team,
             "Delete a team with its memberships and grants", 204, errors=(403, 404),
             tag="teams"),
    Endpoint("PUT", MEMBER, add_member, "Add a user to a team", 200, TeamOut,
             errors=(403, 404), tag="teams"),
    Endpoint("DELETE", MEMBER, remove_member, "Remove a user from a team", 200, TeamOut,
             errors=(403, 404), tag="teams"),
]  # fmt: skip
