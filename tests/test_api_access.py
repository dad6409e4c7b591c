"""The role matrix over HTTP (issue "must show 1"): every caller on every /v1 endpoint.

No engine runs: an allowed action answers 202 (its event is on the topic, not decided
yet), a refused one 403 (the caller sees the channel, their role lacks the right) or
404 (no role: the channel's existence is not revealed). Conversations are put in Redis
as the engine would have stored them.
"""

import time
import uuid
from datetime import UTC, datetime
from typing import Any, NamedTuple

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from api.routes import ENDPOINTS
from mediastore import open_media_store
from parley.channels import Channel
from parley.settings import Settings
from parley.state import Queue
from tests.api_tools import (
    ADMIN,
    ADMIN_TOKEN,
    AiohttpClient,
    bearer,
    call,
    put_conversation,
    put_file_message,
    start_api,
    user_with_role,
)
from tests.conftest import EU, US
from tests.image_tools import square_png

Api = TestClient  # type: ignore[type-arg]
Headers = dict[str, str]

CHANNEL = EU.id  # every grant in this file is on EU; US is only ever seen by admins
UNKNOWN = "999999999999999"  # a channel id that exists nowhere
WA_ID = "31611111111"
T0 = time.time() - 600
EVENT_ID = "0" * 32
PHOTO = "wamid.PHOTO"  # the customer's image, fetched: a message to react to and download
PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 64
# No engine consumes it, so one topic serves the whole module (not one per test).
TOPIC = f"parley-test-access-{uuid.uuid4().hex[:8]}"

# The table's columns; the admin column holds for the bootstrap token ("admin") and for
# a user created with "admin": true ("admin-user") alike.
NO_GRANT, VIEWER, CONTRIBUTOR, SUPERVISOR, ADMIN_ROLE = (
    "no-grant", "viewer", "contributor", "supervisor", "admin",
)  # fmt: skip
COLUMNS = [NO_GRANT, VIEWER, CONTRIBUTOR, SUPERVISOR, ADMIN_ROLE]
CALLERS = [NO_GRANT, VIEWER, CONTRIBUTOR, SUPERVISOR, "admin", "admin-user"]
# A contributor to assign conversations to and to grant to; a team with no grant.
AGENT, TEAM = "agent", "crew"
UNAUTHORIZED = (401, 'Bearer realm="parley"', "unauthorized")


@pytest.fixture
def topic() -> str:
    return TOPIC


class Call(NamedTuple):
    method: str
    path: str  # "{channel}" is filled in when sent
    body: Any = None


class World(NamedTuple):
    api: Api
    callers: dict[str, Headers]  # caller -> their auth headers


def sent(request: Call, headers: Headers) -> dict[str, Any]:
    """The request's body and headers: JSON, or a file sent as it is (plain text)."""
    if isinstance(request.body, bytes):
        return {"data": request.body, "headers": {**headers, "Content-Type": "text/plain"}}
    return {"json": request.body, "headers": headers}


async def send(
    api: Api, request: Call, headers: Headers, channel: str = CHANNEL
) -> tuple[int, Any]:
    path = request.path.format(channel=channel)
    async with api.request(request.method, path, **sent(request, headers)) as response:
        if response.content_type == "text/event-stream":
            return response.status, None  # a stream never ends: opened, then closed at once
        body = await response.json() if response.content_type == "application/json" else None
        return response.status, body


async def start(
    aiohttp_client: AiohttpClient, settings: Settings, channels: list[Channel], redis: Redis
) -> World:
    """The API (no engine, and no wait for one), one user per caller (granted on EU),
    an assignable agent, an empty team, and one conversation in the new queue."""
    api = await start_api(aiohttp_client, settings, channels, action_wait_s=0)
    callers = {NO_GRANT: await user_with_role(api, "nadia")}
    for user_id, role in [("vic", VIEWER), ("cora", CONTRIBUTOR), ("sam", SUPERVISOR)]:
        callers[role] = await user_with_role(api, user_id, CHANNEL, role)
    callers["admin"] = ADMIN
    callers["admin-user"] = await create_user(api, "ada", admin=True)
    await user_with_role(api, AGENT, CHANNEL, CONTRIBUTOR)
    await ok(api, "POST", "/v1/teams", {"id": TEAM, "name": "Crew"})
    await ok(api, "PUT", f"/v1/channels/{CHANNEL}/templates/welcome/en_US", {"category": "UTILITY"})
    await ok(api, "PUT", f"/v1/channels/{CHANNEL}/saved-replies/welcome", {"text": "Welcome!"})
    await put_conversation(redis, CHANNEL, WA_ID, Queue.NEW, T0)
    media = open_media_store(settings)
    try:
        await put_file_message(redis, media, CHANNEL, WA_ID, T0, PHOTO, PNG)
    finally:
        await media.close()
    return World(api, callers)


async def ok(api: Api, method: str, path: str, body: Any = None) -> Any:
    """An admin request that must succeed; its body."""
    status, answer = await call(api, method, path, ADMIN, body)
    assert status in (200, 201, 204), (method, path, status, answer)
    return answer


async def create_user(api: Api, user_id: str, *, admin: bool = False) -> Headers:
    created = await ok(api, "POST", "/v1/users", {"id": user_id, "name": user_id, "admin": admin})
    return bearer(created["token"])


def column(caller: str) -> str:
    return ADMIN_ROLE if caller.startswith("admin") else caller


def blanked(channel: str, body: Any) -> Any:
    """An error body with the channel id blanked, to compare two channels' answers."""
    message = body["error"]["message"].replace(channel, "<channel>")
    return {"error": {**body["error"], "message": message}}


# The matrix: what each column gets from each endpoint. Channel and conversation
# endpoints answer 404 without a role; org endpoints (users, teams) 403 to non-admins.
C = "/v1/channels/{channel}"
NEW_NUMBER = {
    "id": "106540352249999",
    "display_name": "New line",
    "access_token": "new-graph-token",
    "app_secret": "new-app-secret",
    "verify_token": "new-verify-token",
}
V = f"/v1/conversations/{{channel}}/{WA_ID}"
SUBMISSION = {
    "name": "order_update",
    "language": "en_US",
    "category": "UTILITY",
    "body": {"text": "Order {{1}} ships today.", "examples": ["4411"]},
}
PICTURE = square_png(640)
SNOOZE_UNTIL = datetime.fromtimestamp(time.time() + 7 * 86400, UTC).isoformat()
#                                                                                   no grant viewer contributor supervisor admin
TABLE: dict[str, tuple[Call, tuple[int, int, int, int, int]]] = {
    "get channel":         (Call("GET", C),                                                 (404, 200, 200, 200, 200)),
    "list conversations":  (Call("GET", f"{C}/conversations"),                              (404, 200, 200, 200, 200)),
    "list resolved":       (Call("GET", f"{C}/conversations?queue=resolved"),               (404, 200, 200, 200, 200)),
    "get conversation":    (Call("GET", V),                                                 (404, 200, 200, 200, 200)),
    "action status":       (Call("GET", f"{V}/actions/{EVENT_ID}"),                         (404, 200, 200, 200, 200)),
    "move to pending":     (Call("POST", f"{V}/move", {"queue": "pending"}),                (404, 202, 202, 202, 202)),
    "move to resolved":    (Call("POST", f"{V}/move", {"queue": "resolved"}),               (404, 202, 202, 202, 202)),
    "snooze":              (Call("POST", f"{V}/snooze", {"until": SNOOZE_UNTIL}),           (404, 202, 202, 202, 202)),
    "add tag":             (Call("POST", f"{V}/tags", {"tag": "vip"}),                      (404, 202, 202, 202, 202)),
    "add note":            (Call("POST", f"{V}/notes", {"text": "Called back"}),            (404, 202, 202, 202, 202)),
    "add topic":           (Call("POST", f"{V}/topics", {"topic": "billing"}),              (404, 202, 202, 202, 202)),
    "reply":               (Call("POST", f"{V}/replies", {"text": "Hello!"}),               (404, 403, 202, 202, 202)),
    "assign":              (Call("PUT", f"{V}/assignee", {"user": AGENT}),                  (404, 403, 202, 202, 202)),
    "react":               (Call("POST", f"{V}/reactions", {"message": PHOTO, "emoji": "👍"}), (404, 403, 202, 202, 202)),
    "mark read":           (Call("POST", f"{V}/read", {}),                                  (404, 403, 202, 202, 202)),
    "typing":              (Call("POST", f"{V}/typing"),                                    (404, 403, 202, 202, 202)),
    "upload":              (Call("POST", f"{C}/uploads", b"Invoice 4411: paid"),            (404, 403, 201, 201, 201)),
    "download a file":     (Call("GET", f"/v1/media/{{channel}}/{WA_ID}/{PHOTO}"),         (404, 200, 200, 200, 200)),
    # EU names its business account; no Graph API answers here (a closed port): 502.
    "sync templates":      (Call("POST", f"{C}/templates/sync"),                            (404, 403, 403, 403, 502)),
    "unassign":            (Call("DELETE", f"{V}/assignee"),                                (404, 403, 202, 202, 202)),
    "report":              (Call("GET", f"{C}/report"),                                     (404, 403, 403, 200, 200)),
    "patch settings":      (Call("PATCH", C, {"auto_assign": False}),                       (404, 403, 403, 403, 200)),
    "switch all users on": (Call("PATCH", C, {"all_users": "viewer"}),                      (404, 403, 403, 403, 200)),
    "switch all teams on": (Call("PATCH", C, {"all_teams": "viewer"}),                      (404, 403, 403, 403, 200)),
    "get grants":          (Call("GET", f"{C}/access"),                                     (404, 403, 403, 403, 200)),
    "grant user":          (Call("PUT", f"{C}/access/users/{AGENT}", {"role": "viewer"}),   (404, 403, 403, 403, 200)),
    "revoke user":         (Call("DELETE", f"{C}/access/users/{AGENT}"),                    (404, 403, 403, 403, 200)),
    "grant team":          (Call("PUT", f"{C}/access/teams/{TEAM}", {"role": "viewer"}),    (404, 403, 403, 403, 200)),
    "revoke team":         (Call("DELETE", f"{C}/access/teams/{TEAM}"),                     (404, 403, 403, 403, 200)),
    "me":                  (Call("GET", "/v1/me"),                                          (200, 200, 200, 200, 200)),
    "my availability":     (Call("GET", "/v1/me/availability"),                             (200, 200, 200, 200, 200)),
    "set my availability": (Call("PUT", "/v1/me/availability", {"status": "online"}),       (200, 200, 200, 200, 200)),
    "get capacity":        (Call("GET", f"/v1/users/{AGENT}/capacity"),                     (403, 403, 403, 403, 200)),
    "set capacity":        (Call("PUT", f"/v1/users/{AGENT}/capacity", {"total_capacity": 3}), (403, 403, 403, 403, 200)),
    "set routing":         (Call("PATCH", C, {"routing": {"capacity": 3}}),                 (404, 403, 403, 403, 200)),
    "list users":          (Call("GET", "/v1/users"),                                       (403, 403, 403, 403, 200)),
    "create user":         (Call("POST", "/v1/users", {"id": "newbie", "name": "New"}),     (403, 403, 403, 403, 201)),
    "get user":            (Call("GET", f"/v1/users/{AGENT}"),                              (403, 403, 403, 403, 200)),
    "rotate token":        (Call("POST", f"/v1/users/{AGENT}/token"),                       (403, 403, 403, 403, 201)),
    "delete user":         (Call("DELETE", f"/v1/users/{AGENT}"),                           (403, 403, 403, 403, 204)),
    "list teams":          (Call("GET", "/v1/teams"),                                       (403, 403, 403, 403, 200)),
    "create team":         (Call("POST", "/v1/teams", {"id": "new", "name": "New"}),        (403, 403, 403, 403, 201)),
    "get team":            (Call("GET", f"/v1/teams/{TEAM}"),                               (403, 403, 403, 403, 200)),
    "add member":          (Call("PUT", f"/v1/teams/{TEAM}/members/{AGENT}"),               (403, 403, 403, 403, 200)),
    "remove member":       (Call("DELETE", f"/v1/teams/{TEAM}/members/{AGENT}"),            (403, 403, 403, 403, 200)),
    "delete team":         (Call("DELETE", f"/v1/teams/{TEAM}"),                            (403, 403, 403, 403, 204)),
    "list templates":      (Call("GET", f"{C}/templates"),                                  (404, 200, 200, 200, 200)),
    "submit template":     (Call("POST", f"{C}/templates", SUBMISSION),                     (404, 403, 403, 403, 502)),
    "put template":        (Call("PUT", f"{C}/templates/welcome/en_US", {"category": "UTILITY"}), (404, 403, 403, 403, 200)),
    "delete template":     (Call("DELETE", f"{C}/templates/welcome/en_US"),                 (404, 403, 403, 403, 204)),
    "create channel":      (Call("POST", "/v1/channels", NEW_NUMBER),                       (403, 403, 403, 403, 201)),
    # A number from the channels file was registered outside Parley: no record.
    "get registration":    (Call("GET", f"{C}/registration"),                               (403, 403, 403, 403, 404)),
    "request code":        (Call("POST", f"{C}/registration/request_code", {}),             (403, 403, 403, 403, 404)),
    "verify code":         (Call("POST", f"{C}/registration/verify_code", {"code": "123456"}), (403, 403, 403, 403, 404)),
    "register":            (Call("POST", f"{C}/registration/register", {"pin": "123456"}),  (403, 403, 403, 403, 404)),
    "get profile":         (Call("GET", f"{C}/profile"),                                    (404, 403, 403, 502, 502)),
    "patch profile":       (Call("PATCH", f"{C}/profile", {"about": "Plants, delivered"}),  (404, 403, 403, 403, 502)),
    # EU names no Meta app: the picture is checked, then there is no app to upload to.
    "get picture":         (Call("GET", f"{C}/profile/picture"),                            (404, 403, 403, 502, 502)),
    "put picture":         (Call("PUT", f"{C}/profile/picture", PICTURE),                   (404, 403, 403, 403, 409)),
    "get standing":        (Call("GET", f"{C}/standing"),                                   (404, 403, 403, 200, 200)),
    "refresh standing":    (Call("POST", f"{C}/standing/refresh"),                          (404, 403, 403, 403, 502)),
    "queue counts":        (Call("GET", f"{C}/queues"),                                     (404, 200, 200, 200, 200)),
    "channel agents":      (Call("GET", f"{C}/agents"),                                     (404, 200, 200, 200, 200)),
    "search":              (Call("GET", f"{C}/search?q={WA_ID}"),                           (404, 200, 200, 200, 200)),
    "list saved replies":  (Call("GET", f"{C}/saved-replies"),                              (404, 200, 200, 200, 200)),
    "put saved reply":     (Call("PUT", f"{C}/saved-replies/welcome", {"text": "Hi!"}),     (404, 403, 403, 403, 200)),
    "delete saved reply":  (Call("DELETE", f"{C}/saved-replies/welcome"),                   (404, 403, 403, 403, 204)),
    # The stream is opened and closed at once; ?channels= names the channel (without it,
    # a caller with no grant gets a stream of nothing).
    "stream":              (Call("GET", "/v1/stream?channels={channel}"),                   (404, 200, 200, 200, 200)),
    # A bearer token is not a session: there is none to show (signing in is public, and
    # tests/test_session.py tries it with cookies); signing out without one ends nothing.
    "get session":         (Call("GET", "/v1/session"),                                     (401, 401, 401, 401, 401)),
    "sign out":            (Call("DELETE", "/v1/session"),                                  (204, 204, 204, 204, 204)),
}  # fmt: skip
SELECTOR = Call("GET", "/v1/channels")  # not a row: what it lists depends on the caller


def cell(name: str, caller: str) -> int:
    return TABLE[name][1][COLUMNS.index(column(caller))]


CELLS = [
    pytest.param(name, caller, cell(name, caller), id=f"{caller}-{name.replace(' ', '_')}")
    for name in TABLE
    for caller in CALLERS
]
# What the grant tests below check a role by: one endpoint per step of the ladder.
PROBES = ["get channel", "add tag", "reply", "report", "patch settings"]


async def probe(api: Api, headers: Headers) -> dict[str, int]:
    return {name: (await send(api, TABLE[name][0], headers))[0] for name in PROBES}


def probes_for(role: str | None) -> dict[str, int]:
    return {name: cell(name, role or NO_GRANT) for name in PROBES}


async def selector(api: Api, headers: Headers) -> list[tuple[str, str]]:
    status, body = await call(api, "GET", "/v1/channels", headers)
    assert status == 200, body
    return [(channel["id"], channel["role"]) for channel in body["channels"]]


async def access_of(api: Api, headers: Headers) -> tuple[str | None, list[tuple[str, str]]]:
    """The caller's role on EU as GET channel tells it (None for 404), and the selector."""
    status, body = await send(api, TABLE["get channel"][0], headers)
    assert status in (200, 404), body
    return (body["role"] if status == 200 else None), await selector(api, headers)


# The table itself


def test_the_table_covers_every_endpoint() -> None:
    filled = {
        "{customer}": WA_ID,
        "{event_id}": EVENT_ID,
        "{user}": AGENT,
        "{team}": TEAM,
        "{message}": PHOTO,
    }
    filled |= {"{name}": "welcome", "{language}": "en_US"}
    routes = set()
    for endpoint in ENDPOINTS:
        if not endpoint.public:
            path = endpoint.path
            for name, value in filled.items():
                path = path.replace(name, value)
            routes.add((endpoint.method, path))
    covered = {(c.method, c.path.partition("?")[0]) for c, _ in TABLE.values()}
    assert routes == covered | {(SELECTOR.method, SELECTOR.path)}


@pytest.mark.parametrize(("name", "caller", "expected"), CELLS)
async def test_matrix(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    channels: list[Channel],
    redis: Redis,
    name: str,
    caller: str,
    expected: int,
) -> None:
    world = await start(aiohttp_client, settings, channels, redis)
    request, headers = TABLE[name][0], world.callers[caller]
    status, body = await send(world.api, request, headers)
    assert status == expected, body
    if expected == 202:
        assert (body["status"], len(body["event_id"])) == ("pending", 32), body
    elif expected == 401:
        assert body["error"]["code"] == "unauthorized", body
    elif expected == 403:
        assert body["error"]["code"] == "forbidden", body
    elif expected == 404:
        # Word for word what a channel that does not exist at all answers.
        unknown_status, unknown = await send(world.api, request, headers, UNKNOWN)
        assert (status, blanked(CHANNEL, body)) == (unknown_status, blanked(UNKNOWN, unknown))
        assert body["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("caller", "listed"),
    [
        (NO_GRANT, []),
        (VIEWER, [(EU.id, VIEWER)]),
        (CONTRIBUTOR, [(EU.id, CONTRIBUTOR)]),
        (SUPERVISOR, [(EU.id, SUPERVISOR)]),
        ("admin", [(EU.id, ADMIN_ROLE), (US.id, ADMIN_ROLE)]),
        ("admin-user", [(EU.id, ADMIN_ROLE), (US.id, ADMIN_ROLE)]),
    ],
)
async def test_the_channel_selector_lists_what_the_caller_has_a_role_on(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    channels: list[Channel],
    redis: Redis,
    caller: str,
    listed: list[tuple[str, str]],
) -> None:
    world = await start(aiohttp_client, settings, channels, redis)
    assert await selector(world.api, world.callers[caller]) == listed


# Authentication


@pytest.mark.parametrize(
    "headers",
    [
        {},
        bearer("parley_no-such-token"),
        bearer(ADMIN_TOKEN + "x"),
        {"Authorization": "Bearer "},
        {"Authorization": f"Basic {ADMIN_TOKEN}"},
        {"Authorization": ADMIN_TOKEN},
    ],
    ids=["none", "unknown", "admin-typo", "empty", "basic", "no-scheme"],
)
async def test_without_a_valid_token_every_endpoint_is_401(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    channels: list[Channel],
    redis: Redis,
    headers: Headers,
) -> None:
    world = await start(aiohttp_client, settings, channels, redis)
    requests = {**{name: request for name, (request, _) in TABLE.items()}, "list": SELECTOR}
    answers = {}
    for name, request in requests.items():
        for channel in (CHANNEL, UNKNOWN):  # before, and whatever, the channel's existence
            path = request.path.format(channel=channel)
            async with world.api.request(
                request.method, path, **sent(request, headers)
            ) as response:
                body = await response.json()
                answers[name, channel] = (
                    response.status,
                    response.headers.get("WWW-Authenticate"),
                    body["error"]["code"],
                )
    assert answers == dict.fromkeys(answers, UNAUTHORIZED)


async def test_deleting_a_user_locks_them_out_at_once(
    aiohttp_client: AiohttpClient, settings: Settings, channels: list[Channel], redis: Redis
) -> None:
    world = await start(aiohttp_client, settings, channels, redis)
    vic = world.callers[VIEWER]
    assert await probe(world.api, vic) == probes_for(VIEWER)
    await ok(world.api, "DELETE", "/v1/users/vic")
    for name in ["me", *PROBES]:
        status, body = await send(world.api, TABLE[name][0], vic)
        assert (status, body["error"]["code"]) == (401, "unauthorized"), name
    # The id can be taken again, and the old grant does not come back with it.
    again = await create_user(world.api, "vic")
    assert await access_of(world.api, again) == (None, [])
    assert await probe(world.api, again) == probes_for(None)


async def test_rotating_a_token_retires_the_old_one(
    aiohttp_client: AiohttpClient, settings: Settings, channels: list[Channel], redis: Redis
) -> None:
    world = await start(aiohttp_client, settings, channels, redis)
    old = world.callers[VIEWER]
    rotated = await ok(world.api, "POST", "/v1/users/vic/token")
    assert rotated["id"] == "vic"
    new = bearer(rotated["token"])
    assert new != old
    status, body = await call(world.api, "GET", "/v1/me", old)
    assert (status, body["error"]["code"]) == (401, "unauthorized")
    assert (await call(world.api, "GET", "/v1/me", new))[1]["id"] == "vic"
    assert await probe(world.api, new) == probes_for(VIEWER)  # the grants stay


# How grants combine: the highest role wins, and goes when its grant goes

ROLES = [None, VIEWER, CONTRIBUTOR, SUPERVISOR]


@pytest.mark.parametrize("team_role", ROLES, ids=lambda r: f"team-{r}")
@pytest.mark.parametrize("direct", ROLES, ids=lambda r: f"direct-{r}")
async def test_team_and_direct_grants_combine_to_the_highest_role(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    channels: list[Channel],
    redis: Redis,
    direct: str | None,
    team_role: str | None,
) -> None:
    world = await start(aiohttp_client, settings, channels, redis)
    tim = await user_with_role(world.api, "tim", CHANNEL, direct)
    await ok(world.api, "PUT", f"/v1/teams/{TEAM}/members/tim")
    if team_role:
        await ok(
            world.api, "PUT", f"/v1/channels/{CHANNEL}/access/teams/{TEAM}", {"role": team_role}
        )
    highest = max([direct, team_role], key=lambda role: ROLES.index(role))
    assert await access_of(world.api, tim) == (highest, [(EU.id, highest)] if highest else [])
    assert await probe(world.api, tim) == probes_for(highest)

    await ok(world.api, "DELETE", f"/v1/teams/{TEAM}/members/tim")
    assert await access_of(world.api, tim) == (direct, [(EU.id, direct)] if direct else [])
    assert await probe(world.api, tim) == probes_for(direct)


async def test_a_direct_viewer_reports_through_their_team_until_they_leave_it(
    aiohttp_client: AiohttpClient, settings: Settings, channels: list[Channel], redis: Redis
) -> None:
    world = await start(aiohttp_client, settings, channels, redis)
    api, vic, report = world.api, world.callers[VIEWER], TABLE["report"][0]
    assert (await send(api, report, vic))[0] == 403
    await ok(api, "PUT", f"/v1/channels/{CHANNEL}/access/teams/{TEAM}", {"role": SUPERVISOR})
    await ok(api, "PUT", f"/v1/teams/{TEAM}/members/vic")
    assert (await send(api, report, vic))[0] == 200
    await ok(api, "DELETE", f"/v1/teams/{TEAM}/members/vic")
    assert (await send(api, report, vic))[0] == 403
    assert (await send(api, TABLE["get channel"][0], vic))[0] == 200


@pytest.mark.parametrize(
    "take_away",
    [
        Call("DELETE", f"/v1/channels/{CHANNEL}/access/teams/{TEAM}"),
        Call("DELETE", f"/v1/teams/{TEAM}"),
        Call("DELETE", f"/v1/teams/{TEAM}/members/tim"),
    ],
    ids=["revoke-team-grant", "delete-team", "leave-team"],
)
async def test_a_role_held_through_a_team_goes_with_the_team(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    channels: list[Channel],
    redis: Redis,
    take_away: Call,
) -> None:
    world = await start(aiohttp_client, settings, channels, redis)
    tim = await create_user(world.api, "tim")
    await ok(world.api, "PUT", f"/v1/teams/{TEAM}/members/tim")
    await ok(world.api, "PUT", f"/v1/channels/{CHANNEL}/access/teams/{TEAM}", {"role": CONTRIBUTOR})
    assert await probe(world.api, tim) == probes_for(CONTRIBUTOR)
    await ok(world.api, take_away.method, take_away.path)
    assert await access_of(world.api, tim) == (None, [])
    assert await probe(world.api, tim) == probes_for(None)


async def test_revoking_a_direct_grant_hides_the_channel(
    aiohttp_client: AiohttpClient, settings: Settings, channels: list[Channel], redis: Redis
) -> None:
    world = await start(aiohttp_client, settings, channels, redis)
    sam = world.callers[SUPERVISOR]
    await ok(world.api, "DELETE", f"/v1/channels/{CHANNEL}/access/users/sam")
    assert await access_of(world.api, sam) == (None, [])
    assert await probe(world.api, sam) == probes_for(None)


# The switches: "access for all users" and "access for all teams"


async def test_the_all_users_switch_gives_every_user_access_until_switched_off(
    aiohttp_client: AiohttpClient, settings: Settings, channels: list[Channel], redis: Redis
) -> None:
    world = await start(aiohttp_client, settings, channels, redis)
    api, nadia, sam = world.api, world.callers[NO_GRANT], world.callers[SUPERVISOR]
    assert await access_of(api, nadia) == (None, [])

    patched = await ok(api, "PATCH", f"/v1/channels/{CHANNEL}", {"all_users": CONTRIBUTOR})
    assert (patched["all_users"], patched["all_teams"]) == (CONTRIBUTOR, None)
    assert await access_of(api, nadia) == (CONTRIBUTOR, [(EU.id, CONTRIBUTOR)])
    assert await probe(api, nadia) == probes_for(CONTRIBUTOR)
    assert await probe(api, sam) == probes_for(SUPERVISOR)  # a higher grant still wins
    newcomer = await create_user(api, "newcomer")
    assert await access_of(api, newcomer) == (CONTRIBUTOR, [(EU.id, CONTRIBUTOR)])

    patched = await ok(api, "PATCH", f"/v1/channels/{CHANNEL}", {"all_users": None})
    assert patched["all_users"] is None
    for headers in (nadia, newcomer):
        assert await access_of(api, headers) == (None, [])
        assert await probe(api, headers) == probes_for(None)
    assert await probe(api, sam) == probes_for(SUPERVISOR)


async def test_the_all_teams_switch_covers_team_members_only_until_switched_off(
    aiohttp_client: AiohttpClient, settings: Settings, channels: list[Channel], redis: Redis
) -> None:
    world = await start(aiohttp_client, settings, channels, redis)
    api, loner = world.api, world.callers[NO_GRANT]
    member = await create_user(api, "tess")
    await ok(api, "PUT", f"/v1/teams/{TEAM}/members/tess")  # a team with no grant of its own
    assert await access_of(api, member) == (None, [])

    patched = await ok(api, "PATCH", f"/v1/channels/{CHANNEL}", {"all_teams": SUPERVISOR})
    assert (patched["all_users"], patched["all_teams"]) == (None, SUPERVISOR)
    assert await access_of(api, member) == (SUPERVISOR, [(EU.id, SUPERVISOR)])
    assert await probe(api, member) == probes_for(SUPERVISOR)
    assert await access_of(api, loner) == (None, [])  # in no team: not covered
    assert await probe(api, loner) == probes_for(None)

    await ok(api, "PATCH", f"/v1/channels/{CHANNEL}", {"all_teams": None})
    assert await access_of(api, member) == (None, [])
    assert await probe(api, member) == probes_for(None)


async def test_both_switches_combine_and_go_off_one_at_a_time(
    aiohttp_client: AiohttpClient, settings: Settings, channels: list[Channel], redis: Redis
) -> None:
    world = await start(aiohttp_client, settings, channels, redis)
    api, loner = world.api, world.callers[NO_GRANT]
    member = await create_user(api, "tess")
    await ok(api, "PUT", f"/v1/teams/{TEAM}/members/tess")
    both = {"all_users": VIEWER, "all_teams": CONTRIBUTOR}
    await ok(api, "PATCH", f"/v1/channels/{CHANNEL}", both)
    assert (await access_of(api, loner))[0] == VIEWER
    assert (await access_of(api, member))[0] == CONTRIBUTOR

    await ok(api, "PATCH", f"/v1/channels/{CHANNEL}", {"all_teams": None})
    assert (await access_of(api, loner))[0] == VIEWER
    assert (await access_of(api, member))[0] == VIEWER
    await ok(api, "PATCH", f"/v1/channels/{CHANNEL}", {"all_users": None})
    grants = await ok(api, "GET", f"/v1/channels/{CHANNEL}/access")
    assert (grants["all_users"], grants["all_teams"]) == (None, None)
    for headers in (loner, member):
        assert await probe(api, headers) == probes_for(None)
