"""Decoding Meta's webhook calls and turning each item of them into a conversation event.

The expectations are written from the payload files in tests/payloads, docs/customers.md
and docs/meta-webhooks-2026.md, not copied from what the code produces.
"""

import json
import math
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ingest.meta_payload import Entry, Webhook, decode_webhook
from ingest.normalize import Batch, normalize
from parley.events import (
    CustomerMessage,
    Echo,
    Edit,
    Identity,
    IdentityChange,
    MessageStatus,
    Preference,
    Reaction,
    Revoke,
)
from parley.standing import NameUpdate, QualityUpdate
from store.templates import TemplateUpdate

PAYLOADS = Path(__file__).parent / "payloads"
RECEIVED_AT = 1_800_000_000.5
# The two phone_number_ids (channels) of the payload files, as in tests/conftest.py.
EU = "106540352242922"
US = "106540352242923"
WABA = "102290129340398"
# Sheena: her phone, her BSUID and parent BSUID, as the 2026 payload files give them.
WA = "16315551234"
BSUID = "US.13491208655302741918"
PARENT = "US.ENT.11815799212886844830"
NAME = "Sheena Nelson"
USERNAME = "@realsheenanelson"
SENT = 1_749_416_383.0  # the "timestamp" of most customer messages in the payload files
OUR_MESSAGE = "wamid.HBgLMTYzMTU1NTEyMzQVAgARGBI3NzFGMkM1RjA2QjE4MjBBNDIA"
FAILED = "wamid.HBgLMTYzMTU1NTEyMzQVAgARGBJBQ0Q5RjkxRDg1QTNFNjZFODgA"
GROUP = "Y2FwaV9ncm91cDoxNTU1MDc4Mzg4MToxMjAzNjM0MDQ2OTQyMzM4MjAZD"

# Which arrays of a value hold the items of each field Parley reads item by item.
ARRAYS: dict[str, tuple[str, ...]] = {
    "messages": ("messages", "statuses"),
    "smb_message_echoes": ("message_echoes",),
    "user_preferences": ("user_preferences",),
    "user_id_update": ("user_id_update",),
}
REASONS = {"unreadable_value", "no_phone_number_id", "unreadable_item", "no_customer_identifier"}


def body_of(name: str) -> bytes:
    return (PAYLOADS / f"{name}.json").read_bytes()


def batch_of(name: str) -> Batch:
    return normalize(decode_webhook(body_of(name)), received_at=RECEIVED_AT)


def item_of(name: str, array: str = "messages") -> dict[str, Any]:
    """The one item of a payload file, read from the file itself."""
    [item] = json.loads(body_of(name))["entry"][0]["changes"][0]["value"][array]
    return dict(item)


def wamid_of(name: str, array: str = "messages") -> str:
    return str(item_of(name, array)["id"])


def on(channel: str, route: str) -> str:
    """An event's key: `{channel}:{route}`, route the BSUID, else the phone, else g.<group>."""
    return f"{channel}:{route}"


class Ev(NamedTuple):
    kind: str
    id: str
    key: str
    occurred_at: float
    identity: Identity


class Expected(NamedTuple):
    events: tuple[Ev, ...] = ()
    unusable: tuple[tuple[str, str], ...] = ()  # (reason, field)
    other_fields: tuple[str, ...] = ()
    value_errors: tuple[int, ...] = ()
    template_updates: tuple[TemplateUpdate, ...] = ()
    number_updates: tuple[NameUpdate | QualityUpdate, ...] = ()


# Who the events are about, as each file identifies them.
SHEENA = Identity(phone=WA, name=NAME)  # by phone, named by her contact
PHONE = Identity(phone=WA)  # by phone, no contact to name her
SHEENA_BOTH = Identity(phone=WA, user_id=BSUID, name=NAME)  # phone and BSUID
SHEENA_NO_PHONE = Identity(user_id=BSUID, parent_user_id=PARENT, username=USERNAME, name=NAME)
ANA = "BR.40817263549182736455"
MARCO_ID = "US.86420135797531864209"
MARCO = Identity(user_id=MARCO_ID, username="@marco.rossi", name="Marco Rossi")
OLIVER_ID = "GB.55029183746501827364"
OLIVER = Identity(phone="447700900123", user_id=OLIVER_ID, name="Oliver Smith")


def said(
    name: str,
    kind: str = "customer.message",
    key: str = on(EU, WA),
    at: float = SENT,
    identity: Identity = SHEENA,
) -> Ev:
    """The event of a file's one customer message, by its wamid."""
    return Ev(kind, wamid_of(name), key, at, identity)


def status(
    state: str,
    at: float,
    wamid: str = OUR_MESSAGE,
    key: str = on(EU, WA),
    identity: Identity = PHONE,
) -> Ev:
    return Ev("message.status", f"{wamid}:{state}", key, at, identity)


PHONE_ONLY_MESSAGES = [
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
    "order",
    "unsupported",
]
BATCH = "wamid.HBgLMTYzMTU1NTEyMzQVAgARGBQzRUIwNEYyQTlDMUQ2RTg3QjVGMAA="  # a template message
VOICE = "wamid.HBgLMTYzMTU1NTEyMzQVAgARGBI3QTJEOTVDMEUxNEIzOEY2QTEA"
TO_OLIVER = "wamid.HBgMNDQ3NzAwOTAwMTIzFQIAERgSQjgzRTFGNkQyQTA0Qzk1N0UyAA=="
TO_BSUID = "wamid.HBgLMTY1MDU1NTAxOTkVAgARGBI0QzFFOUEwN0IzRDU4RjI2RTAA"
TO_GROUP = "wamid.HBgLMTU1NTA3ODM4ODEVAgARGBI1RDA4QjNFN0ExNEM5MkY2RDEA"
MIXED = "wamid.HBgLMTYzMTU1NTEyMzQVAgARGBQzRUIwOTEzQzdGNUEyRDQ4RTZCMQA="
MIXED_US = "wamid.HBgMNDQ3NzAwOTAwMTIzFQIAERgSQzRGMUE5RTA2QjdEMjM4NTlFAA=="

# Every payload file: each event it must produce, in payload order, and the rest.
EXPECTED: dict[str, Expected] = {
    **{name: Expected((said(name),)) for name in PHONE_ONLY_MESSAGES},
    # The same customer by phone and BSUID: keyed by the BSUID, whatever else is sent.
    "unknown_future_type": Expected(
        (said("unknown_future_type", key=on(EU, BSUID), identity=SHEENA_BOTH),)
    ),
    "phone_and_bsuid_message": Expected(
        (said("phone_and_bsuid_message", key=on(EU, BSUID), identity=SHEENA_BOTH),)
    ),
    "bsuid_only_message": Expected(
        (said("bsuid_only_message", key=on(EU, BSUID), identity=SHEENA_NO_PHONE),)
    ),
    "contact_shares_phone": Expected(
        (
            said(
                "contact_shares_phone",
                key=on(EU, BSUID),
                identity=Identity(user_id=BSUID, username=USERNAME, name=NAME),
            ),
        )
    ),
    "request_welcome": Expected(
        (said("request_welcome", key=on(EU, BSUID), identity=SHEENA_BOTH),)
    ),
    "reaction": Expected((said("reaction", "customer.reaction"),)),
    "reaction_removed": Expected(
        (
            said(
                "reaction_removed", "customer.reaction", on(EU, BSUID), 1_749_416_400.0, SHEENA_BOTH
            ),
        )
    ),
    "edit": Expected((said("edit", "customer.edit", on(EU, BSUID), 1_749_416_500.0, SHEENA_BOTH),)),
    "revoke": Expected(
        (said("revoke", "customer.revoke", on(EU, BSUID), 1_749_416_510.0, SHEENA_BOTH),)
    ),
    # System messages carry no contacts: nobody is named.
    "system_customer_changed_number": Expected(
        (said("system_customer_changed_number", "customer.identity", identity=PHONE),)
    ),
    # No sender field at all: the old BSUID is read from the body.
    "system_user_changed_user_id": Expected(
        (
            said(
                "system_user_changed_user_id",
                "customer.identity",
                on(EU, BSUID),
                identity=Identity(user_id=BSUID),
            ),
        )
    ),
    # A group is a customer of its own, keyed g.<group id>; who wrote is the author.
    "group_message": Expected(
        (said("group_message", key=on(EU, f"g.{GROUP}"), identity=Identity(group_id=GROUP)),)
    ),
    "status_sent": Expected((status("sent", 1_749_416_390.0),)),
    "status_delivered": Expected((status("delivered", 1_749_416_391.0),)),
    "status_read": Expected((status("read", 1_749_416_420.0),)),
    "status_failed": Expected((status("failed", 1_749_502_900.0, FAILED),)),
    "status_bsuid_only": Expected(
        (
            status("delivered", 1_749_416_391.0, TO_BSUID, on(EU, BSUID), SHEENA_NO_PHONE),
            status("read", 1_749_416_420.0, TO_BSUID, on(EU, BSUID), SHEENA_NO_PHONE),
        )
    ),
    "status_batch": Expected(
        (
            status("sent", 1_749_416_390.0, BATCH, on(EU, BSUID), SHEENA_BOTH),
            status("delivered", 1_749_416_391.0, BATCH, on(EU, BSUID), SHEENA_BOTH),
            status("read", 1_749_416_420.0, BATCH, on(EU, BSUID), SHEENA_BOTH),
            status("played", 1_749_416_455.0, VOICE, on(EU, BSUID), SHEENA_BOTH),
            # A failed status sent to a phone carries only recipient_id: keyed by the
            # phone. The value's one contact is Sheena's, not this customer's (the doc:
            # "a second customer who has no contacts entry"): nobody names them.
            status(
                "failed",
                1_749_416_460.0,
                TO_OLIVER,
                on(EU, "447700900123"),
                Identity(phone="447700900123"),
            ),
        )
    ),
    # One status per participant: two events for one wamid, each its own id.
    "group_statuses": Expected(
        (
            Ev(
                "message.status",
                f"{TO_GROUP}:read:{BSUID}",
                on(EU, f"g.{GROUP}"),
                1_749_416_420.0,
                Identity(group_id=GROUP),
            ),
            Ev(
                "message.status",
                f"{TO_GROUP}:read:{ANA}",
                on(EU, f"g.{GROUP}"),
                1_749_416_431.0,
                Identity(group_id=GROUP),
            ),
        )
    ),
    "multiple": Expected(
        (
            Ev("customer.message", "wamid.MULTI-1", on(EU, WA), SENT, SHEENA),
            Ev(
                "customer.message",
                "wamid.MULTI-2",
                on(EU, "5511987654321"),
                1_749_416_385.0,
                Identity(phone="5511987654321", name="Ana Souza"),
            ),
            Ev("customer.message", "wamid.MULTI-3", on(EU, WA), 1_749_416_386.0, SHEENA),
            status("delivered", 1_749_416_387.0, "wamid.OUT-1", identity=SHEENA),
            status("read", 1_749_416_388.0, "wamid.OUT-1", identity=SHEENA),
            Ev(
                "customer.message",
                "wamid.MULTI-4",
                on(US, "447700900123"),
                1_749_416_390.0,
                Identity(phone="447700900123", name="Oliver"),
            ),
        ),
        number_updates=(
            QualityUpdate(
                display_phone_number="15550783882", event="FLAGGED", current_limit="TIER_10K"
            ),
        ),
    ),
    "mixed_two_numbers": Expected(
        (
            Ev(
                "customer.message",
                "wamid.HBgLMTYzMTU1NTEyMzQVAgASGBQzQTJCN0U5RDA0QzFGNThBNkIzMQA=",
                on(EU, BSUID),
                SENT,
                SHEENA_BOTH,
            ),
            # (the message with neither `from` nor `from_user_id` is the unusable one)
            Ev(
                "customer.message",
                "wamid.HBgLMTY1MDU1NTAxNDIVAgASGBQzRUIwN0EzQzVEMTlGMkU2NEI4OAA=",
                on(EU, MARCO_ID),
                1_749_416_385.0,
                MARCO,
            ),
            status("read", 1_749_416_386.0, MIXED, on(EU, BSUID), SHEENA_BOTH),
            Ev(
                "customer.message",
                "wamid.HBgMNDQ3NzAwOTAwMTIzFQIAEhgUM0EwRTZDOEIyRDVGMTRBOTdDMkUA",
                on(US, OLIVER_ID),
                1_749_416_387.0,
                OLIVER,
            ),
            status("delivered", 1_749_416_388.0, MIXED_US, on(US, OLIVER_ID), OLIVER),
            status("read", 1_749_416_389.0, MIXED_US, on(US, OLIVER_ID), OLIVER),
        ),
        unusable=(("no_customer_identifier", "messages"),),
    ),
    # Coexistence: what the business sent from the app, keyed by the customer's BSUID.
    "smb_message_echoes": Expected(
        (
            Ev(
                "business.echo",
                wamid_of("smb_message_echoes", "message_echoes"),
                on(EU, BSUID),
                1_749_416_600.0,
                Identity(phone=WA, user_id=BSUID),  # the contact has no profile
            ),
        )
    ),
    "user_preferences": Expected(
        (
            # A preference has no wamid: its id names who, what and when.
            Ev(
                "customer.preference",
                f"preference:{BSUID}:marketing_messages:1749416383",
                on(EU, BSUID),
                SENT,
                SHEENA_BOTH,
            ),
        )
    ),
    "history": Expected(other_fields=("history",)),  # counted, never stored
    "smb_app_state_sync": Expected(other_fields=("smb_app_state_sync",)),
    "account_update": Expected(other_fields=("account_update",)),
    "phone_number_name_update": Expected(
        number_updates=(
            NameUpdate(
                display_phone_number="15550783881",
                decision="REJECTED",
                requested_verified_name="Lucky Shrub",
                rejection_reason="The display name does not represent your business",
            ),
        ),
    ),
    "value_errors": Expected(value_errors=(130429,)),
    "template_status_update": Expected(
        template_updates=(
            TemplateUpdate(
                waba_id=WABA, name="order_confirmation", language="en_US", status="APPROVED"
            ),
        )
    ),
    # One call, two business accounts: each update names the account of its own entry.
    "template_updates_two_wabas": Expected(
        template_updates=(
            TemplateUpdate(
                waba_id=WABA,
                name="abandoned_cart",
                language="en_US",
                status="REJECTED",
                reason="INVALID_FORMAT",
                category="MARKETING",
            ),
            TemplateUpdate(
                waba_id="209876543210987",
                name="welcome_template",
                language="pt_BR",
                category="MARKETING",
            ),
        )
    ),
}


def test_every_payload_file_has_expectations() -> None:
    assert {path.stem for path in PAYLOADS.glob("*.json")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_payload_becomes_exactly_its_events(name: str) -> None:
    expected = EXPECTED[name]
    batch = batch_of(name)
    got = [Ev(e.kind, e.id, e.key, e.occurred_at, e.identity) for e in batch.events]
    assert got == list(expected.events)
    assert all(e.key == f"{e.channel}:{e.route}" for e in batch.events)
    assert all(e.received_at == RECEIVED_AT for e in batch.events)
    assert all(e.customer is None for e in batch.events)  # the engine finds the customer
    assert [(u.reason, u.field) for u in batch.unusable] == list(expected.unusable)
    assert batch.other_fields == list(expected.other_fields)
    assert batch.value_errors == list(expected.value_errors)
    assert batch.template_updates == list(expected.template_updates)
    assert batch.number_updates == list(expected.number_updates)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_events_of_a_call_have_distinct_ids(name: str) -> None:
    ids = [event.id for event in batch_of(name).events]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_value_stays_raw_until_normalize_reads_it(name: str) -> None:
    sent = [c["value"] for e in json.loads(body_of(name))["entry"] for c in e["changes"]]
    changes = [c for e in decode_webhook(body_of(name)).entry for c in e.changes]
    assert all(isinstance(change.value, msgspec.Raw) for change in changes)
    assert [msgspec.json.decode(change.value) for change in changes] == sent


# What the old tests asserted of the message dict as sent (`payload.message`, an unknown
# type's fields), of a status's `errors` as sent, and of a typed object per message type
# is gone by design: the event carries what an agent reads (`text`) and a failed
# status's first error as "<code> <title>" (`error`); Meta's payload stays Meta's.
class Said(NamedTuple):
    type: str
    text: str | None
    context_wamid: str | None = None
    forwarded: bool = False
    author: Identity | None = None
    shared_phone: str | None = None


SAID: dict[str, Said] = {
    "text": Said("text", "Does it come in another color?"),
    "text_reply": Said(
        "text",
        "Yes, the blue one please",
        "wamid.HBgLMTYzMTU1NTEyMzQVAgARGBI0NkY3RjMzQkYyMDk0QjlEQjYA",
    ),
    "text_forwarded": Said("text", "Look at this deal", forwarded=True),
    "text_from_ad": Said("text", "Is this still available?"),
    "image": Said("image", "This is the damaged box"),
    "audio": Said("audio", None),  # a voice note has nothing to read
    "video": Said("video", "It makes this noise"),
    "document": Said("document", "My receipt"),
    "sticker": Said("sticker", None),
    "location": Said("location", "Philz Coffee"),
    # A card shared by hand (no origin) is anyone's: it shares no phone of the sender.
    "contacts": Said("contacts", "Barbara J. Johnson"),
    "interactive_button_reply": Said(
        "interactive",
        "Track my order",
        "wamid.HBgLMTYzMTU1NTEyMzQVAgARGBJDOTQyRjM4MzQ0NzFFMzQ3NjUA",
    ),
    "interactive_list_reply": Said(
        "interactive",
        "Priority mail express",
        "wamid.HBgLMTYzMTU1NTEyMzQVAgARGBI3RjI0QUYwMTM3MDk3NjVFN0QA",
    ),
    "button": Said(
        "button",
        "Unsubscribe from promotions",
        "wamid.HBgLMTYzMTU1NTEyMzQVAgARGBJFRjQ4QjY1NjJFNjdBQjEwRTMA",
    ),
    "order": Said("order", "Please deliver before Friday"),
    "unsupported": Said("unsupported", None),
    "unknown_future_type": Said("hologram", None),  # a type Meta adds later is kept
    "request_welcome": Said("request_welcome", None),  # the customer opened the chat
    "bsuid_only_message": Said("text", "Does it come in another color?"),
    "phone_and_bsuid_message": Said("text", "Hi, is my order shipped yet?"),
    # origin: contact_request: the customer shared their own phone.
    "contact_shares_phone": Said("contacts", NAME, shared_phone=WA),
    "group_message": Said(
        "text", "Can someone confirm the pickup time for Saturday?", author=SHEENA_BOTH
    ),
}


@pytest.mark.parametrize("name", sorted(SAID))
def test_what_a_customer_message_says(name: str) -> None:
    [event] = batch_of(name).events
    payload = event.payload
    assert isinstance(payload, CustomerMessage)
    assert payload.wamid == event.id
    assert (
        Said(
            payload.type,
            payload.text,
            payload.context_wamid,
            payload.forwarded,
            payload.author,
            payload.shared_phone,
        )
        == SAID[name]
    )


def test_every_file_of_one_customer_message_says_something() -> None:
    ones = [n for n, e in EXPECTED.items() if [v.kind for v in e.events] == ["customer.message"]]
    assert set(ones) == set(SAID)


REACTED = "wamid.HBgLMTYzMTU1NTEyMzQVAgARGBI5RDlDOTRFNjZFMUE4RkE3MDYA"
PAYLOAD_OF: dict[str, object] = {
    "reaction": Reaction(wamid=wamid_of("reaction"), target=REACTED, emoji="\N{THUMBS UP SIGN}"),
    # Taken back: Meta leaves `emoji` out.
    "reaction_removed": Reaction(wamid=wamid_of("reaction_removed"), target=REACTED, emoji=None),
    # An edit's id is its own; the target is the original message (text.json's).
    "edit": Edit(
        wamid=wamid_of("edit"),
        target=wamid_of("text"),
        text="Does it come in another colour, maybe navy?",
    ),
    "revoke": Revoke(wamid=wamid_of("revoke"), target=wamid_of("text_reply")),
    "system_customer_changed_number": IdentityChange(
        new=Identity(phone="16315559876"),
        reason="user_changed_number",
        text="Sheena Nelson changed from 16315551234 to 16315559876",
    ),
    "system_user_changed_user_id": IdentityChange(
        new=Identity(
            user_id="US.70594187326410958273", parent_user_id="US.ENT.52618093746152039847"
        ),
        reason="user_changed_user_id",
        text=f"User Sheena Nelson changed from {BSUID} to US.70594187326410958273",
    ),
    "user_preferences": Preference(category="marketing_messages", value="stop"),
    "smb_message_echoes": Echo(
        wamid=wamid_of("smb_message_echoes", "message_echoes"),
        type="text",
        text="Yes! It also comes in navy and forest green.",
    ),
}


@pytest.mark.parametrize("name", sorted(PAYLOAD_OF))
def test_what_the_other_kinds_carry(name: str) -> None:
    [event] = batch_of(name).events
    assert event.payload == PAYLOAD_OF[name]


class Receipt(NamedTuple):
    status: str
    error: str | None = None
    pricing_category: str | None = None
    pricing_type: str | None = None
    callback_data: str | None = None
    participant: Identity | None = None


FREE = "free_customer_service"
# Conversation ids (`conversation_id`) are gone by design: Meta omits them from v24.0.
RECEIPTS: dict[str, list[Receipt]] = {
    "status_sent": [Receipt("sent", pricing_category="service")],
    "status_delivered": [Receipt("delivered", None, "service", FREE)],
    "status_read": [Receipt("read")],  # no pricing
    # Two errors sent: the first is what an agent reads.
    "status_failed": [Receipt("failed", "131047 Re-engagement message", "service")],
    "status_bsuid_only": [Receipt("delivered", None, "service", FREE), Receipt("read")],
    "status_batch": [
        Receipt("sent", None, "utility", FREE, "ticket-4821"),
        Receipt("delivered", None, "utility", FREE, "ticket-4821"),
        Receipt("read", callback_data="ticket-4821"),
        Receipt("played"),  # a voice note played
        Receipt("failed", "131026 Message undeliverable"),
    ],
    "group_statuses": [
        Receipt("read", None, "service", FREE, participant=SHEENA_BOTH),
        Receipt(
            "read",
            None,
            "service",
            FREE,
            participant=Identity(user_id=ANA, username="@anasouza", name="Ana Souza"),
        ),
    ],
}


@pytest.mark.parametrize("name", sorted(RECEIPTS))
def test_what_a_status_carries(name: str) -> None:
    events = batch_of(name).events
    payloads = [e.payload for e in events if isinstance(e.payload, MessageStatus)]
    assert len(payloads) == len(events)
    assert all(
        e.id.startswith(f"{p.wamid}:{p.status}") for e, p in zip(events, payloads, strict=True)
    )
    got = [
        Receipt(
            p.status,
            p.error,
            p.pricing_category,
            p.pricing_type,
            p.callback_data,
            p.participant,
        )
        for p in payloads
    ]
    assert got == RECEIPTS[name]


def test_a_contact_matching_the_sender_names_them_among_several() -> None:
    payloads = [(e.identity, e.payload) for e in batch_of("multiple").events]
    messages = [(i, p) for i, p in payloads if isinstance(p, CustomerMessage)]
    assert [i.name for i, _ in messages] == [
        "Sheena Nelson",
        "Ana Souza",
        "Sheena Nelson",
        "Oliver",
    ]
    # MULTI-2 is frequently_forwarded
    assert [p.forwarded for _, p in messages] == [False, True, False, False]


def test_the_item_with_no_identifier_is_unusable_as_sent_and_costs_only_itself() -> None:
    batch = batch_of("mixed_two_numbers")
    sent = json.loads(body_of("mixed_two_numbers"))["entry"][0]["changes"][0]["value"]
    [unusable] = batch.unusable
    assert (unusable.reason, unusable.field, unusable.channel) == (
        "no_customer_identifier",
        "messages",
        EU,
    )
    assert unusable.item == sent["messages"][1]
    assert len(batch.events) == 6


def envelope(*changes: dict[str, Any]) -> dict[str, Any]:
    return {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": list(changes)}]}


def call(*values: Any, field: str = "messages") -> dict[str, Any]:
    return envelope(*({"field": field, "value": value} for value in values))


def value(**fields: Any) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "metadata": {"phone_number_id": EU}, **fields}


def text(
    wa_id: str | None = WA,
    wamid: str = "wamid.A",
    timestamp: Any = "1749416383",
    **more: Any,
) -> dict[str, Any]:
    message = {"id": wamid, "timestamp": timestamp, "type": "text", "text": {"body": "hi"}}
    if wa_id is not None:
        message["from"] = wa_id
    return {**message, **more}


def normalized(body: dict[str, Any]) -> Batch:
    return normalize(decode_webhook(msgspec.json.encode(body)), received_at=RECEIVED_AT)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b'{"object": "whatsapp_business_account", "entry": [',
        b"\xff\xfe not json",
        # Invalid UTF-8 in a string of the envelope.
        b'{"object": "\xff", "entry": []}',
    ],
)
def test_a_body_that_is_not_json_is_a_decode_error(body: bytes) -> None:
    with pytest.raises(msgspec.DecodeError):
        decode_webhook(body)


def test_invalid_utf_8_inside_a_value_costs_only_that_value() -> None:
    # Values stay raw until read, one by one: the envelope is fine, so the call is
    # read, and the value that cannot be is dead-lettered with its reason.
    bad = (
        b'{"field": "messages", "value": {"metadata": {"phone_number_id": "\xc3"}, '
        b'"messages": [{"id": "wamid.A", "type": "text", "from": "1"}]}}'
    )
    good = msgspec.json.encode({"field": "messages", "value": value(messages=[text()])})
    body = b'{"object": "w", "entry": [{"id": "1", "changes": [' + bad + b", " + good + b"]}]}"
    batch = normalize(decode_webhook(body), received_at=RECEIVED_AT)
    assert [event.id for event in batch.events] == ["wamid.A"]
    assert [(u.reason, u.field) for u in batch.unusable] == [("unreadable_value", "messages")]
    assert "UTF-8" in (batch.unusable[0].detail or "")


# Only the envelope is checked: what is wrong inside a value costs that value or item.
@pytest.mark.parametrize(
    ("body", "path"),
    [
        ([], "$"),
        ({"hello": "world"}, "$"),
        ({"entry": []}, "$"),
        ({"object": "whatsapp_business_account", "entry": "nope"}, "$.entry"),
        ({"object": "whatsapp_business_account", "entry": [{"id": "1"}]}, "$.entry[0]"),
        ({"object": "x", "entry": [{"id": 1, "changes": []}]}, "$.entry[0].id"),
        (
            {"object": "x", "entry": [{"id": "1", "changes": [{"field": "a"}]}]},
            "$.entry[0].changes[0]",
        ),
        (
            {"object": "x", "entry": [{"changes": [{"field": 7, "value": {}}]}]},
            "$.entry[0].changes[0].field",
        ),
    ],
)
def test_json_that_is_not_a_webhook_is_a_validation_error_naming_the_path(
    body: Any, path: str
) -> None:
    with pytest.raises(msgspec.ValidationError) as raised:
        decode_webhook(msgspec.json.encode(body))
    where = str(raised.value).partition(" - at ")[2]
    assert where == ("" if path == "$" else f"`{path}`")


def test_an_entry_may_leave_out_its_account_id() -> None:
    body = call(value(messages=[text()]))
    del body["entry"][0]["id"]
    assert [event.id for event in normalized(body).events] == ["wamid.A"]


GOOD = text(wamid="wamid.GOOD")


# What the old model refused as a whole call now costs only the odd value or item, with
# its reason and where it went wrong; the good message of the same call still counts.
@pytest.mark.parametrize(
    ("body", "reason", "where"),
    [
        (call([], value(messages=[GOOD])), "unreadable_value", "not a JSON object"),
        (call("text", value(messages=[GOOD])), "unreadable_value", "not a JSON object"),
        (
            call({"messages": [text()]}, value(messages=[GOOD])),
            "no_phone_number_id",
            "phone_number_id",
        ),
        (
            call(
                {"metadata": {"phone_number_id": 7}, "messages": [text()]}, value(messages=[GOOD])
            ),
            "no_phone_number_id",
            "phone_number_id",
        ),
        (call(value(messages="nope"), value(messages=[GOOD])), "unreadable_value", "messages"),
        (call(value(messages=[{"id": "wamid.A"}, GOOD])), "unreadable_item", "`type`"),
        (call(value(), value(statuses=[{"id": 7}], messages=[GOOD])), "unreadable_item", "`$.id`"),
        (
            call(value(messages=[text(timestamp=True), GOOD])),
            "unreadable_item",
            "`$.timestamp`",
        ),
        (call(value(messages=[text(wa_id=None), GOOD])), "no_customer_identifier", None),
    ],
)
def test_an_odd_value_or_item_costs_only_itself(
    body: dict[str, Any], reason: str, where: str | None
) -> None:
    batch = normalized(body)
    assert [event.id for event in batch.events] == ["wamid.GOOD"]
    [unusable] = batch.unusable
    assert (unusable.reason, unusable.field) == (reason, "messages")
    if where is not None:
        assert where in (unusable.detail or "")


def test_items_with_no_phone_number_id_are_each_unusable_as_sent() -> None:
    statuses = [{"id": "w", "status": "read", "recipient_id": WA}]
    batch = normalized(call({"messages": [text(), GOOD], "statuses": statuses}))
    assert batch.events == []
    assert [(u.reason, u.channel, u.item) for u in batch.unusable] == [
        ("no_phone_number_id", None, text()),
        ("no_phone_number_id", None, GOOD),
        ("no_phone_number_id", None, statuses[0]),
    ]


def test_errors_of_a_whole_value_are_counted_by_code() -> None:
    errors = [{"code": 130429, "title": "Rate limit hit"}, {"title": "no code"}, "?"]
    batch = normalized(call(value(errors=errors, messages=[GOOD])))
    assert batch.value_errors == [130429]
    assert [event.id for event in batch.events] == ["wamid.GOOD"]


@pytest.mark.parametrize("other", [[1, 2], "text", 12, None, {"messages": "not a list"}])
def test_a_value_of_another_field_may_have_any_shape(other: Any) -> None:
    batch = normalized(call(other, field="security"))
    assert (batch.events, batch.unusable, batch.other_fields) == ([], [], ["security"])


@pytest.mark.parametrize(
    "template",
    [
        {"event": "APPROVED", "message_template_id": 12345678},  # names no template
        # A category change only announced (in 24 hours) changes nothing yet.
        {
            "message_template_name": "welcome_template",
            "message_template_language": "pt_BR",
            "new_category": "UTILITY",
            "correct_category": "MARKETING",
        },
    ],
)
def test_a_template_change_that_changes_nothing_is_counted_as_another_field(
    template: dict[str, Any],
) -> None:
    field = (
        "template_category_update"
        if "new_category" in template
        else "message_template_status_update"
    )
    batch = normalized(call(template, field=field))
    assert (batch.template_updates, batch.other_fields) == ([], [field])


def test_unknown_fields_are_ignored_at_every_level() -> None:
    statuses = [{"id": "w", "status": "read", "recipient_id": WA}]
    plain = normalized(call(value(messages=[text()], statuses=statuses)))
    body = call(
        value(
            messages=[{**text(), "x_new": {"a": [1]}}],
            statuses=[{**statuses[0], "x_new": 1}],
            x_rollout=True,
            metadata={"phone_number_id": EU, "x_region": "eu"},
            contacts=[{"wa_id": WA, "profile": {"name": "Sheena", "x_locale": "en"}, "x_k": 1}],
        )
    )
    body["x_top"] = 1
    body["entry"][0]["time"] = 1749416383
    body["entry"][0]["changes"][0]["x_change"] = "?"
    extended = normalized(body)
    assert [e.identity.name for e in extended.events] == ["Sheena", "Sheena"]
    named = [msgspec.structs.replace(e, identity=Identity(phone=WA)) for e in extended.events]
    assert named == plain.events
    assert extended.unusable == []


def every_item_kind(timestamp: Any) -> dict[str, Any]:
    """A call with one item of each kind, all at `timestamp`."""
    return envelope(
        {
            "field": "messages",
            "value": value(
                messages=[text(timestamp=timestamp)],
                statuses=[
                    {"id": "w", "status": "sent", "timestamp": timestamp, "recipient_id": WA}
                ],
            ),
        },
        {
            "field": "smb_message_echoes",
            "value": value(
                message_echoes=[{"id": "e", "type": "text", "to": WA, "timestamp": timestamp}]
            ),
        },
        {
            "field": "user_preferences",
            "value": value(
                user_preferences=[
                    {
                        "user_id": BSUID,
                        "category": "marketing_messages",
                        "value": "stop",
                        "timestamp": timestamp,
                    }
                ]
            ),
        },
        {
            "field": "user_id_update",
            "value": value(
                user_id_update=[
                    {"user_id": {"previous": BSUID, "current": "US.2"}, "timestamp": timestamp}
                ]
            ),
        },
    )


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
        (None, RECEIVED_AT),
    ],
)
def test_a_timestamp_that_is_not_a_time_falls_back_to_received_at(
    timestamp: Any, occurred_at: float
) -> None:
    batch = normalized(every_item_kind(timestamp))
    assert [event.kind for event in batch.events] == [
        "customer.message",
        "message.status",
        "business.echo",
        "customer.preference",
        "customer.identity",
    ]
    assert [event.occurred_at for event in batch.events] == [occurred_at] * 5


def test_numbers_meta_sends_either_way_are_accepted() -> None:
    order = {"product_items": [{"quantity": "2", "item_price": "30.00", "currency": "USD"}]}
    message = {**text(), "type": "order", "order": order}
    status = {
        "id": "w",
        "status": "sent",
        "timestamp": 1,
        "recipient_id": WA,
        "conversation": {"id": "c", "expiration_timestamp": 1749502783},
        "pricing": {"billable": "true", "category": "service"},
    }
    assert len(normalized(call(value(messages=[message], statuses=[status]))).events) == 2
    # user_preferences sends its timestamp as an integer, messages as a string.
    assert [e.occurred_at for e in normalized(every_item_kind(1749416383)).events] == [SENT] * 5


def test_a_user_id_update_finds_the_customer_by_the_old_bsuid() -> None:
    # docs/meta-webhooks-2026.md section 1: there is no fixture for this field.
    update = {
        "wa_id": WA,
        "detail": "User changed BSUID",
        "user_id": {"previous": BSUID, "current": "US.70594187326410958273"},
        "parent_user_id": {"previous": PARENT, "current": "US.ENT.52618093746152039847"},
        "timestamp": "1749416383",
    }
    contacts = [{"profile": {"name": NAME}, "wa_id": WA, "user_id": BSUID}]
    [event] = normalized(
        call(value(contacts=contacts, user_id_update=[update]), field="user_id_update")
    ).events
    assert (event.key, event.occurred_at) == (on(EU, BSUID), SENT)
    found = event.identity
    assert (found.phone, found.user_id, found.parent_user_id) == (WA, BSUID, PARENT)
    assert event.payload == IdentityChange(
        new=Identity(
            user_id="US.70594187326410958273", parent_user_id="US.ENT.52618093746152039847"
        ),
        reason="user_id_update",
        text="User changed BSUID",
    )


@pytest.mark.parametrize(
    ("cards", "shared"),
    [
        ([{"origin": "contact_request", "phones": [{"wa_id": "15550001111"}]}], "15550001111"),
        ([{"origin": "other", "phones": [{"wa_id": "15550001111"}]}], None),
        ([{"phones": [{"wa_id": "15550001111"}]}], None),
        (
            [
                {"origin": "other", "phones": [{"wa_id": "15550002222"}]},
                {
                    "origin": "contact_request",
                    "phones": [{"phone": "+1"}, {"wa_id": "15550001111"}],
                },
            ],
            "15550001111",
        ),
    ],
)
def test_only_a_card_from_a_contact_request_shares_the_senders_phone(
    cards: list[dict[str, Any]], shared: str | None
) -> None:
    message = text(wa_id=None, from_user_id=BSUID, type="contacts", contacts=cards)
    [event] = normalized(call(value(messages=[message]))).events
    assert isinstance(event.payload, CustomerMessage)
    assert event.payload.shared_phone == shared


# A source bug: `_shared_phone` iterates `contacts` and `phones` without checking they
# are arrays, so normalize raises TypeError (and the receiver answers 500).
@pytest.mark.parametrize(
    "cards",
    [5, True, 1.5, [{"origin": "contact_request", "phones": 7}]],
)
def test_a_contacts_message_whose_cards_are_not_arrays_is_still_one_item(cards: Any) -> None:
    message = text(type="contacts", contacts=cards)
    batch = normalized(call(value(messages=[message])))
    assert len(batch.events) + len(batch.unusable) == 1


# A source bug: `routing_id` answers "" (not None) for an empty phone or BSUID, so an
# item whose only identifier is empty becomes an event keyed `{channel}:`.
@pytest.mark.parametrize(
    ("field", "array", "item"),
    [
        ("messages", "messages", text(wa_id="")),
        ("messages", "messages", text(wa_id=None, from_user_id="")),
        ("messages", "statuses", {"id": "w", "status": "read", "recipient_id": ""}),
        ("smb_message_echoes", "message_echoes", {"id": "e", "type": "text", "to": ""}),
        (
            "user_preferences",
            "user_preferences",
            {"wa_id": "", "category": "marketing_messages", "value": "stop"},
        ),
    ],
)
def test_an_empty_identifier_identifies_nobody(field: str, array: str, item: Any) -> None:
    batch = normalized(call(value(**{array: [item]}), field=field))
    assert batch.events == []
    assert [u.reason for u in batch.unusable] == ["no_customer_identifier"]


def identity_of(contacts: list[dict[str, Any]], **sender: Any) -> Identity:
    message = text(**sender) if sender else text()
    [event] = normalized(call(value(contacts=contacts, messages=[message]))).events
    return event.identity


def name_of(contacts: list[dict[str, Any]], **sender: Any) -> str | None:
    return identity_of(contacts, **sender).name


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


def test_profile_name_and_username_of_a_sender_known_by_bsuid() -> None:
    ana = {"profile": {"name": "Ana", "username": "@ana"}, "user_id": ANA}
    sheena = {"profile": {"name": "Sheena", "username": "@s"}, "user_id": BSUID}
    found = identity_of([ana, sheena], wa_id=None, from_user_id=BSUID)
    assert (found.name, found.username, found.phone) == ("Sheena", "@s", None)
    assert identity_of([ana, sheena], wa_id=None, from_user_id="US.9").name is None


# Any JSON at all: the top level, or shaped like a webhook with arbitrary insides.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def items_of(change: dict[str, Any]) -> int:
    """How many items a change (as sent) carries: each element of its field's arrays; a
    value that is not an object, or an items field that is not an array, counts one."""
    arrays = ARRAYS.get(change["field"])
    if arrays is None:
        return 0
    sent = change["value"]
    if not isinstance(sent, dict):
        return 1
    return sum(
        len(items) if isinstance(items := sent.get(array, []), list) else 1 for array in arrays
    )


def items_in(body: dict[str, Any]) -> int:
    return sum(items_of(change) for entry in body["entry"] for change in entry["changes"])


def as_sent(body: Any) -> Any:
    """`body` as JSON carries it (NaN and infinities become null)."""
    return msgspec.json.decode(msgspec.json.encode(body))


def channel_of(change: dict[str, Any]) -> str | None:
    sent = change["value"]
    metadata = sent.get("metadata") if isinstance(sent, dict) else None
    pnid = metadata.get("phone_number_id") if isinstance(metadata, dict) else None
    return pnid if isinstance(pnid, str) else None


# Mostly the right shape with odd contents, sometimes anything at all.
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4)


def maybe(shape: st.SearchStrategy[Any], shapes: int = 4) -> st.SearchStrategy[Any]:
    """`shape` `shapes` times in `shapes + 2`, else any JSON (a scalar as often as not).
    The branch is drawn explicitly: `st.one_of` would favour the simplest one."""
    odd = (*[shape] * shapes, scalars, json_values)
    return st.sampled_from(range(len(odd))).flatmap(lambda i: odd[i])


times = st.text(max_size=6) | st.integers() | st.integers(10**300, 10**400) | st.floats()
# An identifier: usually a short id (sometimes empty), sometimes not a string at all.
idents = maybe(st.sampled_from([WA, BSUID, GROUP]) | st.text(max_size=6))
# The object each message type carries, mostly right with odd contents.
_OBJECTS: dict[str, st.SearchStrategy[Any]] = {
    "text": maybe(st.fixed_dictionaries({}, optional={"body": json_values})),
    "contacts": maybe(
        st.lists(
            maybe(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "origin": maybe(st.sampled_from(["contact_request", "other"])),
                        "name": json_values,
                        "phones": maybe(
                            st.lists(maybe(st.fixed_dictionaries({}, optional={"wa_id": idents})))
                        ),
                    },
                )
            ),
            max_size=2,
        )
    ),
    "reaction": maybe(st.fixed_dictionaries({"message_id": idents}, optional={"emoji": idents})),
    "edit": maybe(
        st.fixed_dictionaries({"original_message_id": idents}, optional={"message": json_values})
    ),
    "revoke": maybe(st.fixed_dictionaries({"original_message_id": idents})),
    "system": maybe(
        st.fixed_dictionaries(
            {},
            optional={
                "type": idents,
                "body": maybe(st.just(f"User X changed from {BSUID} to US.2")),
                "wa_id": idents,
                "new_wa_id": idents,
                "user_id": idents,
            },
        )
    ),
    "interactive": maybe(
        st.fixed_dictionaries({}, optional={"type": idents, "button_reply": json_values})
    ),
    "location": json_values,
    "image": json_values,
}
# A type's object is as often the wrong JSON type as the right shape.
LOOSE_OBJECTS = {kind: maybe(shape, shapes=2) for kind, shape in _OBJECTS.items()}
TYPE_NAMES = [*LOOSE_OBJECTS, "request_welcome", "hologram"]
TYPES = st.sampled_from(TYPE_NAMES)
loose_senders = st.fixed_dictionaries(
    {},
    optional={
        "from": idents,
        "from_user_id": idents,
        "from_parent_user_id": idents,
        "group_id": idents,
        "timestamp": times,
        "context": maybe(
            st.fixed_dictionaries(
                {},
                optional={"id": idents, "forwarded": json_values, "frequently_forwarded": idents},
            )
        ),
    },
)


@st.composite
def loose_messages(draw: st.DrawFn) -> dict[str, Any]:
    """A message of a documented type (or a new one), usually with its type's object."""
    kind = draw(st.sampled_from([*TYPE_NAMES, *TYPE_NAMES, None]))
    if kind is None:  # a new type, or not a type at all
        kind = draw(idents)
    message = {"type": kind, **draw(loose_senders)}
    if draw(st.sampled_from([True] * 9 + [False])):
        message["id"] = draw(maybe(st.text(max_size=6)))
    if isinstance(kind, str) and draw(st.sampled_from([True, True, True, False])):
        message[kind] = draw(LOOSE_OBJECTS.get(kind, json_values))
    return message


loose_statuses = st.fixed_dictionaries(
    {"id": st.text(max_size=6), "status": st.sampled_from(["sent", "read", "failed"]) | idents},
    optional={
        "timestamp": times,
        "recipient_id": idents,
        "recipient_user_id": idents,
        "recipient_parent_user_id": idents,
        "recipient_type": maybe(st.just("group")),
        "recipient_participant_id": idents,
        "recipient_participant_user_id": idents,
        "biz_opaque_callback_data": idents,
        "pricing": maybe(st.fixed_dictionaries({}, optional={"category": idents, "type": idents})),
        "errors": maybe(
            st.lists(
                maybe(
                    st.fixed_dictionaries({"code": json_values}, optional={"title": json_values})
                ),
                max_size=2,
            )
        ),
    },
)
loose_echoes = st.fixed_dictionaries(
    {"id": st.text(max_size=6), "type": maybe(TYPES)},
    optional={
        "to": idents,
        "to_user_id": idents,
        "to_parent_user_id": idents,
        "timestamp": times,
        "text": json_values,
    },
)
loose_preferences = st.fixed_dictionaries(
    {"category": idents, "value": idents},
    optional={"wa_id": idents, "user_id": idents, "parent_user_id": idents, "timestamp": times},
)
previous_current = maybe(
    st.fixed_dictionaries({}, optional={"previous": idents, "current": idents})
)
loose_updates = st.fixed_dictionaries(
    {"user_id": previous_current},
    optional={
        "wa_id": idents,
        "parent_user_id": previous_current,
        "detail": json_values,
        "timestamp": times,
    },
)
LOOSE_ITEMS: dict[str, st.SearchStrategy[Any]] = {
    "messages": loose_messages(),
    "statuses": loose_statuses,
    "message_echoes": loose_echoes,
    "user_preferences": loose_preferences,
    "user_id_update": loose_updates,
}
loose_contacts = maybe(
    st.lists(
        maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "wa_id": idents,
                    "user_id": idents,
                    "profile": maybe(
                        st.fixed_dictionaries({}, optional={"name": idents, "username": idents})
                    ),
                },
            )
        ),
        max_size=3,
    )
)


@st.composite
def item_changes(draw: st.DrawFn) -> dict[str, Any]:
    """A change of a field read item by item, with arbitrary items and metadata."""
    field = draw(st.sampled_from(["messages", "messages", *ARRAYS]))
    if draw(st.integers(0, 9)) == 0:
        return {"field": field, "value": draw(json_values)}  # anything, mostly not an object
    sent: dict[str, Any] = {"messaging_product": "whatsapp"}
    metadata = draw(st.integers(0, 6))  # missing, anything, or a phone_number_id
    if metadata == 1:
        sent["metadata"] = draw(json_values)
    elif metadata > 1:
        pnid = draw(st.sampled_from([EU, US]) | st.text(max_size=6))
        sent["metadata"] = {"phone_number_id": pnid}
    if draw(st.booleans()):
        sent["contacts"] = draw(loose_contacts)
    if draw(st.integers(0, 4)) == 0:
        sent["errors"] = draw(json_values)
    for array in ARRAYS[field]:
        if draw(st.integers(0, 5)):
            sent[array] = draw(
                st.lists(maybe(LOOSE_ITEMS[array]), max_size=6)
                if draw(st.integers(0, 7))
                else json_values
            )
    if draw(st.integers(0, 5)) == 0:  # an array another field carries is not this field's
        other = draw(st.sampled_from(sorted(LOOSE_ITEMS)))
        sent.setdefault(other, draw(st.lists(LOOSE_ITEMS[other], max_size=2)))
    return {"field": field, "value": sent}


other_changes = st.fixed_dictionaries(
    {
        "field": st.sampled_from(
            ["message_template_status_update", "template_category_update", "history", "x"]
        ),
        "value": json_values,
    }
)
# Well-formed envelopes whose items may be anything.
envelopes = st.fixed_dictionaries(
    {
        "object": st.just("whatsapp_business_account"),
        "entry": st.lists(
            st.fixed_dictionaries(
                {"changes": st.lists(st.one_of(item_changes(), other_changes), max_size=4)},
                optional={"id": st.text(max_size=4)},
            ),
            min_size=1,
            max_size=2,
        ),
    }
)


def check_every_item_is_accounted_for(body: dict[str, Any]) -> None:
    """normalize does not raise, and every item becomes one event or one unusable."""
    webhook = decode_webhook(msgspec.json.encode(body))
    batch = normalize(webhook, received_at=RECEIVED_AT)
    assert len(batch.events) + len(batch.unusable) == items_in(body)
    assert {u.reason for u in batch.unusable} <= REASONS
    for entry, sent_entry in zip(webhook.entry, body["entry"], strict=True):
        for change, sent in zip(entry.changes, sent_entry["changes"], strict=True):
            one = normalize(Webhook(webhook.object, [Entry(changes=[change])]), RECEIVED_AT)
            assert len(one.events) + len(one.unusable) == items_of(sent)
            assert all(u.field == sent["field"] for u in one.unusable)
            channel = channel_of(sent)
            if channel is None:  # no phone_number_id: no item can be routed
                assert one.events == []
            assert all(e.channel == channel for e in one.events)
            assert all(e.received_at == RECEIVED_AT for e in one.events)
            assert all(math.isfinite(e.occurred_at) for e in one.events)
            if isinstance(sent["value"], dict):
                items = [
                    item
                    for array in ARRAYS.get(sent["field"], ())
                    if isinstance(sent["value"].get(array), list)
                    for item in sent["value"][array]
                ]
                for unusable in one.unusable:
                    if unusable.reason != "unreadable_value":
                        assert unusable.item in items  # as sent, to re-drive


@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(body=envelopes)
# Found by this test: a contacts message whose `contacts` is not an array (a source bug).
@example(body=call(value(messages=[text(type="contacts", contacts=5)])))
def test_every_item_becomes_one_event_or_one_unusable(body: dict[str, Any]) -> None:
    check_every_item_is_accounted_for(as_sent(body))


# Mostly the right shape with odd contents (huge or non-finite numbers, empty strings), so
# that many calls get past validation into normalize; sometimes anything at all.
loose_webhooks = st.fixed_dictionaries(
    {
        "object": st.text(max_size=4),
        "entry": st.lists(
            st.fixed_dictionaries(
                {
                    "id": st.text(max_size=4),
                    "changes": st.lists(
                        st.fixed_dictionaries(
                            {"field": st.sampled_from(["messages", "other"]), "value": json_values}
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
    body = as_sent(body)
    try:
        decode_webhook(msgspec.json.encode(body))
    except msgspec.ValidationError:
        return
    check_every_item_is_accounted_for(body)


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


# Structurally valid calls: documented and unknown types, customers known by phone, by
# BSUID or both, groups, optional fields, unknown keys.
ids = st.text(st.characters(codec="ascii", exclude_characters=":"), min_size=1, max_size=12)
bsuids = ids.map("US.".__add__)
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
    "edit": st.fixed_dictionaries(
        {"original_message_id": ids},
        optional={"message": st.fixed_dictionaries({"type": st.just("text"), "text": st.just({})})},
    ),
    "revoke": st.fixed_dictionaries({"original_message_id": ids}),
    "system": st.fixed_dictionaries(
        {"type": st.just("user_changed_number"), "body": st.text(), "wa_id": ids}
    ),
    "interactive": st.fixed_dictionaries(
        {"type": st.just("list_reply"), "list_reply": st.fixed_dictionaries({"id": ids})}
    ),
    "order": st.fixed_dictionaries(
        {"product_items": st.lists(st.fixed_dictionaries({"quantity": st.integers() | st.text()}))}
    ),
    "never_documented": st.dictionaries(st.text(max_size=6), json_values, max_size=3),
}
KIND_OF_TYPE = {
    "reaction": "customer.reaction",
    "edit": "customer.edit",
    "revoke": "customer.revoke",
    "system": "customer.identity",
}


def by(phone: str, user_id: str, parent: str) -> st.SearchStrategy[dict[str, str]]:
    """Meta's three ways to name a customer since 2026: phone only, BSUID only, both."""
    return st.one_of(
        st.fixed_dictionaries({phone: ids}),
        st.fixed_dictionaries({user_id: bsuids}, optional={parent: bsuids}),
        st.fixed_dictionaries({phone: ids, user_id: bsuids}, optional={parent: bsuids}),
    )


senders = by("from", "from_user_id", "from_parent_user_id")
recipients = by("recipient_id", "recipient_user_id", "recipient_parent_user_id")
group_recipients = st.fixed_dictionaries(
    {
        "recipient_id": ids,
        "recipient_type": st.just("group"),
        "recipient_participant_user_id": bsuids,
    },
    optional={"recipient_participant_id": ids},
)


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(TYPE_OBJECTS)))
    timestamp = draw(unix)
    message = {
        "id": draw(ids),
        "timestamp": draw(st.sampled_from([str(timestamp), timestamp])),
        "type": kind,
        kind: draw(TYPE_OBJECTS[kind]),
        **draw(senders),
        **draw(extras),
    }
    if draw(st.booleans()):
        message["context"] = draw(
            st.fixed_dictionaries({}, optional={"id": ids, "forwarded": st.booleans()})
        )
    if draw(st.integers(0, 4)) == 0:
        message["group_id"] = draw(ids)
    return message


statuses = st.builds(
    lambda fields, who: {**fields, **who},
    st.fixed_dictionaries(
        {
            "id": ids,
            "status": st.sampled_from(["sent", "delivered", "read", "played", "failed"]) | ids,
            "timestamp": unix.map(str),
        },
        optional={
            "errors": st.lists(st.fixed_dictionaries({"code": st.integers(0, 2**31)}), max_size=2),
            "pricing": st.fixed_dictionaries({"category": ids}, optional={"type": ids}),
            "biz_opaque_callback_data": ids,
            "x_new": json_values,
        },
    ),
    recipients | group_recipients,
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
        st.fixed_dictionaries(
            {"profile": st.fixed_dictionaries({"name": st.text()})},
            optional={"wa_id": ids, "user_id": bsuids},
        )
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


def route_of(person: dict[str, Any], user_id: str, phone: str) -> str:
    return str(person.get(user_id) or person[phone])


@settings(max_examples=200, deadline=None)
@given(entries=st.lists(st.lists(changes, max_size=3), max_size=3))
def test_a_valid_call_gives_one_event_per_message_and_status(
    entries: list[list[dict[str, Any]]],
) -> None:
    body = as_sent(
        {
            "object": "whatsapp_business_account",
            "entry": [{"id": "1", "changes": c} for c in entries],
        }
    )
    entries = [entry["changes"] for entry in body["entry"]]
    expected: list[tuple[str, str, str, str, float]] = []
    for change in (c for e in entries for c in e if c["field"] == "messages"):
        pnid = change["value"]["metadata"]["phone_number_id"]
        for m in change["value"]["messages"]:
            route = route_of(m, "from_user_id", "from")
            if m.get("group_id"):
                route = f"g.{m['group_id']}"
            kind = KIND_OF_TYPE.get(m["type"], "customer.message")
            expected.append((kind, m["id"], f"{pnid}:{route}", pnid, float(m["timestamp"])))
        for s in change["value"]["statuses"]:
            event_id = f"{s['id']}:{s['status']}"
            if s.get("recipient_type") == "group":
                route = f"g.{s['recipient_id']}"
                event_id += ":" + route_of(
                    s, "recipient_participant_user_id", "recipient_participant_id"
                )
            else:
                route = route_of(s, "recipient_user_id", "recipient_id")
            expected.append(
                ("message.status", event_id, f"{pnid}:{route}", pnid, float(s["timestamp"]))
            )
    batch = normalized(body)
    assert [(e.kind, e.id, e.key, e.channel, e.occurred_at) for e in batch.events] == expected
    assert batch.unusable == []
    assert batch.other_fields == [
        c["field"] for e in entries for c in e if c["field"] != "messages"
    ]
    sent = [
        m for e in entries for c in e if c["field"] == "messages" for m in c["value"]["messages"]
    ]
    in_order = [e for e in batch.events if e.kind != "message.status"]
    for message, event in zip(sent, in_order, strict=True):
        person = Identity(
            phone=message.get("from"),
            user_id=message.get("from_user_id"),
            parent_user_id=message.get("from_parent_user_id"),
        )
        found = event.identity
        if message.get("group_id"):
            assert found.group_id == message["group_id"]
            if not isinstance(event.payload, CustomerMessage):
                continue  # only what a member wrote names them, as its author
            assert event.payload.author is not None
            found = event.payload.author
        assert (found.phone, found.user_id, found.parent_user_id) == (
            person.phone,
            person.user_id,
            person.parent_user_id,
        )
        if isinstance(event.payload, CustomerMessage):
            assert event.payload.context_wamid == message.get("context", {}).get("id")
            if message["type"] == "text":
                assert event.payload.text == (message["text"]["body"][:4096] or None)
