"""The Graph API client against the local stand-in, and the stand-in against the receiver."""

import asyncio
import base64
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

from devstack.graph_standin import OAUTH_REFUSAL, Fault, SentMessage, StandIn, create_app
from devstack.servers import free_port
from ingest.app import create_app as create_receiver
from ingest.meta_payload import decode_webhook
from ingest.normalize import normalize
from ingest.signature import signing_secret
from parley.channels import Channel
from parley.events import MessageStatus, decode_event
from parley.graph import RETRYABLE_CODES, GraphClient, GraphError, Recipient
from parley.settings import Settings
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
