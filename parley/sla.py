"""SLA targets: how soon a channel's team answers and resolves, counted in business hours.
Pure: no clock, no I/O.

Three targets, each optional: the first response of a conversation cycle, the next
response after a customer writes again once answered, and the resolution. A deadline is
the instant its target's business time has passed since what started it; the warning
comes `warn_before_s` of business time earlier.
"""

import msgspec

from parley.business_hours import BusinessHours, add_business_time

FIRST_RESPONSE = "first_response"
NEXT_RESPONSE = "next_response"
RESOLUTION = "resolution"
TARGETS = (FIRST_RESPONSE, NEXT_RESPONSE, RESOLUTION)
MAX_TARGET_S = 366 * 86400


class SlaTargets(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Seconds of business time (None: no target)."""

    first_response_s: int | None = None
    next_response_s: int | None = None
    resolution_s: int | None = None
    warn_before_s: int = 0  # the warning's lead, in business time (0: no warning)

    def seconds(self, target: str) -> int | None:
        value: int | None = getattr(self, f"{target}_s")
        return value


class Deadline(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """A running target of a conversation: when it is due, when its warning comes
    (`warn_at == due`: no warning), and which of the two have fired."""

    target: str
    due: float
    warn_at: float
    warned: bool = False
    breached: bool = False

    @property
    def next_at(self) -> float | None:
        """When this deadline fires next; None once breached."""
        if self.breached:
            return None
        return self.due if self.warned or self.warn_at >= self.due else self.warn_at


def problems(targets: SlaTargets) -> list[tuple[str, str]]:
    """(field, problem) for what does not fit."""
    found = []
    for target in TARGETS:
        value = targets.seconds(target)
        if value is not None and not 1 <= value <= MAX_TARGET_S:
            found.append((f"{target}_s", f"must be 1 to {MAX_TARGET_S} seconds"))
    if targets.warn_before_s < 0:
        found.append(("warn_before_s", "must not be negative"))
    return found


def deadline(
    targets: SlaTargets | None, hours: BusinessHours | None, target: str, start: float
) -> Deadline | None:
    """The deadline of `target` started at `start`; None without that target, or when
    the business hours leave it no time."""
    seconds = targets.seconds(target) if targets is not None else None
    if targets is None or seconds is None:
        return None
    due = add_business_time(hours, start, seconds)
    if due is None:
        return None
    lead = targets.warn_before_s
    warn_at = due
    if 0 < lead < seconds:
        warn_at = add_business_time(hours, start, seconds - lead) or due
    return Deadline(target=target, due=due, warn_at=warn_at)
