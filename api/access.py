"""Who is calling, and what they may do on a channel: the bearer token in, a decision out."""

import hashlib
import hmac

from aiohttp import web

from api.appkeys import DIRECTORY, SETTINGS
from api.errors import forbidden, not_found, unauthorized
from assign import Action, User, decide
from parley.events import Role

# The bootstrap admin (PARLEY_ADMIN_TOKEN) acts under this id; no user may take it.
BOOTSTRAP_ADMIN = "admin"
_CALLER = web.RequestKey("caller", User)


async def caller(request: web.Request) -> User:
    """The authenticated user (once per request); 401 without a known token."""
    if _CALLER in request:
        return request[_CALLER]
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise unauthorized()
    user = _bootstrap_admin(request, token)
    if user is None:
        user = await request.config_dict[DIRECTORY].authenticate(token)
    if user is None:
        raise unauthorized()
    request[_CALLER] = user
    return user


def _bootstrap_admin(request: web.Request, token: str) -> User | None:
    expected = request.config_dict[SETTINGS].admin_token
    if expected is None:
        return None
    # Compared as digests: constant time whatever the lengths.
    given = hashlib.sha256(token.encode()).digest()
    if hmac.compare_digest(given, hashlib.sha256(expected.encode()).digest()):
        return User(id=BOOTSTRAP_ADMIN, admin=True)
    return None


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
