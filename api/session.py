"""The inbox page's session: sign in once with a user's token, then a cookie (HttpOnly,
SameSite=Strict, Secure over TLS) that page scripts cannot read; sign out ends it on
the server. docs/inbox.md says why."""

from aiohttp import web

from api import errors
from api.access import (
    SESSION_COOKIE,
    caller,
    check_origin,
    scheme_of,
    user_of_token,
)
from api.appkeys import CLOCK, SESSIONS
from api.body import read_body
from api.responses import json
from api.schemas import Me, SessionBody, SessionOut
from api.spec import Endpoint
from store.directory import token_digest
from store.sessions import SESSION_TTL_S

PATH = "/v1/session"


def _secure(request: web.Request) -> bool:
    return scheme_of(request) == "https"


def _me(user_id: str, admin: bool, teams: frozenset[str]) -> Me:
    return Me(id=user_id, admin=admin, teams=sorted(teams))


async def sign_in(request: web.Request) -> web.Response:
    check_origin(request)  # no signing a browser in from another site
    body = await read_body(request, SessionBody)
    user = await user_of_token(request, body.token)
    if user is None:
        raise errors.unauthorized("that token signs nobody in")
    session_id, session = await request.config_dict[SESSIONS].create(
        user.id, request.config_dict[CLOCK](), token_digest=token_digest(body.token)
    )
    response = json(
        SessionOut(user=_me(user.id, user.admin, user.teams), csrf=session.csrf), status=201
    )
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=SESSION_TTL_S,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=_secure(request),
    )
    return response


async def current(request: web.Request) -> web.Response:
    user = await caller(request)
    session_id = request.cookies.get(SESSION_COOKIE)
    session = None if session_id is None else await request.config_dict[SESSIONS].get(session_id)
    if session is None:
        raise errors.unauthorized("no session")
    return json(SessionOut(user=_me(user.id, user.admin, user.teams), csrf=session.csrf))


async def sign_out(request: web.Request) -> web.Response:
    await caller(request)  # a session's DELETE must carry its CSRF token
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id is not None:
        await request.config_dict[SESSIONS].delete(session_id)
    response = web.Response(status=204)
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


ENDPOINTS = [
    Endpoint("POST", PATH, sign_in, "Sign in with a user's token: a session cookie", 201,
             SessionOut, body=SessionBody, public=True, errors=(401,), tag="session"),
    Endpoint("GET", PATH, current, "The session's user and CSRF token", 200, SessionOut,
             tag="session"),
    Endpoint("DELETE", PATH, sign_out, "Sign out: the session ends on the server", 204,
             tag="session", errors=(403,)),
]  # fmt: skip
