"""Decoding Meta's webhook calls and turning them into conversation events."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.normalize import Batch, normalize
from ingest.webhook import Message, decode_webhook
from parley.events import CustomerMessage, MessageStatus

PAYLOADS = Path(__file__).parent / "payloads"
RECEIVED_AT = 1_800_000_000.5
PNID = "106540352242922"
WA = "16315551234"
KEY = f"{PNID}:{WA}"
SENT = 1_749_416_383.0  # the "timestamp" of the customer messages in the payload files
OUR_MESSAGE = "wamid.HBgLMTYzMTU1NTEyMzQVAgARGBI3NzFGMkM1RjA2QjE4MjBBNDIA"
FAILED = "wamid.HBgLMTYzMTU1NTEyMzQVAgARGBJBQ0Q5RjkxRDg1QTNFNjZFODgA"


def body_of(name: str) -> bytes:
    return (PAYLOADS / f"{name}.json").read_bytes()


def batch_of(name: str) -> Batch:
    return normalize(decode_webhook(body_of(name)), received_at=RECEIVED_AT)


def wamid_of(name: str) -> str:
    """The id of the one message in a payload file, read from the file itself."""
    [message] = json.loads(body_of(name))["entry"][0]["changes"][0]["value"]["messages"]
    return str(message["id"])


def customer(wamid: str, key: str = KEY, at: float = SENT) -> tuple[str, str, str, float]:
    return ("customer.message", wamid, key, at)


def status(state: str, at: float, wamid: str = OUR_MESSAGE) -> tuple[str, str, str, float]:
    return ("message.status", f"{wamid}:{state}", KEY, at)


ONE_MESSAGE = [
    "text",
    "text_reply",
    "text_forwarded",
    "text_from_ad",
    "image",
    "audio",
    "video",
    "document",
    "sticker",
    "location",
    "contacts",
    "interactive_button_reply",
    "interactive_list_reply",
    "button",
    "reaction",
    "order",
    "system_customer_changed_number",
    "unsupported",
    "unknown_future_type",
]
# (kind, id, conversation, occurred_at) of every event, other fields, value error codes.
EXPECTED: dict[str, tuple[list[tuple[str, str, str, float]], list[str], list[int]]] = {
    **{name: ([customer(wamid_of(name))], [], []) for name in ONE_MESSAGE},
    "status_sent": ([status("sent", 1_749_416_390.0)], [], []),
    "status_delivered": ([status("delivered", 1_749_416_391.0)], [], []),
    "status_read": ([status("read", 1_749_416_420.0)], [], []),
    "status_failed": ([status("failed", 1_749_502_900.0, FAILED)], [], []),
    "value_errors": ([], [], [130429]),
    "multiple": (
        [
            customer("wamid.MULTI-1"),
            customer("wamid.MULTI-2", f"{PNID}:5511987654321", 1_749_416_385.0),
            customer("wamid.MULTI-3", at=1_749_416_386.0),
            status("delivered", 1_749_416_387.0, "wamid.OUT-1"),
            status("read", 1_749_416_388.0, "wamid.OUT-1"),
            customer("wamid.MULTI-4", "106540352242923:447700900123", 1_749_416_390.0),
        ],
        ["phone_number_quality_update"],
        [],
    ),
    "template_status_update": ([], [], []),  # a template update, not an event
    "account_update": ([], ["account_update"], []),
}


TEMPLATE_UPDATE = ("order_confirmation", "en_US", "APPROVED")


def test_every_payload_file_has_expectations() -> None:
    assert {path.stem for path in PAYLOADS.glob("*.json")} == set(EXPECTED)


def test_a_template_status_update_names_the_template_and_its_new_status() -> None:
    batch = batch_of("template_status_update")
    assert [(u.name, u.language, u.status) for u in batch.template_updates] == [TEMPLATE_UPDATE]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_payload_becomes_one_event_per_message_and_status(name: str) -> None:
    events, other_fields, error_codes = EXPECTED[name]
    batch = batch_of(name)
    assert [(e.kind, e.id, e.conversation, e.occurred_at) for e in batch.events] == events
    assert all(e.channel == e.conversation.split(":")[0] for e in batch.events)
    assert all(e.received_at == RECEIVED_AT for e in batch.events)
    assert batch.other_fields == other_fields
    assert [error.code for error in batch.value_errors] == error_codes


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_messages_and_status_errors_reach_events_exactly_as_sent(name: str) -> None:
    values = [
        change["value"]
        for entry in json.loads(body_of(name))["entry"]
        for change in entry["changes"]
        if change["field"] == "messages"
    ]
    events = batch_of(name).events
    customers = [e.payload for e in events if isinstance(e.payload, CustomerMessage)]
    statuses = [e.payload for e in events if isinstance(e.payload, MessageStatus)]
    assert [c.message for c in customers] == [m for v in values for m in v.get("messages", [])]
    sent = [s.get("errors", []) for v in values for s in v.get("statuses", [])]
    assert [s.errors for s in statuses] == sent


# (file, what the customer.message payload says: type, profile_name, context_wamid, forwarded)
@pytest.mark.parametrize(
    ("name", "fields"),
    [
        ("text", ("text", "Sheena Nelson", None, False)),
        (
            "text_reply",
            (
                "text",
                "Sheena Nelson",
                "wamid.HBgLMTYzMTU1NTEyMzQVAgARGBI0NkY3RjMzQkYyMDk0QjlEQjYA",
                False,
            ),
        ),
        ("text_forwarded", ("text", "Sheena Nelson", None, True)),
        ("system_customer_changed_number", ("system", None, None, False)),
        ("unsupported", ("unsupported", "Sheena Nelson", None, False)),
        ("unknown_future_type", ("hologram", "Sheena Nelson", None, False)),
    ],
)
def test_customer_message_fields(
    name: str, fields: tuple[str, str | None, str | None, bool]
) -> None:
    [event] = batch_of(name).events
    payload = event.payload
    assert isinstance(payload, CustomerMessage)
    assert payload.wamid == event.id
    assert payload.wa_id == WA
    assert (payload.type, payload.profile_name, payload.context_wamid, payload.forwarded) == fields


def test_a_contact_matching_the_sender_names_them_among_several() -> None:
    payloads = [e.payload for e in batch_of("multiple").events]
    names = [p.profile_name for p in payloads if isinstance(p, CustomerMessage)]
    assert names == ["Sheena Nelson", "Ana Souza", "Sheena Nelson", "Oliver"]
    forwarded = [p.forwarded for p in payloads if isinstance(p, CustomerMessage)]
    assert forwarded == [False, True, False, False]  # MULTI-2 is frequently_forwarded


def only_message(name: str) -> Message:
    [entry] = decode_webhook(body_of(name)).entry
    value = entry.changes[0].decoded
    assert value is not None
    [message] = value.messages
    return message


# The typed model reads each documented type's object.
TYPED: list[tuple[str, Callable[[Any], object], object]] = [
    ("text", lambda m: m.text.body, "Does it come in another color?"),
    ("text_reply", lambda m: m.context.from_, "15550783881"),
    (
        "text_from_ad",
        lambda m: (m.referral.source_type, m.referral.source_id),
        ("ad", "120226305854810726"),
    ),
    (
        "image",
        lambda m: (m.image.id, m.image.caption),
        ("1003383421387256", "This is the damaged box"),
    ),
    ("audio", lambda m: (m.audio.voice, m.audio.mime_type), (True, "audio/ogg; codecs=opus")),
    ("video", lambda m: m.video.mime_type, "video/mp4"),
    ("document", lambda m: m.document.filename, "receipt-1013.pdf"),
    ("sticker", lambda m: m.sticker.animated, False),
    (
        "location",
        lambda m: (m.location.latitude, m.location.name),
        (37.44216251868683, "Philz Coffee"),
    ),
    ("contacts", lambda m: m.contacts[0].phones[0]["wa_id"], "19405551234"),
    ("interactive_button_reply", lambda m: m.interactive.button_reply.id, "track-order"),
    (
        "interactive_list_reply",
        lambda m: m.interactive.list_reply.description,
        "Next day to 2 days",
    ),
    ("button", lambda m: m.button.payload, "Unsubscribe from promotions"),
    ("reaction", lambda m: m.reaction.emoji, "\N{THUMBS UP SIGN}"),
    (
        "order",
        lambda m: [(p.quantity, p.item_price) for p in m.order.product_items],
        [(2, 30), (1, 12.5)],
    ),
    ("system_customer_changed_number", lambda m: m.system.new_wa_id, "16315559876"),
    (
        "unsupported",
        lambda m: [(e.code, e.error_data.details) for e in m.errors],
        [(131051, "Message type is currently not supported.")],
    ),
]


@pytest.mark.parametrize(("name", "read", "expected"), TYPED)
def test_each_documented_type_decodes_into_its_object(
    name: str, read: Callable[[Any], object], expected: object
) -> None:
    assert read(only_message(name)) == expected


def test_an_unknown_type_is_kept_with_its_unknown_fields() -> None:
    [event] = batch_of("unknown_future_type").events
    assert isinstance(event.payload, CustomerMessage)
    assert event.payload.message["hologram"] == {
        "id": "1371283961289471",
        "frames": 240,
        "mime_type": "model/gltf-binary",
    }
    assert event.payload.message["sentiment"] == {"label": "curious", "score": 0.93}


def test_a_failed_status_carries_its_errors_conversation_and_pricing() -> None:
    [event] = batch_of("status_failed").events
    payload = event.payload
    assert isinstance(payload, MessageStatus)
    assert (payload.wamid, payload.recipient_id, payload.status) == (FAILED, WA, "failed")
    assert [error["code"] for error in payload.errors] == [131047, 131026]
    assert payload.errors[1]["fbtrace_id"] == "AbCdEf123"  # unmodelled, still kept
    assert payload.conversation_id == "6ceb9d929c0a2e4c0f3c6f6ac9e6b1f2"
    assert payload.pricing_category == "service"


def test_a_read_status_without_conversation_or_pricing() -> None:
    [event] = batch_of("status_read").events
    assert isinstance(event.payload, MessageStatus)
    assert (event.payload.conversation_id, event.payload.pricing_category) == (None, None)
    assert event.payload.errors == []


@pytest.mark.parametrize("name", ["template_status_update", "account_update"])
def test_other_fields_keep_their_value_raw_and_undecoded(name: str) -> None:
    [change] = decode_webhook(body_of(name)).entry[0].changes
    assert change.decoded is None
    sent = json.loads(body_of(name))["entry"][0]["changes"][0]["value"]
    assert msgspec.json.decode(change.value) == sent


def call(*values: Any, field: str = "messages") -> dict[str, Any]:
    changes = [{"field": field, "value": value} for value in values]
    return {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": changes}]}


def value(**fields: Any) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "metadata": {"phone_number_id": PNID}, **fields}


def text(wa_id: str = WA, wamid: str = "wamid.A", timestamp: Any = "1749416383") -> dict[str, Any]:
    return {
        "from": wa_id,
        "id": wamid,
        "timestamp": timestamp,
        "type": "text",
        "text": {"body": "hi"},
    }


def normalized(body: dict[str, Any]) -> Batch:
    return normalize(decode_webhook(msgspec.json.encode(body)), received_at=RECEIVED_AT)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b'{"object": "whatsapp_business_account", "entry": [',
        b"\xff\xfe not json",
        # Invalid UTF-8 in a string, at the top and inside a messages value.
        b'{"object": "\xff", "entry": []}',
        b'{"object": "w", "entry": [{"id": "1", "changes": [{"field": "messages", "value": '
        b'{"metadata": {"phone_number_id": "\xc3"}}}]}]}',
    ],
)
def test_a_body_that_is_not_json_is_a_decode_error(body: bytes) -> None:
    with pytest.raises(msgspec.DecodeError):
        decode_webhook(body)


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ([], "$"),
        ({"hello": "world"}, "$"),
        ({"object": "whatsapp_business_account", "entry": "nope"}, "$.entry"),
        ({"object": "whatsapp_business_account", "entry": [{"id": "1"}]}, "$.entry[0]"),
        (
            {"object": "x", "entry": [{"id": "1", "changes": [{"field": "a"}]}]},
            "$.entry[0].changes[0]",
        ),
        (call([]), "$.entry[0].changes[0].value"),
        (call({"messages": []}), "$.entry[0].changes[0].value"),
        (call(value(messages=[{"id": "wamid.A"}])), "$.entry[0].changes[0].value.messages[0]"),
        (call(value(), value(statuses=[{"id": 7}])), "$.entry[0].changes[1].value.statuses[0].id"),
        (
            call(value(messages=[text(timestamp=True)])),
            "$.entry[0].changes[0].value.messages[0].timestamp",
        ),
        (call(value(errors=[{"title": "no code"}])), "$.entry[0].changes[0].value.errors[0]"),
    ],
)
def test_json_that_is_not_a_webhook_is_a_validation_error_naming_the_path(
    body: Any, path: str
) -> None:
    with pytest.raises(msgspec.ValidationError) as raised:
        decode_webhook(msgspec.json.encode(body))
    where = str(raised.value).partition(" - at ")[2]
    assert where == ("" if path == "$" else f"`{path}`")


@pytest.mark.parametrize("other", [[1, 2], "text", 12, None, {"messages": "not a list"}])
def test_a_value_of_another_field_may_have_any_shape(other: Any) -> None:
    batch = normalized(call(other, field="security"))
    assert (batch.events, batch.other_fields) == ([], ["security"])


def test_unknown_fields_are_ignored_at_every_level() -> None:
    body = call(value(messages=[{**text(), "x_new": {"a": [1]}}], x_rollout=True))
    body["x_top"] = 1
    body["entry"][0]["time"] = 1749416383
    body["entry"][0]["changes"][0]["x_change"] = "?"
    [event] = normalized(body).events
    assert isinstance(event.payload, CustomerMessage)
    assert event.payload.message["x_new"] == {"a": [1]}


@pytest.mark.parametrize(
    ("timestamp", "occurred_at"),
    [
        ("1749416383", 1_749_416_383.0),
        (1749416383, 1_749_416_383.0),
        (1749416383.25, 1_749_416_383.25),
        ("soon", RECEIVED_AT),
        ("", RECEIVED_AT),
        ("nan", RECEIVED_AT),
        ("-inf", RECEIVED_AT),
        ("1e999", RECEIVED_AT),
        (10**400, RECEIVED_AT),
    ],
)
def test_a_timestamp_that_is_not_a_time_falls_back_to_received_at(
    timestamp: Any, occurred_at: float
) -> None:
    statuses = [{"id": "w", "status": "sent", "timestamp": timestamp, "recipient_id": WA}]
    batch = normalized(call(value(messages=[text(timestamp=timestamp)], statuses=statuses)))
    assert [event.occurred_at for event in batch.events] == [occurred_at, occurred_at]


def test_numbers_meta_sends_either_way_are_accepted() -> None:
    order = {"product_items": [{"quantity": "2", "item_price": "30.00", "currency": "USD"}]}
    message = {**text(), "type": "order", "order": order}
    status = {
        "id": "w",
        "status": "sent",
        "timestamp": 1,
        "recipient_id": WA,
        "conversation": {"id": "c", "expiration_timestamp": 1749502783},
    }
    assert len(normalized(call(value(messages=[message], statuses=[status]))).events) == 2


def name_of(contacts: list[dict[str, Any]], sender: str = WA) -> str | None:
    [event] = normalized(call(value(contacts=contacts, messages=[text(sender)]))).events
    assert isinstance(event.payload, CustomerMessage)
    return event.payload.profile_name


def test_profile_name_of_the_sender() -> None:
    ana = {"profile": {"name": "Ana"}, "wa_id": "5511987654321"}
    sheena = {"profile": {"name": "Sheena"}, "wa_id": WA}
    assert name_of([ana, sheena]) == "Sheena"
    # A lone contact is the sender even when Meta spells the number differently.
    assert name_of([ana]) == "Ana"
    # Among several, an unmatched guess could name the wrong customer.
    assert name_of([ana, {"profile": {"name": "Bo"}, "wa_id": "1"}]) is None
    assert name_of([{"wa_id": WA}, ana]) is None
    assert name_of([]) is None


# Any JSON at all: the top level, or shaped like a webhook with arbitrary insides.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
# Mostly the right shape with odd contents (huge or non-finite numbers, empty strings), so
# that many calls get past validation into normalize; sometimes anything at all.
times = st.text(max_size=6) | st.integers() | st.integers(10**300, 10**400) | st.floats()
loose_messages = st.lists(
    st.fixed_dictionaries(
        {"from": st.text(), "id": st.text(), "type": st.text(), "timestamp": times},
        optional={
            "context": st.fixed_dictionaries(
                {}, optional={"id": st.text(), "frequently_forwarded": st.booleans() | st.none()}
            ),
            "text": st.fixed_dictionaries({}, optional={"body": json_values}),
        },
    ),
    max_size=3,
)
loose_statuses = st.lists(
    st.fixed_dictionaries(
        {"id": st.text(), "status": st.text(), "timestamp": times, "recipient_id": st.text()},
        optional={
            "errors": st.lists(
                st.fixed_dictionaries({"code": st.integers()}, optional={"error_data": json_values})
            ),
            "pricing": st.fixed_dictionaries({"category": st.text()}),
        },
    ),
    max_size=3,
)
loose_contacts = st.lists(
    st.fixed_dictionaries(
        {}, optional={"wa_id": st.text(), "profile": st.fixed_dictionaries({"name": st.text()})}
    )
)
messages_like = st.fixed_dictionaries(
    {"metadata": st.fixed_dictionaries({"phone_number_id": st.text()})},
    optional={"messages": loose_messages, "contacts": loose_contacts, "statuses": loose_statuses},
)
# Mostly messages values: arbitrary JSON there is nearly always rejected at once.
loose_values = st.integers(0, 3).flatmap(lambda i: messages_like if i else json_values)
loose_webhooks = st.fixed_dictionaries(
    {
        "object": st.text(max_size=4),
        "entry": st.lists(
            st.fixed_dictionaries(
                {
                    "id": st.text(max_size=4),
                    "changes": st.lists(
                        st.fixed_dictionaries(
                            {"field": st.sampled_from(["messages", "other"]), "value": loose_values}
                        ),
                        max_size=3,
                    ),
                }
            ),
            max_size=2,
        ),
    }
)


@settings(max_examples=300, deadline=None)
@given(body=json_values | loose_webhooks)
def test_any_json_is_a_webhook_or_a_validation_error(body: Any) -> None:
    try:
        webhook = decode_webhook(msgspec.json.encode(body))
    except msgspec.ValidationError:
        return
    changes = [change.decoded for entry in webhook.entry for change in entry.changes]
    carried = sum(len(v.messages) + len(v.statuses) for v in changes if v is not None)
    assert len(normalize(webhook, received_at=RECEIVED_AT).events) == carried


@st.composite
def spliced(draw: st.DrawFn) -> bytes:
    """A real call with a few random bytes put in: mostly almost-JSON, sometimes in a string."""
    body = body_of(draw(st.sampled_from(sorted(EXPECTED))))
    at = draw(st.integers(min_value=0, max_value=len(body)))
    return body[:at] + draw(st.binary(min_size=1, max_size=4)) + body[at:]


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=256) | spliced())
def test_any_bytes_decode_or_raise_a_msgspec_error(data: bytes) -> None:
    try:
        webhook = decode_webhook(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return
    normalize(webhook, received_at=RECEIVED_AT)


# Structurally valid calls: documented and unknown types, optional fields, unknown keys.
ids = st.text(st.characters(codec="ascii", exclude_characters=":"), min_size=1, max_size=12)
unix = st.integers(min_value=0, max_value=2**40)
extras = st.dictionaries(st.text(max_size=6).map("x_".__add__), json_values, max_size=2)
media = st.fixed_dictionaries(
    {"id": ids}, optional={"mime_type": st.text(), "voice": st.booleans()}
)
TYPE_OBJECTS = {
    "text": st.fixed_dictionaries({"body": st.text()}),
    "image": media,
    "audio": media,
    "location": st.fixed_dictionaries({"latitude": st.floats(-90, 90), "longitude": st.integers()}),
    "reaction": st.fixed_dictionaries({"message_id": ids}, optional={"emoji": st.text()}),
    "interactive": st.fixed_dictionaries(
        {"type": st.just("list_reply"), "list_reply": st.fixed_dictionaries({"id": ids})}
    ),
    "order": st.fixed_dictionaries(
        {"product_items": st.lists(st.fixed_dictionaries({"quantity": st.integers() | st.text()}))}
    ),
    "never_documented": st.dictionaries(st.text(max_size=6), json_values, max_size=3),
}


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(TYPE_OBJECTS)))
    timestamp = draw(unix)
    message = {
        "from": draw(ids),
        "id": draw(ids),
        "timestamp": draw(st.sampled_from([str(timestamp), timestamp])),
        "type": kind,
        kind: draw(TYPE_OBJECTS[kind]),
        **draw(extras),
    }
    if draw(st.booleans()):
        message["context"] = draw(
            st.fixed_dictionaries({}, optional={"id": ids, "forwarded": st.booleans()})
        )
    return message


statuses = st.fixed_dictionaries(
    {
        "id": ids,
        "status": st.sampled_from(["sent", "delivered", "read", "failed", "deleted"]) | ids,
        "timestamp": unix.map(str),
        "recipient_id": ids,
    },
    optional={
        "errors": st.lists(st.fixed_dictionaries({"code": st.integers(0, 2**31)}), max_size=2),
        "conversation": st.fixed_dictionaries({"id": ids}),
        "x_new": json_values,
    },
)
messages_values = st.builds(
    lambda pnid, contacts, found, states, more: value(
        metadata={"phone_number_id": pnid},
        contacts=contacts,
        messages=found,
        statuses=states,
        **more,
    ),
    ids,
    st.lists(
        st.fixed_dictionaries({"wa_id": ids, "profile": st.fixed_dictionaries({"name": st.text()})})
    ),
    st.lists(messages(), max_size=4),
    st.lists(statuses, max_size=4),
    extras,
)
changes = st.one_of(
    messages_values.map(lambda v: {"field": "messages", "value": v}),
    st.builds(
        lambda f, v: {"field": f, "value": v}, st.sampled_from(["account_update", "x"]), json_values
    ),
)


@settings(max_examples=200, deadline=None)
@given(entries=st.lists(st.lists(changes, max_size=3), max_size=3))
def test_a_valid_call_gives_one_event_per_message_and_status(
    entries: list[list[dict[str, Any]]],
) -> None:
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": c} for c in entries],
    }
    body = msgspec.json.decode(msgspec.json.encode(body))  # as JSON carries it: inf is null
    entries = [entry["changes"] for entry in body["entry"]]
    expected: list[tuple[str, str, str, float]] = []
    for change in (c for e in entries for c in e if c["field"] == "messages"):
        pnid = change["value"]["metadata"]["phone_number_id"]
        for m in change["value"]["messages"]:
            expected.append((m["id"], f"{pnid}:{m['from']}", pnid, float(m["timestamp"])))
        for s in change["value"]["statuses"]:
            expected.append(
                (
                    f"{s['id']}:{s['status']}",
                    f"{pnid}:{s['recipient_id']}",
                    pnid,
                    float(s["timestamp"]),
                )
            )
    batch = normalized(body)
    assert [(e.id, e.conversation, e.channel, e.occurred_at) for e in batch.events] == expected
    assert batch.other_fields == [
        c["field"] for e in entries for c in e if c["field"] != "messages"
    ]
    sent = [
        m for e in entries for c in e if c["field"] == "messages" for m in c["value"]["messages"]
    ]
    customers = [e.payload for e in batch.events if isinstance(e.payload, CustomerMessage)]
    assert [c.message for c in customers] == sent
    assert [c.context_wamid for c in customers] == [m.get("context", {}).get("id") for m in sent]
