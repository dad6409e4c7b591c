"""The pure state machine, one test row per row of docs/transitions.md."""

from typing import Any, NamedTuple, get_args

import msgspec
import pytest

from engine.machine import auto_resolve, auto_resolve_cutoff, transition
from engine.model import (
    Assigned,
    EchoSent,
    Edited,
    Effect,
    FirstResponse,
    IdentityChanged,
    NoteAdded,
    Opened,
    Reacted,
    ReactionSent,
    ReadSent,
    Resolved,
    ResolvedBy,
    Revoked,
    SendReply,
    Snoozed,
    StatusReceived,
    TagAdded,
    TopicAdded,
    Unassigned,
)
from parley.channels import ChannelSettings
from parley.events import (
    Actor,
    AddNote,
    AddTag,
    AddTopic,
    AgentReply,
    Assign,
    CustomerMessage,
    Echo,
    Edit,
    Event,
    Identity,
    IdentityChange,
    MarkRead,
    MessageStatus,
    Move,
    Payload,
    Preference,
    React,
    Reaction,
    Revoke,
    Role,
    Snooze,
    Unassign,
)
from parley.state import Conversation, Outcome, Queue

replace = msgspec.structs.replace

AT = 1200.0  # every event in the table happens here, after the states' last activity
NOW = 9_999_999.0  # far from AT, so a result that used `now` for a stored time shows
AUTO = ChannelSettings(display_name="EU")
MANUAL = ChannelSettings(display_name="US", auto_assign=False)
ALICE = Actor("alice", Role.CONTRIBUTOR)

PHONE = "31612345678"
CUSTOMER = Identity(phone=PHONE)
NEW = Conversation(
    queue=Queue.NEW,
    opened_at=1000.0,
    last_activity_at=1100.0,
    last_customer_at=1000.0,
    version=7,
    customer=CUSTOMER,
    last_inbound="wamid.last",
)
OPEN = replace(NEW, queue=Queue.OPEN, assignee="bob", first_response_at=1010.0)
PENDING_BOB = replace(OPEN, queue=Queue.PENDING)
PENDING = replace(NEW, queue=Queue.PENDING)  # moved to pending before anyone took it
RESOLVED = replace(OPEN, queue=Queue.RESOLVED, assignee=None)
STATES: dict[str, Conversation | None] = {
    "none": None,
    "new": NEW,
    "open": OPEN,
    "pending(bob)": PENDING_BOB,
    "pending": PENDING,
    "resolved": RESOLVED,
}

MESSAGE = CustomerMessage(wamid="wamid.in", type="text", text="hi")
INBOUND = {"last_inbound": "wamid.in"}
REACT = React(actor=ALICE, target="wamid.in", emoji="\U0001f44d")
OPENED = MarkRead(actor=ALICE)
NO_READS = ChannelSettings(display_name="EU", read_receipts=False)
STATUS = MessageStatus(wamid="wamid.out", status="read")
REACTION = Reaction(wamid="wamid.r", target="wamid.out", emoji="\U0001f44d")
EDIT = Edit(wamid="wamid.e", target="wamid.in", text="hi again")
REVOKE = Revoke(wamid="wamid.d", target="wamid.in")
NEW_NUMBER = IdentityChange(
    new=Identity(phone="31687654321", user_id="NL.2"), reason="user_changed_number", text="..."
)
STOP = Preference(category="marketing_messages", value="stop")
ECHO = Echo(wamid="wamid.echo", type="text", text="from the app")
SENT_FROM_APP = EchoSent("wamid.echo", "text", "from the app")
REPLY = AgentReply(actor=ALICE, text="hello")
SEND = SendReply("alice", "hello", None)
FIRST = FirstResponse(AT - NEW.opened_at)
# A fresh cycle started by the agent at AT.
CYCLE = {"opened_at": AT, "first_response_at": AT}


UNTIL = AT + 86400  # snoozed until a day later
SNOOZE = Snooze(actor=ALICE, until=UNTIL)
SNOOZED = {"snoozed_until": UNTIL}


def move(queue: str) -> Move:
    return Move(actor=ALICE, queue=queue)


def assign(user: str) -> Assign:
    return Assign(actor=ALICE, assignee=user)


class Row(NamedTuple):
    start: str  # a key of STATES
    payload: Payload
    outcome: Outcome
    # APPLIED: the fields that differ from the start state besides last activity (from
    # "none": every field); otherwise the reason.
    expect: dict[str, Any] | str
    effects: tuple[Effect, ...] = ()
    settings: ChannelSettings = AUTO
    # Whether an applied event is activity (moves last activity to AT).
    active: bool = True


def rows() -> list[Any]:
    applied, rejected, ignored = Outcome.APPLIED, Outcome.REJECTED, Outcome.IGNORED
    from_none = {"queue": Queue.NEW, "opened_at": AT, "last_activity_at": AT}
    # Reaching out first: the customer is who the action addressed.
    not_meta = {"customer": CUSTOMER}
    table = [
        # customer message
        Row(
            "none",
            MESSAGE,
            applied,
            {**from_none, "last_customer_at": AT, "customer": CUSTOMER, **INBOUND},
            (Opened(),),
        ),
        Row(
            "resolved",
            MESSAGE,
            applied,
            {
                "queue": Queue.NEW,
                "opened_at": AT,
                "last_customer_at": AT,
                "first_response_at": None,
                **INBOUND,
            },
            (Opened(),),
        ),
        Row("new", MESSAGE, applied, {"last_customer_at": AT, **INBOUND}),
        Row("open", MESSAGE, applied, {"last_customer_at": AT, **INBOUND}),
        Row(
            "pending(bob)",
            MESSAGE,
            applied,
            {"queue": Queue.OPEN, "last_customer_at": AT, **INBOUND},
        ),
        Row("pending", MESSAGE, applied, {"queue": Queue.NEW, "last_customer_at": AT, **INBOUND}),
        # an agent's reaction: sent, and the agent acted
        Row("none", REACT, rejected, "no conversation"),
        *(
            Row(start, REACT, applied, {}, (ReactionSent("wamid.in", "\U0001f44d"),))
            for start in ("new", "open", "pending(bob)", "pending", "resolved")
        ),
        # an agent opens the conversation: its last message is marked read, once
        Row("none", OPENED, rejected, "no conversation"),
        *(
            Row(
                start,
                OPENED,
                applied,
                {"read": "wamid.last"},
                (ReadSent("wamid.last", typing=False),),
                active=False,
            )
            for start in ("new", "open", "pending(bob)", "pending", "resolved")
        ),
        Row("open", OPENED, ignored, "read receipts are off on this channel", settings=NO_READS),
        # message status, and what the customer did to a message: never activity
        *(
            row
            for payload, effect in (
                (STATUS, StatusReceived("wamid.out", "read")),
                (REACTION, Reacted("wamid.out", "\U0001f44d")),
                (Reaction(wamid="wamid.r2", target="wamid.out"), Reacted("wamid.out", None)),
                (EDIT, Edited("wamid.in", "hi again")),
                (REVOKE, Revoked("wamid.in")),
            )
            for row in (
                Row("none", payload, ignored, "no conversation"),
                *(
                    Row(start, payload, applied, {}, (effect,), active=False)
                    for start in ("new", "open", "pending(bob)", "pending", "resolved")
                ),
            )
        ),
        # a new number or BSUID: the record changes, nothing else
        Row("none", NEW_NUMBER, ignored, "no conversation"),
        *(
            Row(
                start,
                NEW_NUMBER,
                applied,
                {"customer": Identity(phone="31687654321", user_id="NL.2")},
                (IdentityChanged("user_changed_number", "..."),),
                active=False,
            )
            for start in ("new", "open", "pending(bob)", "pending", "resolved")
        ),
        # a marketing preference: recorded on the customer
        Row("none", STOP, ignored, "no conversation"),
        Row(
            "open",
            Preference(category="feedback", value="stop"),
            ignored,
            "no preference feedback",
        ),
        *(
            Row(start, STOP, applied, {"marketing": "stop"}, active=False)
            for start in ("new", "open", "pending(bob)", "pending", "resolved")
        ),
        # an answer from the WhatsApp Business app: first response, no queue change
        Row("none", ECHO, ignored, "no conversation"),
        Row("new", ECHO, applied, {"first_response_at": AT}, (SENT_FROM_APP, FIRST)),
        Row("open", ECHO, applied, {}, (SENT_FROM_APP,)),
        Row("pending(bob)", ECHO, applied, {}, (SENT_FROM_APP,)),
        Row("pending", ECHO, applied, {"first_response_at": AT}, (SENT_FROM_APP, FIRST)),
        Row("resolved", ECHO, applied, {}, (SENT_FROM_APP,), active=False),
        # agent reply
        Row(
            "none",
            AgentReply(actor=ALICE),
            rejected,
            "reply needs text, a template, a file or choices",
        ),
        Row(
            "open",
            AgentReply(actor=ALICE, text=" "),
            rejected,
            "reply needs text, a template, a file or choices",
        ),
        Row(
            "new",
            REPLY,
            applied,
            {"queue": Queue.OPEN, "assignee": "alice", "first_response_at": AT},
            (Assigned("alice", auto=True), SEND, FIRST),
        ),
        Row("new", REPLY, applied, {"first_response_at": AT}, (SEND, FIRST), MANUAL),
        Row("open", REPLY, applied, {}, (SEND,)),
        Row(
            "open",
            AgentReply(actor=ALICE, template="order_update"),
            applied,
            {},
            (SendReply("alice", None, "order_update"),),
        ),
        Row("pending(bob)", REPLY, applied, {}, (SEND,)),
        Row(
            "pending",
            REPLY,
            applied,
            {"assignee": "alice", "first_response_at": AT},
            (Assigned("alice", auto=True), SEND, FIRST),
        ),
        Row("pending", REPLY, applied, {"first_response_at": AT}, (SEND, FIRST), MANUAL),
        Row(
            "resolved",
            REPLY,
            applied,
            {**CYCLE, "queue": Queue.OPEN, "assignee": "alice"},
            (Opened(), Assigned("alice", auto=True), SEND, FirstResponse(0.0)),
        ),
        Row(
            "resolved",
            REPLY,
            applied,
            {**CYCLE, "queue": Queue.NEW},
            (Opened(), SEND, FirstResponse(0.0)),
            MANUAL,
        ),
        Row(
            "none",
            REPLY,
            applied,
            {**from_none, **CYCLE, **not_meta, "queue": Queue.OPEN, "assignee": "alice"},
            (Opened(), Assigned("alice", auto=True), SEND, FirstResponse(0.0)),
        ),
        Row(
            "none",
            REPLY,
            applied,
            {**from_none, **CYCLE, **not_meta},
            (Opened(), SEND, FirstResponse(0.0)),
            MANUAL,
        ),
        # move
        Row("none", move("open"), rejected, "can only move to pending or resolved"),
        Row("new", move("open"), rejected, "can only move to pending or resolved"),
        Row("open", move("new"), rejected, "can only move to pending or resolved"),
        Row("pending", move("Resolved"), rejected, "can only move to pending or resolved"),
        Row("none", move("pending"), rejected, "no conversation"),
        Row("none", move("resolved"), rejected, "no conversation"),
        Row("new", move("pending"), applied, {"queue": Queue.PENDING}),
        Row("open", move("pending"), applied, {"queue": Queue.PENDING}),
        Row("pending(bob)", move("pending"), ignored, "already pending"),
        Row("pending", move("pending"), ignored, "already pending"),
        Row("resolved", move("pending"), rejected, "resolved conversations cannot be pending"),
        Row(
            "new",
            move("resolved"),
            applied,
            {"queue": Queue.RESOLVED},
            (Resolved(ResolvedBy.AGENT, AT - NEW.opened_at),),
        ),
        Row(
            "open",
            move("resolved"),
            applied,
            {"queue": Queue.RESOLVED, "assignee": None},
            (Unassigned("bob"), Resolved(ResolvedBy.AGENT, AT - NEW.opened_at)),
        ),
        Row(
            "pending(bob)",
            move("resolved"),
            applied,
            {"queue": Queue.RESOLVED, "assignee": None},
            (Unassigned("bob"), Resolved(ResolvedBy.AGENT, AT - NEW.opened_at)),
        ),
        Row(
            "pending",
            move("resolved"),
            applied,
            {"queue": Queue.RESOLVED},
            (Resolved(ResolvedBy.AGENT, AT - NEW.opened_at),),
        ),
        Row("resolved", move("resolved"), ignored, "already resolved"),
        # snooze: parked in pending until a time, keeping the assignee
        Row("none", SNOOZE, rejected, "no conversation"),
        Row("resolved", SNOOZE, rejected, "resolved conversations cannot be snoozed"),
        Row("new", Snooze(actor=ALICE, until=AT), rejected, "a snooze must end in the future"),
        *(
            Row(start, SNOOZE, applied, {"queue": Queue.PENDING, **SNOOZED}, (Snoozed(UNTIL),))
            for start in ("new", "open", "pending(bob)", "pending")
        ),
        # assign
        Row("new", assign(" "), rejected, "assignee must not be empty"),
        Row("none", assign("carol"), rejected, "no conversation"),
        Row("resolved", assign("carol"), rejected, "resolved conversations have no assignee"),
        Row(
            "new",
            assign("carol"),
            applied,
            {"queue": Queue.OPEN, "assignee": "carol"},
            (Assigned("carol", auto=False),),
        ),
        Row("open", assign("bob"), ignored, "already assigned"),
        Row(
            "open",
            assign("carol"),
            applied,
            {"assignee": "carol"},
            (Unassigned("bob"), Assigned("carol", auto=False)),
        ),
        Row("pending(bob)", assign("bob"), ignored, "already assigned"),
        Row(
            "pending(bob)",
            assign("carol"),
            applied,
            {"assignee": "carol"},
            (Unassigned("bob"), Assigned("carol", auto=False)),
        ),
        Row(
            "pending",
            assign("carol"),
            applied,
            {"assignee": "carol"},
            (Assigned("carol", auto=False),),
        ),
        # unassign
        Row("none", Unassign(actor=ALICE), rejected, "no conversation"),
        Row("new", Unassign(actor=ALICE), ignored, "not assigned"),
        Row("pending", Unassign(actor=ALICE), ignored, "not assigned"),
        Row("resolved", Unassign(actor=ALICE), ignored, "not assigned"),
        Row(
            "open",
            Unassign(actor=ALICE),
            applied,
            {"queue": Queue.NEW, "assignee": None},
            (Unassigned("bob"),),
        ),
        Row(
            "pending(bob)", Unassign(actor=ALICE), applied, {"assignee": None}, (Unassigned("bob"),)
        ),
        # tags, notes, topics
        Row("none", AddTag(actor=ALICE, tag="vip"), rejected, "no conversation"),
        Row("none", AddNote(actor=ALICE, text="called back"), rejected, "no conversation"),
        Row("none", AddTopic(actor=ALICE, topic="billing"), rejected, "no conversation"),
        Row("open", AddTag(actor=ALICE, tag=""), rejected, "tag must not be empty"),
        Row("open", AddNote(actor=ALICE, text=" \n"), rejected, "note must not be empty"),
        Row("open", AddTopic(actor=ALICE, topic="\t"), rejected, "topic must not be empty"),
        *(
            row
            for start in ("new", "open", "pending(bob)", "pending", "resolved")
            for row in (
                Row(start, AddTag(actor=ALICE, tag="vip"), applied, {}, (TagAdded("vip"),)),
                Row(
                    start,
                    AddNote(actor=ALICE, text="called back"),
                    applied,
                    {},
                    (NoteAdded("alice", "called back", AT),),
                ),
                Row(
                    start,
                    AddTopic(actor=ALICE, topic="billing"),
                    applied,
                    {},
                    (TopicAdded("billing"),),
                ),
            )
        ),
    ]
    return [pytest.param(row, id=_row_id(row)) for row in table]


def _row_id(row: Row) -> str:
    kind = type(row.payload).__struct_config__.tag
    mode = "" if row.settings.auto_assign else "-manual"
    return f"{row.start}-{kind}{_detail(row.payload)}{mode}-{row.outcome}"


def _detail(payload: Payload) -> str:
    match payload:
        case Move(queue=queue):
            return f"-to-{queue}"
        case Assign(assignee=assignee):
            return f"-{assignee.strip() or 'blank'}"
        case AgentReply(text=text, template=template):
            return "-template" if template else ("-text" if text and text.strip() else "-blank")
        case AddTag(tag=value) | AddNote(text=value) | AddTopic(topic=value):
            return "" if value.strip() else "-blank"
    return ""


def at(payload: Payload, when: float = AT) -> Event:
    return Event(
        id="e1",
        channel="106540352242922",
        identity=CUSTOMER,
        occurred_at=when,
        received_at=when + 5,
        payload=payload,
    )


@pytest.mark.parametrize("row", rows())
def test_transition_table(row: Row) -> None:
    start = STATES[row.start]
    decision = transition(start, at(row.payload), row.settings, NOW)

    assert decision.outcome is row.outcome
    assert decision.effects == row.effects
    if row.outcome is Outcome.APPLIED:
        assert isinstance(row.expect, dict)
        activity = AT if row.active else start.last_activity_at if start else AT
        expected = (
            Conversation(**row.expect)
            if start is None
            else replace(start, last_activity_at=activity, **row.expect)
        )
        assert decision.state == expected
        assert decision.reason is None
    else:
        assert decision.state == start
        assert decision.reason == row.expect


def test_every_state_and_event_kind_has_a_row() -> None:
    covered = {(row.start, type(row.payload)) for row in (param.values[0] for param in rows())}
    kinds = get_args(Payload)
    assert {(start, kind) for start in STATES for kind in kinds} <= covered


def test_activity_never_moves_back_for_a_late_timestamp() -> None:
    late = 1050.0  # before OPEN's last activity (1100), after its start
    decision = transition(OPEN, at(MESSAGE, late), AUTO, NOW)
    assert decision.outcome is Outcome.APPLIED
    # Arrival order decides which message is the last to mark read.
    expected = replace(OPEN, last_activity_at=1100.0, last_customer_at=1050.0, **INBOUND)
    assert decision.state == expected


def test_late_customer_message_keeps_the_latest_customer_time() -> None:
    later = replace(OPEN, last_customer_at=1090.0)
    decision = transition(later, at(MESSAGE, 1080.0), AUTO, NOW)
    assert decision.state is not None
    assert decision.state.last_customer_at == 1090.0


def test_reopening_with_a_late_timestamp_keeps_activity_and_order_of_times() -> None:
    decision = transition(RESOLVED, at(MESSAGE, 1050.0), AUTO, NOW)
    assert decision.state is not None
    assert decision.state.opened_at == 1050.0
    assert decision.state.last_activity_at == RESOLVED.last_activity_at


@pytest.mark.parametrize("start", ["new", "open", "pending", "resolved"])
def test_version_is_left_for_the_adapter(start: str) -> None:
    decision = transition(STATES[start], at(MESSAGE), AUTO, NOW)
    assert decision.state is not None
    assert decision.state.version == NEW.version


def test_first_conversation_starts_at_version_zero() -> None:
    decision = transition(None, at(MESSAGE), AUTO, NOW)
    assert decision.state is not None
    assert decision.state.version == 0


@pytest.mark.parametrize("row", rows())
def test_now_does_not_change_a_transition(row: Row) -> None:
    # Replaying a partition later must rebuild exactly the same state.
    start = STATES[row.start]
    first = transition(start, at(row.payload), row.settings, 0.0)
    assert transition(start, at(row.payload), row.settings, NOW) == first


PERIOD = 3600
FAST = ChannelSettings(display_name="EU", auto_resolve_new_s=PERIOD, auto_resolve_pending_s=PERIOD)
DUE = NEW.last_activity_at + PERIOD  # the first instant a NEW/PENDING state is due


@pytest.mark.parametrize(
    ("start", "effects"),
    [
        ("new", (Resolved(ResolvedBy.AUTO, DUE - NEW.opened_at),)),
        ("pending", (Resolved(ResolvedBy.AUTO, DUE - NEW.opened_at),)),
        ("pending(bob)", (Unassigned("bob"), Resolved(ResolvedBy.AUTO, DUE - NEW.opened_at))),
    ],
)
def test_auto_resolve_exactly_at_the_boundary(start: str, effects: tuple[Effect, ...]) -> None:
    state = STATES[start]
    assert state is not None
    decision = auto_resolve(state, FAST, DUE)
    assert decision.outcome is Outcome.APPLIED
    assert decision.effects == effects
    # Activity stays put: nobody acted, and version is the adapter's.
    assert decision.state == replace(state, queue=Queue.RESOLVED, assignee=None)


@pytest.mark.parametrize("start", ["new", "pending", "pending(bob)"])
def test_auto_resolve_just_before_the_boundary(start: str) -> None:
    state = STATES[start]
    decision = auto_resolve(state, FAST, DUE - 0.001)
    assert decision.outcome is Outcome.IGNORED
    assert decision.state == state
    assert decision.effects == ()
    assert decision.reason == "not idle long enough"


@pytest.mark.parametrize(
    ("start", "settings", "reason"),
    [
        ("none", FAST, "no conversation"),
        ("open", FAST, "open conversations do not auto-resolve"),
        ("resolved", FAST, "resolved conversations do not auto-resolve"),
        ("new", replace(FAST, auto_resolve_new_s=None), "auto-resolve is off for new"),
        (
            "pending",
            replace(FAST, auto_resolve_pending_s=None),
            "auto-resolve is off for pending",
        ),
    ],
)
def test_auto_resolve_never(start: str, settings: ChannelSettings, reason: str) -> None:
    state = STATES[start]
    decision = auto_resolve(state, settings, DUE + 10 * 365 * 86400)
    assert decision.outcome is Outcome.IGNORED
    assert decision.state == state
    assert decision.effects == ()
    assert decision.reason == reason


def test_auto_resolve_periods_are_per_queue() -> None:
    # Pending switched off must not stop new from resolving, and the reverse.
    only_new = replace(FAST, auto_resolve_pending_s=None)
    assert auto_resolve(NEW, only_new, DUE).outcome is Outcome.APPLIED
    assert auto_resolve(PENDING, only_new, DUE).outcome is Outcome.IGNORED
    only_pending = replace(FAST, auto_resolve_new_s=None)
    assert auto_resolve(NEW, only_pending, DUE).outcome is Outcome.IGNORED
    assert auto_resolve(PENDING, only_pending, DUE).outcome is Outcome.APPLIED


@pytest.mark.parametrize(
    ("queue", "settings", "expected"),
    [
        (Queue.NEW, FAST, 10_000.0 - PERIOD),
        (Queue.PENDING, replace(FAST, auto_resolve_pending_s=60), 10_000.0 - 60),
        (Queue.NEW, replace(FAST, auto_resolve_new_s=None), None),
        (Queue.PENDING, replace(FAST, auto_resolve_pending_s=None), None),
        (Queue.OPEN, FAST, None),
        (Queue.RESOLVED, FAST, None),
    ],
)
def test_auto_resolve_cutoff(
    queue: Queue, settings: ChannelSettings, expected: float | None
) -> None:
    assert auto_resolve_cutoff(queue, settings, 10_000.0) == expected


def test_cutoff_and_auto_resolve_agree_where_float_rounding_could_split_them() -> None:
    # The sweeper's script resolves by `activity <= cutoff`; at these values
    # `activity + period <= now` holds but `activity <= now - period` does not, and the
    # machine must side with the script.
    month = 30 * 86400
    settings = replace(FAST, auto_resolve_new_s=month)
    state = replace(NEW, opened_at=0.0, last_activity_at=16754352.688054698)
    now = state.last_activity_at + month
    cutoff = auto_resolve_cutoff(Queue.NEW, settings, now)
    assert cutoff is not None
    assert state.last_activity_at > cutoff
    assert auto_resolve(state, settings, now).outcome is Outcome.IGNORED
    assert auto_resolve(state, settings, now + 0.001).outcome is Outcome.APPLIED


@pytest.mark.parametrize("queue", [Queue.OPEN, Queue.PENDING])
def test_first_reply_after_a_manual_assignment_is_the_first_response(queue: Queue) -> None:
    unanswered = replace(NEW, queue=queue, assignee="bob")
    decision = transition(unanswered, at(REPLY), AUTO, NOW)
    assert decision.effects == (SEND, FIRST)
    assert decision.state == replace(unanswered, last_activity_at=AT, first_response_at=AT)


def _with(payload: Payload, identity: Identity, when: float = AT) -> Event:
    return msgspec.structs.replace(at(payload, when), identity=identity)


def test_a_message_fills_in_the_customer_record_and_keeps_what_it_leaves_out() -> None:
    known = replace(OPEN, customer=Identity(phone=PHONE, name="Sheena"))
    told = Identity(phone=PHONE, user_id="NL.1", username="@sheena")
    decision = transition(known, _with(MESSAGE, told), AUTO, NOW)
    assert decision.state is not None
    assert decision.state.customer == Identity(
        phone=PHONE, user_id="NL.1", username="@sheena", name="Sheena"
    )


def test_a_status_attaches_the_bsuid_without_being_activity() -> None:
    decision = transition(OPEN, _with(STATUS, Identity(phone=PHONE, user_id="NL.1")), AUTO, NOW)
    assert decision.state == replace(OPEN, customer=Identity(phone=PHONE, user_id="NL.1"))


def test_a_phone_shared_answering_a_contact_request_joins_the_record() -> None:
    by_username = replace(OPEN, customer=Identity(user_id="NL.1"))
    shared = CustomerMessage(wamid="wamid.c", type="contacts", shared_phone=PHONE)
    decision = transition(by_username, _with(shared, Identity(user_id="NL.1")), AUTO, NOW)
    assert decision.state is not None
    assert decision.state.customer == Identity(phone=PHONE, user_id="NL.1")


def test_a_group_message_is_the_groups_and_never_names_the_author_as_customer() -> None:
    group = Identity(group_id="Y2FwaV9ncm91cA")
    author = Identity(phone=PHONE, name="Sheena")
    message = CustomerMessage(wamid="wamid.g", type="text", author=author, text="hi all")
    decision = transition(None, _with(message, group), AUTO, NOW)
    assert decision.state is not None
    assert decision.state.customer == group
    assert decision.state.queue is Queue.NEW


def test_request_welcome_opens_a_conversation_and_the_window() -> None:
    welcome = CustomerMessage(wamid="wamid.w", type="request_welcome")
    decision = transition(RESOLVED, at(welcome), AUTO, NOW)
    assert decision.effects == (Opened(),)
    assert decision.state is not None
    assert decision.state.queue is Queue.NEW
    assert decision.state.last_customer_at == AT
