"""The inbox page's session, API side (docs/inbox.md, "Sessions"; issue 12, "must show" 3).

The real receiver with its API, a real broker and redis-server; no engine: an action the
API takes answers 202 and is on the topic, which is how "it did something" and "it did
nothing" are told apart. Each test says which cookie it sends: the test client's cookie
jar is emptied after every sign-in, so nothing is sent behind a test's back.
"""

import hashlib
import time
from http.cookies import SimpleCookie
from typing import Any, NamedTuple

import msgspec
import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from ingest.app import create_app as create_receiver
from parley.channels import Channel
from parley.settings import Settings
from parley.state import Queue
from store import _keys as keys
from tests.api_tools import (
    ADMIN,
    ADMIN_TOKEN,
    AiohttpClient,
    bearer,
    call,
    put_conversation,
    start_api,
    user_with_role,
)
from tests.conftest import EU
from tests.kafka_tools import read_all

Api = TestClient  # type: ignore[type-arg]
Headers = dict[str, str]
SESSION = "/v1/session"
COOKIE = "parley_session"
WA_ID = "31611111111"
CONVERSATION = f"/v1/conversations/{EU.id}/{WA_ID}"
HTTPS = {"X-Forwarded-Proto": "https"}  # what a TLS-terminating proxy in front says


class SignedIn(NamedTuple):
    session_id: str  # the cookie's value
    csrf: str
    cookie: Any  # the Set-Cookie morsel
    raw: str  # the Set-Cookie header as sent
    body: dict[str, Any]

    def headers(self, *, csrf: bool = False, origin: str | None = None) -> Headers:
        """The cookie, as the browser sends it; the CSRF token and an Origin if asked."""
        headers = {"Cookie": f"{COOKIE}={self.session_id}"}
        if csrf:
            headers["X-CSRF-Token"] = self.csrf
        if origin is not None:
            headers["Origin"] = origin
        return headers


async def start(
    aiohttp_client: AiohttpClient, settings: Settings, channels: list[Channel], redis: Redis
) -> Api:
    """The receiver (no engine: actions answer 202 at once), one new conversation."""
    api = await start_api(aiohttp_client, settings, channels, action_wait_s=0)
    await put_conversation(redis, EU.id, WA_ID, Queue.NEW, time.time() - 60)
    return api


def origin_of(api: Api, scheme: str = "http") -> str:
    url = api.make_url("/")
    return f"{scheme}://{url.host}:{url.port}"


async def sign_in(api: Api, token: str, headers: Headers | None = None) -> SignedIn:
    response = await api.post(SESSION, json={"token": token}, headers=headers or {})
    text = await response.text()
    assert response.status == 201, text
    api.session.cookie_jar.clear()
    assert token not in text
    raw = response.headers["Set-Cookie"]
    assert len(response.headers.getall("Set-Cookie")) == 1
    assert token not in raw
    cookie = SimpleCookie(raw)[COOKIE]
    body = msgspec.json.decode(text)
    return SignedIn(cookie.value, body["csrf"], cookie, raw, body)


async def events_on(settings: Settings) -> int:
    assert settings.kafka_bootstrap is not None
    return len(await read_all(settings.kafka_bootstrap, settings.topic))


async def user(api: Api, user_id: str, *, admin: bool = False) -> str:
    """A new user's token (an admin, or a contributor on EU)."""
    if admin:
        status, body = await call(
            api, "POST", "/v1/users", ADMIN, {"id": user_id, "name": user_id, "admin": True}
        )
        assert status == 201, body
        return str(body["token"])
    headers = await user_with_role(api, user_id, EU.id, "contributor")
    return headers["Authorization"].removeprefix("Bearer ")


# Signing in


@pytest.mark.parametrize("over_tls", [False, True], ids=["http", "https-behind-a-proxy"])
async def test_signing_in_sets_a_cookie_page_scripts_cannot_read(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    channels: list[Channel],
    redis: Redis,
    over_tls: bool,
) -> None:
    api = await start(aiohttp_client, settings, channels, redis)
    token = await user(api, "cora")
    signed = await sign_in(api, token, HTTPS if over_tls else None)
    assert signed.body == {
        "user": {"id": "cora", "admin": False, "teams": []},
        "csrf": signed.csrf,
    }
    assert len(signed.csrf) >= 32 and len(signed.session_id) >= 32
    attributes = [part.strip().lower() for part in signed.raw.split(";")[1:]]
    assert "httponly" in attributes
    assert "samesite=strict" in attributes
    assert "path=/" in attributes
    assert f"max-age={12 * 3600}" in attributes
    assert ("secure" in attributes) is over_tls
    assert signed.cookie["httponly"] and signed.cookie["samesite"] == "Strict"
    # Redis keeps the session under the SHA-256 of its id, and nothing holds the id.
    digest = hashlib.sha256(signed.session_id.encode()).hexdigest()
    assert await redis.exists(keys.session(digest))
    for key in await redis.keys("*"):
        assert signed.session_id.encode() not in key
        if await redis.type(key) == b"string":
            value = await redis.get(key)
            assert signed.session_id.encode() not in value and token.encode() not in value


async def test_the_session_gives_the_user_and_the_csrf_token(
    aiohttp_client: AiohttpClient, settings: Settings, channels: list[Channel], redis: Redis
) -> None:
    api = await start(aiohttp_client, settings, channels, redis)
    signed = await sign_in(api, await user(api, "ada", admin=True))
    status, body = await call(api, "GET", SESSION, signed.headers())
    assert (status, body) == (
        200,
        {"user": {"id": "ada", "admin": True, "teams": []}, "csrf": signed.csrf},
    )
    # The cookie authenticates the rest of the API too (safe methods need no CSRF token).
    status, body = await call(api, "GET", "/v1/me", signed.headers())
    assert (status, body["id"]) == (200, "ada")
    status, body = await call(api, "GET", f"/v1/channels/{EU.id}", signed.headers())
    assert status == 200, body
    # Without a session: 401, a bearer token included (it is not a session).
    for headers in ({}, bearer(ADMIN_TOKEN), {"Cookie": f"{COOKIE}=not-a-session"}):
        status, body = await call(api, "GET", SESSION, headers)
        assert (status, body["error"]["code"]) == (401, "unauthorized"), headers


@pytest.mark.parametrize(
    "token",
    ["parley_no-such-token", ADMIN_TOKEN + "x", "x" * 512],
    ids=["unknown", "admin-typo", "long"],
)
async def test_a_bad_token_signs_nobody_in_and_sets_no_cookie(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    channels: list[Channel],
    redis: Redis,
    token: str,
) -> None:
    api = await start(aiohttp_client, settings, channels, redis)
    response = await api.post(SESSION, json={"token": token})
    body = await response.json()
    assert (response.status, body["error"]["code"]) == (401, "unauthorized")
    assert "Set-Cookie" not in response.headers
    assert await redis.keys(keys.session("*")) == []


async def test_a_blank_or_missing_token_is_422_and_sets_no_cookie(
    aiohttp_client: AiohttpClient, settings: Settings, channels: list[Channel], redis: Redis
) -> None:
    api = await start(aiohttp_client, settings, channels, redis)
    for body in ({"token": ""}, {}, {"token": "x" * 513}):
        response = await api.post(SESSION, json=body)
        assert response.status == 422, await response.text()
        assert "Set-Cookie" not in response.headers


# Cross-site requests


class Attempt(NamedTuple):
    csrf: str | None  # "right", "wrong" or None (no header)
    origin: str | None  # "same", "https-same", a foreign origin, or None (no header)


REFUSED = {
    "no-csrf-token": Attempt(None, "same"),
    "no-csrf-token-no-origin": Attempt(None, None),
    "wrong-csrf-token": Attempt("wrong", "same"),
    "empty-csrf-token": Attempt("", "same"),
    "foreign-origin": Attempt("right", "https://evil.example"),
    "null-origin": Attempt("right", "null"),
    "other-port": Attempt("right", "http://127.0.0.1:1"),
    "other-scheme": Attempt("right", "https-same"),
}
# What a session may change: an action on a conversation (a topic event) and a setting.
REQUESTS = [
    ("POST", f"{CONVERSATION}/tags", {"tag": "vip"}),
    ("PUT", f"{CONVERSATION}/assignee", {"user": "ada"}),
    ("DELETE", f"{CONVERSATION}/assignee", None),
    ("POST", f"{CONVERSATION}/move", {"queue": "pending"}),
]


def attempt_headers(api: Api, signed: SignedIn, attempt: Attempt) -> Headers:
    headers = signed.headers()
    if attempt.csrf is not None:
        headers["X-CSRF-Token"] = {"right": signed.csrf, "wrong": signed.csrf[::-1]}.get(
            attempt.csrf, attempt.csrf
        )
    if attempt.origin is not None:
        headers["Origin"] = {
            "same": origin_of(api),
            "https-same": origin_of(api, "https"),
        }.get(attempt.origin, attempt.origin)
    return headers


@pytest.mark.parametrize("attempt", REFUSED.values(), ids=REFUSED.keys())
async def test_a_cookie_request_that_changes_anything_without_csrf_proof_is_refused(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    channels: list[Channel],
    redis: Redis,
    attempt: Attempt,
) -> None:
    api = await start(aiohttp_client, settings, channels, redis)
    signed = await sign_in(api, await user(api, "ada", admin=True))
    headers = attempt_headers(api, signed, attempt)
    before = await call(api, "GET", f"/v1/channels/{EU.id}", ADMIN)
    for method, path, body in [
        *REQUESTS,
        ("PATCH", f"/v1/channels/{EU.id}", {"display_name": "Hijacked"}),
        ("POST", "/v1/users", {"id": "mallory", "name": "Mallory", "admin": True}),
        ("DELETE", SESSION, None),
    ]:
        status, answer = await call(api, method, path, headers, body)
        assert (status, answer["error"]["code"]) == (403, "csrf_failed"), (method, path)
    # Nothing happened: no event on the topic, no setting, no user, the session alive.
    assert await events_on(settings) == 0
    assert await call(api, "GET", f"/v1/channels/{EU.id}", ADMIN) == before
    assert (await call(api, "GET", "/v1/users/mallory", ADMIN))[0] == 404
    assert (await call(api, "GET", SESSION, signed.headers()))[0] == 200


@pytest.mark.parametrize("with_origin", [True, False], ids=["same-origin", "no-origin"])
async def test_a_cookie_request_with_the_csrf_token_from_this_origin_works(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    channels: list[Channel],
    redis: Redis,
    with_origin: bool,
) -> None:
    api = await start(aiohttp_client, settings, channels, redis)
    signed = await sign_in(api, await user(api, "ada", admin=True))
    headers = attempt_headers(api, signed, Attempt("right", "same" if with_origin else None))
    for method, path, body in REQUESTS:
        status, answer = await call(api, method, path, headers, body)
        assert (status, answer["status"]) == (202, "pending"), (method, path, answer)
    assert await events_on(settings) == len(REQUESTS)
    status, answer = await call(
        api, "PATCH", f"/v1/channels/{EU.id}", headers, {"display_name": "Support Europe"}
    )
    assert (status, answer["display_name"]) == (200, "Support Europe")


async def test_behind_a_tls_proxy_the_https_origin_is_this_origin(
    aiohttp_client: AiohttpClient, settings: Settings, channels: list[Channel], redis: Redis
) -> None:
    """The proxy says X-Forwarded-Proto: https, the cookie is Secure, and the browser's
    Origin is https://...: that is this server, not a cross-site request; the plain
    http:// origin is then another one."""
    api = await start(aiohttp_client, settings, channels, redis)
    signed = await sign_in(api, await user(api, "ada", admin=True), HTTPS)
    assert signed.cookie["secure"]
    method, path, body = REQUESTS[0]
    headers = {**HTTPS, **attempt_headers(api, signed, Attempt("right", "https-same"))}
    status, answer = await call(api, method, path, headers, body)
    assert (status, answer["status"]) == (202, "pending"), answer
    headers = {**HTTPS, **attempt_headers(api, signed, Attempt("right", "same"))}
    status, answer = await call(api, method, path, headers, body)
    assert (status, answer["error"]["code"]) == (403, "csrf_failed"), answer
    assert await events_on(settings) == 1


async def test_a_bearer_token_needs_no_csrf_token(
    aiohttp_client: AiohttpClient, settings: Settings, channels: list[Channel], redis: Redis
) -> None:
    """A bearer token is not ambient (no browser sends it by itself): no CSRF token and
    whatever Origin, even with a session cookie along (the bearer token is who calls)."""
    api = await start(aiohttp_client, settings, channels, redis)
    token = await user(api, "cora")
    signed = await sign_in(api, await user(api, "ada", admin=True))
    for headers in (
        bearer(token),
        {**bearer(token), "Origin": "https://evil.example"},
        {**bearer(token), **signed.headers()},
    ):
        status, answer = await call(api, "POST", f"{CONVERSATION}/tags", headers, {"tag": "vip"})
        assert status == 202, answer
    assert await events_on(settings) == 3


# The end of a session


async def test_signing_out_ends_the_session_on_the_server(
    aiohttp_client: AiohttpClient, settings: Settings, channels: list[Channel], redis: Redis
) -> None:
    api = await start(aiohttp_client, settings, channels, redis)
    signed = await sign_in(api, await user(api, "ada", admin=True))
    other = await sign_in(api, await user(api, "cora"))  # another session, untouched
    digest = hashlib.sha256(signed.session_id.encode()).hexdigest()

    # Signing out changes something: it needs the CSRF token too.
    status, body = await call(api, "DELETE", SESSION, signed.headers())
    assert (status, body["error"]["code"]) == (403, "csrf_failed")
    assert await redis.exists(keys.session(digest))

    response = await api.delete(SESSION, headers=signed.headers(csrf=True, origin=origin_of(api)))
    assert response.status == 204, await response.text()
    expired = SimpleCookie(response.headers["Set-Cookie"])[COOKIE]
    assert expired.value == "" and expired["max-age"] == "0" and expired["path"] == "/"
    api.session.cookie_jar.clear()
    assert not await redis.exists(keys.session(digest))

    # The same cookie, as a stolen copy would be sent: dead everywhere.
    dead = signed.headers(csrf=True, origin=origin_of(api))
    for method, path, body in [
        ("GET", SESSION, None),
        ("GET", "/v1/me", None),
        ("GET", "/v1/channels", None),
        ("GET", f"/v1/stream?channels={EU.id}", None),
        ("GET", CONVERSATION, None),
        *REQUESTS,
        ("DELETE", SESSION, None),
    ]:
        status, answer = await call(api, method, path, dead, body)
        assert (status, answer["error"]["code"]) == (401, "unauthorized"), (method, path)
    assert await events_on(settings) == 0
    assert (await call(api, "GET", SESSION, other.headers()))[0] == 200


async def test_a_deleted_users_session_is_dead(
    aiohttp_client: AiohttpClient, settings: Settings, channels: list[Channel], redis: Redis
) -> None:
    api = await start(aiohttp_client, settings, channels, redis)
    signed = await sign_in(api, await user(api, "cora"))
    assert (await call(api, "GET", SESSION, signed.headers()))[0] == 200
    assert (await call(api, "DELETE", "/v1/users/cora", ADMIN))[0] == 204
    for method, path in [("GET", SESSION), ("GET", "/v1/me"), ("GET", CONVERSATION)]:
        status, body = await call(api, method, path, signed.headers())
        assert (status, body["error"]["code"]) == (401, "unauthorized"), path


async def test_rotating_a_token_ends_the_sessions_opened_with_it(
    aiohttp_client: AiohttpClient, settings: Settings, channels: list[Channel], redis: Redis
) -> None:
    """A leaked token is rotated: whoever signed in with it is out too."""
    api = await start(aiohttp_client, settings, channels, redis)
    signed = await sign_in(api, await user(api, "cora"))
    assert (await call(api, "GET", "/v1/me", signed.headers()))[0] == 200
    status, body = await call(api, "POST", "/v1/users/cora/token", ADMIN)
    assert status == 201, body
    status, body = await call(api, "GET", "/v1/me", signed.headers())
    assert (status, body["error"]["code"]) == (401, "unauthorized")
    fresh = (await call(api, "POST", "/v1/users/cora/token", ADMIN))[1]["token"]
    again = await sign_in(api, str(fresh))
    assert (await call(api, "GET", "/v1/me", again.headers()))[0] == 200


async def test_a_sign_in_from_another_site_is_refused(
    aiohttp_client: AiohttpClient, settings: Settings, channels: list[Channel], redis: Redis
) -> None:
    """No signing a browser into someone's account from another page (login CSRF)."""
    api = await start(aiohttp_client, settings, channels, redis)
    token = await user(api, "cora")
    response = await api.post(
        SESSION, json={"token": token}, headers={"Origin": "https://evil.example"}
    )
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "csrf_failed"
    assert "parley_session" not in response.cookies


async def test_a_deleted_users_session_does_not_sign_in_whoever_takes_the_id_again(
    aiohttp_client: AiohttpClient, settings: Settings, channels: list[Channel], redis: Redis
) -> None:
    """The id taken again is another person (their grants do not come back either: see
    tests/test_api_access.py): the old session must not be theirs."""
    api = await start(aiohttp_client, settings, channels, redis)
    signed = await sign_in(api, await user(api, "cora"))
    assert (await call(api, "DELETE", "/v1/users/cora", ADMIN))[0] == 204
    status, body = await call(api, "POST", "/v1/users", ADMIN, {"id": "cora", "name": "Cora"})
    assert status == 201, body
    for method, path in [("GET", SESSION), ("GET", "/v1/me")]:
        status, body = await call(api, method, path, signed.headers())
        assert status == 401, (path, body)
        assert body["error"]["code"] == "unauthorized", body


async def test_a_bootstrap_admin_session_lives_while_its_token_is_the_configured_one(
    aiohttp_client: AiohttpClient, settings: Settings, channels: list[Channel], redis: Redis
) -> None:
    """Receivers sharing the Redis: the session opened with PARLEY_ADMIN_TOKEN is the
    admin's where that token is configured, and nobody's where another one (or none)
    is."""
    api = await start(aiohttp_client, settings, channels, redis)
    signed = await sign_in(api, ADMIN_TOKEN)
    assert signed.body["user"] == {"id": "admin", "admin": True, "teams": []}
    assert (await call(api, "GET", "/v1/me", signed.headers()))[1]["id"] == "admin"
    for admin_token in ("rotated-admin-token-0123456789", None):
        rotated = msgspec.structs.replace(settings, admin_token=admin_token)
        other = await aiohttp_client(create_receiver(rotated, channels))
        for path in (SESSION, "/v1/me", "/v1/users"):
            status, body = await call(other, "GET", path, signed.headers())
            assert (status, body["error"]["code"]) == (401, "unauthorized"), (admin_token, path)
    assert (await call(api, "GET", "/v1/users", signed.headers()))[0] == 200
