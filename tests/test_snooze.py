"""Snooze in the pure machine, with injected time: parked in Pending until a time, woken
by its timer (`fire_timers`) or earlier by the customer; never auto-resolved while it
sleeps. The store and the sweeper's side are in tests/store_contract.py, the whole stack
in tests/test_timers_end_to_end.py."""

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.machine import auto_resolve, fire_timers, next_due, transition
from engine.model import Resolved, ResolvedBy, Snoozed, Unassigned, Woke
from parley.channels import ChannelSettings
from parley.events import (
    Actor,
    AgentReply,
    Assign,
    CustomerMessage,
    Event,
    Identity,
    Move,
    Payload,
    Role,
    Snooze,
    Unassign,
)
from parley.state import Conversation, Outcome, Queue

replace = msgspec.structs.replace
ALICE = Actor("alice", Role.CONTRIBUTOR)
CUSTOMER = Identity(phone="31612345678")
T0 = 1_800_000_000.0
DAY = 86400.0
SETTINGS = ChannelSettings(display_name="EU")  # 30-day periods
NEW = Conversation(
    queue=Queue.NEW, opened_at=T0, last_activity_at=T0, last_customer_at=T0, customer=CUSTOMER
)
OPEN = replace(NEW, queue=Queue.OPEN, assignee="bob")


def event(payload: Payload, at: float) -> Event:
    return Event(
        id="e", channel="1", identity=CUSTOMER, occurred_at=at, received_at=at, payload=payload
    )


def snoozed(state: Conversation, until: float, at: float = T0 + 60) -> Conversation:
    decision = transition(state, event(Snooze(actor=ALICE, until=until), at), SETTINGS, at)
    assert decision.outcome is Outcome.APPLIED, decision.reason
    assert decision.effects == (Snoozed(until),)
    assert decision.state is not None
    return decision.state


def message(at: float) -> Event:
    return event(CustomerMessage(wamid=f"wamid.{at}", type="text", text="hi"), at)


@pytest.mark.parametrize(("start", "wakes_to"), [(NEW, Queue.NEW), (OPEN, Queue.OPEN)])
def test_a_snooze_wakes_on_time_to_open_when_assigned_else_new(
    start: Conversation, wakes_to: Queue
) -> None:
    until = T0 + DAY
    state = snoozed(start, until)
    assert (state.queue, state.assignee, next_due(state)) == (Queue.PENDING, start.assignee, until)

    early = fire_timers(state, SETTINGS, until - 0.001)
    assert (early.outcome, early.reason, early.state) == (Outcome.IGNORED, "not due yet", state)

    woken = fire_timers(state, SETTINGS, until)
    assert woken.outcome is Outcome.APPLIED
    assert woken.effects == (Woke(early=False),)
    # Activity moves to the wake-up, not to when the sweeper saw it: a replay agrees.
    assert woken.state == replace(state, queue=wakes_to, snoozed_until=None, last_activity_at=until)
    assert fire_timers(state, SETTINGS, until + 3600) == woken
    assert next_due(woken.state) is None
    again = fire_timers(woken.state, SETTINGS, until + 1)
    assert (again.outcome, again.reason) == (Outcome.IGNORED, "no timer")


@pytest.mark.parametrize(("start", "wakes_to"), [(NEW, Queue.NEW), (OPEN, Queue.OPEN)])
def test_the_customer_writing_wakes_it_early(start: Conversation, wakes_to: Queue) -> None:
    state = snoozed(start, T0 + DAY)
    decision = transition(state, message(T0 + 600), SETTINGS, T0 + 600)
    assert decision.outcome is Outcome.APPLIED
    assert decision.effects == (Woke(early=True),)
    assert decision.state is not None
    assert (decision.state.queue, decision.state.snoozed_until) == (wakes_to, None)
    assert next_due(decision.state) is None


def test_snoozing_again_moves_the_wake_up_and_the_same_time_is_nothing_new() -> None:
    state = snoozed(OPEN, T0 + DAY)
    later = snoozed(state, T0 + 2 * DAY, at=T0 + 120)
    assert next_due(later) == T0 + 2 * DAY
    assert fire_timers(later, SETTINGS, T0 + DAY).outcome is Outcome.IGNORED
    same = transition(later, event(Snooze(actor=ALICE, until=T0 + 2 * DAY), T0 + 180), SETTINGS, 0)
    assert (same.outcome, same.reason) == (Outcome.IGNORED, "already snoozed until then")


def test_resolving_ends_the_snooze_and_its_timer() -> None:
    state = snoozed(OPEN, T0 + DAY)
    decision = transition(state, event(Move(actor=ALICE, queue="resolved"), T0 + 90), SETTINGS, 0)
    assert decision.state is not None
    assert (decision.state.queue, decision.state.snoozed_until) == (Queue.RESOLVED, None)
    assert decision.effects == (Unassigned("bob"), Resolved(ResolvedBy.AGENT, 90.0))
    assert next_due(decision.state) is None


def test_actions_that_keep_it_pending_keep_the_snooze() -> None:
    state = snoozed(OPEN, T0 + DAY)
    for payload in (
        AgentReply(actor=ALICE, text="I'll check tomorrow"),
        Unassign(actor=ALICE),
        Assign(actor=ALICE, assignee="carol"),
        Move(actor=ALICE, queue="pending"),
    ):
        decision = transition(state, event(payload, T0 + 100), SETTINGS, 0)
        after = decision.state or state
        assert (after.queue, after.snoozed_until) == (Queue.PENDING, T0 + DAY), payload


@given(
    period_days=st.integers(1, 90),
    sleep_s=st.integers(1, 400 * 86400),
    later_s=st.integers(0, 400 * 86400),
)
def test_a_sleeping_conversation_is_never_auto_resolved(
    period_days: int, sleep_s: int, later_s: int
) -> None:
    """Whatever the periods, auto-resolve leaves a snoozed conversation to its timer,
    even when the sweeper comes late; once woken, New's period counts from the wake-up."""
    settings = ChannelSettings(
        display_name="EU", auto_resolve_new_s=period_days * DAY, auto_resolve_pending_s=DAY
    )
    until = T0 + 60 + sleep_s
    state = snoozed(NEW, until)
    sleeping = auto_resolve(state, settings, T0 + 60 + later_s)
    assert (sleeping.outcome, sleeping.reason) == (Outcome.IGNORED, "snoozed")
    assert state.queue_score == until  # nor found due by its queue set meanwhile
    woken = fire_timers(state, settings, until).state
    assert woken is not None
    assert auto_resolve(woken, settings, until + period_days * DAY - 1).outcome is (Outcome.IGNORED)
    resolved = auto_resolve(woken, settings, until + period_days * DAY)
    assert resolved.outcome is Outcome.APPLIED


ACTIONS = st.one_of(
    st.tuples(st.just("message"), st.just(0)),
    st.tuples(st.just("snooze"), st.integers(-10, 3 * 86400)),
    st.tuples(st.just("move"), st.sampled_from(["pending", "resolved"])),
    st.tuples(st.just("assign"), st.sampled_from(["ana", "bob"])),
    st.tuples(st.just("unassign"), st.just(0)),
    st.tuples(st.just("reply"), st.just(0)),
    st.tuples(st.just("timers"), st.just(0)),
)


def action(kind: str, arg: object, now: float) -> Payload:
    match kind:
        case "snooze":
            return Snooze(actor=ALICE, until=now + float(str(arg)))
        case "move":
            return Move(actor=ALICE, queue=str(arg))
        case "assign":
            return Assign(actor=ALICE, assignee=str(arg))
        case "unassign":
            return Unassign(actor=ALICE)
    return AgentReply(actor=ALICE, text="hi")


@given(steps=st.lists(st.tuples(ACTIONS, st.integers(0, 86400)), max_size=30))
def test_snooze_invariants_over_any_sequence(steps: list[tuple[tuple[str, object], int]]) -> None:
    """A snooze lives only in Pending; each snooze wakes at most once (by its timer or
    the customer); a timer never fires early; the next timer is the snooze's end."""
    state: Conversation | None = None
    now = T0
    sleeping = False
    for (kind, arg), advance in steps:
        now += advance
        match kind:
            case "timers":
                decision = fire_timers(state, SETTINGS, now)
            case "message":
                decision = transition(state, message(now), SETTINGS, now)
            case _:
                decision = transition(state, event(action(kind, arg, now), now), SETTINGS, now)
        woke = [effect for effect in decision.effects if isinstance(effect, Woke)]
        if kind == "timers" and decision.outcome is Outcome.APPLIED:
            assert state is not None and state.snoozed_until is not None
            assert state.snoozed_until <= now  # never early
        if woke:
            assert sleeping, "woke without a snooze"
            sleeping = False
        if any(isinstance(effect, Snoozed) for effect in decision.effects):
            sleeping = True
        state = decision.state
        if state is None:
            continue
        if state.snoozed_until is not None:
            assert state.queue is Queue.PENDING
            assert next_due(state) == state.snoozed_until
        else:
            assert next_due(state) is None
            sleeping = False  # resolved
        assert sleeping == (state.snoozed_until is not None)
