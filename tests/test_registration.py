"""Registering a new number: the pure lifecycle (pending -> code_requested -> verified ->
active, codes valid 10 minutes), then the same over HTTP against the Graph stand-in with
an injected clock, up to the receiver taking the new channel's webhooks."""

import json
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from pytest_aiohttp import AiohttpServer
from redis.asyncio import Redis

from devstack.graph_standin import Fault, StandIn, create_app
from devstack.samples import text_message
from devstack.signing import sign
from ingest.app import load_registered
from ingest.routing import ChannelRegistry
from parley.channels import Channel
from parley.events import CustomerMessage, decode_event
from parley.registration import (
    CODE_TTL_S,
    LifecycleError,
    Registration,
    Status,
    check_code_fresh,
    code_requested,
    registered,
    verified,
)
from parley.settings import Settings
from store import registrations
from tests.api_tools import ADMIN, AiohttpClient, call, start_api, user_with_role
from tests.clock import Clock
from tests.conftest import EU, US
from tests.kafka_tools import read_all

T0 = 1_790_000_000.0
NEW = "106540352242999"
NEW_TOKEN = "nl-graph-token-0123456789"
NEW_SECRET = "nl-app-secret-0123456789"
NEW_VERIFY = "nl-verify-token-0123456789"
NEW_BODY = {
    "id": NEW,
    "display_name": "Support NL",
    "access_token": NEW_TOKEN,
    "app_secret": NEW_SECRET,
    "verify_token": NEW_VERIFY,
}
SECRETS = (
    NEW_TOKEN,
    NEW_SECRET,
    NEW_VERIFY,
    EU.access_token,
    EU.app_secret,
    US.access_token,
    US.app_secret,
)
PIN = "246810"


def pending(at: float = T0) -> Registration:
    return Registration(
        channel=NEW,
        display_name="Support NL",
        status=Status.PENDING,
        created_at=at,
        access_token=NEW_TOKEN,
        app_secret=NEW_SECRET,
        verify_token=NEW_VERIFY,
    )


def refused(step: Callable[[], object]) -> str:
    """The LifecycleError code `step` raises."""
    with pytest.raises(LifecycleError) as caught:
        step()
    return caught.value.code


# 1. The pure lifecycle
def test_the_happy_path_records_each_step_and_keeps_the_secrets() -> None:
    asked = code_requested(pending(), "VOICE", T0 + 5)
    assert (asked.status, asked.code_method, asked.code_requested_at) == (
        Status.CODE_REQUESTED,
        "VOICE",
        T0 + 5,
    )
    ok = verified(asked, T0 + 60)
    assert (ok.status, ok.verified_at) == (Status.VERIFIED, T0 + 60)
    active = registered(ok, T0 + 90)
    assert (active.status, active.registered_at) == (Status.ACTIVE, T0 + 90)
    assert (active.access_token, active.app_secret, active.verify_token) == (
        NEW_TOKEN,
        NEW_SECRET,
        NEW_VERIFY,
    )
    assert (active.created_at, active.code_method, active.verified_at) == (T0, "VOICE", T0 + 60)


def _at(status: Status) -> Registration:
    record = pending()
    if status is Status.PENDING:
        return record
    record = code_requested(record, "SMS", T0)
    if status is Status.CODE_REQUESTED:
        return record
    record = verified(record, T0)
    if status is Status.VERIFIED:
        return record
    return registered(record, T0)


@pytest.mark.parametrize(
    ("status", "allowed"),
    [
        (Status.PENDING, {"request"}),
        (Status.CODE_REQUESTED, {"request", "verify"}),
        (Status.VERIFIED, {"register"}),
        (Status.ACTIVE, set()),
    ],
)
def test_every_transition_is_allowed_or_refused_as_wrong_state(
    status: Status, allowed: set[str]
) -> None:
    record = _at(status)
    steps: dict[str, Callable[[], Registration]] = {
        "request": lambda: code_requested(record, "SMS", T0 + 1),
        "verify": lambda: verified(record, T0 + 1),
        "register": lambda: registered(record, T0 + 1),
    }
    expected = {
        "request": Status.CODE_REQUESTED,
        "verify": Status.VERIFIED,
        "register": Status.ACTIVE,
    }
    for name, step in steps.items():
        if name in allowed:
            assert step().status is expected[name]
        else:
            assert refused(step) == "wrong_state", name


def test_a_code_is_good_for_exactly_ten_minutes() -> None:
    assert CODE_TTL_S == 600
    asked = code_requested(pending(), "SMS", T0)
    check_code_fresh(asked, T0 + CODE_TTL_S)
    assert verified(asked, T0 + CODE_TTL_S).status is Status.VERIFIED
    assert refused(lambda: verified(asked, T0 + CODE_TTL_S + 1)) == "code_expired"
    assert refused(lambda: verified(asked, T0 + CODE_TTL_S + 0.001)) == "code_expired"


def test_asking_again_resets_the_clock_and_the_method() -> None:
    first = code_requested(pending(), "SMS", T0)
    again = code_requested(first, "VOICE", T0 + 500)
    assert (again.code_method, again.code_requested_at) == ("VOICE", T0 + 500)
    # 1000 s after the first code, 500 s after the second: fresh.
    assert verified(again, T0 + 1000).status is Status.VERIFIED
    assert refused(lambda: verified(again, T0 + 500 + CODE_TTL_S + 1)) == "code_expired"
    # Expired, a new code can still be asked for.
    late = code_requested(first, "SMS", T0 + 5000)
    assert verified(late, T0 + 5000 + CODE_TTL_S).status is Status.VERIFIED


def test_a_code_is_needed_before_verifying() -> None:
    assert refused(lambda: check_code_fresh(pending(), T0)) == "wrong_state"
    # A record that says code_requested without a time (hand-edited) is not fresh either.
    odd = msgspec.structs.replace(pending(), status=Status.CODE_REQUESTED)
    assert refused(lambda: verified(odd, T0)) == "wrong_state"


def test_the_repr_hides_the_secrets() -> None:
    shown = repr(code_requested(pending(), "SMS", T0))
    assert shown == f"Registration(channel='{NEW}', status='code_requested')"
    for secret in (NEW_TOKEN, NEW_SECRET, NEW_VERIFY):
        assert secret not in shown


# A reference model: the status and when the last code was asked for.
STEPS = st.sampled_from(["request", "verify", "register"])


def _reference(
    status: str, asked_at: float | None, step: str, now: float
) -> tuple[str, float | None, str | None]:
    """(status, asked_at, error code or None) after `step` at `now`."""
    if step == "request":
        if status in ("pending", "code_requested"):
            return "code_requested", now, None
        return status, asked_at, "wrong_state"
    if step == "verify":
        if status != "code_requested":
            return status, asked_at, "wrong_state"
        assert asked_at is not None
        if now - asked_at > 600:
            return status, asked_at, "code_expired"
        return "verified", asked_at, None
    if status != "verified":
        return status, asked_at, "wrong_state"
    return "active", asked_at, None


@hyp_settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(STEPS, st.integers(0, 1200)), max_size=12))
def test_any_sequence_of_steps_matches_the_reference(steps: list[tuple[str, int]]) -> None:
    record, now = pending(), T0
    status: str = "pending"
    asked_at: float | None = None
    rules: dict[str, Callable[[Registration, float], Registration]] = {
        "request": lambda r, t: code_requested(r, "SMS", t),
        "verify": verified,
        "register": registered,
    }
    for step, wait in steps:
        now += wait
        status, asked_at, error = _reference(status, asked_at, step, now)
        if error is None:
            record = rules[step](record, now)
        else:
            assert refused(lambda: rules[step](record, now)) == error  # noqa: B023
        assert (record.status.value, record.code_requested_at) == (status, asked_at)


class Lifecycle(RuleBasedStateMachine):
    """Steps at any time, in any order: the record follows the reference."""

    def __init__(self) -> None:
        super().__init__()
        self.record = pending()
        self.now = T0
        self.status = "pending"
        self.asked_at: float | None = None

    @rule(seconds=st.one_of(st.integers(0, 700), st.just(CODE_TTL_S), st.just(CODE_TTL_S + 1)))
    def wait(self, seconds: int) -> None:
        self.now += seconds

    def _do(self, step: str, apply: Callable[[], Registration]) -> None:
        self.status, self.asked_at, error = _reference(self.status, self.asked_at, step, self.now)
        if error is None:
            self.record = apply()
        else:
            assert refused(apply) == error

    @rule(method=st.sampled_from(["SMS", "VOICE"]))
    def request(self, method: str) -> None:
        self._do("request", lambda: code_requested(self.record, method, self.now))

    @rule()
    def verify(self) -> None:
        self._do("verify", lambda: verified(self.record, self.now))

    @precondition(lambda self: self.status == "code_requested")
    @rule()
    def verify_right_at_the_limit(self) -> None:
        assert self.asked_at is not None
        self.now = max(self.now, self.asked_at + CODE_TTL_S)
        self._do("verify", lambda: verified(self.record, self.now))

    @rule()
    def register(self) -> None:
        self._do("register", lambda: registered(self.record, self.now))

    @invariant()
    def matches(self) -> None:
        assert self.record.status.value == self.status
        assert self.record.code_requested_at == self.asked_at
        assert self.record.app_secret == NEW_SECRET and self.record.created_at == T0


TestLifecycle = Lifecycle.TestCase
TestLifecycle.settings = hyp_settings(max_examples=150, stateful_step_count=20, deadline=None)


async def test_the_record_is_kept_in_redis(redis: Redis) -> None:
    assert await registrations.load(redis, NEW) is None
    assert await registrations.create(redis, pending())
    assert not await registrations.create(redis, pending(T0 + 1))  # the first one stays
    assert await registrations.load(redis, NEW) == pending()
    asked = code_requested(pending(), "SMS", T0 + 2)
    await registrations.save(redis, asked)
    assert await registrations.load(redis, NEW) == asked


# 2. Over HTTP, against the Graph stand-in
class Recorded(msgspec.Struct, frozen=True):
    number: str
    edge: str
    authorization: str
    body: Any


@pytest.fixture
def standin() -> StandIn:
    # Knows the file's numbers only: NEW adopts the first token it is called with.
    return StandIn(
        {EU.id: EU.access_token, US.id: US.access_token},
        app_secrets={EU.id: EU.app_secret, US.id: US.app_secret},
        clock=lambda: T0,
    )


@pytest.fixture
async def graph_calls(
    aiohttp_server: AiohttpServer, standin: StandIn
) -> tuple[list[Recorded], str]:
    """Every call the stand-in got, and its base URL."""
    calls: list[Recorded] = []

    @web.middleware
    async def record(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        raw = await request.read()
        number, _, edge = request.path.removeprefix("/v21.0/").partition("/")
        body = json.loads(raw) if raw else None
        calls.append(Recorded(number, edge, request.headers.get("Authorization", ""), body))
        return await handler(request)

    app = create_app(standin)
    app.middlewares.append(record)
    server = await aiohttp_server(app)
    return calls, str(server.make_url("/v21.0"))


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
async def api(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    channels: list[Channel],
    graph_calls: tuple[list[Recorded], str],
    clock: Clock,
    redis: Redis,  # an empty database
) -> TestClient:  # type: ignore[type-arg]
    settings = msgspec.structs.replace(settings, graph_url=graph_calls[1])
    return await start_api(aiohttp_client, settings, channels, clock=clock)


async def ask(
    api: TestClient,  # type: ignore[type-arg]
    method: str,
    path: str,
    headers: dict[str, str] = ADMIN,
    body: Any = None,
) -> tuple[int, Any]:
    """`call`, checking that no secret is ever in an answer."""
    status, data = await call(api, method, path, headers, body)
    shown = json.dumps(data)
    for secret in SECRETS:
        assert secret not in shown, (path, data)
    return status, data


REG = f"/v1/channels/{NEW}/registration"


async def create_new(api: TestClient) -> None:  # type: ignore[type-arg]
    status, body = await ask(api, "POST", "/v1/channels", body=NEW_BODY)
    assert status == 201, body


async def request_code(api: TestClient, method: str = "SMS") -> dict[str, Any]:  # type: ignore[type-arg]
    status, body = await ask(api, "POST", f"{REG}/request_code", body={"method": method})
    assert status == 200, body
    return body  # type: ignore[no-any-return]


def error_of(body: Any) -> tuple[str, str | None]:
    return body["error"]["code"], body["error"].get("field")


async def post_webhook(
    api: TestClient,  # type: ignore[type-arg]
    number: str,
    secret: str,
    wamid: str,
) -> tuple[int, Any]:
    body = json.dumps(text_message(number, "31655555555", wamid, "Hallo", int(T0))).encode()
    response = await api.post(
        "/webhooks/whatsapp", data=body, headers={"X-Hub-Signature-256": sign(body, secret)}
    )
    return response.status, await response.json()


async def test_a_number_goes_from_pending_to_active_and_takes_webhooks(
    api: TestClient,  # type: ignore[type-arg]
    standin: StandIn,
    graph_calls: tuple[list[Recorded], str],
    clock: Clock,
    settings: Settings,
    redis: Redis,
) -> None:
    calls, _ = graph_calls
    status, body = await ask(api, "POST", "/v1/channels", body=NEW_BODY)
    assert (status, body) == (
        201,
        {
            "channel": NEW,
            "display_name": "Support NL",
            "status": "pending",
            "code_method": None,
            "code_requested_at": None,
            "verified_at": None,
            "registered_at": None,
        },
    )
    assert await ask(api, "GET", REG) == (200, body)
    # Not a channel yet: absent from the selector, its webhooks not taken.
    status, listed = await ask(api, "GET", "/v1/channels")
    assert status == 200 and NEW not in [c["id"] for c in listed["channels"]]
    assert (await post_webhook(api, NEW, NEW_SECRET, "wamid.early"))[0] == 401
    assert calls == []

    clock.now = T0 + 30
    status, body = await ask(
        api, "POST", f"{REG}/request_code", body={"method": "VOICE", "language": "nl"}
    )
    assert status == 200, body
    assert (body["status"], body["code_method"], body["code_requested_at"]) == (
        "code_requested",
        "VOICE",
        T0 + 30,
    )
    assert calls == [
        Recorded(
            NEW, "request_code", f"Bearer {NEW_TOKEN}", {"code_method": "VOICE", "language": "nl"}
        )
    ]
    code = standin.code_for(NEW)
    assert code is not None and len(code) == 6

    clock.now = T0 + 30 + CODE_TTL_S  # the last second the code is good
    status, body = await ask(api, "POST", f"{REG}/verify_code", body={"code": code})
    assert status == 200, body
    assert (body["status"], body["verified_at"]) == ("verified", T0 + 30 + CODE_TTL_S)
    assert calls[-1] == Recorded(NEW, "verify_code", f"Bearer {NEW_TOKEN}", {"code": code})
    assert standin.registered == set()

    clock.now = T0 + 700
    status, body = await ask(api, "POST", f"{REG}/register", body={"pin": PIN})
    assert status == 200, body
    assert (body["status"], body["registered_at"]) == ("active", T0 + 700)
    assert calls[-2] == Recorded(
        NEW, "register", f"Bearer {NEW_TOKEN}", {"messaging_product": "whatsapp", "pin": PIN}
    )
    # Then its standing is read: Meta's name and quality webhooks name the number by
    # its display phone number, which this read teaches Parley.
    assert calls[-1] == Recorded(NEW, "", f"Bearer {NEW_TOKEN}", None)
    assert standin.registered == {NEW}
    assert len(calls) == 4
    assert (await ask(api, "GET", REG))[1] == body

    status, listed = await ask(api, "GET", "/v1/channels")
    assert status == 200
    [new] = [c for c in listed["channels"] if c["id"] == NEW]
    assert (new["display_name"], new["role"]) == ("Support NL", "admin")
    assert (await ask(api, "GET", f"/v1/channels/{NEW}"))[1]["display_name"] == "Support NL"

    # The receiver takes its webhooks now, signed with its own app secret.
    assert await post_webhook(api, NEW, NEW_SECRET, "wamid.nl1") == (
        200,
        {"accepted": 1, "dead_lettered": 0},
    )
    # ... but not another app's signature on its events.
    assert await post_webhook(api, NEW, EU.app_secret, "wamid.nl2") == (
        200,
        {"accepted": 0, "dead_lettered": 1},
    )
    events = [
        decode_event(r.value)
        for r in await read_all(settings.kafka_bootstrap or "", settings.topic)
    ]
    [event] = events
    assert (event.id, event.channel) == ("wamid.nl1", NEW)
    assert isinstance(event.payload, CustomerMessage)
    # Meta's subscription handshake knows its verify token.
    handshake = await api.get(
        "/webhooks/whatsapp",
        params={"hub.mode": "subscribe", "hub.verify_token": NEW_VERIFY, "hub.challenge": "42"},
    )
    assert (handshake.status, await handshake.text()) == (200, "42")

    # Another receiver (or this one after a restart) learns it from Redis.
    directory = ChannelRegistry([EU, US])
    await load_registered(redis, directory)
    learned = directory.by_id[NEW]
    assert (learned.app_secret, learned.access_token, learned.settings.display_name) == (
        NEW_SECRET,
        NEW_TOKEN,
        "Support NL",
    )

    # Done: every step is out of turn now, and the number cannot be created again.
    for step, payload in [
        ("request_code", {"method": "SMS"}),
        ("verify_code", {"code": code}),
        ("register", {"pin": PIN}),
    ]:
        status, body = await ask(api, "POST", f"{REG}/{step}", body=payload)
        assert (status, error_of(body)) == (409, ("wrong_state", None)), step
    status, body = await ask(api, "POST", "/v1/channels", body=NEW_BODY)
    assert (status, error_of(body)) == (409, ("already_exists", None))
    assert len(calls) == 4  # nothing more reached Meta


@pytest.mark.parametrize("existing", [EU.id, US.id, NEW])
async def test_an_existing_number_cannot_be_created_again(
    api: TestClient,  # type: ignore[type-arg]
    existing: str,
    clock: Clock,
) -> None:
    await create_new(api)
    clock.now = T0 + 5
    status, body = await ask(
        api, "POST", "/v1/channels", body={**NEW_BODY, "id": existing, "display_name": "Other"}
    )
    assert (status, error_of(body)) == (409, ("already_exists", None))
    # The first registration is untouched.
    status, body = await ask(api, "GET", REG)
    assert (body["display_name"], body["status"]) == ("Support NL", "pending")
    if existing != NEW:
        status, _ = await ask(api, "GET", f"/v1/channels/{existing}/registration")
        assert status == 404


async def test_a_wrong_code_is_a_422_and_the_right_one_still_works(
    api: TestClient,  # type: ignore[type-arg]
    standin: StandIn,
    graph_calls: tuple[list[Recorded], str],
) -> None:
    await create_new(api)
    await request_code(api)
    code = standin.code_for(NEW) or ""
    wrong = "000000" if code != "000000" else "111111"
    status, body = await ask(api, "POST", f"{REG}/verify_code", body={"code": wrong})
    assert (status, error_of(body)) == (422, ("wrong_code", "code"))
    assert graph_calls[0][-1].body == {"code": wrong}
    assert (await ask(api, "GET", REG))[1]["status"] == "code_requested"
    status, body = await ask(api, "POST", f"{REG}/verify_code", body={"code": code})
    assert (status, body["status"]) == (200, "verified")


async def test_an_expired_code_is_refused_before_meta_is_asked_and_a_new_one_works(
    api: TestClient,  # type: ignore[type-arg]
    standin: StandIn,
    graph_calls: tuple[list[Recorded], str],
    clock: Clock,
) -> None:
    calls, _ = graph_calls
    await create_new(api)
    await request_code(api)
    old = standin.code_for(NEW) or ""
    clock.now = T0 + CODE_TTL_S + 1
    status, body = await ask(api, "POST", f"{REG}/verify_code", body={"code": old})
    assert (status, error_of(body)) == (409, ("code_expired", None))
    assert [c.edge for c in calls] == ["request_code"]  # nothing went to verify_code
    assert (await ask(api, "GET", REG))[1]["status"] == "code_requested"

    body = await request_code(api, "VOICE")
    assert (body["status"], body["code_requested_at"], body["code_method"]) == (
        "code_requested",
        T0 + CODE_TTL_S + 1,
        "VOICE",
    )
    clock.now = T0 + 2 * CODE_TTL_S + 1  # 600 s after the second code
    status, body = await ask(
        api, "POST", f"{REG}/verify_code", body={"code": standin.code_for(NEW)}
    )
    assert (status, body["status"]) == (200, "verified")
    assert [c.edge for c in calls] == ["request_code", "request_code", "verify_code"]


async def test_steps_out_of_turn_are_409_wrong_state_and_reach_no_one(
    api: TestClient,  # type: ignore[type-arg]
    standin: StandIn,
    graph_calls: tuple[list[Recorded], str],
) -> None:
    calls, _ = graph_calls
    await create_new(api)
    for step, payload in [("verify_code", {"code": "123456"}), ("register", {"pin": PIN})]:
        status, body = await ask(api, "POST", f"{REG}/{step}", body=payload)
        assert (status, error_of(body)) == (409, ("wrong_state", None)), step
    await request_code(api)
    status, body = await ask(api, "POST", f"{REG}/register", body={"pin": PIN})
    assert (status, error_of(body)) == (409, ("wrong_state", None))
    assert [c.edge for c in calls] == ["request_code"]
    assert standin.registered == set()
    status, body = await ask(
        api, "POST", f"{REG}/verify_code", body={"code": standin.code_for(NEW)}
    )
    assert status == 200
    status, body = await ask(api, "POST", f"{REG}/request_code", body={"method": "SMS"})
    assert (status, error_of(body)) == (409, ("wrong_state", None))
    assert (await ask(api, "GET", REG))[1]["status"] == "verified"
    assert [c.edge for c in calls] == ["request_code", "verify_code"]


async def test_meta_refusing_or_failing_changes_nothing(
    api: TestClient,  # type: ignore[type-arg]
    standin: StandIn,
) -> None:
    await create_new(api)
    standin.fail_next(NEW, Fault(status=500, code=131000), Fault(status=400, code=100))
    status, body = await ask(api, "POST", f"{REG}/request_code", body={"method": "SMS"})
    assert (status, error_of(body)) == (502, ("graph_unavailable", None))
    status, body = await ask(api, "POST", f"{REG}/request_code", body={"method": "SMS"})
    assert (status, error_of(body)) == (422, ("graph_refused", None))
    assert (await ask(api, "GET", REG))[1]["status"] == "pending"
    await request_code(api)
    status, body = await ask(
        api, "POST", f"{REG}/verify_code", body={"code": standin.code_for(NEW)}
    )
    assert status == 200
    standin.fail_next(NEW, Fault(status=503, code=None))
    status, body = await ask(api, "POST", f"{REG}/register", body={"pin": PIN})
    assert (status, error_of(body)) == (502, ("graph_unavailable", None))
    assert (await ask(api, "GET", REG))[1]["status"] == "verified"
    status, listed = await ask(api, "GET", "/v1/channels")
    assert NEW not in [c["id"] for c in listed["channels"]]


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/v1/channels", {**NEW_BODY, "id": "not-a-number"}, "id"),
        ("/v1/channels", {**NEW_BODY, "access_token": "has space"}, "access_token"),
        (f"{REG}/request_code", {"method": "EMAIL"}, "method"),
        (f"{REG}/request_code", {"method": "SMS", "language": "Dutch"}, "language"),
        (f"{REG}/verify_code", {"code": "12345"}, "code"),
        (f"{REG}/register", {"pin": "12345a"}, "pin"),
    ],
)
async def test_malformed_bodies_name_the_field(
    api: TestClient,  # type: ignore[type-arg]
    path: str,
    payload: dict[str, Any],
    field: str,
) -> None:
    await create_new(api)
    status, body = await ask(api, "POST", path, body=payload)
    assert (status, body["error"].get("field")) == (422, field), body


async def test_only_admins_register_numbers(
    api: TestClient,  # type: ignore[type-arg]
    graph_calls: tuple[list[Recorded], str],
) -> None:
    await create_new(api)
    # Even a channel's supervisor is no admin.
    boss = await user_with_role(api, "boss", EU.id, "supervisor")
    ana = await user_with_role(api, "ana")
    for who in (boss, ana):
        for method, path, payload in [
            ("POST", "/v1/channels", {**NEW_BODY, "id": "106540352242998"}),
            ("GET", REG, None),
            ("POST", f"{REG}/request_code", {"method": "SMS"}),
            ("POST", f"{REG}/verify_code", {"code": "123456"}),
            ("POST", f"{REG}/register", {"pin": PIN}),
        ]:
            status, body = await ask(api, method, path, who, payload)
            assert (status, error_of(body)) == (403, ("forbidden", None)), path
    status, body = await ask(api, "POST", f"{REG}/request_code", {}, {"method": "SMS"})
    assert status == 401
    assert graph_calls[0] == []
    assert (await ask(api, "GET", REG))[1]["status"] == "pending"
    status, _ = await ask(api, "GET", "/v1/channels/106540352242998/registration")
    assert status == 404
