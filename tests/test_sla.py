"""SLA targets in the pure machine, with injected time: deadlines counted in business
hours (over a weekend, a holiday and a daylight-saving change), the warning and the breach
fired once each by `fire_timers` and never early, and meeting a target clearing it."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.machine import fire_timers, next_due, transition
from engine.model import SlaBreached, SlaWarned
from parley.business_hours import BusinessHours, add_business_time
from parley.channels import ChannelSettings
from parley.events import Actor, AgentReply, CustomerMessage, Event, Identity, Move, Payload, Role
from parley.sla import FIRST_RESPONSE, NEXT_RESPONSE, RESOLUTION, SlaTargets
from parley.state import Conversation, Queue

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
OFFICE = BusinessHours(
    time_zone="Europe/Amsterdam",
    week={day: ["09:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
    holidays=[date(2026, 12, 24)],
)
TARGETS = SlaTargets(
    first_response_s=3600, next_response_s=1800, resolution_s=8 * 3600, warn_before_s=900
)
CHANNEL = ChannelSettings(display_name="EU", business_hours=OFFICE, sla=TARGETS)
ANA = Actor("ana", Role.CONTRIBUTOR)
CUSTOMER = Identity(phone="31612345678")


def local(*parts: int) -> float:
    return datetime(*parts, tzinfo=AMSTERDAM).timestamp()  # type: ignore[misc]


def event(payload: Payload, at: float, n: int = 0) -> Event:
    return Event(
        id=f"e{n}", channel="1", identity=CUSTOMER, occurred_at=at, received_at=at, payload=payload
    )


def message(at: float, n: int = 0) -> Event:
    return event(CustomerMessage(wamid=f"wamid.{n}.{at}", type="text", text="hi"), at, n)


def deadlines(state: Conversation | None) -> dict[str, tuple[float, float]]:
    assert state is not None
    return {d.target: (d.due, d.warn_at) for d in state.sla}


def test_business_time_skips_nights_weekends_holidays_and_follows_the_clock_change() -> None:
    friday = local(2026, 12, 4, 16, 30)
    assert add_business_time(OFFICE, friday, 3600) == local(2026, 12, 7, 9, 30)  # Monday
    wednesday = local(2026, 12, 23, 16, 0)  # the next day is a holiday
    assert add_business_time(OFFICE, wednesday, 2 * 3600) == local(2026, 12, 25, 10, 0)
    # Friday 27 March 2026 16:00 CET; summer time begins on Sunday: Monday 10:00 CEST.
    before_change = local(2026, 3, 27, 16, 0)
    assert add_business_time(OFFICE, before_change, 2 * 3600) == local(2026, 3, 30, 10, 0)
    assert add_business_time(None, 100.0, 60) == 160.0
    assert add_business_time(BusinessHours(time_zone="UTC", week={}), 0.0, 1) is None


def test_a_new_cycle_starts_first_response_and_resolution_in_business_time() -> None:
    friday = local(2026, 12, 4, 16, 30)
    state = transition(None, message(friday), CHANNEL, 0).state
    assert deadlines(state) == {
        FIRST_RESPONSE: (local(2026, 12, 7, 9, 30), local(2026, 12, 7, 9, 15)),
        RESOLUTION: (local(2026, 12, 7, 16, 30), local(2026, 12, 7, 16, 15)),  # 30 min + 7.5 h
    }
    assert next_due(state) == local(2026, 12, 7, 9, 15)


def test_warning_then_breach_each_once_and_never_early() -> None:
    friday = local(2026, 12, 4, 16, 30)
    state = transition(None, message(friday), CHANNEL, 0).state
    warn_at = local(2026, 12, 7, 9, 15)
    early = fire_timers(state, CHANNEL, warn_at - 0.001)
    assert (early.outcome, early.reason) == ("ignored", "not due yet")

    warned = fire_timers(state, CHANNEL, warn_at)
    assert warned.effects == (SlaWarned(FIRST_RESPONSE, local(2026, 12, 7, 9, 30)),)
    assert next_due(warned.state) == local(2026, 12, 7, 9, 30)
    assert fire_timers(warned.state, CHANNEL, warn_at + 60).outcome == "ignored"

    breached = fire_timers(warned.state, CHANNEL, local(2026, 12, 7, 9, 30))
    assert breached.effects == (SlaBreached(FIRST_RESPONSE, local(2026, 12, 7, 9, 30)),)
    assert breached.state is not None and breached.state.last_activity_at == friday  # not activity
    # A late sweeper that skipped the warning fires both, in order, at once.
    late = fire_timers(state, CHANNEL, local(2026, 12, 7, 12, 0))
    assert late.effects == (
        SlaWarned(FIRST_RESPONSE, local(2026, 12, 7, 9, 30)),
        SlaBreached(FIRST_RESPONSE, local(2026, 12, 7, 9, 30)),
    )


def test_meeting_a_target_clears_it_and_the_next_response_runs_while_the_customer_waits() -> None:
    monday = local(2026, 12, 7, 10, 0)
    state = transition(None, message(monday), CHANNEL, 0).state
    answered = transition(
        state, event(AgentReply(actor=ANA, text="On it"), monday + 600), CHANNEL, 0
    )
    assert set(deadlines(answered.state)) == {RESOLUTION}
    again = transition(answered.state, message(monday + 1200, 1), CHANNEL, 0).state
    assert deadlines(again)[NEXT_RESPONSE] == (monday + 1200 + 1800, monday + 1200 + 900)
    # Moved to pending: waiting on the customer, no answer due.
    pending = transition(again, event(Move(actor=ANA, queue="pending"), monday + 1300), CHANNEL, 0)
    assert set(deadlines(pending.state)) == {RESOLUTION}
    resolved = transition(
        pending.state, event(Move(actor=ANA, queue="resolved"), monday + 1400), CHANNEL, 0
    )
    assert resolved.state is not None and resolved.state.sla == ()
    assert next_due(resolved.state) is None


def test_without_targets_nothing_runs() -> None:
    quiet = msgspec.structs.replace(CHANNEL, sla=None)
    state = transition(None, message(local(2026, 12, 7, 10, 0)), quiet, 0).state
    assert state is not None and state.sla == () and next_due(state) is None


STEPS = st.lists(
    st.tuples(
        st.sampled_from(["message", "reply", "pending", "resolve", "timers"]),
        st.integers(0, 6 * 3600),
    ),
    max_size=40,
)


@settings(max_examples=200)
@given(steps=STEPS)
def test_each_deadline_warns_and_breaches_at_most_once_and_never_early(
    steps: list[tuple[str, int]],
) -> None:
    plain = msgspec.structs.replace(CHANNEL, business_hours=None)
    state: Conversation | None = None
    now = local(2026, 12, 7, 8, 0)
    fired: dict[tuple[str, float, str], int] = {}
    for n, (kind, advance) in enumerate(steps):
        now += advance
        if kind == "timers":
            before = state
            decision = fire_timers(state, plain, now)
            for effect in decision.effects:
                if isinstance(effect, SlaWarned | SlaBreached):
                    key = (effect.target, effect.due, type(effect).__name__)
                    fired[key] = fired.get(key, 0) + 1
                    assert fired[key] == 1, key
                    assert before is not None
                    [running] = [d for d in before.sla if d.target == effect.target]
                    instant = running.due if isinstance(effect, SlaBreached) else running.warn_at
                    assert instant <= now  # never early
        else:
            payload: Payload | None = {
                "reply": AgentReply(actor=ANA, text="hi"),
                "pending": Move(actor=ANA, queue="pending"),
                "resolve": Move(actor=ANA, queue="resolved"),
            }.get(kind)
            trigger = message(now, n) if payload is None else event(payload, now, n)
            decision = transition(state, trigger, plain, now)
        state = decision.state
        if state is None:
            continue
        targets = [d.target for d in state.sla]
        assert len(targets) == len(set(targets))  # at most one of each
        if state.queue is Queue.RESOLVED:
            assert state.sla == ()
        times = [d.next_at for d in state.sla if d.next_at is not None]
        if state.queue is Queue.PENDING and state.snoozed_until is not None:
            times.append(state.snoozed_until)
        assert next_due(state) == (min(times) if times else None)
