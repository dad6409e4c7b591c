"""A channel's business hours: when its team answers. Pure: no clock, no I/O.

Hours are wall-clock times in the channel's IANA time zone (`Europe/Amsterdam`), so a
period keeps its local times across a daylight-saving change; a day may hold several
periods ("09:00-12:30", "13:30-17:30"); closed all day on the holidays listed and, with
`holiday_country`, on that country's public holidays (the `holidays` package). An
instant is in hours when its local date is no holiday and its local time falls in one of
that weekday's periods (start included, end excluded).
"""

import functools
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import msgspec

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # Monday first
PERIODS_A_DAY = 6
HOLIDAYS_MAX = 366
_PERIOD = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-4]):([0-5][0-9])$")


class BusinessHours(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    time_zone: str  # IANA, e.g. "Europe/Amsterdam"
    # Weekday -> periods "HH:MM-HH:MM" (a day left out, or empty, is closed all day).
    week: dict[Day, list[str]]
    holidays: list[date] = []
    holiday_country: str | None = None  # ISO 3166-1 alpha-2, e.g. "NL"


class OutOfHoursReply(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a customer writing outside business hours is sent, once a conversation cycle:
    a text, or an approved template (`template`, `language`) with no variables."""

    text: str | None = None
    template: str | None = None
    language: str | None = None


class HoursError(ValueError):
    """What is wrong, and where (`field`: a path into the business hours)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check(hours: BusinessHours) -> None:
    """Raises HoursError naming the first field that does not fit."""
    try:
        ZoneInfo(hours.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise HoursError(
            "time_zone", f"no time zone {hours.time_zone!r} (IANA, e.g. Europe/Amsterdam)"
        ) from None
    for day, periods in hours.week.items():
        if len(periods) > PERIODS_A_DAY:
            raise HoursError(f"week.{day}", f"at most {PERIODS_A_DAY} periods a day")
        spans = []
        for index, period in enumerate(periods):
            span = _span(period)
            if span is None:
                raise HoursError(
                    f"week.{day}[{index}]", f"{period!r} is not a period like 09:00-17:30"
                )
            spans.append(span)
        for (_, end), (start, _) in zip(sorted(spans), sorted(spans)[1:], strict=False):
            if start < end:
                raise HoursError(f"week.{day}", "periods overlap")
    if len(hours.holidays) > HOLIDAYS_MAX:
        raise HoursError("holidays", f"at most {HOLIDAYS_MAX} dates")
    country = hours.holiday_country
    if country is not None and country not in holidays.list_supported_countries():
        raise HoursError("holiday_country", f"no public holidays known for {country!r}")


def is_open(hours: BusinessHours | None, at: float) -> bool:
    """Whether the instant `at` (Unix seconds) is in business hours; always, without any."""
    if hours is None:
        return True
    local = datetime.fromtimestamp(at, UTC).astimezone(ZoneInfo(hours.time_zone))
    day = local.date()
    if day in hours.holidays or _public_holiday(hours.holiday_country, day):
        return False
    minute = local.hour * 60 + local.minute
    for period in hours.week.get(DAYS[local.weekday()], []):
        span = _span(period)
        if span is not None and span[0] <= minute < span[1]:
            return True
    return False


# How far ahead a deadline is looked for: two years of days.
HORIZON_DAYS = 2 * 366


def add_business_time(hours: BusinessHours | None, start: float, seconds: float) -> float | None:
    """The instant at which `seconds` of business time have passed since `start` (Unix
    seconds); None when the hours leave no time open within two years (closed every
    day). Without business hours, plain time."""
    if hours is None:
        return start + seconds
    zone = ZoneInfo(hours.time_zone)
    remaining = seconds
    day = datetime.fromtimestamp(start, UTC).astimezone(zone).date()
    for _ in range(HORIZON_DAYS):
        if day not in hours.holidays and not _public_holiday(hours.holiday_country, day):
            spans = sorted(
                span
                for period in hours.week.get(DAYS[day.weekday()], [])
                if (span := _span(period)) is not None
            )
            for first, last in spans:
                opens = max(_instant(zone, day, first), start)
                closes = _instant(zone, day, last)
                if opens >= closes:
                    continue
                if remaining <= closes - opens:
                    return opens + remaining
                remaining -= closes - opens
        day += timedelta(days=1)
    return None


def _instant(zone: ZoneInfo, day: date, minute: int) -> float:
    """Unix seconds of `minute` past local midnight of `day` (24:00 is the next day's
    midnight; a time skipped by a daylight-saving change is read with the offset before
    it, as zoneinfo does)."""
    # Aware arithmetic is wall-clock arithmetic: the offset is the result's own.
    wall = datetime.combine(day, time(0), tzinfo=zone) + timedelta(minutes=minute)
    return wall.timestamp()


@functools.lru_cache(maxsize=1024)
def _span(period: str) -> tuple[int, int] | None:
    """(start, end) in minutes of the day; None when it is no period, or ends first.
    Cached: a channel's few periods are read on every customer message."""
    match = _PERIOD.match(period)
    if match is None:
        return None
    start_h, start_m, end_h, end_m = map(int, match.groups())
    start, end = start_h * 60 + start_m, end_h * 60 + end_m
    if end > 24 * 60 or start >= end:
        return None
    return start, end


def _public_holiday(country: str | None, day: date) -> bool:
    return country is not None and day in _holidays(country, day.year)


@functools.lru_cache(maxsize=256)
def _holidays(country: str, year: int) -> holidays.HolidayBase:
    return holidays.country_holidays(country, years=year)
