"""The Graph API client against the local stand-in, and the stand-in against the receiver."""

import asyncio
import json
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

from ingest.app import create_app as create_receiver
from ingest.normalize import normalize
from ingest.signature import signing_secret
from ingest.webhook import decode_webhook
from parley.channels import Channel
from parley.events import MessageStatus, decode_event
from parley.graph import GraphClient, GraphError
from parley.graph_standin import OAUTH_REFUSAL, Fault, SentMessage, StandIn, create_app
from parley.local import free_port
from parley.settings import Settings
from tests.conftest import EU, US
from tests.kafka_tools import read_all

NOW = 1_790_000_000.0
CUSTOMER = "16315551234"
TIMEOUT_S = 0.3
RE_ENGAGEMENT = (
    "Message failed to send because more than 24 hours have passed since the customer"
    " last replied to this number."
)


def make_standin(**kwargs: Any) -> StandIn:
    return StandIn(
        {EU.id: EU.access_token, US.id: US.access_token},
        app_secrets={EU.id: EU.app_secret, US.id: US.app_secret},
        clock=lambda: NOW,
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
    wamid = await graph.send_text(EU.id, EU.access_token, CUSTOMER, "Hello, how can we help?")
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
    wamid = await graph.send_template(US.id, US.access_token, CUSTOMER, "order_update", "en_US")
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
    wamids = {await graph.send_text(EU.id, EU.access_token, CUSTOMER, f"#{n}") for n in range(5)}
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
    error = await failure(graph.send_text(EU.id, EU.access_token, CUSTOMER, "Hi"))
    assert (error.status, error.code, error.retryable) == (status, code, retryable)
    if title is not None:
        assert error.title == title
    assert error.title
    assert standin.sent == []
    # A fault is used once: the next send goes through.
    assert (await graph.send_text(EU.id, EU.access_token, CUSTOMER, "Hi")).startswith("wamid.")


async def test_the_error_text_is_code_title_and_status(
    graph: GraphClient, standin: StandIn
) -> None:
    standin.fail_next(EU.id, Fault(code=131047))
    error = await failure(graph.send_text(EU.id, EU.access_token, CUSTOMER, "Hi"))
    assert str(error) == "131047 Re-engagement message (HTTP 400)"
    standin.fail_next(EU.id, Fault(code=131056))
    error = await failure(graph.send_text(EU.id, EU.access_token, CUSTOMER, "Hi"))
    assert (
        str(error) == "131056 (Business Account, Consumer Account) pair rate limit hit (HTTP 400)"
    )


async def test_faults_are_used_in_order_and_per_number(
    graph: GraphClient, standin: StandIn
) -> None:
    standin.fail_next(EU.id, Fault(code=130429), Fault(status=500, code=131000))
    assert await graph.send_text(US.id, US.access_token, CUSTOMER, "other number")
    codes = []
    for _ in range(2):
        codes.append((await failure(graph.send_text(EU.id, EU.access_token, CUSTOMER, "x"))).code)
    assert codes == [130429, 131000]
    assert await graph.send_text(EU.id, EU.access_token, CUSTOMER, "through")


async def test_a_slow_answer_is_a_retryable_timeout(graph: GraphClient, standin: StandIn) -> None:
    standin.fail_next(EU.id, Fault(code=131000, status=500, delay_s=TIMEOUT_S * 3))
    error = await failure(graph.send_text(EU.id, EU.access_token, CUSTOMER, "Hi"))
    assert (error.status, error.code, error.title, error.retryable) == (None, None, "timeout", True)
    assert str(error) == "timeout"


async def test_a_timed_out_send_may_still_have_been_sent(
    graph: GraphClient, standin: StandIn
) -> None:
    """Why a timeout must not be taken as "not sent": Meta may accept it anyway."""
    standin.fail_next(EU.id, Fault(status=200, delay_s=TIMEOUT_S * 2))
    error = await failure(graph.send_text(EU.id, EU.access_token, CUSTOMER, "slow"))
    assert error.title == "timeout"
    for _ in range(100):
        if standin.sent:
            break
        await asyncio.sleep(0.02)
    assert [sent.body["text"]["body"] for sent in standin.sent] == ["slow"]


async def test_no_server_is_a_retryable_connection_failure(session: aiohttp.ClientSession) -> None:
    graph = GraphClient(session, f"http://127.0.0.1:{free_port()}/v21.0", timeout_s=TIMEOUT_S)
    error = await failure(graph.send_text(EU.id, EU.access_token, CUSTOMER, "Hi"))
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
    error = await failure(graph.send_text(EU.id, token, CUSTOMER, "Hi"))
    assert (error.status, error.code, error.title, error.retryable) == (
        401,
        190,
        OAUTH_REFUSAL,
        False,
    )
    assert token not in str(error) or not token
    assert standin.sent == []


async def test_another_numbers_token_is_refused(graph: GraphClient, standin: StandIn) -> None:
    error = await failure(graph.send_text(EU.id, US.access_token, CUSTOMER, "Hi"))
    assert (error.status, error.code, error.retryable) == (400, 100, False)
    assert EU.id in error.title
    assert standin.sent == []


async def test_a_bad_token_wins_over_a_queued_fault(graph: GraphClient, standin: StandIn) -> None:
    standin.fail_next(EU.id, Fault(code=131047))
    assert (await failure(graph.send_text(EU.id, "nope", CUSTOMER, "Hi"))).code == 190
    assert (await failure(graph.send_text(EU.id, EU.access_token, CUSTOMER, "Hi"))).code == 131047


async def test_an_empty_text_is_a_malformed_request(graph: GraphClient, standin: StandIn) -> None:
    error = await failure(graph.send_text(EU.id, EU.access_token, CUSTOMER, ""))
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
        wamid = await graph.send_text(EU.id, TOKEN, CUSTOMER, "Hi")
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
    error = await failure(graph.send_text(EU.id, TOKEN, CUSTOMER, "Hi"))
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
    assert (await failure(graph.send_text(EU.id, EU.access_token, CUSTOMER, "a"))).code == 131047
    assert (await failure(graph.send_text(EU.id, EU.access_token, CUSTOMER, "b"))).status == 503
    wamid = await graph.send_text(EU.id, EU.access_token, CUSTOMER, "c")

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
    assert (await graph.send_text(EU.id, EU.access_token, CUSTOMER, "Hi")).startswith("wamid.")


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
        assert (event.payload.wamid, event.payload.recipient_id) == (wamid, CUSTOMER)
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
    assert [
        [error["code"] for error in p.errors] for p in payloads if isinstance(p, MessageStatus)
    ] == [
        [131047],
        [131026],
    ]


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
    wamid = await graph.send_text(EU.id, EU.access_token, CUSTOMER, "Hi")
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
    await graph.send_text(EU.id, EU.access_token, CUSTOMER, "Hi")
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
    wamid = await graph.send_text(EU.id, EU.access_token, CUSTOMER, "Hi")
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
    assert all(event.conversation == f"{EU.id}:{CUSTOMER}" for event in events)
    payload = events[-1].payload
    assert isinstance(payload, MessageStatus) and payload.errors[0]["code"] == 131026


def test_faults_decode_from_json() -> None:
    faults = msgspec.json.decode(
        b'[{"code": 131047}, {"status": 503, "delay_s": 0.5}]', type=list[Fault]
    )
    assert faults == [Fault(code=131047), Fault(status=503, delay_s=0.5)]
