"""Who is calling, and what they may do on a channel: a bearer token (tools) or the
inbox page's session cookie in, a decision out. A request the cookie authenticates that
changes anything must echo the session's CSRF token and come from this origin."""

import hashlib
import hmac

from aiohttp import web

from api.appkeys import DIRECTORY, REDIS, SESSIONS, SETTINGS
from api.errors import forbidden, not_found, unauthorized
from assign import Action, ChannelAccess, User, decide, effective_role
from parley.events import Role
from store.channels import channel_ids

# The bootstrap admin (PARLEY_ADMIN_TOKEN) acts under this id; no user may take it.
BOOTSTRAP_ADMIN = "admin"
SESSION_COOKIE = "parley_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_CALLER = web.RequestKey("caller", User)


async def caller(request: web.Request) -> User:
    """The authenticated user (once per request); 401 without a known token or session,
    403 `csrf_failed` for a cookie's state-changing request without the CSRF token."""
    if _CALLER in request:
        return request[_CALLER]
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token:
        user = await user_of_token(request, token)
    elif request.cookies.get(SESSION_COOKIE):
        user = await _session_user(request)
    else:
        raise unauthorized()
    if user is None:
        raise unauthorized()
    request[_CALLER] = user
    return user


async def user_of_token(request: web.Request, token: str) -> User | None:
    """The user a bearer token (or the bootstrap admin's) belongs to."""
    user = _bootstrap_admin(request, token)
    if user is None:
        user = await request.config_dict[DIRECTORY].authenticate(token)
    return user


async def _session_user(request: web.Request) -> User | None:
    session = await request.config_dict[SESSIONS].get(request.cookies[SESSION_COOKIE])
    if session is None:
        return None
    if request.method not in SAFE_METHODS:
        _check_csrf(request, session.csrf)
    # A session lives while the token it was opened with does.
    if session.user == BOOTSTRAP_ADMIN:
        current = _admin_digest(request)
        valid = current is not None and hmac.compare_digest(current, session.token_digest)
        return User(id=BOOTSTRAP_ADMIN, admin=True) if valid else None
    return await request.config_dict[DIRECTORY].holder(session.user, session.token_digest)


def _check_csrf(request: web.Request, expected: str) -> None:
    given = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise forbidden(
            f"a session's request that changes anything needs {CSRF_HEADER}", code="csrf_failed"
        )
    check_origin(request)


def check_origin(request: web.Request) -> None:
    """403 `csrf_failed` for a request a browser sent from another origin."""
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{scheme_of(request)}://{request.host}":
        raise forbidden("cross-site requests are refused", code="csrf_failed")


def scheme_of(request: web.Request) -> str:
    """How the browser reached us: "https" over TLS, or when the proxy in front that
    ends TLS says so (X-Forwarded-Proto); else "http"."""
    forwarded = request.headers.get("X-Forwarded-Proto", "").partition(",")[0].strip().lower()
    return "https" if request.secure or forwarded == "https" else "http"


def _admin_digest(request: web.Request) -> str | None:
    expected = request.config_dict[SETTINGS].admin_token
    return None if expected is None else hashlib.sha256(expected.encode()).hexdigest()


def _bootstrap_admin(request: web.Request, token: str) -> User | None:
    # Compared as digests: constant time whatever the lengths.
    current = _admin_digest(request)
    given = hashlib.sha256(token.encode()).hexdigest()
    if current is None or not hmac.compare_digest(current, given):
        return None
    return User(id=BOOTSTRAP_ADMIN, admin=True)


async def visible_channels(request: web.Request, user: User) -> list[tuple[ChannelAccess, Role]]:
    """Every channel `user` has a role on, with its grants and that role (the channel
    selector's and the live stream's rule)."""
    ids = await channel_ids(request.config_dict[REDIS])
    accesses = await request.config_dict[DIRECTORY].channel_accesses(ids)
    return [
        (access, role) for access in accesses if (role := effective_role(user, access)) is not None
    ]


async def require_admin(request: web.Request) -> User:
    user = await caller(request)
    if not user.admin:
        raise forbidden("only admins may do this")
    return user


async def on_channel(request: web.Request, channel: str, action: Action) -> tuple[User, Role]:
    """The caller and their role on `channel`, if it allows `action`: 404 when the
    channel is unknown or invisible to them (its existence is not revealed), 403 when
    they see it but their role lacks the right."""
    user = await caller(request)
    exists, access = await request.config_dict[DIRECTORY].access_of(channel, user)
    if not exists:
        raise not_found(f"no channel {channel}")
    decision = decide(user, access, action)
    if decision.role is None:
        raise not_found(f"no channel {channel}")
    if not decision.allowed:
        raise forbidden(f"a {decision.role} on channel {channel} may not {action}")
    return user, decision.role
