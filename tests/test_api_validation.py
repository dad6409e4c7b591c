"""What the /v1 API refuses, and that a refusal does nothing.

Every bad body is a 400 (not JSON) or a 422 naming the field, every bad query parameter
a 400 naming it, and a refused request puts nothing on the events topic and changes
nothing in Redis. The valid side of the same fields is checked where the line is drawn
(display names, durations)."""

import functools
import io
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from aiokafka import AIOKafkaConsumer, TopicPartition
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from parley.channels import Channel
from parley.durations import DurationError, format_period, parse_period
from parley.settings import Settings
from parley.state import Queue
from store.channels import load_channel_settings
from tests.api_tools import ADMIN, AiohttpClient, call, put_conversation, start_api, user_with_role
from tests.conftest import EU, US
from tests.kafka_tools import read_all

T0 = float(int(time.time()) - 600)
WA = "31600000001"
CONV = f"/v1/conversations/{EU.id}/{WA}"
CHANNEL = f"/v1/channels/{EU.id}"
LIST = f"{CHANNEL}/conversations"
REPORT = f"{CHANNEL}/report"


class Raw(bytes):
    """A body sent as these bytes, not encoded as JSON."""


NO_BODY: Any = object()


@dataclass(frozen=True)
class Body:
    """An endpoint that takes a body, and a body it accepts."""

    name: str
    method: str
    path: str
    valid: dict[str, Any]
    fields: tuple[str, ...]


USERS = Body("users", "POST", "/v1/users", {"id": "bob", "name": "Bob"}, ("id", "name", "admin"))
TEAMS = Body("teams", "POST", "/v1/teams", {"id": "support", "name": "Support"}, ("id", "name"))
GRANT = Body("grant", "PUT", f"{CHANNEL}/access/users/ana", {"role": "supervisor"}, ("role",))
TEAM_GRANT = Body(
    "team_grant", "PUT", f"{CHANNEL}/access/teams/sales", {"role": "viewer"}, ("role",)
)
PATCH = Body(
    "patch",
    "PATCH",
    CHANNEL,
    {"display_name": "Support Europe"},
    (
        "display_name",
        "auto_assign",
        "auto_resolve_new",
        "auto_resolve_pending",
        "waba_id",
        "all_users",
        "all_teams",
    ),
)
REPLY = Body("replies", "POST", f"{CONV}/replies", {"text": "Hello"}, ("text", "template"))
MOVE = Body("move", "POST", f"{CONV}/move", {"queue": "pending"}, ("queue",))
ASSIGNEE = Body("assignee", "PUT", f"{CONV}/assignee", {"user": "ana"}, ("user",))
TAGS = Body("tags", "POST", f"{CONV}/tags", {"tag": "vip"}, ("tag",))
NOTES = Body("notes", "POST", f"{CONV}/notes", {"text": "Called back"}, ("text",))
TOPICS = Body("topics", "POST", f"{CONV}/topics", {"topic": "billing"}, ("topic",))
BODIES = [USERS, TEAMS, GRANT, TEAM_GRANT, PATCH, REPLY, MOVE, ASSIGNEE, TAGS, NOTES, TOPICS]
ACTIONS = [REPLY, MOVE, ASSIGNEE, TAGS, NOTES, TOPICS]


@dataclass
class World:
    api: TestClient  # type: ignore[type-arg]
    redis: Redis
    settings: Settings
    consumer: AIOKafkaConsumer

    async def records(self) -> int:
        """How many records the test's events topic has ever had: its end offsets added
        up. As exact as reading them all (nothing is deleted from it during a test),
        and much faster than kafka_tools.read_all, which the tests also use."""
        partitions = [
            TopicPartition(self.settings.topic, p) for p in range(self.settings.topic_partitions)
        ]
        return sum((await self.consumer.end_offsets(partitions)).values())

    async def call(self, method: str, path: str, body: Any = NO_BODY, **params: Any) -> Any:
        """(status, JSON answer): `body` encoded as JSON (None is `null`), Raw as is."""
        if body is NO_BODY:
            return await call(self.api, method, path, ADMIN, **params)
        raw = body if isinstance(body, Raw) else json.dumps(body).encode()
        response = await self.api.request(
            method, path, headers=ADMIN, data=io.BytesIO(raw), params=params or None
        )
        data = await response.json() if response.content_type == "application/json" else None
        return response.status, data


@pytest.fixture
async def world(
    aiohttp_client: AiohttpClient, settings: Settings, channels: list[Channel], redis: Redis
) -> AsyncIterator[World]:
    """The API (no engine) with a contributor (ana) and a viewer (vic) on EU, a
    contributor on US only (uma), a team, and one conversation on EU."""
    api = await start_api(aiohttp_client, settings, channels, action_wait_s=0.05)
    await user_with_role(api, "ana", EU.id, "contributor")
    await user_with_role(api, "vic", EU.id, "viewer")
    await user_with_role(api, "uma", US.id, "contributor")
    status, team = await call(api, "POST", "/v1/teams", ADMIN, {"id": "sales", "name": "Sales"})
    assert status == 201, team
    await put_conversation(redis, EU.id, WA, Queue.NEW, T0)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    try:
        yield World(api, redis, settings, consumer)
    finally:
        await consumer.stop()


async def snapshot(redis: Redis) -> dict[Any, tuple[Any, bool]]:
    """Every key's serialized value and whether it expires."""
    return {
        key: (await redis.dump(key), await redis.pttl(key) > 0)
        for key in sorted(await redis.keys("*"))
    }


async def refused_without_effect(
    world: World, request: Callable[[], Awaitable[Any]]
) -> tuple[int, dict[str, Any]]:
    """Make a request that must be refused: nothing produced, nothing written."""
    redis_before, records_before = await snapshot(world.redis), await world.records()
    status, answer = await request()
    assert 400 <= status < 500, (status, answer)
    assert set(answer) == {"error"}, answer
    assert await world.records() == records_before
    assert await snapshot(world.redis) == redis_before
    return status, answer["error"]


def param(body: Body, sent: Any, status: int, field: str | None, name: str) -> Any:
    return pytest.param(body, sent, status, field, id=f"{body.name}-{name}")


def long(n: int) -> str:
    return "x" * n


REFUSED = [
    # A required field missing
    *[param(b, {}, 422, b.fields[0], "missing") for b in [USERS, TEAMS, GRANT, MOVE]],
    *[param(b, {}, 422, b.fields[0], "missing") for b in [ASSIGNEE, TAGS, NOTES, TOPICS]],
    param(USERS, {"id": "bob"}, 422, "name", "missing-name"),
    param(TEAMS, {"name": "Support"}, 422, "id", "missing-id"),
    # A field of the wrong type, for every body
    param(USERS, {"id": 5, "name": "Bob"}, 422, "id", "int-id"),
    param(USERS, {"id": "bob", "name": None}, 422, "name", "null-name"),
    param(USERS, {"id": "bob", "name": "Bob", "admin": "yes"}, 422, "admin", "str-admin"),
    param(TEAMS, {"id": "support", "name": ["Support"]}, 422, "name", "list-name"),
    param(TEAMS, {"id": True, "name": "Support"}, 422, "id", "bool-id"),
    param(GRANT, {"role": 1}, 422, "role", "int-role"),
    param(TEAM_GRANT, {"role": None}, 422, "role", "null-role"),
    param(PATCH, {"display_name": 5}, 422, "display_name", "int-display_name"),
    param(PATCH, {"display_name": None}, 422, "display_name", "null-display_name"),
    param(PATCH, {"auto_assign": "yes"}, 422, "auto_assign", "str-auto_assign"),
    param(PATCH, {"auto_resolve_new": 30}, 422, "auto_resolve_new", "int-period"),
    param(PATCH, {"auto_resolve_pending": None}, 422, "auto_resolve_pending", "null-period"),
    param(PATCH, {"all_users": True}, 422, "all_users", "bool-switch"),
    param(PATCH, {"all_teams": "admin"}, 422, "all_teams", "admin-switch"),
    param(PATCH, {"waba_id": 102290129340398}, 422, "waba_id", "int-waba_id"),
    param(REPLY, {"text": 5}, 422, "text", "int-text"),
    param(REPLY, {"template": {"name": "x"}}, 422, "template", "object-template"),
    param(MOVE, {"queue": None}, 422, "queue", "null-queue"),
    param(ASSIGNEE, {"user": 7}, 422, "user", "int-user"),
    param(TAGS, {"tag": ["vip"]}, 422, "tag", "list-tag"),
    param(NOTES, {"text": False}, 422, "text", "bool-text"),
    param(TOPICS, {"topic": 1.5}, 422, "topic", "float-topic"),
    # Too long, too short, not an id
    param(USERS, {"id": "bad id!", "name": "Bob"}, 422, "id", "id-pattern"),
    param(USERS, {"id": "b" * 65, "name": "Bob"}, 422, "id", "id-too-long"),
    param(USERS, {"id": "bob", "name": ""}, 422, "name", "empty-name"),
    param(TEAMS, {"id": "t", "name": long(256)}, 422, "name", "name-too-long"),
    param(NOTES, {"text": long(4097)}, 422, "text", "note-too-long"),
    param(TAGS, {"tag": long(101)}, 422, "tag", "tag-too-long"),
    # An unknown extra field, for every body
    *[param(b, {**b.valid, "colour": "red"}, 422, "colour", "extra") for b in BODIES],
    param(PATCH, {"displayName": "EU"}, 422, "displayName", "typo"),
    # Display names: 1 to 255 characters after trimming
    param(PATCH, {"display_name": "   "}, 422, "display_name", "blank-name"),
    param(PATCH, {"display_name": ""}, 422, "display_name", "empty-name"),
    param(PATCH, {"display_name": " \t\u3000\n"}, 422, "display_name", "unicode-blank"),
    param(PATCH, {"display_name": long(256)}, 422, "display_name", "256"),
    param(PATCH, {"display_name": "客" * 256}, 422, "display_name", "256-cjk"),
    # Nothing is written when one field of several is wrong
    param(
        PATCH,
        {"display_name": "New", "auto_assign": False, "auto_resolve_new": "1w"},
        422,
        "auto_resolve_new",
        "one-bad-of-three",
    ),
    param(PATCH, {"display_name": "New", "all_users": "owner"}, 422, "all_users", "bad-switch"),
    # Business account ids: 1 to 32 ASCII digits
    *[
        param(PATCH, {"waba_id": text}, 422, "waba_id", f"waba_id-{name}")
        for name, text in [
            ("letters", "12ab"),
            ("empty", ""),
            ("33", "1" * 33),
            ("newline", "102290129340398\n"),
            ("spaces", " 102290129340398"),
            ("arabic-digits", "١٢٣"),
        ]
    ],
    param(PATCH, {"display_name": "New", "waba_id": "12ab"}, 422, "waba_id", "bad-waba_id"),
    # Queues an agent cannot move to
    *[param(MOVE, {"queue": q}, 422, "queue", f"queue-{q}") for q in ["open", "new", "bogus"]],
    param(MOVE, {"queue": "Pending"}, 422, "queue", "queue-case"),
    # Roles a grant cannot give
    *[param(GRANT, {"role": r}, 422, "role", f"role-{r}") for r in ["admin", "owner", ""]],
    *[param(TEAM_GRANT, {"role": r}, 422, "role", f"role-{r}") for r in ["admin", "owner"]],
    # Durations that do not parse
    *[
        param(PATCH, {name: text}, 422, name, f"{name}-{text or 'empty'}")
        for name in ["auto_resolve_new", "auto_resolve_pending"]
        for text in ["1w", "0d", "-5m", "", "30", "1.5h", "15 m", long(17)]
    ],
    # A reply needs text or a template
    param(REPLY, {}, 422, "text", "neither"),
    param(REPLY, {"text": None, "template": None}, 422, "text", "both-null"),
    param(REPLY, {"text": "   "}, 422, "text", "blank-text"),
    param(REPLY, {"template": " \n "}, 422, "text", "blank-template"),
    param(REPLY, {"text": ""}, 422, "text", "empty-text"),
    # Blank annotations
    param(TAGS, {"tag": "   "}, 422, "tag", "blank"),
    param(TAGS, {"tag": ""}, 422, "tag", "empty"),
    param(TOPICS, {"topic": "\t"}, 422, "topic", "blank"),
    param(NOTES, {"text": "  \n "}, 422, "text", "blank"),
    # An assignee must exist and be able to reply on the channel
    param(ASSIGNEE, {"user": "ghost"}, 422, "user", "unknown-user"),
    param(ASSIGNEE, {"user": "vic"}, 422, "user", "viewer"),
    param(ASSIGNEE, {"user": "uma"}, 422, "user", "other-channel"),
    param(ASSIGNEE, {"user": "admin"}, 422, "user", "bootstrap-admin"),
    param(ASSIGNEE, {"user": "not an id"}, 422, "user", "bad-id"),
    # Not JSON at all: 400, for every body
    *[param(b, Raw(b'{"tag": "vip"'), 400, None, "truncated") for b in BODIES],
    param(USERS, Raw(b""), 400, None, "empty"),
    param(REPLY, Raw(b"text=hello"), 400, None, "form"),
    param(TAGS, Raw(b'{"tag": "vip"} {}'), 400, None, "trailing"),
    param(NOTES, Raw(b'{"text": "\xff"}'), 400, None, "not-utf8"),
    param(MOVE, Raw(b"{'queue': 'pending'}"), 400, None, "single-quotes"),
    param(NOTES, Raw(b'{"colour": 1, "text": "\xff"}'), 400, None, "unknown-then-not-utf8"),
    param(TAGS, Raw(b'{"tag": 5, "x": '), 400, None, "wrong-type-then-truncated"),
    param(USERS, Raw(b'{"id": "bob", "name": "Bob", "admin": tru'), 400, None, "bad-literal"),
    # JSON, but not an object: 422 naming the body
    *[
        param(b, value, 422, "body", f"not-object-{kind}")
        for b in [USERS, PATCH, REPLY, ASSIGNEE]
        for kind, value in [("list", []), ("str", "vip"), ("int", 5), ("null", None)]
    ],
]


@pytest.mark.parametrize(("body", "sent", "status", "field"), REFUSED)
async def test_a_bad_body_is_refused_naming_the_field_and_nothing_happens(
    world: World, body: Body, sent: Any, status: int, field: str | None
) -> None:
    got, error = await refused_without_effect(
        world, lambda: world.call(body.method, body.path, sent)
    )
    assert got == status, error
    if status == 400:
        assert error == {"code": "malformed_json", "message": "the body is not valid JSON"}
    else:
        assert (error["code"], error.get("field")) == ("invalid_field", field), error
        assert error["message"]


async def test_the_refusal_check_sees_what_a_valid_request_does(world: World) -> None:
    """The control for the table above: the same requests with a valid body do produce
    (actions) or write (the rest), so `refused_without_effect` would catch a leak."""
    before = await snapshot(world.redis)
    for body in ACTIONS:
        status, answer = await world.call(body.method, body.path, body.valid)
        assert status == 202, (body.name, answer)  # no engine: accepted, not decided
    records = await read_all(world.settings.kafka_bootstrap or "", world.settings.topic)
    assert len(records) == len(ACTIONS)
    assert await snapshot(world.redis) == before  # actions only ever produce
    for body in [USERS, TEAMS, GRANT, TEAM_GRANT, PATCH]:
        status, answer = await world.call(body.method, body.path, body.valid)
        assert status in (200, 201), (body.name, answer)
    assert await snapshot(world.redis) != before
    assert await world.records() == len(ACTIONS)


async def test_a_body_over_the_limit_is_a_413_in_json(world: World) -> None:
    limit = world.settings.max_body_bytes
    huge = Raw(b'{"text": "' + b"x" * limit + b'"}')
    for body in [NOTES, USERS, PATCH]:
        status, error = await refused_without_effect(
            world, functools.partial(world.call, body.method, body.path, huge)
        )
        assert status == 413
        assert error["code"] == "request_entity_too_large"
    assert await read_all(world.settings.kafka_bootstrap or "", world.settings.topic) == []


# Any JSON value in any field


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)


def fuzz(examples: int) -> Callable[[Any], Any]:
    return hyp_settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )


@fuzz(120)
@given(data=st.data())
async def test_any_json_in_any_field_never_gives_a_5xx_and_a_refusal_changes_nothing(
    world: World, data: st.DataObject
) -> None:
    body = data.draw(st.sampled_from(BODIES), label="endpoint")
    field = data.draw(st.sampled_from(body.fields) | st.text(max_size=8), label="field")
    value = data.draw(json_values, label="value")
    sent = data.draw(st.just({**body.valid, field: value}) | json_values, label="body")
    redis_before, records_before = await snapshot(world.redis), await world.records()
    status, answer = await world.call(body.method, body.path, sent)
    assert status < 500, answer
    if status >= 400:
        assert status in (404, 409, 422), answer  # valid JSON: never malformed_json
        if status == 422:
            assert answer["error"]["code"] == "invalid_field"
            assert answer["error"]["field"], answer
        assert await world.records() == records_before
        assert await snapshot(world.redis) == redis_before


@fuzz(50)
@given(key=st.text(min_size=1, max_size=12), body=st.sampled_from(BODIES))
async def test_an_unknown_field_is_named_whatever_its_name(
    world: World, key: str, body: Body
) -> None:
    if key in body.fields:
        return
    status, error = await refused_without_effect(
        world, lambda: world.call(body.method, body.path, {**body.valid, key: 1})
    )
    assert (status, error["code"], error["field"]) == (422, "invalid_field", key)


# Channel settings: the valid side of the line


@pytest.mark.parametrize(
    ("sent", "shown"),
    [
        (long(255), long(255)),
        ("  " + long(255) + "\n", long(255)),
        ("客" * 255, "客" * 255),
        ("  دعم العملاء  ", "دعم العملاء"),
        ("\u3000客服中心 (欧洲)\u3000", "客服中心 (欧洲)"),
        ("\t🎧 Support 🇪🇺 ", "🎧 Support 🇪🇺"),
        ("x", "x"),
    ],
    ids=["255", "255-padded", "255-cjk", "arabic", "cjk", "emoji", "one"],
)
async def test_a_display_name_of_1_to_255_characters_in_any_script_is_kept_trimmed(
    world: World, sent: str, shown: str
) -> None:
    status, channel = await world.call("PATCH", CHANNEL, {"display_name": sent})
    assert (status, channel["display_name"]) == (200, shown), channel
    status, channel = await world.call("GET", CHANNEL)
    assert (status, channel["display_name"]) == (200, shown)
    stored = await load_channel_settings(world.redis, EU.id)
    assert stored is not None and stored.display_name == shown
    assert await world.records() == 0  # settings are not events


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("12h", 43200), ("30d", 2592000), ("off", None)],
)
async def test_durations_round_trip_and_reach_the_engine(
    world: World, text: str, seconds: int | None
) -> None:
    sent = {"auto_resolve_new": text, "auto_resolve_pending": text, "auto_assign": False}
    status, channel = await world.call("PATCH", CHANNEL, sent)
    assert status == 200, channel
    assert (channel["auto_resolve_new"], channel["auto_resolve_pending"]) == (text, text)
    status, channel = await world.call("GET", CHANNEL)
    assert (channel["auto_resolve_new"], channel["auto_resolve_pending"]) == (text, text)
    assert channel["auto_assign"] is False
    # What the engine and the sweeper read on their next batch and pass.
    stored = await load_channel_settings(world.redis, EU.id)
    assert stored is not None
    assert (stored.auto_resolve_new_s, stored.auto_resolve_pending_s) == (seconds, seconds)
    assert (stored.auto_assign, stored.display_name) == (False, EU.settings.display_name)
    other = await load_channel_settings(world.redis, US.id)
    assert other == US.settings  # one channel's settings only


async def test_an_admin_sets_shows_and_clears_the_business_account(world: World) -> None:
    status, channel = await world.call("PATCH", CHANNEL, {"waba_id": "209876543210987"})
    assert (status, channel["waba_id"]) == (200, "209876543210987"), channel
    status, channel = await world.call("GET", CHANNEL)
    assert (status, channel["waba_id"]) == (200, "209876543210987")
    status, listed = await world.call("GET", "/v1/channels")
    assert {c["id"]: c["waba_id"] for c in listed["channels"]} == {
        EU.id: "209876543210987",
        US.id: US.settings.waba_id,  # from the channels file, untouched
    }
    stored = await load_channel_settings(world.redis, EU.id)
    assert stored is not None and stored.waba_id == "209876543210987"
    assert stored.display_name == EU.settings.display_name  # nothing else changed
    status, channel = await world.call("PATCH", CHANNEL, {"waba_id": "1" * 32})
    assert (status, channel["waba_id"]) == (200, "1" * 32)
    status, channel = await world.call("PATCH", CHANNEL, {"waba_id": None})
    assert (status, channel["waba_id"]) == (200, None), channel
    status, channel = await world.call("GET", CHANNEL)
    assert (status, channel["waba_id"]) == (200, None)
    stored = await load_channel_settings(world.redis, EU.id)
    assert stored is not None and stored.waba_id is None
    status, channel = await world.call("PATCH", CHANNEL, {"auto_assign": False})
    assert (status, channel["waba_id"]) == (200, None)  # other edits leave it alone
    assert await world.records() == 0  # settings are not events


@fuzz(50)
@given(text=st.text(max_size=10) | st.from_regex(r"\A ?[0-9]{1,4}[smhdSMHDw]? ?\Z"))
async def test_a_duration_is_either_kept_exactly_or_refused_without_effect(
    world: World, text: str
) -> None:
    try:
        seconds = parse_period(text)
    except DurationError:
        status, error = await refused_without_effect(
            world, lambda: world.call("PATCH", CHANNEL, {"auto_resolve_pending": text})
        )
        assert (status, error["field"]) == (422, "auto_resolve_pending")
        return
    status, channel = await world.call("PATCH", CHANNEL, {"auto_resolve_pending": text})
    assert (status, channel["auto_resolve_pending"]) == (200, format_period(seconds))
    stored = await load_channel_settings(world.redis, EU.id)
    assert stored is not None and stored.auto_resolve_pending_s == seconds


# Query parameters


async def a_cursor(world: World, **params: str) -> str:
    """A real next_cursor of EU's new queue (two conversations in it, one per page)."""
    await put_conversation(world.redis, EU.id, "31600000002", Queue.NEW, T0 + 1)
    status, page = await world.call("GET", LIST, limit="1", **params)
    assert status == 200 and page["next_cursor"], page
    return str(page["next_cursor"])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"limit": ""}, "limit"),
        ({"limit": "1.5"}, "limit"),
        ({"queue": "bogus"}, "queue"),
        ({"queue": "NEW"}, "queue"),
        ({"queue": ""}, "queue"),
        ({"order": "sideways"}, "order"),
        ({"order": "asc"}, "order"),
        ({"cursor": "garbled!"}, "cursor"),
        ({"cursor": "eyJub3QiOiJhIGN1cnNvciJ9"}, "cursor"),  # base64 of a JSON object
        ({"cursor": "WyJuZXciLGZhbHNlXQ"}, "cursor"),  # ["new",false]: too short
        ({"cursor": "é"}, "cursor"),
        ({"cursor": "c" * 513}, "cursor"),
    ],
    ids=lambda value: (
        "-".join(f"{k}={v[:12]}" for k, v in value.items()) if isinstance(value, dict) else value
    ),
)
async def test_a_bad_listing_parameter_is_a_400_naming_it(
    world: World, params: dict[str, str], field: str
) -> None:
    status, answer = await world.call("GET", LIST, **params)
    assert status == 400, answer
    assert (answer["error"]["code"], answer["error"]["field"]) == ("invalid_parameter", field)


@pytest.mark.parametrize(
    "other",
    [{"queue": "open"}, {"queue": "resolved"}, {"order": "newest"}],
    ids=["open", "resolved", "newest"],
)
async def test_a_cursor_only_works_for_the_listing_that_gave_it(
    world: World, other: dict[str, str]
) -> None:
    cursor = await a_cursor(world)
    status, page = await world.call("GET", LIST, limit="1", cursor=cursor)
    assert status == 200 and [c["customer"]["id"] for c in page["conversations"]] == ["31600000002"]
    status, answer = await world.call("GET", LIST, limit="1", cursor=cursor, **other)
    assert status == 400, answer
    assert answer["error"]["field"] == "cursor"
    assert "another queue or order" in answer["error"]["message"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"from": "2024-1-1"}, "from"),
        ({"from": "2024-02-30", "to": "2024-03-01"}, "from"),
        ({"from": "20240301"}, "from"),
        ({"from": ""}, "from"),
        ({"to": "2024-13-01"}, "to"),
        ({"to": "2024-03-01T00:00:00"}, "to"),
        ({"to": "٢٠٢٤-٠١-٠١"}, "to"),  # digits, but not ASCII ones
        ({"from": "2024-03-02", "to": "2024-03-01"}, "from"),
        ({"from": "2023-01-01", "to": "2024-01-02"}, "from"),  # 367 days
        ({"from": "2023-12-31", "to": "2024-12-31"}, "from"),  # 367 days (a leap year)
        ({"from": "2000-01-01", "to": "2024-01-01"}, "from"),
    ],
    ids=lambda value: (
        "-".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else value
    ),
)
async def test_a_bad_report_range_is_a_400_naming_it(
    world: World, params: dict[str, str], field: str
) -> None:
    status, answer = await world.call("GET", REPORT, **params)
    assert status == 400, answer
    assert (answer["error"]["code"], answer["error"]["field"]) == ("invalid_parameter", field)


@pytest.mark.parametrize(
    ("params", "start", "end", "days"),
    [
        ({"from": "2024-01-01", "to": "2024-12-31"}, "2024-01-01", "2024-12-31", 366),
        ({"from": "2023-01-01", "to": "2023-12-31"}, "2023-01-01", "2023-12-31", 365),
        ({"from": "2023-01-02", "to": "2024-01-02"}, "2023-01-02", "2024-01-02", 366),
        ({"from": "2024-03-01", "to": "2024-03-01"}, "2024-03-01", "2024-03-01", 1),
        ({"to": "2024-03-07"}, "2024-03-01", "2024-03-07", 7),
        ({"to": "0001-01-03"}, "0001-01-01", "0001-01-03", 3),  # clamped at the first day
        ({"to": "9999-12-31"}, "9999-12-25", "9999-12-31", 7),
    ],
    ids=[
        "366-days",
        "365-days",
        "366-across-years",
        "one-day",
        "default-from",
        "first-days",
        "last-days",
    ],
)
async def test_report_ranges_at_the_limits(
    world: World, params: dict[str, str], start: str, end: str, days: int
) -> None:
    status, report = await world.call("GET", REPORT, **params)
    assert status == 200, report
    assert (report["start"], report["end"], len(report["days"])) == (start, end, days)


query_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=14)


@fuzz(100)
@given(
    path=st.sampled_from([LIST, REPORT]),
    params=st.dictionaries(
        st.sampled_from(["limit", "queue", "order", "cursor", "from", "to"]),
        query_text | st.dates().map(str) | st.integers(-5, 300).map(str),
        max_size=3,
    ),
)
async def test_no_query_string_gives_a_5xx(world: World, path: str, params: dict[str, str]) -> None:
    status, answer = await world.call("GET", path, **params)
    assert status in (200, 400), answer
    if status == 400:
        assert answer["error"]["code"] == "invalid_parameter"
        assert answer["error"]["field"] in params, (params, answer)
