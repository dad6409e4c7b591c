"""Per-channel daily reports, kept as the engine applies events. Pure: no I/O.

A day's report is one Redis hash of counters (see `keys.report`): `opened`, `replies`,
`resolved`, `auto_resolved`, and the first-response and resolution times as counts per
bucket (`fr:<seconds>`, `rt:<seconds>`). Buckets keep three significant digits, so a
day holds a bounded number of fields whatever its traffic, and reading a report costs
the same for ten conversations as for ten million. Percentiles are exact to the second
below 1,000 s and within 0.5% above.
"""

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import date, timedelta

import msgspec

from parley.redis import as_text

OPENED = "opened"
REPLIES = "replies"
RESOLVED = "resolved"
AUTO_RESOLVED = "auto_resolved"
SLA_WARNINGS = "sla_warnings"  # an SLA target came within its warning lead
SLA_BREACHES = "sla_breaches"  # an SLA target passed without being met
FIRST_RESPONSE = "fr"
RESOLUTION = "rt"
COUNTERS = (OPENED, REPLIES, RESOLVED, AUTO_RESOLVED, SLA_WARNINGS, SLA_BREACHES)
# Reports of a day are kept this long after their last write.
RETENTION_S = 400 * 86400
# The longest range one request may ask for: one hash read per day.
MAX_DAYS = 366


def bucket(seconds: float) -> int:
    """`seconds` rounded to whole seconds, then to three significant digits."""
    value = max(0, round(seconds))
    step = 1
    while value >= 1000 * step:
        step *= 10
    return (value + step // 2) // step * step


def time_field(kind: str, seconds: float) -> str:
    """The hash field counting `seconds` for `kind` (FIRST_RESPONSE or RESOLUTION)."""
    return f"{kind}:{bucket(seconds)}"


_EPOCH = date(1970, 1, 1).toordinal()


def day_of(at: float) -> date:
    """The UTC day of a Unix time (integer arithmetic: this runs once an event)."""
    return date.fromordinal(_EPOCH + int(at // 86400))


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    """How many times were measured, and their median and 90th percentile (seconds)."""

    count: int
    median_s: int | None
    p90_s: int | None


class DayReport(msgspec.Struct, frozen=True, kw_only=True):
    date: str  # YYYY-MM-DD, UTC
    opened: int
    replies: int
    resolved: int
    auto_resolved: int
    sla_warnings: int = 0
    sla_breaches: int = 0
    first_response: Summary
    resolution: Summary


class Tally(msgspec.Struct, kw_only=True):
    """A report's raw counts: one day's, or several days' added up."""

    counters: Counter[str] = msgspec.field(default_factory=Counter)
    first_response: Counter[int] = msgspec.field(default_factory=Counter)
    resolution: Counter[int] = msgspec.field(default_factory=Counter)

    def add(self, other: "Tally") -> None:
        self.counters.update(other.counters)
        self.first_response.update(other.first_response)
        self.resolution.update(other.resolution)

    def report(self, label: str) -> DayReport:
        return DayReport(
            date=label,
            opened=self.counters[OPENED],
            replies=self.counters[REPLIES],
            resolved=self.counters[RESOLVED],
            auto_resolved=self.counters[AUTO_RESOLVED],
            sla_warnings=self.counters[SLA_WARNINGS],
            sla_breaches=self.counters[SLA_BREACHES],
            first_response=summarize(self.first_response),
            resolution=summarize(self.resolution),
        )


def tally(fields: Mapping[bytes | str, bytes | str]) -> Tally:
    """A day's Tally from its report hash (empty when the day had nothing)."""
    result = Tally()
    for raw_name, raw_value in fields.items():
        name, count = as_text(raw_name), int(raw_value)
        kind, _, seconds = name.partition(":")
        if kind == FIRST_RESPONSE and seconds:
            result.first_response[int(seconds)] += count
        elif kind == RESOLUTION and seconds:
            result.resolution[int(seconds)] += count
        elif name in COUNTERS:
            result.counters[name] += count
    return result


def summarize(counts: Mapping[int, int]) -> Summary:
    total = sum(counts.values())
    return Summary(
        count=total,
        median_s=percentile(counts.items(), 0.5),
        p90_s=percentile(counts.items(), 0.9),
    )


def percentile(counts: Iterable[tuple[int, int]], q: float) -> int | None:
    """The nearest-rank `q` percentile of values given as (value, count) pairs: the
    smallest value with at least q of all values at or below it. None when empty."""
    ordered = sorted((value, count) for value, count in counts if count > 0)
    total = sum(count for _, count in ordered)
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for value, count in ordered:
        seen += count
        if seen >= rank:
            return value
    raise AssertionError("unreachable: rank <= total")
