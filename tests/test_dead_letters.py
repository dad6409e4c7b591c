"""`python -m ingest dead-letters list | redrive` against a real Tansu broker and a real
redis-server: the decision table, the commands as an operator runs them, and a letter's
whole way from the receiver back to the events topic (and to the engine, once)."""

import asyncio
import json
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from devstack.samples import status, text_message
from devstack.signing import sign
from engine.applier import Applier
from engine.cli import queue_sizes
from ingest.app import create_app
from ingest.dead_letters import (
    CHANNEL_NOT_CONFIGURED,
    ITEM_NOT_KEPT,
    OTHER_APP,
    SIGNER_NOT_CONFIGURED,
    UNDECODABLE,
    UNSIGNED,
    Redrive,
    Skip,
    redrive_decision,
)
from parley import registration
from parley.channels import Channel, ChannelSettings
from parley.events import (
    CustomerMessage,
    DeadLetter,
    Event,
    Identity,
    MessageStatus,
    decode_event,
    encode,
)
from parley.kafka import ensure_topics
from parley.settings import Settings
from parley.state import Outcome
from store import registrations
from store.channels import save_channel_settings, seed_channels
from store.conversations import ConversationStore
from store.reader import Reader
from tests.conftest import EU, US
from tests.kafka_tools import read_all

ROOT = Path(__file__).resolve().parents[1]
NOW = 1_790_000_000.0
# A number of the same Meta app as EU (its app secret), configured after its webhooks came.
NEW = Channel(
    id="106540352242924",
    app_secret=EU.app_secret,
    verify_token="new-verify-token",
    access_token="new-graph-token",
    settings=ChannelSettings(display_name="Support NEW"),
)
SECRETS = {
    secret
    for channel in (EU, US, NEW)
    for secret in (channel.app_secret, channel.access_token, channel.verify_token)
}
ALL = {channel.id: channel for channel in (EU, US, NEW)}
WITHOUT_NEW = {channel.id: channel for channel in (EU, US)}

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]


# Letters as the receiver writes them.


def message_item(wamid: str, wa_id: str | None = "16315551181") -> dict[str, Any]:
    call = text_message(NEW.id, wa_id, wamid, "where is my order?", 1_790_000_100)
    item: dict[str, Any] = call["entry"][0]["changes"][0]["value"]["messages"][0]
    return item


def status_item(wamid: str) -> dict[str, Any]:
    call = status(NEW.id, "16315551181", wamid, "read", 1_790_000_050)
    item: dict[str, Any] = call["entry"][0]["changes"][0]["value"]["statuses"][0]
    return item


def event_of(channel: str, wamid: str) -> Event:
    return Event(
        id=wamid,
        channel=channel,
        identity=Identity(phone="16315551181"),
        occurred_at=NOW - 5,
        received_at=NOW,
        payload=CustomerMessage(wamid=wamid, type="text", text="hi"),
    )


def unknown_channel(channel: str, wamid: str, signed_by: str | None = EU.id) -> DeadLetter:
    return DeadLetter(
        reason="unknown_channel",
        received_at=NOW,
        channel=channel,
        event=event_of(channel, wamid),
        signed_by=signed_by,
    )


def unread(
    reason: str,
    item: Any,
    *,
    channel: str | None = NEW.id,
    field: str = "messages",
    detail: str | None = "why",
    signed_by: str | None = EU.id,
) -> DeadLetter:
    return DeadLetter(
        reason=reason,
        received_at=NOW,
        detail=detail,
        channel=channel,
        field=field,
        item=item,
        signed_by=signed_by,
    )


# 1. The decision table: pure, every reason.


@pytest.mark.parametrize(
    ("letter", "channels", "why"),
    [
        # An event of a channel configured since, sharing the signer's app secret.
        (unknown_channel(NEW.id, "wamid.N1"), ALL, None),
        # ... not configured yet.
        (unknown_channel(NEW.id, "wamid.N1"), WITHOUT_NEW, CHANNEL_NOT_CONFIGURED),
        # ... configured, but with another app's secret than the one that signed.
        (unknown_channel(US.id, "wamid.U1"), ALL, OTHER_APP),
        # Signed by another app: never, even if the channels would now allow it.
        (
            msgspec.structs.replace(
                unknown_channel(NEW.id, "wamid.N1"), reason="signed_by_another_app"
            ),
            ALL,
            "signed_by_another_app",
        ),
        # No configured channel's secret signed it; the signer is no longer configured.
        (unknown_channel(NEW.id, "wamid.N1", signed_by=None), ALL, UNSIGNED),
        (unknown_channel(NEW.id, "wamid.N1", signed_by="999"), ALL, SIGNER_NOT_CONFIGURED),
        # An item today's parser reads (a parser fixed since): a message, a status.
        (unread("unreadable_item", message_item("wamid.I1")), ALL, None),
        (unread("unreadable_item", status_item("wamid.OUT1")), ALL, None),
        # ... for a channel not configured, or of another app.
        (unread("unreadable_item", message_item("wamid.I1")), WITHOUT_NEW, CHANNEL_NOT_CONFIGURED),
        (
            unread("unreadable_item", message_item("wamid.I1"), channel=US.id),
            ALL,
            OTHER_APP,
        ),
        # Items that still cannot be read keep the normalizer's reason.
        (unread("unreadable_item", {"id": "wamid.I2"}), ALL, "unreadable_item"),
        (
            unread("no_customer_identifier", message_item("wamid.I3", wa_id=None)),
            ALL,
            "no_customer_identifier",
        ),
        (
            unread("no_phone_number_id", message_item("wamid.I4"), channel=None),
            ALL,
            "no_phone_number_id",
        ),
        (
            unread("unreadable_value", None, channel=None, detail="invalid UTF-8: x"),
            ALL,
            ITEM_NOT_KEPT,
        ),
        (
            unread("unreadable_value", {"0": 1}, detail="messages is not an array"),
            ALL,
            "unreadable_value",
        ),
        (
            unread("unreadable_item", message_item("wamid.I5"), field="account_update"),
            ALL,
            "unreadable_value",
        ),
    ],
)
def test_redrive_decision(
    letter: DeadLetter, channels: dict[str, Channel], why: str | None
) -> None:
    decision = redrive_decision(letter, channels)
    if why is None:
        assert isinstance(decision, Redrive), decision
    else:
        assert isinstance(decision, Skip), decision
        assert decision.why == why
        assert decision.detail
    shown = repr(decision) + json.dumps(msgspec.to_builtins(decision))
    assert not [secret for secret in SECRETS if secret in shown]


def test_a_readable_item_becomes_the_event_the_receiver_would_have_produced() -> None:
    decision = redrive_decision(unread("unreadable_item", message_item("wamid.I1")), ALL)
    assert isinstance(decision, Redrive)
    [event] = decision.events
    assert (event.id, event.channel, event.key) == ("wamid.I1", NEW.id, f"{NEW.id}:16315551181")
    assert event.received_at == NOW  # the letter's: a second re-drive is the same event
    assert event.occurred_at == 1_790_000_100
    assert isinstance(event.payload, CustomerMessage)
    assert event.payload.text == "where is my order?"

    decision = redrive_decision(unread("unreadable_item", status_item("wamid.OUT1")), ALL)
    assert isinstance(decision, Redrive)
    [receipt] = decision.events
    assert receipt.id == "wamid.OUT1:read"
    assert isinstance(receipt.payload, MessageStatus)


def test_an_item_back_in_place_of_its_array_is_read_again() -> None:
    # "messages is not an array": the item is what stood there. Today it is one.
    items = [message_item("wamid.A1"), message_item("wamid.A2")]
    letter = unread("unreadable_value", items, detail="messages is not an array")
    decision = redrive_decision(letter, ALL)
    assert isinstance(decision, Redrive)
    assert [event.id for event in decision.events] == ["wamid.A1", "wamid.A2"]


# 2. The commands, as an operator runs them.


async def run(env: dict[str, str], *args: str) -> tuple[int, list[Any], str]:
    """Exit code, stdout's JSON lines, stderr."""
    clean = {name: value for name, value in os.environ.items() if not name.startswith("PARLEY_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ingest",
        "dead-letters",
        *args,
        cwd=ROOT,
        env={**clean, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    text = out.decode()
    assert not [secret for secret in SECRETS if secret in text + err.decode()]
    return process.returncode or 0, [json.loads(line) for line in text.splitlines()], err.decode()


def env_of(settings: Settings, **more: str) -> dict[str, str]:
    return {
        "PARLEY_KAFKA_BOOTSTRAP": settings.kafka_bootstrap or "",
        "PARLEY_TOPIC": settings.topic,
        "PARLEY_TOPIC_PARTITIONS": str(settings.topic_partitions),
        **more,
    }


async def put_records(settings: Settings, values: list[bytes]) -> None:
    bootstrap = settings.kafka_bootstrap or ""
    await ensure_topics(bootstrap, {settings.dead_letter_topic: 1})
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            await (await producer.send(settings.dead_letter_topic, key=b"k", value=value))
    finally:
        await producer.stop()


def channels_file(tmp_path: Path, channels: list[Channel]) -> str:
    path = tmp_path / "channels.toml"
    path.write_text(
        "".join(
            f'[[channels]]\nid = "{c.id}"\napp_secret = "{c.app_secret}"\n'
            f'verify_token = "{c.verify_token}"\naccess_token = "{c.access_token}"\n'
            f'display_name = "{c.settings.display_name}"\n\n'
            for c in channels
        ),
        encoding="utf-8",
    )
    return str(path)


async def test_list_prints_every_letter_and_counts_by_reason(settings: Settings) -> None:
    letters = [
        unknown_channel(NEW.id, "wamid.N1"),
        unread("no_customer_identifier", message_item("wamid.I3", wa_id=None), detail="no id"),
        unknown_channel(NEW.id, "wamid.N2"),
    ]
    await put_records(settings, [encode(letter) for letter in letters] + [b"not json"])

    code, lines, err = await run(env_of(settings), "list")
    assert (code, err) == (0, "")
    *shown, summary = lines
    assert shown[0] == {
        "partition": 0,
        "offset": 0,
        "reason": "unknown_channel",
        "channel": NEW.id,
        "field": None,
        "detail": None,
        "received_at": "2026-09-21T14:13:20Z",
        "event": "wamid.N1",
        "signed_by": EU.id,
    }
    assert [(line["offset"], line["reason"], line.get("event")) for line in shown] == [
        (0, "unknown_channel", "wamid.N1"),
        (1, "no_customer_identifier", None),
        (2, "unknown_channel", "wamid.N2"),
        (3, UNDECODABLE, None),
    ]
    assert shown[1]["field"] == "messages"
    assert shown[1]["detail"] == "no id"
    assert "item" not in shown[1]  # the customer's message is not printed
    assert summary == {
        "letters": 4,
        "by_reason": {"no_customer_identifier": 1, "undecodable_letter": 1, "unknown_channel": 2},
    }

    code, lines, _ = await run(env_of(settings), "list", "--reason", "unknown_channel")
    assert code == 0
    assert [line["event"] for line in lines[:-1]] == ["wamid.N1", "wamid.N2"]
    assert lines[-1] == {"letters": 2, "by_reason": {"unknown_channel": 2}}


async def test_list_of_a_topic_that_does_not_exist_is_empty(settings: Settings) -> None:
    code, lines, _ = await run(env_of(settings), "list")
    assert (code, lines) == (0, [{"letters": 0, "by_reason": {}}])


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_exit_codes(settings: Settings, tmp_path: Path) -> None:
    unreachable = {"PARLEY_KAFKA_BOOTSTRAP": f"127.0.0.1:{closed_port()}", "PARLEY_TOPIC": "t"}
    for command in ("list", "redrive"):
        code, lines, err = await run(unreachable, command)
        assert (code, lines) == (1, []), err
        assert "kafka at 127.0.0.1" in err
    code, _, err = await run({**env_of(settings), "PARLEY_HTTP_PORT": "eighty"}, "list")
    assert code == 2
    assert "PARLEY_HTTP_PORT" in err
    code, _, err = await run({"PARLEY_TOPIC": "t"}, "list")
    assert code == 2
    assert "PARLEY_KAFKA_BOOTSTRAP is not set" in err
    code, _, err = await run(env_of(settings), "list", "--reason", "no_such_reason")
    assert code == 2
    code, _, err = await run(env_of(settings), "shred")
    assert code == 2
    bad = tmp_path / "bad.toml"
    bad.write_text("[[channels]]\nid = 'x'\n", encoding="utf-8")
    code, _, err = await run(env_of(settings, PARLEY_CHANNELS_FILE=str(bad)), "redrive")
    assert code == 2
    assert "channel x" in err


# 3. End to end: the receiver dead-letters, the operator configures and re-drives.


async def post(client: Client, call: dict[str, Any], secret: str) -> Any:
    body = json.dumps(call).encode()
    response = await client.post(
        "/webhooks/whatsapp", data=body, headers={"X-Hub-Signature-256": sign(body, secret)}
    )
    assert response.status == 200, await response.text()
    return await response.json()


async def test_a_letter_of_a_channel_configured_since_is_redriven_once_for_the_engine(
    aiohttp_client: MakeClient, settings: Settings, redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    bootstrap = settings.kafka_bootstrap or ""
    receiver = await aiohttp_client(create_app(settings, [EU, US], clock=lambda: NOW))
    # NEW is not configured yet; its webhooks are signed with its app's (EU's) secret.
    dead = {"accepted": 0, "dead_lettered": 1}
    call = text_message(NEW.id, "16315551181", "wamid.NEW1", "hello", 1_790_000_100)
    assert await post(receiver, call, EU.app_secret) == dead
    nobody = text_message(NEW.id, None, "wamid.NEW2", "who am I?", 1_790_000_101)
    assert await post(receiver, nobody, EU.app_secret) == dead
    forged = text_message(US.id, "16315551181", "wamid.US1", "hi", 1_790_000_102)
    assert await post(receiver, forged, EU.app_secret) == dead
    assert await read_all(bootstrap, settings.topic) == []

    env = env_of(settings, PARLEY_REDIS_URL=redis_url)
    code, lines, _ = await run(env, "list")
    assert code == 0
    assert lines[-1]["by_reason"] == {
        "no_customer_identifier": 1,
        "signed_by_another_app": 1,
        "unknown_channel": 1,
    }

    # Before NEW is configured: nothing to re-drive.
    code, lines, _ = await run(
        {**env, "PARLEY_CHANNELS_FILE": channels_file(tmp_path, [EU, US])}, "redrive"
    )
    assert code == 0
    assert lines[-1]["redriven"] == 0
    assert lines[-1]["skipped_by_reason"] == {
        CHANNEL_NOT_CONFIGURED: 1,
        "no_customer_identifier": 1,
        "signed_by_another_app": 1,
    }

    # NEW configured, with its app's secret.
    env["PARLEY_CHANNELS_FILE"] = channels_file(tmp_path, [EU, US, NEW])
    code, lines, _ = await run(env, "redrive", "--dry-run")
    assert code == 0
    assert lines[-1]["redriven"] == 1
    assert lines[-1]["produced"] == 0
    assert await read_all(bootstrap, settings.topic) == []

    expected_summary = {
        "redriven": 1,
        "redriven_by_reason": {"unknown_channel": 1},
        "events": 1,
        "produced": 1,
        "skipped": 2,
        "skipped_by_reason": {"no_customer_identifier": 1, "signed_by_another_app": 1},
        "dry_run": False,
    }
    code, lines, err = await run(env, "redrive")
    assert (code, err) == (0, "")
    *decisions, summary = lines
    assert summary == expected_summary
    assert decisions[0] == {
        "partition": 0,
        "offset": 0,
        "reason": "unknown_channel",
        "channel": NEW.id,
        "action": "redrive",
        "events": ["wamid.NEW1"],
    }
    assert [(d["offset"], d["action"], d.get("why")) for d in decisions[1:]] == [
        (1, "skip", "no_customer_identifier"),
        (2, "skip", "signed_by_another_app"),
    ]
    [record] = await read_all(bootstrap, settings.topic)
    assert record.key == f"{NEW.id}:16315551181".encode()
    assert dict(record.headers)["kind"] == b"customer.message"
    event = decode_event(record.value)
    assert (event.id, event.channel, event.received_at) == ("wamid.NEW1", NEW.id, NOW)
    assert isinstance(event.payload, CustomerMessage)
    assert event.payload.text == "hello"

    # Again: produced again, the same event; the letters stay where they are.
    code, lines, _ = await run(env, "redrive")
    assert (code, lines[-1]) == (0, expected_summary)
    records = await read_all(bootstrap, settings.topic)
    assert [decode_event(r.value) for r in records] == [event, event]
    assert len(await read_all(bootstrap, settings.dead_letter_topic)) == 3

    # The engine applies it once: one conversation, in `new`.
    scripts = ConversationStore(redis)
    await scripts.start()
    await seed_channels(redis, [NEW])
    applier = Applier(scripts, lambda: NOW + 10)
    outcomes = [a.outcome for a in await applier.apply([decode_event(r.value) for r in records])]
    assert outcomes == [Outcome.APPLIED, Outcome.DUPLICATE]
    sizes = await queue_sizes(Reader(redis), NEW.id)
    assert sizes == {"new": 1, "open": 0, "pending": 0, "resolved": 0}


async def test_a_channel_registered_through_the_api_counts_as_configured(
    settings: Settings, redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    await put_records(settings, [encode(unknown_channel(NEW.id, "wamid.N1"))])
    env = env_of(settings, PARLEY_CHANNELS_FILE=channels_file(tmp_path, [EU]))
    # Registered but not active yet: not a channel of the receiver.
    record = registration.Registration(
        channel=NEW.id,
        display_name="Support NEW",
        status=registration.Status.VERIFIED,
        created_at=NOW,
        access_token=NEW.access_token,
        app_secret=NEW.app_secret,
        verify_token=NEW.verify_token,
    )
    await registrations.save(redis, record)
    await save_channel_settings(redis, NEW.id, NEW.settings)
    code, lines, _ = await run({**env, "PARLEY_REDIS_URL": redis_url}, "redrive")
    assert code == 0
    assert lines[-1]["skipped_by_reason"] == {CHANNEL_NOT_CONFIGURED: 1}

    await registrations.save(
        redis, msgspec.structs.replace(record, status=registration.Status.ACTIVE)
    )
    code, lines, _ = await run(env, "redrive", "--dry-run")  # no PARLEY_REDIS_URL: file only
    assert lines[-1]["skipped_by_reason"] == {CHANNEL_NOT_CONFIGURED: 1}
    code, lines, _ = await run({**env, "PARLEY_REDIS_URL": redis_url}, "redrive")
    assert code == 0
    assert (lines[-1]["redriven"], lines[-1]["produced"]) == (1, 1)
    [produced] = await read_all(settings.kafka_bootstrap or "", settings.topic)
    assert decode_event(produced.value).id == "wamid.N1"
