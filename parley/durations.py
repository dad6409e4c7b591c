"""Durations as operators write them: "90s", "15m", "12h", "30d", or "off"."""

import re

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"([1-9][0-9]{0,9})([smhd])")
OFF = "off"


class DurationError(ValueError):
    """A duration string that is not a positive count followed by s, m, h or d, nor "off"."""


def parse_period(text: str) -> int | None:
    """Seconds for "90s" / "15m" / "12h" / "30d"; None for "off". Raises DurationError."""
    cleaned = text.strip().lower()
    if cleaned == OFF:
        return None
    match = _DURATION.fullmatch(cleaned)
    if match is None:
        raise DurationError(
            f'expected a duration like "90s", "15m", "12h", "30d" or "off", got {text!r}'
        )
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def format_period(seconds: int | None) -> str:
    """The shortest exact spelling of a period, the inverse of parse_period."""
    if seconds is None:
        return OFF
    for unit in ("d", "h", "m"):
        if seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"
