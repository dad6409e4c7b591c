"""The /v1 API against its own OpenAPI document.

A cheap check that the document is valid OpenAPI 3.1, then schemathesis driving the live
receiver (`python -m ingest`, with `python -m engine` deciding the actions) from the
document it serves: no 5xx, and every answer's status, content type, headers and body
as the document says.
"""

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import jsonschema_rs
import pytest
import schemathesis
from redis.asyncio import Redis

from api.routes import DOCUMENT, ENDPOINTS
from devstack.samples import text_message
from devstack.servers import free_port, wait_for_port
from devstack.signing import sign
from parley.settings import Settings
from tests.conftest import EU, US
from tests.engine_proc import stop

ROOT = Path(__file__).resolve().parents[1]
ADMIN_TOKEN = "schema-admin-token-0123456789"
DIALECT = "https://json-schema.org/draft/2020-12/schema"  # what OpenAPI 3.1 schemas are
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
)
SEED = 20240601
MAX_EXAMPLES = 50
# The same customers write to both channels, so any channel and customer drawn meet.
CUSTOMERS = ["31611111111", "31622222222"]
# Days at the ends of what a date can be, where "six days before" falls off the calendar.
EDGE_DAYS = ["0001-01-01", "0001-01-06", "9999-12-31"]

# The test channels with their real secrets (the webhooks are signed with them), and no
# auto-resolve, so nothing moves under schemathesis but what it does itself.
CHANNELS = "\n".join(
    f"""
[[channels]]
id = "{channel.id}"
app_secret = "{channel.app_secret}"
verify_token = "{channel.verify_token}"
access_token = "{channel.access_token}"
display_name = "{channel.settings.display_name}"
auto_assign = {str(channel.settings.auto_assign).lower()}
auto_resolve_new = "off"
auto_resolve_pending = "off"
"""
    for channel in (EU, US)
)


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(json.dumps(value) for value in values) + "]"


def schemathesis_config(event_ids: list[str]) -> str:
    """Path parameters drawn often from what was seeded, so operations meet existing
    users, teams, channels, conversations and actions (200s), not only 404s. The deletes
    get ids of their own, so the seeded ones stay for the others until the stateful
    phase; report days are sometimes the calendar's first and last."""
    dictionaries = {
        "channels": [EU.id, US.id],
        "customers": CUSTOMERS,
        "users": ["ana", "bo"],
        "teams": ["support"],
        "events": event_ids,
        "doomed_users": ["zoe"],
        "doomed_teams": ["doomed"],
        "days": EDGE_DAYS,
    }
    lines = [
        f"[dictionaries.{name}]\nvalues = {_toml_list(values)}\n"
        for name, values in dictionaries.items()
    ]
    lines.append("[parameters]")
    for key, dictionary, probability in [
        ("path.channel", "channels", 0.7),
        ("path.customer", "customers", 0.7),
        ("path.user", "users", 0.5),
        ("path.team", "teams", 0.5),
        ("path.event_id", "events", 0.5),
        ("body.user", "users", 0.5),  # an assignee
        ("query.from", "days", 0.3),
        ("query.to", "days", 0.3),
    ]:
        lines.append(f'"{key}" = {{ dictionary = "{dictionary}", probability = {probability} }}')
    for operation, name, dictionary in [
        ("delete_user", "user", "doomed_users"),
        ("delete_team", "team", "doomed_teams"),
    ]:
        lines.append(
            f'\n[[operations]]\ninclude-operation-id = "{operation}"\n'
            f'parameters = {{ "path.{name}" = {{ dictionary = "{dictionary}", probability = 0.5 }} }}'
        )
    return "\n".join(lines) + "\n"


# The document, in process


def test_the_document_is_valid_openapi_3_1() -> None:
    assert DOCUMENT["openapi"] == "3.1.0"
    schema = schemathesis.openapi.from_dict(DOCUMENT)
    schema.validate()  # against the OpenAPI 3.1 meta-schema
    for name, component in DOCUMENT["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid({"$schema": DIALECT, **component}), name
    operations = {
        (op.method.upper(), op.path)
        for op in (r.ok() for r in schema.get_all_operations())  # type: ignore[union-attr]
    }
    assert operations == {(endpoint.method, endpoint.path) for endpoint in ENDPOINTS}
    operation_ids = []
    for endpoint in ENDPOINTS:
        label = f"{endpoint.method} {endpoint.path}"
        operation = DOCUMENT["paths"][endpoint.path][endpoint.method.lower()]
        operation_ids.append(operation["operationId"])
        responses = operation["responses"]
        assert str(endpoint.status) in responses, f"{label}: no {endpoint.status}"
        assert endpoint.public or "401" in responses, f"{label}: no 401"
        assert endpoint.public == (operation.get("security") == []), label
        if endpoint.body is not None:
            assert {"400", "413", "422"} <= responses.keys(), label
        for status, response in responses.items():
            # JSON, but for a success in a media of its own (the stream's text/event-stream).
            media = endpoint.media if status == str(endpoint.status) else "application/json"
            assert set(response.get("content", {})) <= {media}, (label, status)
        parameters = operation["parameters"]
        in_path = {p["name"] for p in parameters if p["in"] == "path"}
        assert in_path == set(re.findall(r"{(\w+)}", endpoint.path)), label
        assert all(p["required"] for p in parameters if p["in"] == "path"), label
        for parameter in parameters:
            assert jsonschema_rs.meta.is_valid({"$schema": DIALECT, **parameter["schema"]}), (
                label,
                parameter["name"],
            )
    assert len(set(operation_ids)) == len(operation_ids)


# The live app


@dataclass(frozen=True)
class LiveApi:
    url: str
    event_ids: list[str]


def _env(settings: Settings, channels_file: Path, **extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("PARLEY_")}
    return env | {
        "PARLEY_KAFKA_BOOTSTRAP": settings.kafka_bootstrap or "",
        "PARLEY_REDIS_URL": settings.redis_url or "",
        "PARLEY_TOPIC": settings.topic,
        "PARLEY_TOPIC_PARTITIONS": "4",
        "PARLEY_CONSUMER_GROUP": f"{settings.topic}-engine",
        "PARLEY_KAFKA_SESSION_TIMEOUT_S": str(settings.kafka_session_timeout_s),
        "PARLEY_CHANNELS_FILE": str(channels_file),
        "PARLEY_ADMIN_TOKEN": ADMIN_TOKEN,
        "PARLEY_ACTION_WAIT_S": "0.5",
        "PARLEY_LOG_LEVEL": "WARNING",
        "PARLEY_MEDIA_URL": settings.media_url,
        **extra,
    }


def _start(module: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", module], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
    )


async def _until(check: Callable[[], Awaitable[bool]], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"{check.__name__} did not happen in time"
        await asyncio.sleep(0.1)


async def _seed(session: aiohttp.ClientSession, url: str, webhook: str) -> list[str]:
    """Users, a team, grants and conversations, through the API; the ids of actions."""

    async def call(method: str, path: str, body: object = None, expect: int = 200) -> dict:  # type: ignore[type-arg]
        async with session.request(method, f"{url}{path}", json=body, headers=ADMIN) as answer:
            data = await answer.json()
            assert answer.status == expect, (method, path, answer.status, data)
            return data  # type: ignore[no-any-return]

    for user in ("ana", "bo", "zoe"):
        await call("POST", "/v1/users", {"id": user, "name": user.title()}, 201)
    for team in ("support", "doomed"):
        await call("POST", "/v1/teams", {"id": team, "name": team.title()}, 201)
    await call("PUT", "/v1/teams/support/members/ana")
    await call("PUT", "/v1/teams/doomed/members/zoe")
    await call("PUT", f"/v1/channels/{EU.id}/access/users/ana", {"role": "contributor"})
    await call("PUT", f"/v1/channels/{US.id}/access/users/bo", {"role": "supervisor"})
    await call("PUT", f"/v1/channels/{EU.id}/access/teams/support", {"role": "viewer"})

    at = int(time.time()) - 600
    for channel in (EU, US):
        for n, wa_id in enumerate(CUSTOMERS):
            body = json.dumps(
                text_message(channel.id, wa_id, f"wamid.{channel.id}.{wa_id}", f"Hi {n}", at + n)
            ).encode()
            signature = {"X-Hub-Signature-256": sign(body, channel.app_secret)}
            async with session.post(webhook, data=body, headers=signature) as answer:
                assert answer.status == 200, await answer.text()

    async def conversations_are_in() -> bool:
        for channel in (EU.id, US.id):
            for wa_id in CUSTOMERS:
                path = f"{url}/v1/conversations/{channel}/{wa_id}"
                async with session.get(path, headers=ADMIN) as answer:
                    if answer.status != 200:
                        return False
        return True

    await _until(conversations_are_in)
    first = f"/v1/conversations/{EU.id}/{CUSTOMERS[0]}"
    tagged = await call("POST", f"{first}/tags", {"tag": "vip"})
    noted = await call("POST", f"{first}/notes", {"text": "Called back"})
    replied = await call("POST", f"{first}/replies", {"text": "It ships today."})
    return [tagged["event_id"], noted["event_id"], replied["event_id"]]


@pytest.fixture
async def live_api(settings: Settings, redis: Redis, tmp_path: Path) -> AsyncIterator[LiveApi]:
    channels_file = tmp_path / "channels.toml"
    channels_file.write_text(CHANNELS)
    http_port, ingest_metrics, engine_metrics = free_port(), free_port(), free_port()
    graph_port = free_port()
    # The Graph API stand-in: registration and replies reach it, never the real one.
    graph = {"PARLEY_GRAPH_URL": f"http://127.0.0.1:{graph_port}/v21.0"}
    standin = _start(
        "devstack.graph_standin",
        _env(settings, channels_file, PARLEY_GRAPH_STANDIN_PORT=str(graph_port)),
    )
    engine = _start(
        "engine",
        _env(settings, channels_file, PARLEY_METRICS_PORT=str(engine_metrics), **graph),
    )
    ingest = _start(
        "ingest",
        _env(
            settings,
            channels_file,
            PARLEY_HTTP_PORT=str(http_port),
            PARLEY_HTTP_WORKERS="1",  # the API's answers, not the workers', are this test's
            PARLEY_METRICS_PORT=str(ingest_metrics),
            **graph,
        ),
    )
    try:
        await asyncio.to_thread(wait_for_port, graph_port, standin, 30)
        await asyncio.to_thread(wait_for_port, http_port, ingest, 30)
        await asyncio.to_thread(wait_for_port, engine_metrics, engine, 30)
        url = f"http://127.0.0.1:{http_port}"
        async with aiohttp.ClientSession() as session:

            async def ready(base: str, key: str) -> bool:
                async with session.get(f"{base}/readyz") as answer:
                    return answer.status == 200 and bool((await answer.json()).get(key))

            async def engine_owns_partitions() -> bool:
                return await ready(f"http://127.0.0.1:{engine_metrics}", "partitions")

            async def receiver_is_ready() -> bool:
                return await ready(url, "kafka")

            await _until(receiver_is_ready)
            await _until(engine_owns_partitions)
            event_ids = await _seed(session, url, f"{url}/webhooks/whatsapp")
        yield LiveApi(url=url, event_ids=event_ids)
    finally:
        stop(ingest)
        stop(engine)
        stop(standin)
    assert (ingest.returncode, engine.returncode) == (0, 0)


@pytest.mark.slow
async def test_schemathesis_finds_no_5xx_and_no_answer_off_the_document(
    live_api: LiveApi, tmp_path: Path
) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(schemathesis_config(live_api.event_ids))
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "--no-color",
        "run",
        f"{live_api.url}/v1/openapi.json",
        "--header",
        f"Authorization: Bearer {ADMIN_TOKEN}",
        "--checks",
        ",".join(CHECKS),
        # A live stream never ends: every call would run into --request-timeout. Its
        # access, resumes and events are tested by tests/test_stream.py and
        # tests/test_api_access.py.
        "--exclude-path",
        "/v1/stream",
        "--mode",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--generation-database",
        "none",
        "--request-timeout",
        "10",
        # One worker: concurrent workers trip CPython 3.11.7's ast.parse (inside
        # Hypothesis' repr of a filter) with "AST constructor recursion depth mismatch".
        "--workers",
        "1",
    ]
    started = time.monotonic()
    run = await asyncio.to_thread(
        subprocess.run,
        command,
        cwd=tmp_path,  # its reports and caches stay out of the repository
        capture_output=True,
        text=True,
        timeout=240,  # about 60 s alone; a loaded machine takes several times that
        env={**os.environ, "NO_COLOR": "1"},
    )
    output = f"{run.stdout}{run.stderr}\n(schemathesis took {time.monotonic() - started:.1f}s)"
    if run.returncode != 0:
        pytest.fail(f"schemathesis exited with {run.returncode}:\n{output}", pytrace=False)
    print(output)  # what it covered, shown with `pytest -rP`
