"""Business hours (parley/business_hours.py) and the out-of-hours reply in the pure
machine, with injected time: local wall-clock periods across a daylight-saving change,
holidays listed and a country's public holidays, and the reply sent once a cycle."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.machine import transition
from engine.model import Opened, OutOfHoursReplied
from parley.business_hours import BusinessHours, HoursError, OutOfHoursReply, check, is_open
from parley.channels import ChannelSettings
from parley.events import Actor, CustomerMessage, Event, Identity, Move, Role
from parley.state import Conversation, Queue

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
OFFICE = BusinessHours(
    time_zone="Europe/Amsterdam",
    week={day: ["09:00-12:30", "13:30-17:30"] for day in ("mon", "tue", "wed", "thu", "fri")},
    holidays=[date(2026, 12, 24)],
    holiday_country="NL",
)


def local(*parts: int) -> float:
    """Unix seconds of a wall-clock time in Amsterdam."""
    return datetime(*parts, tzinfo=AMSTERDAM).timestamp()  # type: ignore[misc]


@pytest.mark.parametrize(
    ("when", "open_"),
    [
        ((2026, 11, 30, 8, 59), False),  # Monday, before
        ((2026, 11, 30, 9, 0), True),  # the start is in
        ((2026, 11, 30, 12, 30), False),  # the end is out: lunch
        ((2026, 11, 30, 13, 30), True),
        ((2026, 11, 30, 17, 29), True),
        ((2026, 11, 30, 17, 30), False),
        ((2026, 12, 5, 10, 0), False),  # Saturday
        ((2026, 12, 24, 10, 0), False),  # a listed holiday (Thursday)
        ((2026, 4, 27, 10, 0), False),  # King's Day, the Netherlands' (Monday)
        ((2026, 4, 28, 10, 0), True),
    ],
)
def test_periods_days_and_holidays(when: tuple[int, ...], open_: bool) -> None:
    assert is_open(OFFICE, local(*when)) is open_


def test_periods_keep_their_local_times_across_daylight_saving_changes() -> None:
    """Amsterdam moves to summer time on Sunday 29 March 2026 and back on Sunday 25
    October: 09:00 local is 08:00 UTC in winter and 07:00 UTC in summer."""
    every_day = msgspec.structs.replace(
        OFFICE, week={day: ["09:00-17:30"] for day in ("sat", "sun", "mon")}, holiday_country=None
    )
    for day in (date(2026, 3, 28), date(2026, 3, 29), date(2026, 3, 30)):
        nine = datetime(day.year, day.month, day.day, 9, tzinfo=AMSTERDAM)
        utc_hour = nine.astimezone(UTC).hour
        assert utc_hour == (8 if day < date(2026, 3, 29) else 7)
        assert is_open(every_day, nine.timestamp())
        assert not is_open(every_day, nine.timestamp() - 1)
    # The night the clocks go back, 02:30 happens twice; both are outside 09:00-17:30
    # and the day after still opens at 09:00 local (08:00 UTC again).
    back = datetime(2026, 10, 26, 9, tzinfo=AMSTERDAM)
    assert back.astimezone(UTC).hour == 8 and is_open(every_day, back.timestamp())


def test_always_open_without_business_hours() -> None:
    assert is_open(None, 0.0)


@given(st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31)))
def test_a_week_later_at_the_same_local_time_is_the_same_answer(moment: datetime) -> None:
    """Wall-clock periods repeat every week, whatever the offset does in between
    (holidays aside)."""
    plain = msgspec.structs.replace(OFFICE, holidays=[], holiday_country=None)
    at = moment.replace(tzinfo=AMSTERDAM)
    week_later = (at.replace(tzinfo=None) + timedelta(days=7)).replace(tzinfo=AMSTERDAM)
    assert is_open(plain, at.timestamp()) == is_open(plain, week_later.timestamp())


@pytest.mark.parametrize(
    ("hours", "field"),
    [
        (BusinessHours(time_zone="Mars/Olympus", week={}), "time_zone"),
        (BusinessHours(time_zone="UTC", week={"mon": ["9-5"]}), "week.mon[0]"),
        (BusinessHours(time_zone="UTC", week={"mon": ["17:00-09:00"]}), "week.mon[0]"),
        (BusinessHours(time_zone="UTC", week={"mon": ["09:00-24:30"]}), "week.mon[0]"),
        (BusinessHours(time_zone="UTC", week={"tue": ["09:00-13:00", "12:00-17:00"]}), "week.tue"),
        (BusinessHours(time_zone="UTC", week={"wed": ["00:00-01:00"] * 7}), "week.wed"),
        (BusinessHours(time_zone="UTC", week={}, holiday_country="XX"), "holiday_country"),
    ],
)
def test_what_does_not_fit_is_named(hours: BusinessHours, field: str) -> None:
    with pytest.raises(HoursError) as raised:
        check(hours)
    assert raised.value.field == field


def test_a_whole_day_fits() -> None:
    check(BusinessHours(time_zone="UTC", week={"sun": ["00:00-24:00"]}))
    assert is_open(
        BusinessHours(time_zone="UTC", week={"sun": ["00:00-24:00"]}), local(2026, 11, 29, 23, 59)
    )


# The out-of-hours reply, in the machine

REPLY = OutOfHoursReply(text="We are closed; we answer from 09:00.")
SETTINGS = ChannelSettings(display_name="EU", business_hours=OFFICE, out_of_hours_reply=REPLY)
CUSTOMER = Identity(phone="31612345678")
NIGHT = local(2026, 11, 30, 22, 0)
MORNING = local(2026, 12, 1, 10, 0)


def message(at: float, n: int = 1) -> Event:
    payload = CustomerMessage(wamid=f"wamid.{n}", type="text", text="hi")
    return Event(
        id=f"wamid.{n}",
        channel="1",
        identity=CUSTOMER,
        occurred_at=at,
        received_at=at,
        payload=payload,
    )


def test_a_customer_writing_outside_hours_gets_the_reply_once_a_cycle() -> None:
    first = transition(None, message(NIGHT), SETTINGS, 0)
    assert first.effects == (Opened(), OutOfHoursReplied(REPLY.text, None, None))
    state = first.state
    assert state is not None and state.out_of_hours_replied
    # Nothing in Parley answered: no assignee, no first response, new as before.
    assert (state.queue, state.assignee, state.first_response_at) == (Queue.NEW, None, None)

    again = transition(state, message(NIGHT + 60, 2), SETTINGS, 0)
    assert again.effects == ()

    resolve = Event(
        id="r",
        channel="1",
        identity=CUSTOMER,
        occurred_at=NIGHT + 120,
        received_at=NIGHT + 120,
        payload=Move(actor=Actor("ana", Role.CONTRIBUTOR), queue="resolved"),
    )
    resolved = transition(again.state, resolve, SETTINGS, 0).state
    next_cycle = transition(resolved, message(NIGHT + 600, 3), SETTINGS, 0)
    assert next_cycle.effects == (Opened(), OutOfHoursReplied(REPLY.text, None, None))


def test_inside_hours_or_without_a_reply_nothing_is_sent() -> None:
    assert transition(None, message(MORNING), SETTINGS, 0).effects == (Opened(),)
    quiet = msgspec.structs.replace(SETTINGS, out_of_hours_reply=None)
    assert transition(None, message(NIGHT), quiet, 0).effects == (Opened(),)
    always = msgspec.structs.replace(SETTINGS, business_hours=None)
    assert transition(None, message(NIGHT), always, 0).effects == (Opened(),)


def test_the_reply_follows_the_messages_own_time_not_the_clock() -> None:
    """A night message applied the next morning (a backlog, a replay) still gets it."""
    late = transition(None, message(NIGHT), SETTINGS, MORNING)
    assert OutOfHoursReplied(REPLY.text, None, None) in late.effects
    state = Conversation(queue=Queue.OPEN, assignee="ana", opened_at=0, last_activity_at=0)
    assert transition(state, message(MORNING), SETTINGS, NIGHT).effects == ()
