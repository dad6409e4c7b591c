"""The receiver against a real Tansu broker and a real redis-server."""

import json
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import pytest
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from devstack.samples import status, text_message
from devstack.signing import sign
from ingest.app import create_app
from parley.channels import Channel
from parley.events import (
    CustomerMessage,
    DeadLetter,
    MessageStatus,
    decode_dead_letter,
    decode_event,
)
from parley.settings import Settings
from tests import test_webhook as pure
from tests.conftest import EU, US
from tests.kafka_tools import read_all
from tests.test_webhook import EXPECTED, as_sent, body_of, envelopes, items_in

Client = TestClient  # type: ignore[type-arg]
MakeClient = Callable[..., Awaitable[Client]]
NOW = 1_790_000_000.0


@pytest.fixture
async def client(aiohttp_client: MakeClient, settings: Settings, channels: list[Channel]) -> Client:
    return await aiohttp_client(create_app(settings, channels, clock=lambda: NOW))


async def post(client: Client, body: bytes, secret: str | None = EU.app_secret) -> Any:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Hub-Signature-256"] = sign(body, secret)
    return await client.post("/webhooks/whatsapp", data=body, headers=headers)


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


# 1. Handshake
@pytest.mark.parametrize("token", [EU.verify_token, US.verify_token])
async def test_handshake_echoes_the_challenge_for_a_known_token(client: Client, token: str) -> None:
    response = await client.get(
        "/webhooks/whatsapp",
        params={"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "1158201444"},
    )
    assert response.status == 200
    assert await response.text() == "1158201444"


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "c"},
        {"hub.mode": "unsubscribe", "hub.verify_token": EU.verify_token, "hub.challenge": "c"},
        {"hub.mode": "subscribe", "hub.challenge": "c"},
        {"hub.mode": "subscribe", "hub.verify_token": EU.verify_token},
    ],
)
async def test_handshake_refuses_anything_else(client: Client, params: dict[str, str]) -> None:
    response = await client.get("/webhooks/whatsapp", params=params)
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "forbidden"


# 2. Signature
@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing"),
        ("sha1=abc", "malformed"),
        ("sha256=zz", "malformed"),
        ("sha256=" + "00" * 32, "mismatch"),
    ],
)
async def test_bad_signature_is_401_and_nothing_is_produced(
    client: Client, settings: Settings, header: str | None, reason: str
) -> None:
    body = encode(text_message(EU.id, "16315551181", "wamid.A1", "hi", 1_790_000_000))
    headers = {} if header is None else {"X-Hub-Signature-256": header}
    response = await client.post("/webhooks/whatsapp", data=body, headers=headers)
    assert response.status == 401
    error = await response.json()
    assert error["error"]["code"] == "bad_signature"
    assert reason in error["error"]["message"]
    assert await read_all(settings.kafka_bootstrap or "", settings.topic) == []
    metrics = await (await client.get("/metrics")).text()
    assert f'parley_webhook_signature_failures_total{{reason="{reason}"}} 1.0' in metrics


async def test_signature_of_another_body_is_refused(client: Client) -> None:
    body = encode(text_message(EU.id, "16315551181", "wamid.A1", "hi", 1_790_000_000))
    forged = sign(body + b" ", EU.app_secret)
    response = await client.post(
        "/webhooks/whatsapp", data=body, headers={"X-Hub-Signature-256": forged}
    )
    assert response.status == 401


# 4. One record per message and per status, keyed {channel}:{route}
async def test_messages_and_statuses_become_one_event_each(
    client: Client, settings: Settings
) -> None:
    call = text_message(EU.id, "16315551181", "wamid.M1", "hello", 1_790_000_100)
    value = call["entry"][0]["changes"][0]["value"]
    value["messages"].append({**value["messages"][0], "id": "wamid.M2"})
    value["statuses"] = status(EU.id, "16315559999", "wamid.OUT1", "read", 1_790_000_050)["entry"][
        0
    ]["changes"][0]["value"]["statuses"]
    response = await post(client, encode(call))
    assert response.status == 200, await response.text()
    assert await response.json() == {"accepted": 3, "dead_lettered": 0}

    records = await read_all(settings.kafka_bootstrap or "", settings.topic)
    events = {decode_event(r.value).id: (r, decode_event(r.value)) for r in records}
    assert set(events) == {"wamid.M1", "wamid.M2", "wamid.OUT1:read"}
    record, message = events["wamid.M1"]
    # A customer known by phone only is keyed by the phone.
    assert record.key == f"{EU.id}:16315551181".encode()
    assert message.key == f"{EU.id}:16315551181"
    assert message.channel == EU.id
    assert message.occurred_at == 1_790_000_100
    assert message.received_at == NOW
    assert (message.identity.phone, message.identity.name) == ("16315551181", "Sheena")
    assert isinstance(message.payload, CustomerMessage)
    # The message as sent is no longer carried (by design): what an agent reads is.
    assert message.payload.text == "hello"
    assert dict(record.headers)["kind"] == b"customer.message"
    record, receipt = events["wamid.OUT1:read"]
    assert record.key == f"{EU.id}:16315559999".encode()
    assert isinstance(receipt.payload, MessageStatus)
    assert receipt.payload.status == "read"


async def test_the_topic_is_created_with_the_configured_partitions(
    client: Client, settings: Settings
) -> None:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    try:
        await consumer.topics()
        assert len(consumer.partitions_for_topic(settings.topic)) == settings.topic_partitions
    finally:
        await consumer.stop()


async def test_events_of_an_unconfigured_channel_go_to_the_dead_letter_topic(
    client: Client, settings: Settings
) -> None:
    call = text_message("999000111", "16315551181", "wamid.X", "hi", 1_790_000_000)
    response = await post(client, encode(call))
    assert response.status == 200
    assert await response.json() == {"accepted": 0, "dead_lettered": 1}
    assert await read_all(settings.kafka_bootstrap or "", settings.topic) == []
    [record] = await read_all(settings.kafka_bootstrap or "", settings.dead_letter_topic)
    letter = msgspec.json.decode(record.value, type=DeadLetter)
    assert letter.reason == "unknown_channel"
    assert letter.event is not None
    assert letter.event.id == "wamid.X"
    assert record.key == b"999000111:16315551181"
    assert letter.signed_by == EU.id


async def test_a_channel_signed_with_another_apps_secret_is_dead_lettered(
    client: Client, settings: Settings
) -> None:
    call = text_message(US.id, "16315551181", "wamid.Y", "hi", 1_790_000_000)
    response = await post(client, encode(call), secret=EU.app_secret)
    assert await response.json() == {"accepted": 0, "dead_lettered": 1}
    [record] = await read_all(settings.kafka_bootstrap or "", settings.dead_letter_topic)
    assert msgspec.json.decode(record.value, type=DeadLetter).reason == "signed_by_another_app"


async def test_other_fields_are_answered_200_and_counted(
    client: Client, settings: Settings
) -> None:
    call = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "message_template_status_update",
                        "value": {"event": "APPROVED", "message_template_id": 12345678},
                    }
                ],
            }
        ],
    }
    response = await post(client, encode(call))
    assert response.status == 200
    assert await response.json() == {"accepted": 0, "dead_lettered": 0}
    metrics = await (await client.get("/metrics")).text()
    assert (
        'parley_webhook_changes_ignored_total{field="message_template_status_update"} 1.0'
        in metrics
    )


# 6. Bad input
@pytest.mark.parametrize(
    ("body", "status_code", "code"),
    [
        (b'{"object": "whatsapp_business_account", "entry": [', 400, "malformed_json"),
        (b"\xff\xfe not json", 400, "malformed_json"),
        (b'{"hello": "world"}', 400, "not_a_webhook"),
        (b'{"object": "whatsapp_business_account", "entry": "nope"}', 400, "not_a_webhook"),
        (b"[]", 400, "not_a_webhook"),
    ],
)
async def test_bad_bodies_get_a_specific_error_and_nothing_is_produced(
    client: Client, settings: Settings, body: bytes, status_code: int, code: str
) -> None:
    response = await post(client, body)
    assert response.status == status_code
    assert (await response.json())["error"]["code"] == code
    assert await read_all(settings.kafka_bootstrap or "", settings.topic) == []


async def test_a_body_over_the_limit_is_413(
    aiohttp_client: MakeClient, settings: Settings, channels: list[Channel]
) -> None:
    small = msgspec.structs.replace(settings, max_body_bytes=2048)
    client = await aiohttp_client(create_app(small, channels))
    call = text_message(EU.id, "16315551181", "wamid.BIG", "x" * 4096, 1_790_000_000)
    response = await post(client, encode(call))
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "body_too_large"
    assert await read_all(settings.kafka_bootstrap or "", settings.topic) == []


# 7. Operable
async def test_health_and_readiness(client: Client) -> None:
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert await ready.json() == {"kafka": True, "redis": True}


async def test_metrics_count_outcomes_latency_and_events(client: Client) -> None:
    body = encode(text_message(EU.id, "16315551181", "wamid.C", "hi", 1_790_000_000))
    assert (await post(client, body)).status == 200
    assert (await post(client, b"{", secret=EU.app_secret)).status == 400
    text = await (await client.get("/metrics")).text()
    assert 'parley_webhook_requests_total{method="POST",outcome="ok"} 1.0' in text
    assert 'parley_webhook_requests_total{method="POST",outcome="malformed_json"} 1.0' in text
    assert 'parley_events_produced_total{kind="customer.message"} 1.0' in text
    assert "parley_produce_seconds_count 1.0" in text


# 3. Never 5xx for any signed body while Kafka is up
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
webhook_like = st.fixed_dictionaries(
    {"object": st.just("whatsapp_business_account"), "entry": st.lists(json_values, max_size=3)}
)


@hyp_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.one_of(json_values, webhook_like))
async def test_no_signed_body_gets_a_5xx(client: Client, body: Any) -> None:
    response = await post(client, encode(body))
    assert response.status < 500, await response.text()


# 3. A payload of every documented type, through the receiver
@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_every_payload_file_is_accepted_with_one_record_per_item(
    client: Client, settings: Settings, name: str
) -> None:
    response = await post(client, body_of(name))
    assert response.status == 200, await response.text()
    expected = EXPECTED[name]
    # Signed with the EU app's secret: the events of another app's number, and the
    # items that could not be used, go to the dead-letter topic.
    on_eu = [event for event in expected.events if event.key.startswith(f"{EU.id}:")]
    assert await response.json() == {
        "accepted": len(on_eu),
        "dead_lettered": len(expected.events) - len(on_eu) + len(expected.unusable),
    }
    records = await read_all(settings.kafka_bootstrap or "", settings.topic)
    produced = sorted((decode_event(r.value).id, r.key.decode()) for r in records)
    assert produced == sorted((event.id, event.key) for event in on_eu)


async def test_delivery_statuses_are_counted_by_status_and_error_code(client: Client) -> None:
    failed = json.loads(body_of("status_failed"))
    [status] = failed["entry"][0]["changes"][0]["value"]["statuses"]
    # The event carries the first error only (what an agent reads): its code is counted.
    code = str(status["errors"][0]["code"])
    assert (await post(client, body_of("status_failed"))).status == 200
    assert (await post(client, body_of("status_read"))).status == 200
    text = await (await client.get("/metrics")).text()
    assert f'parley_message_statuses_total{{error_code="{code}",status="failed"}} 1.0' in text
    assert 'parley_message_statuses_total{error_code="",status="read"} 1.0' in text


# 5. Items read one by one: an odd item is dead-lettered, the rest of the call goes on
async def test_two_numbers_of_one_app_in_one_call(
    aiohttp_client: MakeClient, settings: Settings
) -> None:
    # Both numbers belong to one app, which signs the call with its one secret.
    same_app = msgspec.structs.replace(US, app_secret=EU.app_secret)
    client = await aiohttp_client(create_app(settings, [EU, same_app], clock=lambda: NOW))
    response = await post(client, body_of("mixed_two_numbers"))
    assert response.status == 200, await response.text()
    assert await response.json() == {"accepted": 6, "dead_lettered": 1}

    bootstrap = settings.kafka_bootstrap or ""
    records = await read_all(bootstrap, settings.topic)
    expected = EXPECTED["mixed_two_numbers"]
    produced = {decode_event(r.value).id: r.key.decode() for r in records}
    assert produced == {event.id: event.key for event in expected.events}
    assert {key.partition(":")[0] for key in produced.values()} == {EU.id, US.id}

    [record] = await read_all(bootstrap, settings.dead_letter_topic)
    letter = decode_dead_letter(record.value)
    sent = json.loads(body_of("mixed_two_numbers"))["entry"][0]["changes"][0]["value"]
    assert (letter.reason, letter.field, letter.channel) == (
        "no_customer_identifier",
        "messages",
        EU.id,
    )
    assert letter.item == sent["messages"][1]  # as sent, to re-drive once understood
    assert letter.event is None
    assert letter.signed_by == EU.id
    assert letter.received_at == NOW
    assert record.key == EU.id.encode()
    assert dict(record.headers)["reason"] == b"no_customer_identifier"


async def test_items_of_a_value_without_metadata_are_each_dead_lettered(
    client: Client, settings: Settings
) -> None:
    call = text_message(EU.id, "16315551181", "wamid.NOMETA", "hi", 1_790_000_000)
    value = call["entry"][0]["changes"][0]["value"]
    del value["metadata"]
    value["statuses"] = [{"id": "wamid.OUT", "status": "read", "recipient_id": "16315551181"}]
    response = await post(client, encode(call))
    assert response.status == 200, await response.text()
    assert await response.json() == {"accepted": 0, "dead_lettered": 2}
    bootstrap = settings.kafka_bootstrap or ""
    assert await read_all(bootstrap, settings.topic) == []
    letters = [
        decode_dead_letter(r.value) for r in await read_all(bootstrap, settings.dead_letter_topic)
    ]
    assert sorted((x.reason, x.channel, x.field, x.item["id"]) for x in letters) == [
        ("no_phone_number_id", None, "messages", "wamid.NOMETA"),
        ("no_phone_number_id", None, "messages", "wamid.OUT"),
    ]
    assert sorted(msgspec.json.encode(x.item) for x in letters) == sorted(
        msgspec.json.encode(item) for item in [*value["messages"], *value["statuses"]]
    )
    assert all(x.signed_by == EU.id for x in letters)


# A source bug (see tests/test_webhook.py): normalize raises on a contacts message whose
# `contacts` is not an array, and the receiver answers 500, so Meta keeps sending it.
async def test_a_contacts_message_whose_cards_are_not_an_array_is_not_a_500(
    client: Client,
) -> None:
    call = text_message(EU.id, "16315551181", "wamid.ODD", "hi", 1_790_000_000)
    [message] = call["entry"][0]["changes"][0]["value"]["messages"]
    message.update(type="contacts", contacts=5)
    response = await post(client, encode(call))
    assert response.status == 200, await response.text()
    answer = await response.json()
    assert answer["accepted"] + answer["dead_lettered"] == 1


@hyp_settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=envelopes)
# The source bug above, through the receiver.
@example(body=pure.call(pure.value(messages=[pure.text(type="contacts", contacts=5)])))
async def test_every_item_of_a_signed_envelope_is_accepted_or_dead_lettered(
    client: Client, body: dict[str, Any]
) -> None:
    body = as_sent(body)
    response = await post(client, msgspec.json.encode(body))
    assert response.status == 200, await response.text()
    answer = await response.json()
    assert answer["accepted"] + answer["dead_lettered"] == items_in(body)
