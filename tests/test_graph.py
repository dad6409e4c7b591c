"""The Graph API client against the local stand-in, and the stand-in against the receiver."""

import asyncio
import base64
import hashlib
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from pytest_aiohttp import AiohttpServer

from devstack.graph_standin import (
    OAUTH_REFUSAL,
    Fault,
    ReadReceipt,
    SentMessage,
    StandIn,
    Template,
    create_app,
)
from devstack.servers import free_port
from ingest.app import create_app as create_receiver
from ingest.meta_payload import decode_webhook
from ingest.normalize import normalize
from ingest.signature import signing_secret
from parley.channels import Channel
from parley.events import MessageStatus, decode_event
from parley.graph import (
    RETRYABLE_CODES,
    GraphClient,
    GraphError,
    MediaInfo,
    Recipient,
    TemplateDefinition,
)
from parley.settings import Settings
from parley.whatsapp import MEDIA_RULES, media_problem
from tests.conftest import EU, US
from tests.kafka_tools import read_all

NOW = 1_790_000_000.0
CUSTOMER = "16315551234"
TO = Recipient(phone=CUSTOMER)
BSUID = "US.13491208655302741918"  # the same customer's business-scoped user id
PARENT_BSUID = "US.ENT.11815799212886844830"
OTHER_BSUID = "BR.40817263549182736455"  # a customer whose phone Meta does not show
GROUP = "Y2FwaV9ncm91cDoxNTU1MDc4Mzg4MToxMjAzNjM0MDQ2OTQyMzM4MjAZD"
BSUID_UNSUPPORTED = "Business-scoped User ID (BSUID) recipients are not supported for this message."
TIMEOUT_S = 0.3
RE_ENGAGEMENT = (
    "Message failed to send because more than 24 hours have passed since the customer"
    " last replied to this number."
)


WABA = "102290129340398"  # EU's and US's business account (tests.conftest)


def make_standin(**kwargs: Any) -> StandIn:
    return StandIn(
        {EU.id: EU.access_token, US.id: US.access_token},
        app_secrets={EU.id: EU.app_secret, US.id: US.app_secret},
        clock=kwargs.pop("clock", lambda: NOW),
        wabas={EU.id: WABA, US.id: WABA},
        **kwargs,
    )


@pytest.fixture
def standin() -> StandIn:
    return make_standin()


@pytest.fixture
async def graph_url(aiohttp_server: AiohttpServer, standin: StandIn) -> str:
    server = await aiohttp_server(create_app(standin))
    return str(server.make_url("/v21.0"))


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def graph(session: aiohttp.ClientSession, graph_url: str) -> GraphClient:
    return GraphClient(session, graph_url, timeout_s=TIMEOUT_S)


async def failure(call: Any) -> GraphError:
    """The GraphError an awaitable raises; its text never shows a token."""
    with pytest.raises(GraphError) as caught:
        await call
    error = caught.value
    for token in (EU.access_token, US.access_token):
        assert token not in str(error) and token not in repr(error) and token not in error.title
    return error


# 1. Sends in the documented shape
async def test_a_text_arrives_as_documented_and_its_wamid_is_returned(
    graph: GraphClient, standin: StandIn
) -> None:
    wamid = await graph.send_text(EU.id, EU.access_token, TO, "Hello, how can we help?")
    assert wamid.startswith("wamid.")
    assert standin.sent == [
        SentMessage(
            phone_number_id=EU.id,
            to=CUSTOMER,
            type="text",
            body={
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": CUSTOMER,
                "type": "text",
                "text": {"preview_url": False, "body": "Hello, how can we help?"},
            },
            wamid=wamid,
            at=NOW,
        )
    ]


async def test_a_template_arrives_as_documented_and_its_wamid_is_returned(
    graph: GraphClient, standin: StandIn
) -> None:
    wamid = await graph.send_template(US.id, US.access_token, TO, "order_update", "en_US")
    [sent] = standin.sent
    assert (sent.phone_number_id, sent.wamid, sent.type) == (US.id, wamid, "template")
    assert sent.body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": CUSTOMER,
        "type": "template",
        "template": {"name": "order_update", "language": {"code": "en_US"}},
    }


async def test_the_stand_in_answers_a_send_in_metas_shape(
    session: aiohttp.ClientSession, graph_url: str
) -> None:
    response = await session.post(
        f"{graph_url}/{EU.id}/messages",
        json={
            "messaging_product": "whatsapp",
            "to": CUSTOMER,
            "type": "text",
            "text": {"body": "Hi"},
        },
        headers={"Authorization": f"Bearer {EU.access_token}"},
    )
    assert response.status == 200
    answer = await response.json()
    assert answer["messaging_product"] == "whatsapp"
    assert answer["contacts"] == [{"input": CUSTOMER, "wa_id": CUSTOMER}]
    [message] = answer["messages"]
    assert set(message) == {"id"} and message["id"].startswith("wamid.")


async def test_every_send_gets_its_own_wamid(graph: GraphClient) -> None:
    wamids = {await graph.send_text(EU.id, EU.access_token, TO, f"#{n}") for n in range(5)}
    assert len(wamids) == 5


# 2. Every documented failure is a GraphError that says whether to try again
@pytest.mark.parametrize(
    ("fault", "status", "code", "title", "retryable"),
    [
        (Fault(code=131047), 400, 131047, RE_ENGAGEMENT, False),
        (Fault(code=130429), 400, 130429, "Cloud API message throughput has been reached.", True),
        (Fault(status=429, code=131056), 429, 131056, None, True),
        (Fault(code=80007), 400, 80007, None, True),
        (Fault(code=4), 400, 4, None, True),
        (Fault(status=500, code=131000), 500, 131000, None, True),
        (Fault(code=100, details="Param text['body'] is required"), 400, 100, None, False),
        (Fault(code=131026), 400, 131026, "Message Undeliverable.", False),
        (Fault(code=131062), 400, 131062, BSUID_UNSUPPORTED, False),
        (Fault(status=502), 502, None, "Bad Gateway", True),
        (Fault(status=503, code=None), 503, None, "Service Unavailable", True),
    ],
)
async def test_documented_errors_are_classified(
    graph: GraphClient,
    standin: StandIn,
    fault: Fault,
    status: int,
    code: int | None,
    title: str | None,
    retryable: bool,
) -> None:
    standin.fail_next(EU.id, fault)
    error = await failure(graph.send_text(EU.id, EU.access_token, TO, "Hi"))
    assert (error.status, error.code, error.retryable) == (status, code, retryable)
    if title is not None:
        assert error.title == title
    assert error.title
    assert standin.sent == []
    # A fault is used once: the next send goes through.
    assert (await graph.send_text(EU.id, EU.access_token, TO, "Hi")).startswith("wamid.")


async def test_the_error_text_is_code_title_and_status(
    graph: GraphClient, standin: StandIn
) -> None:
    standin.fail_next(EU.id, Fault(code=131047))
    error = await failure(graph.send_text(EU.id, EU.access_token, TO, "Hi"))
    assert str(error) == "131047 Re-engagement message (HTTP 400)"
    standin.fail_next(EU.id, Fault(code=131056))
    error = await failure(graph.send_text(EU.id, EU.access_token, TO, "Hi"))
    assert (
        str(error) == "131056 (Business Account, Consumer Account) pair rate limit hit (HTTP 400)"
    )


async def test_faults_are_used_in_order_and_per_number(
    graph: GraphClient, standin: StandIn
) -> None:
    standin.fail_next(EU.id, Fault(code=130429), Fault(status=500, code=131000))
    assert await graph.send_text(US.id, US.access_token, TO, "other number")
    codes = []
    for _ in range(2):
        codes.append((await failure(graph.send_text(EU.id, EU.access_token, TO, "x"))).code)
    assert codes == [130429, 131000]
    assert await graph.send_text(EU.id, EU.access_token, TO, "through")


async def test_a_slow_answer_is_a_retryable_timeout(graph: GraphClient, standin: StandIn) -> None:
    standin.fail_next(EU.id, Fault(code=131000, status=500, delay_s=TIMEOUT_S * 3))
    error = await failure(graph.send_text(EU.id, EU.access_token, TO, "Hi"))
    assert (error.status, error.code, error.title, error.retryable) == (None, None, "timeout", True)
    assert str(error) == "timeout"


async def test_a_timed_out_send_may_still_have_been_sent(
    graph: GraphClient, standin: StandIn
) -> None:
    """Why a timeout must not be taken as "not sent": Meta may accept it anyway."""
    standin.fail_next(EU.id, Fault(status=200, delay_s=TIMEOUT_S * 2))
    error = await failure(graph.send_text(EU.id, EU.access_token, TO, "slow"))
    assert error.title == "timeout"
    for _ in range(100):
        if standin.sent:
            break
        await asyncio.sleep(0.02)
    assert [sent.body["text"]["body"] for sent in standin.sent] == ["slow"]


async def test_no_server_is_a_retryable_connection_failure(session: aiohttp.ClientSession) -> None:
    graph = GraphClient(session, f"http://127.0.0.1:{free_port()}/v21.0", timeout_s=TIMEOUT_S)
    error = await failure(graph.send_text(EU.id, EU.access_token, TO, "Hi"))
    assert (error.status, error.code, error.title, error.retryable) == (
        None,
        None,
        "connection failed",
        True,
    )


@pytest.mark.parametrize("token", ["not-a-token", "", US.access_token + "x"])
async def test_a_bad_or_missing_token_is_190(
    graph: GraphClient, standin: StandIn, token: str
) -> None:
    error = await failure(graph.send_text(EU.id, token, TO, "Hi"))
    assert (error.status, error.code, error.title, error.retryable) == (
        401,
        190,
        OAUTH_REFUSAL,
        False,
    )
    assert token not in str(error) or not token
    assert standin.sent == []


async def test_another_numbers_token_is_refused(graph: GraphClient, standin: StandIn) -> None:
    error = await failure(graph.send_text(EU.id, US.access_token, TO, "Hi"))
    assert (error.status, error.code, error.retryable) == (400, 100, False)
    assert EU.id in error.title
    assert standin.sent == []


async def test_a_bad_token_wins_over_a_queued_fault(graph: GraphClient, standin: StandIn) -> None:
    standin.fail_next(EU.id, Fault(code=131047))
    assert (await failure(graph.send_text(EU.id, "nope", TO, "Hi"))).code == 190
    assert (await failure(graph.send_text(EU.id, EU.access_token, TO, "Hi"))).code == 131047


async def test_an_empty_text_is_a_malformed_request(graph: GraphClient, standin: StandIn) -> None:
    error = await failure(graph.send_text(EU.id, EU.access_token, TO, ""))
    assert (error.status, error.code, error.retryable) == (400, 100, False)
    assert error.title == "Param text['body'] is required"
    assert standin.sent == []


GOOD = {"messaging_product": "whatsapp", "to": CUSTOMER, "type": "text", "text": {"body": "Hi"}}


@pytest.mark.parametrize(
    "payload",
    [
        {key: value for key, value in GOOD.items() if key != "messaging_product"},
        {key: value for key, value in GOOD.items() if key != "to"},
        {key: value for key, value in GOOD.items() if key != "type"},
        {**GOOD, "messaging_product": "sms"},
        {**GOOD, "type": "hologram", "hologram": {}},
        {**GOOD, "text": {"body": ""}},
        {**GOOD, "text": {"body": "   "}},
        {**GOOD, "text": {"body": "x" * 4097}},
        {**GOOD, "text": "Hi"},
        {**GOOD, "to": 16315551234},
        # 2026 recipients: `to` or `recipient` (a BSUID), or a group's id in `to`
        {**{key: value for key, value in GOOD.items() if key != "to"}, "recipient": ""},
        {**{key: value for key, value in GOOD.items() if key != "to"}, "recipient": 12},
        {**{key: value for key, value in GOOD.items() if key != "to"}, "recipient": CUSTOMER},
        {
            **{key: value for key, value in GOOD.items() if key != "to"},
            "recipient_type": "group",
            "recipient": BSUID,
        },
        {**GOOD, "recipient_type": "broadcast"},
        {**GOOD, "type": "template", "template": {"name": "hello_world"}},
        ["not", "an", "object"],
        "not JSON at all",
    ],
)
async def test_malformed_sends_are_100(
    session: aiohttp.ClientSession, graph_url: str, standin: StandIn, payload: Any
) -> None:
    body = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
    response = await session.post(
        f"{graph_url}/{EU.id}/messages",
        data=body,
        headers={"Authorization": f"Bearer {EU.access_token}", "Content-Type": "application/json"},
    )
    assert response.status == 400
    error = (await response.json())["error"]
    assert (error["code"], error["type"]) == (100, "OAuthException")
    assert error["message"].startswith("(#100) ") and error["fbtrace_id"]
    assert standin.sent == []


# 3. No answer ever escapes as anything but a GraphError, nor shows the token
TOKEN = "EAAGm0PX4ZCpsBAKZAOQa1b2c3d4e5f6"
ECHOED = st.sampled_from([TOKEN, f"Invalid token {TOKEN}", f"Bearer {TOKEN}", "plain"])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | ECHOED,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
meta_like = st.fixed_dictionaries(
    {},
    optional={
        "message": json_values,
        "type": json_values,
        "code": st.integers() | json_values,
        "error_data": st.fixed_dictionaries({}, optional={"details": json_values}) | json_values,
        "is_transient": json_values,
        "fbtrace_id": json_values,
    },
).map(lambda error: {"error": error})
bodies = st.one_of(
    json_values.map(lambda value: json.dumps(value).encode()),
    meta_like.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=64),
)


class Scripted:
    """A server answering whatever the current example says."""

    def __init__(self) -> None:
        self.status = 500
        self.body = b""

    async def handle(self, request: web.Request) -> web.Response:
        return web.Response(status=self.status, body=self.body, content_type="application/json")


@pytest.fixture
async def scripted(aiohttp_server: AiohttpServer) -> tuple[Scripted, str]:
    script = Scripted()
    app = web.Application()
    app.router.add_post("/{tail:.*}", script.handle)
    server = await aiohttp_server(app)
    return script, str(server.make_url("/v21.0"))


@hyp_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(status=st.sampled_from([200, 201, 400, 401, 403, 404, 429, 500, 502, 503]), body=bodies)
async def test_any_answer_is_a_wamid_or_a_graph_error_without_the_token(
    session: aiohttp.ClientSession, scripted: tuple[Scripted, str], status: int, body: bytes
) -> None:
    script, url = scripted
    script.status, script.body = status, body
    graph = GraphClient(session, url, timeout_s=2.0)
    try:
        wamid = await graph.send_text(EU.id, TOKEN, TO, "Hi")
    except GraphError as error:
        assert error.status == status
        for text in (str(error), repr(error), error.title):
            assert TOKEN not in text
        assert 0 < len(error.title) <= 300
        if status >= 500 or status == 429:
            assert error.retryable
        if status < 300:  # it may have been sent: trying again could send it twice
            assert not error.retryable
    else:
        assert status < 300 and isinstance(wamid, str)


@hyp_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(status=st.sampled_from([200, 400, 500]), body=bodies)
async def test_registration_answers_are_success_or_a_graph_error(
    session: aiohttp.ClientSession, scripted: tuple[Scripted, str], status: int, body: bytes
) -> None:
    script, url = scripted
    script.status, script.body = status, body
    graph = GraphClient(session, url, timeout_s=2.0)
    try:
        await graph.register(EU.id, TOKEN, "123456")
    except GraphError as error:
        assert TOKEN not in str(error) and TOKEN not in repr(error)
    else:
        assert status == 200 and json.loads(body)["success"] is True


async def test_an_echoed_token_is_redacted(
    session: aiohttp.ClientSession, scripted: tuple[Scripted, str]
) -> None:
    script, url = scripted
    script.status = 400
    script.body = json.dumps(
        {"error": {"message": f"(#190) Bad token {TOKEN}", "code": 190, "type": "OAuthException"}}
    ).encode()
    graph = GraphClient(session, url)
    error = await failure(graph.send_text(EU.id, TOKEN, TO, "Hi"))
    assert str(error) == "190 Bad token *** (HTTP 400)"
    assert TOKEN not in repr(error)


# 4. Registration: request a code, verify it, register with the PIN
async def test_a_number_is_registered_with_the_code_it_was_sent(
    graph: GraphClient, standin: StandIn
) -> None:
    assert standin.code_for(EU.id) is None
    await graph.request_code(EU.id, EU.access_token, "SMS", "en_US")
    code = standin.code_for(EU.id)
    assert code is not None and len(code) == 6 and code.isdigit()
    await graph.request_code(EU.id, EU.access_token, "VOICE", "en_US")
    assert standin.code_for(EU.id) is not None
    assert standin.code_for(US.id) is None

    wrong = "000000" if standin.code_for(EU.id) != "000000" else "111111"
    error = await failure(graph.verify_code(EU.id, EU.access_token, wrong))
    assert (error.status, error.code, error.retryable) == (400, 136025, False)
    assert str(error) == "136025 Verify code error (HTTP 400)"

    await graph.verify_code(EU.id, EU.access_token, standin.code_for(EU.id) or "")
    await graph.register(EU.id, EU.access_token, "123456")
    assert standin.registered == {EU.id}


async def test_verifying_before_any_code_was_sent_is_136025(graph: GraphClient) -> None:
    assert (await failure(graph.verify_code(US.id, US.access_token, "123456"))).code == 136025


@pytest.mark.parametrize(
    "call",
    [
        lambda graph: graph.request_code(EU.id, EU.access_token, "EMAIL", "en_US"),
        lambda graph: graph.request_code(EU.id, EU.access_token, "SMS", ""),
        lambda graph: graph.verify_code(EU.id, EU.access_token, ""),
        lambda graph: graph.register(EU.id, EU.access_token, "12345"),
        lambda graph: graph.register(EU.id, EU.access_token, "12345a"),
    ],
)
async def test_bad_registration_parameters_are_100(graph: GraphClient, call: Any) -> None:
    error = await failure(call(graph))
    assert (error.status, error.code, error.retryable) == (400, 100, False)


async def test_registration_calls_check_the_token_and_take_faults(
    graph: GraphClient, standin: StandIn
) -> None:
    assert (await failure(graph.request_code(EU.id, "nope", "SMS", "en_US"))).code == 190
    standin.fail_next(EU.id, Fault(status=500, code=131000))
    error = await failure(graph.register(EU.id, EU.access_token, "123456"))
    assert (error.status, error.retryable) == (500, True)
    assert standin.registered == set()


async def test_the_registration_edges_also_take_query_parameters(
    session: aiohttp.ClientSession, graph_url: str, standin: StandIn
) -> None:
    """Meta's reference passes code_method, language and code in the query."""
    headers = {"Authorization": f"Bearer {EU.access_token}"}
    requested = await session.post(
        f"{graph_url}/{EU.id}/request_code",
        params={"code_method": "SMS", "language": "en_US"},
        headers=headers,
    )
    assert (requested.status, await requested.json()) == (200, {"success": True})
    verified = await session.post(
        f"{graph_url}/{EU.id}/verify_code",
        params={"code": standin.code_for(EU.id) or ""},
        headers=headers,
    )
    assert (verified.status, await verified.json()) == (200, {"success": True})


# 5. Controls for humans
async def test_the_control_endpoints(
    session: aiohttp.ClientSession, graph_url: str, graph: GraphClient, standin: StandIn
) -> None:
    root = graph_url.removesuffix("/v21.0")
    queued = await session.post(
        f"{root}/_standin/faults/{EU.id}", json=[{"code": 131047}, {"status": 503}]
    )
    assert (queued.status, await queued.json()) == (200, {"queued": 2})
    assert (await failure(graph.send_text(EU.id, EU.access_token, TO, "a"))).code == 131047
    assert (await failure(graph.send_text(EU.id, EU.access_token, TO, "b"))).status == 503
    wamid = await graph.send_text(EU.id, EU.access_token, TO, "c")

    sent = await (await session.get(f"{root}/_standin/sent")).json()
    assert [(item["wamid"], item["body"]["text"]["body"]) for item in sent] == [(wamid, "c")]

    assert (await session.get(f"{root}/_standin/codes/{EU.id}")).status == 404
    await graph.request_code(EU.id, EU.access_token, "SMS", "en_US")
    shown = await (await session.get(f"{root}/_standin/codes/{EU.id}")).json()
    assert shown == {"code": standin.code_for(EU.id)}

    refused = await session.post(f"{root}/_standin/faults/{EU.id}", json={"code": 1})
    assert refused.status == 400


async def test_the_unversioned_path_works_too(
    session: aiohttp.ClientSession, graph_url: str
) -> None:
    graph = GraphClient(session, graph_url.removesuffix("/v21.0"))
    assert (await graph.send_text(EU.id, EU.access_token, TO, "Hi")).startswith("wamid.")


# 6. Status webhooks, signed as Meta signs them
class Capture:
    def __init__(self) -> None:
        self.calls: list[tuple[bytes, str | None]] = []
        self.release = asyncio.Event()
        self.hold = False

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append((await request.read(), request.headers.get("X-Hub-Signature-256")))
        if self.hold:
            await self.release.wait()
        return web.Response(text="ok")


@pytest.fixture
async def capture(aiohttp_server: AiohttpServer) -> AsyncIterator[tuple[Capture, str]]:
    capture = Capture()
    app = web.Application()
    app.router.add_post("/webhooks/whatsapp", capture.handle)
    server = await aiohttp_server(app)
    yield capture, str(server.make_url("/webhooks/whatsapp"))
    capture.release.set()  # let held handlers finish before the server closes


async def test_statuses_are_signed_with_the_channels_app_secret(
    capture: tuple[Capture, str],
) -> None:
    seen, url = capture
    standin = make_standin(webhook_url=url)
    wamid = "wamid.HBgLMTYzMTU1NTEyMzQVAgARGBI3NzFGMkM1RjA2QjE4MjBBNDIA"
    answers = await standin.post_statuses(US.id, wamid, CUSTOMER, ["sent", "delivered", "read"])
    assert answers == [200, 200, 200]
    events = []
    for body, header in seen.calls:
        assert signing_secret(body, header, [EU.app_secret, US.app_secret]) == US.app_secret
        events.extend(normalize(decode_webhook(body), received_at=NOW).events)
    assert [event.id for event in events] == [f"{wamid}:{s}" for s in ("sent", "delivered", "read")]
    for event in events:
        assert event.channel == US.id and event.occurred_at == int(NOW)
        assert isinstance(event.payload, MessageStatus)
        assert (event.payload.wamid, event.identity.phone) == (wamid, CUSTOMER)
    [sent, _, read] = [json.loads(body) for body, _ in seen.calls]
    status = sent["entry"][0]["changes"][0]["value"]["statuses"][0]
    assert set(status) == {"id", "status", "timestamp", "recipient_id", "conversation", "pricing"}
    assert set(read["entry"][0]["changes"][0]["value"]["statuses"][0]) == {
        "id",
        "status",
        "timestamp",
        "recipient_id",
    }


async def test_a_failed_status_carries_its_errors(capture: tuple[Capture, str]) -> None:
    seen, url = capture
    standin = make_standin(webhook_url=url)
    errors = [
        {"code": 131047, "title": "Re-engagement message", "error_data": {"details": RE_ENGAGEMENT}}
    ]
    await standin.post_statuses(EU.id, "wamid.X", CUSTOMER, ["failed"], errors)
    await standin.post_statuses(EU.id, "wamid.Y", CUSTOMER, ["failed"])
    payloads = [
        normalize(decode_webhook(body), received_at=NOW).events[0].payload for body, _ in seen.calls
    ]
    codes = [(p.error or "").split()[0] for p in payloads if isinstance(p, MessageStatus)]
    assert codes == ["131047", "131026"]


async def test_statuses_need_a_webhook_url_and_a_secret(capture: tuple[Capture, str]) -> None:
    with pytest.raises(ValueError, match="webhook_url"):
        await make_standin().post_statuses(EU.id, "wamid.X", CUSTOMER, ["sent"])
    with pytest.raises(ValueError, match="app secret"):
        await make_standin(webhook_url=capture[1]).post_statuses(
            "999", "wamid.X", CUSTOMER, ["sent"]
        )


async def test_auto_statuses_follow_a_send_in_order(
    aiohttp_server: AiohttpServer, session: aiohttp.ClientSession, capture: tuple[Capture, str]
) -> None:
    seen, url = capture
    standin = make_standin(webhook_url=url, auto_statuses=("sent", "delivered", "read"))
    server = await aiohttp_server(create_app(standin))
    graph = GraphClient(session, str(server.make_url("/v21.0")))
    wamid = await graph.send_text(EU.id, EU.access_token, TO, "Hi")
    await standin.idle()
    states = [
        json.loads(body)["entry"][0]["changes"][0]["value"]["statuses"][0] for body, _ in seen.calls
    ]
    assert [(s["id"], s["status"]) for s in states] == [
        (wamid, "sent"),
        (wamid, "delivered"),
        (wamid, "read"),
    ]


async def test_cleanup_cancels_statuses_still_in_flight(
    aiohttp_server: AiohttpServer, session: aiohttp.ClientSession, capture: tuple[Capture, str]
) -> None:
    seen, url = capture
    seen.hold = True  # the receiver never answers the first status
    standin = make_standin(webhook_url=url, auto_statuses=("sent", "delivered"))
    server = await aiohttp_server(create_app(standin))
    graph = GraphClient(session, str(server.make_url("/v21.0")))
    await graph.send_text(EU.id, EU.access_token, TO, "Hi")
    for _ in range(100):
        if seen.calls:
            break
        await asyncio.sleep(0.01)
    assert len(seen.calls) == 1
    await server.close()
    await asyncio.wait_for(standin.idle(), timeout=1.0)  # nothing left running
    assert len(seen.calls) == 1


async def test_statuses_are_accepted_by_the_real_receiver(
    aiohttp_server: AiohttpServer,
    session: aiohttp.ClientSession,
    settings: Settings,
    channels: list[Channel],
) -> None:
    receiver = await aiohttp_server(create_receiver(settings, channels, clock=lambda: NOW))
    standin = make_standin(
        webhook_url=str(receiver.make_url("/webhooks/whatsapp")),
        auto_statuses=("sent", "delivered", "read"),
    )
    server = await aiohttp_server(create_app(standin))
    graph = GraphClient(session, str(server.make_url("/v21.0")))
    wamid = await graph.send_text(EU.id, EU.access_token, TO, "Hi")
    await standin.idle()
    assert await standin.post_statuses(EU.id, "wamid.failed", CUSTOMER, ["failed"]) == [200]

    records = await read_all(settings.kafka_bootstrap or "", settings.topic)
    events = [decode_event(record.value) for record in records]
    assert [event.id for event in events] == [
        f"{wamid}:sent",
        f"{wamid}:delivered",
        f"{wamid}:read",
        "wamid.failed:failed",
    ]
    assert all(event.key == f"{EU.id}:{CUSTOMER}" for event in events)
    payload = events[-1].payload
    assert isinstance(payload, MessageStatus) and (payload.error or "").startswith("131026 ")


def test_faults_decode_from_json() -> None:
    faults = msgspec.json.decode(
        b'[{"code": 131047}, {"status": 503, "delay_s": 0.5}]', type=list[Fault]
    )
    assert faults == [Fault(code=131047), Fault(status=503, delay_s=0.5)]


# 7. Recipients (Meta's 2026 Cloud API): a phone, a business-scoped user id, a group
def test_a_recipient_gives_the_documented_request_fields() -> None:
    assert Recipient(phone=CUSTOMER).request_fields() == {
        "recipient_type": "individual",
        "to": CUSTOMER,
    }
    assert Recipient(user_id=BSUID).request_fields() == {
        "recipient_type": "individual",
        "recipient": BSUID,
    }
    # Both known: the phone wins, as with Meta, so only `to` is sent.
    assert Recipient(phone=CUSTOMER, user_id=BSUID).request_fields() == {
        "recipient_type": "individual",
        "to": CUSTOMER,
    }
    assert Recipient(group_id=GROUP).request_fields() == {"recipient_type": "group", "to": GROUP}


@pytest.mark.parametrize("nobody", [Recipient(), Recipient(phone="", user_id="", group_id="")])
async def test_a_recipient_with_nothing_is_a_value_error(
    graph: GraphClient, standin: StandIn, nobody: Recipient
) -> None:
    with pytest.raises(ValueError, match="recipient"):
        nobody.request_fields()
    with pytest.raises(ValueError):
        await graph.send_text(EU.id, EU.access_token, nobody, "Hi")
    with pytest.raises(ValueError):
        await graph.send_template(EU.id, EU.access_token, nobody, "order_update", "en_US")
    assert standin.sent == []


optional_ids = st.none() | st.text(max_size=6)


@given(phone=optional_ids, user_id=optional_ids, group_id=optional_ids)
def test_a_recipient_is_named_once_with_the_phone_first(
    phone: str | None, user_id: str | None, group_id: str | None
) -> None:
    recipient = Recipient(phone=phone, user_id=user_id, group_id=group_id)
    if not (phone or user_id or group_id):
        with pytest.raises(ValueError):
            recipient.request_fields()
        return
    fields = recipient.request_fields()
    assert len(set(fields) & {"to", "recipient"}) == 1
    if phone:
        assert fields == {"recipient_type": "individual", "to": phone}
    elif user_id:
        assert fields == {"recipient_type": "individual", "recipient": user_id}
    else:
        assert fields == {"recipient_type": "group", "to": group_id}


@pytest.mark.parametrize(
    ("to", "named", "recorded"),
    [
        (
            Recipient(phone=CUSTOMER),
            {"recipient_type": "individual", "to": CUSTOMER},
            (CUSTOMER, None, "individual"),
        ),
        (
            Recipient(user_id=BSUID),
            {"recipient_type": "individual", "recipient": BSUID},
            (None, BSUID, "individual"),
        ),
        (
            Recipient(user_id=PARENT_BSUID),
            {"recipient_type": "individual", "recipient": PARENT_BSUID},
            (None, PARENT_BSUID, "individual"),
        ),
        (
            Recipient(phone=CUSTOMER, user_id=BSUID),
            {"recipient_type": "individual", "to": CUSTOMER},
            (CUSTOMER, None, "individual"),
        ),
        (
            Recipient(group_id=GROUP),
            {"recipient_type": "group", "to": GROUP},
            (GROUP, None, "group"),
        ),
    ],
)
async def test_each_kind_of_recipient_arrives_as_documented(
    graph: GraphClient,
    standin: StandIn,
    to: Recipient,
    named: dict[str, str],
    recorded: tuple[str | None, str | None, str],
) -> None:
    text_wamid = await graph.send_text(EU.id, EU.access_token, to, "Hello")
    template_wamid = await graph.send_template(EU.id, EU.access_token, to, "order_update", "en_US")
    text, template = standin.sent
    assert text.body == {
        "messaging_product": "whatsapp",
        **named,
        "type": "text",
        "text": {"preview_url": False, "body": "Hello"},
    }
    assert template.body == {
        "messaging_product": "whatsapp",
        **named,
        "type": "template",
        "template": {"name": "order_update", "language": {"code": "en_US"}},
    }
    assert [sent.wamid for sent in standin.sent] == [text_wamid, template_wamid]
    for sent in standin.sent:
        assert (sent.to, sent.recipient, sent.recipient_type) == recorded
        assert sent.target.request_fields() == named


def raw_send(**recipient: Any) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", **recipient, "type": "text", "text": {"body": "Hi"}}


@pytest.mark.parametrize(
    ("payload", "contact", "recorded"),
    [
        (
            raw_send(to=CUSTOMER),
            {"input": CUSTOMER, "wa_id": CUSTOMER},
            (CUSTOMER, None, "individual"),
        ),
        (
            raw_send(recipient=BSUID),
            {"input": BSUID, "user_id": BSUID},
            (None, BSUID, "individual"),
        ),
        # Both: `to` takes precedence; no user_id in the answer (Meta's May 2026 text).
        (
            raw_send(to=CUSTOMER, recipient=BSUID),
            {"input": CUSTOMER, "wa_id": CUSTOMER},
            (CUSTOMER, BSUID, "individual"),
        ),
        (
            raw_send(recipient_type="individual", recipient=BSUID),
            {"input": BSUID, "user_id": BSUID},
            (None, BSUID, "individual"),
        ),
        (raw_send(recipient_type="group", to=GROUP), {"input": GROUP}, (GROUP, None, "group")),
    ],
)
async def test_the_answer_names_whom_it_went_to(
    session: aiohttp.ClientSession,
    graph_url: str,
    standin: StandIn,
    payload: dict[str, Any],
    contact: dict[str, str],
    recorded: tuple[str | None, str | None, str],
) -> None:
    response = await session.post(
        f"{graph_url}/{EU.id}/messages",
        json=payload,
        headers={"Authorization": f"Bearer {EU.access_token}"},
    )
    assert response.status == 200
    answer = await response.json()
    assert answer["contacts"] == [contact]
    [sent] = standin.sent
    assert answer["messages"] == [{"id": sent.wamid}]
    assert (sent.to, sent.recipient, sent.recipient_type) == recorded
    assert sent.body == payload


async def test_a_send_naming_no_one_is_metas_100(
    session: aiohttp.ClientSession, graph_url: str, standin: StandIn
) -> None:
    response = await session.post(
        f"{graph_url}/{EU.id}/messages",
        json=raw_send(recipient_type="individual"),
        headers={"Authorization": f"Bearer {EU.access_token}"},
    )
    assert response.status == 400
    error = (await response.json())["error"]
    assert (error["code"], error["type"]) == (100, "OAuthException")
    assert error["message"] == "(#100) The parameter to or recipient is required."
    assert error["error_data"] == {
        "messaging_product": "whatsapp",
        "details": "Param to or recipient is required",
    }
    assert error["fbtrace_id"]
    assert standin.sent == []


async def test_bsuid_recipients_not_supported_is_permanent(
    graph: GraphClient, standin: StandIn
) -> None:
    assert 131062 not in RETRYABLE_CODES
    standin.fail_next(EU.id, Fault(code=131062))
    to = Recipient(user_id=BSUID)
    error = await failure(graph.send_template(EU.id, EU.access_token, to, "otp", "en_US"))
    assert (error.status, error.code, error.retryable) == (400, 131062, False)
    assert error.title == BSUID_UNSUPPORTED
    assert str(error) == (
        "131062 Business-scoped User ID (BSUID) recipients are not supported for this message"
        " (HTTP 400)"
    )
    assert standin.sent == []


WAMID = re.compile(r"wamid\.([A-Za-z0-9+/]+={0,2})")


async def test_wamids_are_opaque_base64_as_metas_are(graph: GraphClient) -> None:
    """Padded standard base64, "+" and "/" included: nothing may assume a wamid is safe
    in a URL or a Redis key pattern without quoting it."""
    recipients = [TO, Recipient(user_id=BSUID), Recipient(group_id=GROUP)]
    wamids = [
        await graph.send_text(EU.id, EU.access_token, recipients[n % 3], f"#{n}") for n in range(90)
    ]
    assert len(set(wamids)) == len(wamids)
    encoded = []
    for wamid in wamids:
        match = WAMID.fullmatch(wamid)
        assert match, wamid
        raw = base64.b64decode(match[1], validate=True)
        assert base64.b64encode(raw).decode() == match[1]
        assert len(raw) % 3 != 0
        encoded.append(match[1])
    assert all(text.endswith("=") for text in encoded)
    assert any(text.endswith("==") for text in encoded)
    assert any(not text.endswith("==") for text in encoded)
    assert any("+" in text or "/" in text for text in encoded)


# 8. Status webhooks in Meta's 2026 shape, for each kind of recipient
PRICING = {
    "billable": False,
    "pricing_model": "PMP",
    "type": "free_customer_service",
    "category": "service",
}


def posted_values(seen: Capture) -> list[dict[str, Any]]:
    """The `value` of each webhook call received, each checked as signed with EU's secret."""
    values = []
    for body, header in seen.calls:
        assert signing_secret(body, header, [EU.app_secret, US.app_secret]) == EU.app_secret
        call = json.loads(body)
        [entry] = call["entry"]
        [change] = entry["changes"]
        assert change["field"] == "messages"
        values.append(change["value"])
    return values


def without_billing(status: dict[str, Any]) -> dict[str, Any]:
    """The status without `conversation`, after checking `pricing` is Meta's PMP shape."""
    if "pricing" in status:
        assert status["pricing"] == PRICING
    return {key: value for key, value in status.items() if key not in ("conversation", "pricing")}


async def send_and_capture(
    aiohttp_server: AiohttpServer,
    session: aiohttp.ClientSession,
    url: str,
    to: Recipient,
    **kwargs: Any,
) -> tuple[StandIn, str]:
    standin = make_standin(webhook_url=url, auto_statuses=("sent", "delivered", "read"), **kwargs)
    server = await aiohttp_server(create_app(standin))
    graph = GraphClient(session, str(server.make_url("/v21.0")))
    wamid = await graph.send_text(EU.id, EU.access_token, to, "Hi")
    await standin.idle()
    return standin, wamid


STAMP = str(int(NOW))


async def test_statuses_of_a_send_to_a_phone_whose_bsuid_is_known(
    aiohttp_server: AiohttpServer, session: aiohttp.ClientSession, capture: tuple[Capture, str]
) -> None:
    seen, url = capture
    standin, wamid = await send_and_capture(
        aiohttp_server, session, url, TO, users={CUSTOMER: BSUID}
    )
    await standin.post_statuses(EU.id, wamid, TO, ["failed"])
    sent, delivered, read, failed = posted_values(seen)
    for value, state in ((sent, "sent"), (delivered, "delivered"), (read, "read")):
        assert value["contacts"] == [{"wa_id": CUSTOMER, "user_id": BSUID}]
        [status] = value["statuses"]
        assert without_billing(status) == {
            "id": wamid,
            "status": state,
            "timestamp": STAMP,
            "recipient_id": CUSTOMER,
            "recipient_user_id": BSUID,
        }
    assert "pricing" in sent["statuses"][0] and "pricing" not in read["statuses"][0]
    # failed, to a phone: only recipient_id and errors; no contacts, no BSUID.
    assert "contacts" not in failed
    [status] = failed["statuses"]
    assert set(status) == {"id", "status", "timestamp", "recipient_id", "errors"}
    assert (status["recipient_id"], status["errors"][0]["code"]) == (CUSTOMER, 131026)


async def test_statuses_of_a_send_to_a_phone_whose_bsuid_is_not_known(
    aiohttp_server: AiohttpServer, session: aiohttp.ClientSession, capture: tuple[Capture, str]
) -> None:
    seen, url = capture
    _, wamid = await send_and_capture(aiohttp_server, session, url, TO)
    for value in posted_values(seen):
        assert value["contacts"] == [{"wa_id": CUSTOMER}]
        [status] = value["statuses"]
        assert (status["id"], status["recipient_id"]) == (wamid, CUSTOMER)
        assert "recipient_user_id" not in status


async def test_statuses_of_a_send_to_a_bsuid_do_not_show_the_phone(
    aiohttp_server: AiohttpServer, session: aiohttp.ClientSession, capture: tuple[Capture, str]
) -> None:
    seen, url = capture
    to = Recipient(user_id=BSUID)
    standin, wamid = await send_and_capture(
        aiohttp_server, session, url, to, users={CUSTOMER: BSUID}
    )
    errors = [{"code": 131062, "title": "BSUID recipients are not supported"}]
    await standin.post_statuses(EU.id, wamid, to, ["failed"], errors)
    *shown, failed = posted_values(seen)
    assert [value["statuses"][0]["status"] for value in shown] == ["sent", "delivered", "read"]
    for value in shown:
        assert value["contacts"] == [{"user_id": BSUID}]
        [status] = value["statuses"]
        assert without_billing(status) == {
            "id": wamid,
            "status": status["status"],
            "timestamp": STAMP,
            "recipient_user_id": BSUID,
        }
    assert "contacts" not in failed
    assert failed["statuses"] == [
        {
            "id": wamid,
            "status": "failed",
            "timestamp": STAMP,
            "recipient_user_id": BSUID,
            "errors": errors,
        }
    ]


async def test_statuses_of_a_group_send_come_per_participant(
    aiohttp_server: AiohttpServer, session: aiohttp.ClientSession, capture: tuple[Capture, str]
) -> None:
    seen, url = capture
    to = Recipient(group_id=GROUP)
    participants = [(CUSTOMER, BSUID), (None, OTHER_BSUID)]
    standin, wamid = await send_and_capture(
        aiohttp_server, session, url, to, groups={GROUP: participants}
    )
    await standin.post_statuses(EU.id, wamid, to, ["failed"])
    sent, delivered, read, failed = posted_values(seen)
    group = {"id": wamid, "timestamp": STAMP, "recipient_id": GROUP, "recipient_type": "group"}
    for value, state in ((sent, "sent"), (delivered, "delivered"), (read, "read")):
        assert [without_billing(status) for status in value["statuses"]] == [
            {
                **group,
                "status": state,
                "recipient_participant_id": CUSTOMER,
                "recipient_participant_user_id": BSUID,
            },
            {**group, "status": state, "recipient_participant_user_id": OTHER_BSUID},
        ]
    assert all(status["pricing"] == PRICING for status in sent["statuses"])
    # One contacts entry per participant, on delivered and read only.
    assert "contacts" not in sent
    for value in (delivered, read):
        assert value["contacts"] == [
            {"wa_id": CUSTOMER, "user_id": BSUID},
            {"user_id": OTHER_BSUID},
        ]
    assert "contacts" not in failed
    assert [
        {key: value for key, value in status.items() if key != "errors"}
        for status in failed["statuses"]
    ] == [
        {**group, "status": "failed", "recipient_participant_id": CUSTOMER},
        {**group, "status": "failed", "recipient_participant_user_id": OTHER_BSUID},
    ]
    assert all(status["errors"][0]["code"] == 131026 for status in failed["statuses"])


async def test_a_group_without_known_participants_gets_one_status(
    aiohttp_server: AiohttpServer, session: aiohttp.ClientSession, capture: tuple[Capture, str]
) -> None:
    seen, url = capture
    _, wamid = await send_and_capture(aiohttp_server, session, url, Recipient(group_id=GROUP))
    values = posted_values(seen)
    assert [value["statuses"][0]["status"] for value in values] == ["sent", "delivered", "read"]
    for value in values:
        assert "contacts" not in value
        [status] = value["statuses"]
        assert without_billing(status) == {
            "id": wamid,
            "status": status["status"],
            "timestamp": STAMP,
            "recipient_id": GROUP,
            "recipient_type": "group",
        }


async def test_users_and_groups_are_set_over_the_control_endpoints(
    aiohttp_server: AiohttpServer, session: aiohttp.ClientSession, capture: tuple[Capture, str]
) -> None:
    seen, url = capture
    standin = make_standin(webhook_url=url, auto_statuses=("delivered",))
    server = await aiohttp_server(create_app(standin))
    root = str(server.make_url(""))
    added = await session.post(f"{root}/_standin/users", json={CUSTOMER: BSUID})
    assert (added.status, await added.json()) == (200, {CUSTOMER: BSUID})
    grouped = await session.post(
        f"{root}/_standin/groups", json={GROUP: [[CUSTOMER, BSUID], [None, OTHER_BSUID]]}
    )
    assert grouped.status == 200
    assert await (await session.get(f"{root}/_standin/groups")).json() == {
        GROUP: [[CUSTOMER, BSUID], [None, OTHER_BSUID]]
    }
    assert await (await session.get(f"{root}/_standin/users")).json() == {CUSTOMER: BSUID}
    assert standin.users == {CUSTOMER: BSUID}
    assert standin.groups == {GROUP: [(CUSTOMER, BSUID), (None, OTHER_BSUID)]}
    refused: list[tuple[str, Any]] = [
        ("users", [CUSTOMER, BSUID]),
        ("users", {CUSTOMER: 1}),
        ("groups", {GROUP: [CUSTOMER]}),
        ("groups", {GROUP: [[CUSTOMER]]}),
    ]
    for edge, body in refused:
        assert (await session.post(f"{root}/_standin/{edge}", json=body)).status == 400
    assert standin.users == {CUSTOMER: BSUID} and len(standin.groups[GROUP]) == 2

    graph = GraphClient(session, f"{root}/v21.0")
    await graph.send_text(EU.id, EU.access_token, TO, "Hi")
    await graph.send_text(EU.id, EU.access_token, Recipient(group_id=GROUP), "Hi all")
    await standin.idle()
    to_phone, to_group = sorted(posted_values(seen), key=lambda value: len(value["statuses"]))
    assert to_phone["statuses"][0]["recipient_user_id"] == BSUID
    assert [status["recipient_participant_user_id"] for status in to_group["statuses"]] == [
        BSUID,
        OTHER_BSUID,
    ]
    sent = await (await session.get(f"{root}/_standin/sent")).json()
    assert [(item["to"], item["recipient"], item["recipient_type"]) for item in sent] == [
        (CUSTOMER, None, "individual"),
        (GROUP, None, "group"),
    ]


# 9. Media: a customer's media by its id, then its short-lived URL
PHOTO = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 40
PHOTO_ID = "1037543291543636"
MB = 1024 * 1024
KB = 1024


def webp(size: int, *, animated: bool = False) -> bytes:
    """A WebP of `size` bytes: extended (VP8X) with the animation flag, or plain VP8."""
    head = b"VP8X" + (10).to_bytes(4, "little") + bytes([0x02 if animated else 0]) + bytes(9)
    if not animated:
        head = b"VP8 " + (10).to_bytes(4, "little") + bytes(10)
    body = b"WEBP" + head
    return (b"RIFF" + (size - 8).to_bytes(4, "little") + body).ljust(size, b"\0")


async def test_a_customers_media_is_fetched_by_id_then_url(
    graph: GraphClient, standin: StandIn
) -> None:
    standin.seed_media(PHOTO_ID, PHOTO, "image/jpeg")
    info = await graph.media(PHOTO_ID, EU.access_token)
    assert info == MediaInfo(
        url=info.url,
        mime_type="image/jpeg",
        sha256=hashlib.sha256(PHOTO).hexdigest(),
        file_size=len(PHOTO),
    )
    assert "/whatsapp_business/attachments/?" in info.url and f"mid={PHOTO_ID}" in info.url
    assert await graph.download(info.url, EU.access_token, max_bytes=len(PHOTO)) == PHOTO
    # A customer's media: any of the business's numbers may have it.
    other = await graph.media(PHOTO_ID, US.access_token)
    assert await graph.download(other.url, US.access_token, max_bytes=MB) == PHOTO


async def test_the_media_lookup_answers_in_metas_shape(
    session: aiohttp.ClientSession, graph_url: str, standin: StandIn
) -> None:
    standin.seed_media(PHOTO_ID, PHOTO, "image/jpeg")
    response = await session.get(
        f"{graph_url}/{PHOTO_ID}", headers={"Authorization": f"Bearer {EU.access_token}"}
    )
    assert response.status == 200
    answer = await response.json()
    assert set(answer) == {"messaging_product", "url", "mime_type", "sha256", "file_size", "id"}
    assert (answer["messaging_product"], answer["id"], answer["file_size"]) == (
        "whatsapp",
        PHOTO_ID,
        len(PHOTO),
    )
    download = await session.get(
        answer["url"], headers={"Authorization": f"Bearer {EU.access_token}"}
    )
    assert (download.status, download.content_type) == (200, "image/jpeg")
    assert await download.read() == PHOTO


async def test_an_expired_url_is_404_and_the_media_id_gives_a_new_one(
    graph: GraphClient, standin: StandIn
) -> None:
    standin.seed_media(PHOTO_ID, PHOTO, "image/jpeg")
    info = await graph.media(PHOTO_ID, EU.access_token)
    assert standin.expire_media_urls() == 1
    error = await failure(graph.download(info.url, EU.access_token, max_bytes=MB))
    assert (error.status, error.code, error.retryable) == (404, None, False)
    fresh = await graph.media(PHOTO_ID, EU.access_token)
    assert fresh.url != info.url
    assert await graph.download(fresh.url, EU.access_token, max_bytes=MB) == PHOTO


async def test_media_urls_expire_after_their_time_to_live(
    aiohttp_server: AiohttpServer, session: aiohttp.ClientSession
) -> None:
    now = [NOW]
    standin = make_standin(clock=lambda: now[0], media_url_ttl_s=300)
    standin.seed_media(PHOTO_ID, PHOTO, "image/jpeg")
    server = await aiohttp_server(create_app(standin))
    graph = GraphClient(session, str(server.make_url("/v21.0")), timeout_s=TIMEOUT_S)
    info = await graph.media(PHOTO_ID, EU.access_token)
    now[0] += 299
    assert await graph.download(info.url, EU.access_token, max_bytes=MB) == PHOTO
    now[0] += 1
    assert (await failure(graph.download(info.url, EU.access_token, max_bytes=MB))).status == 404
    fresh = await graph.media(PHOTO_ID, EU.access_token)
    assert await graph.download(fresh.url, EU.access_token, max_bytes=MB) == PHOTO


async def test_a_media_url_needs_the_bearer_token(
    session: aiohttp.ClientSession, graph: GraphClient, standin: StandIn
) -> None:
    standin.seed_media(PHOTO_ID, PHOTO, "image/jpeg")
    info = await graph.media(PHOTO_ID, EU.access_token)
    assert (await session.get(info.url)).status == 401
    error = await failure(graph.download(info.url, "not-a-token", max_bytes=MB))
    assert (error.status, error.retryable) == (401, False)
    # The URL is still good with the token.
    assert await graph.download(info.url, EU.access_token, max_bytes=MB) == PHOTO


async def test_a_download_past_max_bytes_is_refused(graph: GraphClient, standin: StandIn) -> None:
    standin.seed_media(PHOTO_ID, PHOTO, "image/jpeg")
    info = await graph.media(PHOTO_ID, EU.access_token)
    error = await failure(graph.download(info.url, EU.access_token, max_bytes=len(PHOTO) - 1))
    assert (error.code, error.retryable) == (None, False)
    assert error.title == f"the media is larger than {len(PHOTO) - 1} bytes"
    assert await graph.download(info.url, EU.access_token, max_bytes=len(PHOTO)) == PHOTO


async def test_a_download_without_a_length_is_cut_off_as_it_streams(
    aiohttp_server: AiohttpServer, session: aiohttp.ClientSession
) -> None:
    """No Content-Length to go by: the client counts as it reads and stops."""

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(64):
            await response.write(b"x" * (64 * KB))
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/file", endless)
    server = await aiohttp_server(app)
    graph = GraphClient(session, str(server.make_url("/v21.0")), timeout_s=2.0)
    error = await failure(graph.download(str(server.make_url("/file")), TOKEN, max_bytes=200 * KB))
    assert error.title == f"the media is larger than {200 * KB} bytes" and not error.retryable
    small = await graph.download(str(server.make_url("/file")), TOKEN, max_bytes=4 * MB)
    assert len(small) == 4 * MB


async def test_an_unknown_or_forbidden_media_id_is_metas_100(
    graph: GraphClient, standin: StandIn
) -> None:
    error = await failure(graph.media("999999999999999", EU.access_token))
    assert (error.status, error.code, error.retryable) == (400, 100, False)
    assert "999999999999999" in error.title
    assert (await failure(graph.media("999999999999999", "nope"))).code == 190
    standin.seed_media(PHOTO_ID, PHOTO, "image/jpeg", phone_number_id=EU.id)
    # Asked for as another number's: Meta answers as for an object it does not have.
    error = await failure(graph.media(PHOTO_ID, EU.access_token, phone_number_id=US.id))
    assert error.code == 100
    assert (await graph.media(PHOTO_ID, EU.access_token, phone_number_id=EU.id)).file_size


async def test_a_media_lookup_takes_faults_by_media_id(
    graph: GraphClient, standin: StandIn
) -> None:
    standin.seed_media(PHOTO_ID, PHOTO, "image/jpeg")
    standin.fail_next(PHOTO_ID, Fault(status=500, code=131000))
    error = await failure(graph.media(PHOTO_ID, EU.access_token))
    assert (error.status, error.code, error.retryable) == (500, 131000, True)
    assert (await graph.media(PHOTO_ID, EU.access_token)).mime_type == "image/jpeg"


async def test_media_over_the_control_endpoints(
    session: aiohttp.ClientSession, graph_url: str, graph: GraphClient, standin: StandIn
) -> None:
    root = graph_url.removesuffix("/v21.0")
    added = await session.post(
        f"{root}/_standin/media", params={"mime_type": "audio/ogg; codecs=opus"}, data=b"OggS..."
    )
    assert added.status == 200
    media_id = (await added.json())["id"]
    assert media_id.isdigit() and standin.media[media_id].data == b"OggS..."
    named = await session.post(
        f"{root}/_standin/media", params={"mime_type": "image/jpeg", "id": PHOTO_ID}, data=PHOTO
    )
    assert (await named.json()) == {"id": PHOTO_ID}
    assert (await session.post(f"{root}/_standin/media", data=b"x")).status == 400
    listed = await (await session.get(f"{root}/_standin/media")).json()
    assert [(item["id"], item["mime_type"], item["file_size"]) for item in listed] == [
        (media_id, "audio/ogg; codecs=opus", 7),
        (PHOTO_ID, "image/jpeg", len(PHOTO)),
    ]
    info = await graph.media(media_id, EU.access_token)
    expired = await session.post(f"{root}/_standin/media/expire")
    assert await expired.json() == {"expired": 1}
    assert (await failure(graph.download(info.url, EU.access_token, max_bytes=MB))).status == 404


# 10. Media uploads: Meta's types and sizes per kind
UPLOADS = [
    ("image/jpeg", PHOTO, "photo.jpg"),
    ("image/png", b"\x89PNG\r\n\x1a\n" + bytes(500), "screenshot.png"),
    ("video/mp4", b"\x00\x00\x00\x18ftypmp42" + bytes(2000), "clip.mp4"),
    ("video/3gpp", b"\x00\x00\x00\x14ftyp3gp4" + bytes(2000), "clip.3gp"),
    ("audio/ogg; codecs=opus", b"OggS" + bytes(28) + b"OpusHead" + bytes(500), "voice.ogg"),
    ("audio/mpeg", b"ID3" + bytes(900), "song.mp3"),
    ("audio/aac", b"\xff\xf1" + bytes(900), "note.aac"),
    ("application/pdf", b"%PDF-1.7\n" + bytes(3000), "invoice.pdf"),
    ("text/plain", b"order 1234: shipped", "order.txt"),
    ("image/webp", webp(100 * KB), "sticker.webp"),
    ("image/webp", webp(500 * KB, animated=True), "animated.webp"),
    ("image/jpeg", b"\xff\xd8" + bytes(5 * MB - 2), "largest.jpg"),  # exactly 5 MB
]


@pytest.mark.parametrize(("mime_type", "data", "filename"), UPLOADS)
async def test_an_upload_of_each_kind_is_kept_and_can_be_fetched(
    graph: GraphClient, standin: StandIn, mime_type: str, data: bytes, filename: str
) -> None:
    media_id = await graph.upload(EU.id, EU.access_token, data, mime_type, filename)
    assert media_id.isdigit()
    stored = standin.media[media_id]
    assert (stored.phone_number_id, stored.filename, stored.mime_type) == (
        EU.id,
        filename,
        mime_type,
    )
    info = await graph.media(media_id, EU.access_token)
    assert (info.mime_type, info.sha256, info.file_size) == (
        mime_type,
        hashlib.sha256(data).hexdigest(),
        len(data),
    )
    assert await graph.download(info.url, EU.access_token, max_bytes=len(data)) == data


BAD_UPLOADS = [
    ("image/gif", b"GIF89a" + bytes(100), "not a supported type"),
    ("application/zip", b"PK\x03\x04" + bytes(100), "not a supported type"),
    ("audio/ogg; codecs=vorbis", b"OggS" + bytes(100), "Opus"),
    ("image/jpeg", b"\xff\xd8" + bytes(5 * MB - 1), "at most 5 MB"),
    ("image/png", b"", "empty"),
    ("video/mp4", bytes(16 * MB + 1), "at most 16 MB"),
    ("audio/mpeg", bytes(16 * MB + 1), "at most 16 MB"),
    ("image/webp", webp(100 * KB + 1), "at most 100 KB"),
    ("image/webp", webp(500 * KB + 1, animated=True), "at most 500 KB"),
]


@pytest.mark.parametrize(("mime_type", "data", "why"), BAD_UPLOADS)
async def test_an_upload_of_a_type_or_size_meta_does_not_take_is_131053(
    graph: GraphClient, standin: StandIn, mime_type: str, data: bytes, why: str
) -> None:
    error = await failure(graph.upload(EU.id, EU.access_token, data, mime_type, "file"))
    assert (error.status, error.code, error.retryable) == (400, 131053, False)
    assert str(error) == "131053 Media upload error (HTTP 400)"
    if why == "not a supported type":
        assert error.title.startswith("Param file must be a file with one of the following types")
    else:
        assert why in error.title
    assert standin.media == {}
    # The client's own table says the same before anything is sent.
    kind = "sticker" if mime_type == "image/webp" else mime_type.split("/")[0]
    kind = {"application": "document", "text": "document"}.get(kind, kind)
    assert media_problem(kind, mime_type, len(data), animated=b"VP8X" in data[:16]) is not None


def test_the_clients_media_table_is_metas() -> None:
    assert {kind: rule.max_bytes for kind, rule in MEDIA_RULES.items()} == {
        "audio": 16 * MB,
        "document": 100 * MB,
        "image": 5 * MB,
        "sticker": 500 * KB,
        "video": 16 * MB,
    }
    assert media_problem("image", "image/jpeg", 5 * MB) is None
    assert media_problem("sticker", "image/webp", 100 * KB + 1) == (
        "a sticker may be at most 100 KB; this one is 102401 bytes"
    )
    assert media_problem("sticker", "image/webp", 100 * KB + 1, animated=True) is None
    assert media_problem("document", "application/pdf", 100 * MB) is None
    assert media_problem("document", "application/pdf", 100 * MB + 1) is not None
    assert media_problem("image", "image/webp", 10) is not None
    assert media_problem("voice", "audio/ogg", 10) is not None
    assert media_problem("audio", "audio/ogg; codecs=opus", 10) is None


@pytest.mark.parametrize(
    ("fields", "details"),
    [
        ({"type": "image/jpeg", "file": PHOTO}, "Param messaging_product must be 'whatsapp'"),
        ({"messaging_product": "whatsapp", "type": "image/jpeg"}, "Param file is required"),
        ({"messaging_product": "whatsapp", "file": PHOTO}, "Param type is required"),
    ],
)
async def test_a_malformed_upload_is_100(
    session: aiohttp.ClientSession,
    graph_url: str,
    standin: StandIn,
    fields: dict[str, Any],
    details: str,
) -> None:
    form = aiohttp.FormData()
    for name, value in fields.items():
        if name == "file":
            form.add_field(name, value, filename="photo.jpg", content_type="image/jpeg")
        else:
            form.add_field(name, value)
    response = await session.post(
        f"{graph_url}/{EU.id}/media",
        data=form,
        headers={"Authorization": f"Bearer {EU.access_token}"},
    )
    assert response.status == 400
    error = (await response.json())["error"]
    assert (error["code"], error["error_data"]["details"]) == (100, details)
    not_multipart = await session.post(
        f"{graph_url}/{EU.id}/media",
        json={"messaging_product": "whatsapp"},
        headers={"Authorization": f"Bearer {EU.access_token}"},
    )
    assert not_multipart.status == 400
    assert standin.media == {}


async def test_an_upload_checks_the_token_and_takes_faults(
    graph: GraphClient, standin: StandIn
) -> None:
    error = await failure(graph.upload(EU.id, "nope", PHOTO, "image/jpeg", "photo.jpg"))
    assert (error.status, error.code) == (401, 190)
    standin.fail_next(EU.id, Fault(status=503))
    error = await failure(graph.upload(EU.id, EU.access_token, PHOTO, "image/jpeg", "photo.jpg"))
    assert (error.status, error.retryable) == (503, True)
    assert standin.media == {}
    with pytest.raises(ValueError, match="MIME"):
        await graph.upload(EU.id, EU.access_token, PHOTO, "", "photo.jpg")


# 11. Sends of every kind, in Meta's documented shape
async def uploaded(graph: GraphClient, mime_type: str, data: bytes, filename: str) -> str:
    return await graph.upload(EU.id, EU.access_token, data, mime_type, filename)


def envelope(**fields: Any) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": CUSTOMER,
        **fields,
    }


async def test_media_messages_arrive_with_captions_and_filename(
    graph: GraphClient, standin: StandIn
) -> None:
    image = await uploaded(graph, "image/jpeg", PHOTO, "photo.jpg")
    pdf = await uploaded(graph, "application/pdf", UPLOADS[7][1], "invoice.pdf")
    voice = await uploaded(graph, "audio/ogg; codecs=opus", UPLOADS[4][1], "voice.ogg")
    video = await uploaded(graph, "video/mp4", UPLOADS[2][1], "clip.mp4")
    sticker = await uploaded(graph, "image/webp", webp(2 * KB), "s.webp")
    messages: list[dict[str, Any]] = [
        {"type": "image", "image": {"id": image, "caption": "The broken hinge"}},
        {
            "type": "document",
            "document": {"id": pdf, "caption": "Your invoice", "filename": "invoice-1234.pdf"},
        },
        {"type": "audio", "audio": {"id": voice}},
        {"type": "video", "video": {"id": video, "caption": "How to fit it"}},
        {"type": "sticker", "sticker": {"id": sticker}},
        {"type": "image", "image": {"link": "https://example.com/p.jpg", "caption": "By link"}},
    ]
    wamids = [await graph.send(EU.id, EU.access_token, TO, message) for message in messages]
    assert [sent.body for sent in standin.sent] == [envelope(**message) for message in messages]
    assert [sent.type for sent in standin.sent] == [
        "image",
        "document",
        "audio",
        "video",
        "sticker",
        "image",
    ]
    assert [sent.wamid for sent in standin.sent] == wamids and len(set(wamids)) == 6


@pytest.mark.parametrize(
    ("message", "code", "details"),
    [
        ({"type": "image", "image": {"id": "404404404404404"}}, 131053, "was not found"),
        ({"type": "video", "video": {"id": "PHOTO"}}, 131053, "a video must be one of"),
        ({"type": "sticker", "sticker": {"id": "PHOTO"}}, 131053, "a sticker must be one of"),
        ({"type": "audio", "audio": {"id": "PHOTO", "caption": "x"}}, 100, "caption"),
        ({"type": "sticker", "sticker": {"id": "PHOTO", "caption": "x"}}, 100, "caption"),
        ({"type": "image", "image": {"id": "PHOTO", "caption": "x" * 1025}}, 131009, "1024"),
        ({"type": "image", "image": {"id": "PHOTO", "filename": "a.jpg"}}, 100, "filename"),
        ({"type": "image", "image": {"id": "PHOTO", "link": "https://x.io/a"}}, 100, "not both"),
        ({"type": "image", "image": {"caption": "nothing"}}, 100, "not both"),
        ({"type": "image", "image": {"link": "ftp://example.com/a.jpg"}}, 131009, "http(s)"),
        ({"type": "document", "document": {"id": "PHOTO", "filename": ""}}, 100, "filename"),
    ],
)
async def test_bad_media_messages_are_refused_as_meta_does(
    graph: GraphClient, standin: StandIn, message: dict[str, Any], code: int, details: str
) -> None:
    photo = await uploaded(graph, "image/jpeg", PHOTO, "photo.jpg")
    message = json.loads(json.dumps(message).replace('"PHOTO"', json.dumps(photo)))
    error = await failure(graph.send(EU.id, EU.access_token, TO, message))
    assert (error.status, error.code, error.retryable) == (400, code, False)
    assert details in error.title
    assert standin.sent == []


async def test_a_document_may_be_any_uploaded_file(graph: GraphClient, standin: StandIn) -> None:
    photo = await uploaded(graph, "image/jpeg", PHOTO, "photo.jpg")
    message = {"type": "document", "document": {"id": photo, "filename": "photo.jpg"}}
    assert await graph.send(EU.id, EU.access_token, TO, message)


# Templates: a header image, two body variables and a URL button with its variable
ORDER_SHIPPED = Template(
    name="order_shipped",
    language="en_US",
    category="UTILITY",
    components=[
        {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW..."]}},
        {
            "type": "BODY",
            "text": "Hi {{1}}, your order {{2}} is on its way.",
            "example": {"body_text": [["Ana", "#1234"]]},
        },
        {"type": "FOOTER", "text": "Reply STOP to opt out"},
        {
            "type": "BUTTONS",
            "buttons": [
                {"type": "URL", "text": "Track it", "url": "https://shop.example/track/{{1}}"},
                {"type": "QUICK_REPLY", "text": "Talk to us"},
                {"type": "PHONE_NUMBER", "text": "Call", "phone_number": "+15550100"},
            ],
        },
    ],
)
WELCOME = Template(
    name="welcome",
    language="en_US",
    components=[
        {"type": "HEADER", "format": "TEXT", "text": "Welcome, {{1}}"},
        {"type": "BODY", "text": "Thanks for writing to us."},
    ],
)
NAMED = Template(
    name="appointment",
    language="nl",
    parameter_format="NAMED",
    components=[{"type": "BODY", "text": "Hoi {{first_name}}, tot {{day}}!"}],
)


def shipped_components(
    image: str, *, body: list[str] | None = None, url: bool = True
) -> list[dict[str, Any]]:
    components: list[dict[str, Any]] = [
        {"type": "header", "parameters": [{"type": "image", "image": {"id": image}}]},
        {
            "type": "body",
            "parameters": [
                {"type": "text", "text": text}
                for text in (body if body is not None else ["Ana", "#1234"])
            ],
        },
    ]
    if url:
        components.append(
            {
                "type": "button",
                "sub_type": "url",
                "index": "0",
                "parameters": [{"type": "text", "text": "1234"}],
            }
        )
    return components


@pytest.fixture
def with_templates(standin: StandIn) -> StandIn:
    standin.set_templates(
        WABA,
        [
            ORDER_SHIPPED,
            WELCOME,
            NAMED,
            Template(name="paused_one", language="en_US", status="PAUSED"),
            Template(name="pending_one", language="en_US", status="PENDING"),
        ],
    )
    return standin


async def test_a_template_with_header_media_body_variables_and_a_url_button_is_accepted(
    graph: GraphClient, with_templates: StandIn
) -> None:
    image = await uploaded(graph, "image/jpeg", PHOTO, "parcel.jpg")
    components = shipped_components(image)
    wamid = await graph.send_template(
        EU.id, EU.access_token, TO, "order_shipped", "en_US", components=components
    )
    [sent] = with_templates.sent
    assert sent.wamid == wamid
    assert sent.body == envelope(
        type="template",
        template={"name": "order_shipped", "language": {"code": "en_US"}, "components": components},
    )
    # A quick reply's payload is optional; giving it is fine too.
    quick = {
        "type": "button",
        "sub_type": "quick_reply",
        "index": 1,
        "parameters": [{"type": "payload", "payload": "talk"}],
    }
    assert await graph.send_template(
        EU.id, EU.access_token, TO, "order_shipped", "en_US", components=[*components, quick]
    )
    # A header image by link, a text header's variable, named body parameters.
    by_link = shipped_components(image)
    by_link[0]["parameters"][0]["image"] = {"link": "https://shop.example/parcel.jpg"}
    assert await graph.send_template(
        EU.id, EU.access_token, TO, "order_shipped", "en_US", components=by_link
    )
    header = [{"type": "header", "parameters": [{"type": "text", "text": "Ana"}]}]
    assert await graph.send_template(
        EU.id, EU.access_token, TO, "welcome", "en_US", components=header
    )
    named = [
        {
            "type": "body",
            "parameters": [
                {"type": "text", "parameter_name": "day", "text": "maandag"},
                {"type": "text", "parameter_name": "first_name", "text": "Ana"},
            ],
        }
    ]
    assert await graph.send_template(
        EU.id, EU.access_token, TO, "appointment", "nl", components=named
    )


@pytest.mark.parametrize(
    ("name", "language", "components", "code", "details"),
    [
        (
            "order_shipped",
            "en_US",
            lambda image: shipped_components(image, body=["Ana"]),
            132000,
            "body: number of localizable_params (1) does not match the expected number of params (2)",
        ),
        (
            "order_shipped",
            "en_US",
            lambda image: shipped_components(image, body=["Ana", "#1234", "extra"]),
            132000,
            "body: number of localizable_params (3)",
        ),
        (
            "order_shipped",
            "en_US",
            lambda image: shipped_components(image, url=False),
            132000,
            "button at index 0 (URL): number of localizable_params (0) does not match the"
            " expected number of params (1)",
        ),
        (
            "order_shipped",
            "en_US",
            lambda image: shipped_components(image)[1:],
            132000,
            "header: number of localizable_params (0)",
        ),
        (
            "order_shipped",
            "en_US",
            lambda image: [
                {"type": "header", "parameters": [{"type": "text", "text": "Hi"}]},
                *shipped_components(image)[1:],
            ],
            132012,
            "header: Format mismatch, expected IMAGE, received TEXT",
        ),
        (
            "order_shipped",
            "en_US",
            lambda image: [
                *shipped_components(image),
                {"type": "button", "sub_type": "url", "index": "2", "parameters": []},
            ],
            131009,
            "button at index 2 is PHONE_NUMBER, not url",
        ),
        (
            "order_shipped",
            "en_US",
            lambda image: [
                *shipped_components(image),
                {"type": "button", "sub_type": "quick_reply", "index": "5", "parameters": []},
            ],
            131009,
            "button at index 5 does not exist",
        ),
        (
            "order_shipped",
            "en_US",
            lambda image: shipped_components(image, body=["Ana", "x" * 1000]),
            132005,
            "once filled in",
        ),
        (
            "order_shipped",
            "en_US",
            lambda image: shipped_components(image, body=["Ana", ""]),
            100,
            "['text'] is required",
        ),
        ("order_shipped", "nl", lambda image: [], 132001, "does not exist in nl"),
        ("no_such_template", "en_US", lambda image: [], 132001, "(no_such_template)"),
        ("pending_one", "en_US", lambda image: [], 132001, "does not exist"),
        ("paused_one", "en_US", lambda image: [], 132015, "paused"),
        ("welcome", "en_US", lambda image: [], 132000, "header: number of localizable_params (0)"),
        (
            "appointment",
            "nl",
            lambda image: [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "parameter_name": "voornaam", "text": "Ana"},
                        {"type": "text", "parameter_name": "day", "text": "maandag"},
                    ],
                }
            ],
            132000,
            "'voornaam'",
        ),
        (
            "order_shipped",
            "en_US",
            lambda image: [{"type": "footer", "parameters": []}],
            100,
            "header, body, button",
        ),
    ],
)
async def test_a_template_that_does_not_fit_its_definition_is_refused(
    graph: GraphClient,
    with_templates: StandIn,
    name: str,
    language: str,
    components: Any,
    code: int,
    details: str,
) -> None:
    image = await uploaded(graph, "image/jpeg", PHOTO, "parcel.jpg")
    error = await failure(
        graph.send_template(
            EU.id, EU.access_token, TO, name, language, components=components(image)
        )
    )
    assert (error.status, error.code, error.retryable) == (400, code, False)
    assert details in error.title
    assert with_templates.sent == []


async def test_a_missing_variable_reads_as_meta_words_it(
    graph: GraphClient, with_templates: StandIn
) -> None:
    image = await uploaded(graph, "image/jpeg", PHOTO, "parcel.jpg")
    error = await failure(
        graph.send_template(
            EU.id,
            EU.access_token,
            TO,
            "order_shipped",
            "en_US",
            components=shipped_components(image, body=["Ana"]),
        )
    )
    assert str(error) == (
        "132000 Number of parameters does not match the expected number of params (HTTP 400)"
    )
    assert 132000 not in RETRYABLE_CODES and 131053 not in RETRYABLE_CODES
    assert 132001 not in RETRYABLE_CODES
    unknown = await failure(graph.send_template(EU.id, EU.access_token, TO, "nope", "en_US"))
    assert str(unknown) == "132001 Template name does not exist in the translation (HTTP 400)"


async def test_a_template_header_naming_media_the_stand_in_lacks_is_131053(
    graph: GraphClient, with_templates: StandIn
) -> None:
    components = shipped_components("404404404404404")
    error = await failure(
        graph.send_template(
            EU.id, EU.access_token, TO, "order_shipped", "en_US", components=components
        )
    )
    assert (error.code, error.retryable) == (131053, False)


async def test_templates_are_not_checked_for_an_account_without_known_templates(
    graph: GraphClient, standin: StandIn
) -> None:
    """No templates given for the account: the stand-in cannot check, and takes it."""
    assert standin.templates_for(EU.id) is None
    assert await graph.send_template(
        EU.id,
        EU.access_token,
        TO,
        "anything",
        "en_US",
        components=[{"type": "body", "parameters": [{"type": "text", "text": "x"}]}],
    )
    bad_shape = [{"type": "body", "parameters": [{"type": "text"}]}]
    error = await failure(
        graph.send_template(EU.id, EU.access_token, TO, "anything", "en_US", components=bad_shape)
    )
    assert error.code == 100


# Interactive: reply buttons and lists
BUTTONS: dict[str, Any] = {
    "type": "button",
    "header": {"type": "text", "text": "Your order #1234"},
    "body": {"text": "Did the replacement part fit?"},
    "footer": {"text": "Support EU"},
    "action": {
        "buttons": [
            {"type": "reply", "reply": {"id": "fit-yes", "title": "Yes, thanks"}},
            {"type": "reply", "reply": {"id": "fit-no", "title": "No, still broken"}},
            {"type": "reply", "reply": {"id": "agent", "title": "Talk to a person"}},
        ]
    },
}
LIST: dict[str, Any] = {
    "type": "list",
    "header": {"type": "text", "text": "Opening hours"},
    "body": {"text": "Which shop do you mean?"},
    "footer": {"text": "Tap one"},
    "action": {
        "button": "Choose a shop",
        "sections": [
            {
                "title": "Amsterdam",
                "rows": [
                    {"id": "ams-centre", "title": "Centre", "description": "Damrak 1"},
                    {"id": "ams-zuid", "title": "Zuid"},
                ],
            },
            {
                "title": "Rotterdam",
                "rows": [{"id": "rtm", "title": "Coolsingel", "description": "Open on Sundays"}],
            },
        ],
    },
}


def changed(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of `base` with the value at "a.b.0.c" replaced (None: removed)."""
    copy: dict[str, Any] = json.loads(json.dumps(base))
    *parents, last = path.split(".")
    node: Any = copy
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    index: Any = int(last) if isinstance(node, list) else last
    if value is None:
        del node[index]
    else:
        node[index] = value
    return copy


async def test_reply_buttons_and_a_list_are_accepted(graph: GraphClient, standin: StandIn) -> None:
    image = await uploaded(graph, "image/jpeg", PHOTO, "parcel.jpg")
    with_image = changed(BUTTONS, "header", {"type": "image", "image": {"id": image}})
    for interactive in (BUTTONS, LIST, with_image):
        await graph.send(
            EU.id, EU.access_token, TO, {"type": "interactive", "interactive": interactive}
        )
    assert [sent.body for sent in standin.sent] == [
        envelope(type="interactive", interactive=interactive)
        for interactive in (BUTTONS, LIST, with_image)
    ]


FOUR_BUTTONS = [
    *BUTTONS["action"]["buttons"],
    {"type": "reply", "reply": {"id": "4", "title": "Four"}},
]
ELEVEN_ROWS = [{"id": f"row-{n}", "title": f"Row {n}"} for n in range(11)]


@pytest.mark.parametrize(
    ("interactive", "code", "details"),
    [
        (changed(BUTTONS, "action.buttons", FOUR_BUTTONS), 131009, "Max allowed buttons: 3"),
        (changed(BUTTONS, "action.buttons", []), 100, "['buttons'] is required"),
        (
            changed(BUTTONS, "action.buttons.0.reply.title", "Yes, thank you so much"),
            131009,
            "['title'] must be at most 20 characters long",
        ),
        (changed(BUTTONS, "action.buttons.0.reply.id", "x" * 257), 131009, "at most 256"),
        (changed(BUTTONS, "action.buttons.1.reply.id", "fit-yes"), 131009, "unique"),
        (changed(BUTTONS, "action.buttons.0.type", "url"), 100, "'type': 'reply'"),
        (changed(BUTTONS, "body.text", "x" * 1025), 131009, "at most 1024"),
        (changed(BUTTONS, "body", None), 100, "interactive['body']['text'] is required"),
        (changed(BUTTONS, "footer.text", "x" * 61), 131009, "at most 60"),
        (changed(BUTTONS, "header.text", "x" * 61), 131009, "at most 60"),
        (changed(BUTTONS, "type", "carousel_of_doom"), 100, "interactive['type']"),
        (changed(LIST, "action.button", "Choose one of our shops"), 131009, "at most 20"),
        (
            changed(LIST, "action.sections.0.rows.0.title", "Amsterdam Centre (Damrak)"),
            131009,
            "at most 24",
        ),
        (changed(LIST, "action.sections.0.rows.0.description", "x" * 73), 131009, "at most 72"),
        (changed(LIST, "action.sections.0.title", "x" * 25), 131009, "at most 24"),
        (changed(LIST, "action.sections.0.title", None), 100, "['title'] is required"),
        (changed(LIST, "action.sections.1.rows.0.id", "ams-zuid"), 131009, "unique"),
        (
            changed(LIST, "action.sections", [{"title": "All", "rows": ELEVEN_ROWS}]),
            131009,
            "Max: 10 across all sections",
        ),
        (
            changed(
                LIST,
                "action.sections",
                [{"rows": [{"id": str(n), "title": "x"}]} for n in range(11)],
            ),
            131009,
            "sections count",
        ),
        (
            changed(LIST, "header", {"type": "image", "image": {"link": "https://x.io/a.jpg"}}),
            100,
            "interactive['header']['type'] must be one of ['text']",
        ),
        (changed(LIST, "body.text", "x" * 4097), 131009, "at most 4096"),
    ],
)
async def test_bad_interactive_messages_are_refused(
    graph: GraphClient, standin: StandIn, interactive: dict[str, Any], code: int, details: str
) -> None:
    message = {"type": "interactive", "interactive": interactive}
    error = await failure(graph.send(EU.id, EU.access_token, TO, message))
    assert (error.status, error.code, error.retryable) == (400, code, False)
    assert details in error.title
    assert standin.sent == []


async def test_a_list_body_may_be_longer_than_a_buttons_body(graph: GraphClient) -> None:
    long = changed(LIST, "body.text", "x" * 4096)
    assert await graph.send(
        EU.id, EU.access_token, TO, {"type": "interactive", "interactive": long}
    )


# Reactions, quoted replies, locations, contacts
QUOTED = "wamid.HBgLMTYzMTU1NTEyMzQVAgASGBQzQTdCNUE5RjA2QjdEMjM4NTlFAA=="


async def test_a_reaction_and_its_removal(graph: GraphClient, standin: StandIn) -> None:
    for emoji in ("👍", "❤️", "👨‍👩‍👧", ""):
        message = {"type": "reaction", "reaction": {"message_id": QUOTED, "emoji": emoji}}
        await graph.send(EU.id, EU.access_token, TO, message)
    assert [sent.body for sent in standin.sent] == [
        envelope(type="reaction", reaction={"message_id": QUOTED, "emoji": emoji})
        for emoji in ("👍", "❤️", "👨‍👩‍👧", "")
    ]


@pytest.mark.parametrize(
    ("reaction", "code"),
    [
        ({"message_id": QUOTED, "emoji": "ok"}, 131009),
        ({"message_id": QUOTED, "emoji": "👍 nice"}, 131009),
        ({"message_id": QUOTED}, 100),
        ({"emoji": "👍"}, 100),
    ],
)
async def test_bad_reactions_are_refused(
    graph: GraphClient, standin: StandIn, reaction: dict[str, str], code: int
) -> None:
    error = await failure(
        graph.send(EU.id, EU.access_token, TO, {"type": "reaction", "reaction": reaction})
    )
    assert error.code == code and standin.sent == []


async def test_a_quoted_reply_carries_the_context(graph: GraphClient, standin: StandIn) -> None:
    await graph.send_text(EU.id, EU.access_token, TO, "About this one:", reply_to=QUOTED)
    image = await uploaded(graph, "image/jpeg", PHOTO, "photo.jpg")
    await graph.send(
        EU.id, EU.access_token, TO, {"type": "image", "image": {"id": image}}, reply_to=QUOTED
    )
    text, photo = standin.sent
    assert text.body == envelope(
        type="text",
        text={"preview_url": False, "body": "About this one:"},
        context={"message_id": QUOTED},
    )
    assert photo.body["context"] == {"message_id": QUOTED}


async def test_a_context_without_a_message_id_is_100(
    session: aiohttp.ClientSession, graph_url: str, standin: StandIn
) -> None:
    for context in ({}, {"message_id": ""}, "wamid.X"):
        response = await session.post(
            f"{graph_url}/{EU.id}/messages",
            json={**GOOD, "context": context},
            headers={"Authorization": f"Bearer {EU.access_token}"},
        )
        assert response.status == 400
        error = (await response.json())["error"]
        assert error["error_data"]["details"] == "Param context['message_id'] is required"
    assert standin.sent == []


async def test_a_location_and_contacts(graph: GraphClient, standin: StandIn) -> None:
    location = {"latitude": 52.3731, "longitude": 4.8922, "name": "Shop", "address": "Damrak 1"}
    contacts = [
        {
            "name": {"formatted_name": "Ana Silva", "first_name": "Ana"},
            "phones": [{"phone": "+31 20 555 0100"}],
        }
    ]
    await graph.send(EU.id, EU.access_token, TO, {"type": "location", "location": location})
    await graph.send(EU.id, EU.access_token, TO, {"type": "contacts", "contacts": contacts})
    assert [sent.type for sent in standin.sent] == ["location", "contacts"]
    for bad in (
        {"type": "location", "location": {**location, "latitude": 91}},
        {"type": "location", "location": {"longitude": 4.9}},
        {"type": "contacts", "contacts": [{"phones": []}]},
        {"type": "contacts", "contacts": []},
    ):
        assert (await failure(graph.send(EU.id, EU.access_token, TO, bad))).code in (100, 131009)
    assert len(standin.sent) == 2


@pytest.mark.parametrize(
    ("message", "reply_to"),
    [
        ({"image": {"id": "1"}}, None),
        ({"type": "image"}, None),
        ({"type": "", "": {}}, None),
        ({"type": "text", "text": {"body": "x"}, "to": "31600000000"}, None),
        ({"type": "text", "text": {"body": "x"}, "context": {"message_id": QUOTED}}, None),
        ({"type": "text", "text": {"body": "x"}}, ""),
    ],
)
async def test_send_refuses_a_malformed_message_before_any_request(
    graph: GraphClient, standin: StandIn, message: dict[str, Any], reply_to: str | None
) -> None:
    with pytest.raises(ValueError):
        await graph.send(EU.id, EU.access_token, TO, message, reply_to=reply_to)
    with pytest.raises(ValueError):
        await graph.send(
            EU.id, EU.access_token, Recipient(), {"type": "text", "text": {"body": "x"}}
        )
    assert standin.sent == []


async def test_send_goes_to_every_kind_of_recipient(graph: GraphClient, standin: StandIn) -> None:
    message = {"type": "reaction", "reaction": {"message_id": QUOTED, "emoji": "👍"}}
    for to in (Recipient(user_id=BSUID), Recipient(group_id=GROUP)):
        await graph.send(EU.id, EU.access_token, to, message)
    assert [(sent.to, sent.recipient, sent.recipient_type) for sent in standin.sent] == [
        (None, BSUID, "individual"),
        (GROUP, None, "group"),
    ]


# 12. Read receipts and the typing indicator
async def test_mark_read_with_and_without_typing(
    session: aiohttp.ClientSession, graph_url: str, graph: GraphClient, standin: StandIn
) -> None:
    await graph.mark_read(EU.id, EU.access_token, QUOTED)
    await graph.mark_read(US.id, US.access_token, QUOTED, typing=True)
    assert standin.reads == [
        ReadReceipt(phone_number_id=EU.id, message_id=QUOTED, typing=False, at=NOW),
        ReadReceipt(phone_number_id=US.id, message_id=QUOTED, typing=True, at=NOW),
    ]
    assert standin.sent == []  # a read receipt is not a message
    root = graph_url.removesuffix("/v21.0")
    shown = await (await session.get(f"{root}/_standin/reads")).json()
    assert [(read["message_id"], read["typing"]) for read in shown] == [
        (QUOTED, False),
        (QUOTED, True),
    ]


async def test_a_read_receipt_answers_success_in_metas_shape(
    session: aiohttp.ClientSession, graph_url: str, standin: StandIn
) -> None:
    headers = {"Authorization": f"Bearer {EU.access_token}"}
    read = {"messaging_product": "whatsapp", "status": "read", "message_id": QUOTED}
    typing = {**read, "typing_indicator": {"type": "text"}}
    for body in (read, typing):
        response = await session.post(f"{graph_url}/{EU.id}/messages", json=body, headers=headers)
        assert (response.status, await response.json()) == (200, {"success": True})
    for bad in (
        {**read, "status": "delivered"},
        {**read, "message_id": ""},
        {**read, "messaging_product": "sms"},
        {**read, "typing_indicator": {"type": "audio"}},
    ):
        response = await session.post(f"{graph_url}/{EU.id}/messages", json=bad, headers=headers)
        assert response.status == 400
        assert (await response.json())["error"]["code"] == 100
    assert len(standin.reads) == 2


async def test_mark_read_failures_are_graph_errors(graph: GraphClient, standin: StandIn) -> None:
    assert (await failure(graph.mark_read(EU.id, "nope", QUOTED))).code == 190
    standin.fail_next(EU.id, Fault(code=130429))
    error = await failure(graph.mark_read(EU.id, EU.access_token, QUOTED, typing=True))
    assert (error.code, error.retryable) == (130429, True)
    assert standin.reads == []


# 13. Template definitions from the business account, page after page
def many_templates(count: int) -> list[Template]:
    return [
        Template(
            name=f"template_{n:03d}",
            language="en_US" if n % 2 else "nl",
            category="MARKETING" if n % 3 == 0 else "UTILITY",
            status="APPROVED" if n % 5 else "REJECTED",
            components=[{"type": "BODY", "text": f"Message {n}: {{{{1}}}}"}],
        )
        for n in range(count)
    ]


async def test_templates_are_listed_across_pages(graph: GraphClient, standin: StandIn) -> None:
    known = [ORDER_SHIPPED, WELCOME, *many_templates(248)]
    standin.set_templates(WABA, known)
    listed = await graph.templates(WABA, EU.access_token)
    assert len(listed) == 250  # three pages of up to 100
    assert listed[0] == TemplateDefinition(
        name="order_shipped",
        language="en_US",
        status="APPROVED",
        category="UTILITY",
        components=ORDER_SHIPPED.components,
        id=listed[0].id,
    )
    assert listed[0].id and listed[0].id.isdigit()
    assert [(t.name, t.language, t.status, t.category) for t in listed[2:]] == [
        (t.name, t.language, t.status, t.category) for t in known[2:]
    ]
    assert [t.components for t in listed] == [t.components for t in known]
    assert len({t.id for t in listed}) == 250
    # The same business account through the other number's token.
    assert len(await graph.templates(WABA, US.access_token)) == 250


async def test_an_account_without_templates_lists_none(
    graph: GraphClient, standin: StandIn
) -> None:
    assert await graph.templates(WABA, EU.access_token) == []


async def test_the_template_list_pages_in_metas_shape(
    session: aiohttp.ClientSession, graph_url: str, standin: StandIn
) -> None:
    standin.set_templates(WABA, many_templates(5))
    headers = {"Authorization": f"Bearer {EU.access_token}"}
    url = f"{graph_url}/{WABA}/message_templates"
    first = await (
        await session.get(url, params={"fields": "name,status", "limit": "2"}, headers=headers)
    ).json()
    assert [set(item) for item in first["data"]] == [{"id", "name", "status"}] * 2
    assert [item["name"] for item in first["data"]] == ["template_000", "template_001"]
    assert set(first["paging"]["cursors"]) == {"before", "after"}
    pages = [first]
    while "next" in pages[-1]["paging"]:
        pages.append(await (await session.get(pages[-1]["paging"]["next"], headers=headers)).json())
    assert [[item["name"] for item in page["data"]] for page in pages] == [
        ["template_000", "template_001"],
        ["template_002", "template_003"],
        ["template_004"],
    ]
    assert "previous" in pages[-1]["paging"]
    everything = await (await session.get(url, headers=headers)).json()
    assert len(everything["data"]) == 5 and "next" not in everything["paging"]
    assert set(everything["data"][0]) == {
        "id",
        "name",
        "parameter_format",
        "components",
        "language",
        "status",
        "category",
    }
    for params in ({"limit": "0"}, {"limit": "many"}, {"after": "not-a-cursor"}):
        response = await session.get(url, params=params, headers=headers)
        assert response.status == 400


async def test_the_template_list_checks_the_token_and_the_account(
    graph: GraphClient, standin: StandIn
) -> None:
    standin.set_templates(WABA, [WELCOME])
    assert (await failure(graph.templates(WABA, "nope"))).code == 190
    error = await failure(graph.templates("999999999999999", EU.access_token))
    assert (error.status, error.code, error.retryable) == (400, 100, False)
    standin.fail_next(WABA, Fault(status=500, code=2))
    assert (await failure(graph.templates(WABA, EU.access_token))).retryable
    assert [t.name for t in await graph.templates(WABA, EU.access_token)] == ["welcome"]


async def test_a_template_list_that_never_ends_is_an_error(
    aiohttp_server: AiohttpServer, session: aiohttp.ClientSession
) -> None:
    async def again(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "data": [{"name": "loop", "language": "en_US"}],
                "paging": {"cursors": {"after": "SAME"}, "next": str(request.url)},
            }
        )

    app = web.Application()
    app.router.add_get("/v21.0/{waba}/message_templates", again)
    server = await aiohttp_server(app)
    graph = GraphClient(session, str(server.make_url("/v21.0")))
    error = await failure(graph.templates(WABA, TOKEN))
    assert error.title == "the template list did not end" and not error.retryable


async def test_templates_over_the_control_endpoints(
    session: aiohttp.ClientSession, graph_url: str, graph: GraphClient, standin: StandIn
) -> None:
    root = graph_url.removesuffix("/v21.0")
    body = [
        {"name": "welcome", "language": "en_US", "components": WELCOME.components},
        {"name": "gone", "language": "en_US", "status": "PAUSED"},
    ]
    added = await session.post(f"{root}/_standin/templates/{WABA}", json=body)
    assert added.status == 200
    assert [item["name"] for item in await added.json()] == ["welcome", "gone"]
    assert standin.templates[WABA][0] == WELCOME
    shown = await (await session.get(f"{root}/_standin/templates")).json()
    assert list(shown) == [WABA]
    assert (await session.post(f"{root}/_standin/templates/{WABA}", json={"name": 1})).status == 400
    assert [t.status for t in await graph.templates(WABA, EU.access_token)] == [
        "APPROVED",
        "PAUSED",
    ]
    # and a send is now checked against them
    assert (
        await failure(graph.send_template(EU.id, EU.access_token, TO, "gone", "en_US"))
    ).code == 132015
