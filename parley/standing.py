"""A number's standing with Meta: its verified (display) name and where the name's
review stands, its quality rating and messaging limit, and whether it is an Official
Business Account (the verified badge). Read from the Graph API on demand and moved by
the `phone_number_name_update` and `phone_number_quality_update` webhooks; the rules
are pure.

Meta reviews every display name. A declined name blocks sending until a new one is
approved; a RED quality rating comes before a lower messaging limit. Both are
`problems`: shown to admins, exported as metrics and alerted on.
"""

from typing import Final

import msgspec

# Meta's `name_status` values.
APPROVED: Final = "APPROVED"
DECLINED: Final = "DECLINED"
PENDING_REVIEW: Final = "PENDING_REVIEW"
RED: Final = "RED"
# A webhook's `decision` -> the name_status it means. DEFERRED: Meta has not decided yet.
_DECISIONS: Final = {
    "APPROVED": APPROVED,
    "REJECTED": DECLINED,
    "DEFERRED": PENDING_REVIEW,
    "PENDING": PENDING_REVIEW,
}
# The quality webhook's events that say where the rating went. FLAGGED: "quality has
# decreased to a low state" (RED). UNFLAGGED: back to medium or high, which one the
# webhook does not say: the rating is unknown until the next read from the Graph API.
_QUALITY_EVENTS: Final[dict[str, str | None]] = {"FLAGGED": RED, "UNFLAGGED": None}
PROBLEMS: Final = ("name_declined", "quality_red")
# The Graph API fields a refresh reads.
FIELDS: Final = (
    "verified_name",
    "display_phone_number",
    "name_status",
    "new_name_status",
    "quality_rating",
    "messaging_limit_tier",
    "is_official_business_account",
    "official_business_account",
)


class Standing(msgspec.Struct, frozen=True, kw_only=True):
    """None: not known yet (never read, and no webhook said)."""

    verified_name: str | None = None
    display_phone_number: str | None = None
    name_status: str | None = None  # APPROVED, PENDING_REVIEW, DECLINED, EXPIRED, ...
    requested_name: str | None = None  # the name under review, or last reviewed
    name_rejection_reason: str | None = None  # Meta's, when declined
    quality_rating: str | None = None  # GREEN, YELLOW, RED, UNKNOWN
    messaging_limit: str | None = None  # TIER_250, TIER_1K, ..., TIER_UNLIMITED
    official_business_account: bool | None = None  # the verified badge
    oba_status: str | None = None  # the badge request: NOT_STARTED, PENDING, APPROVED, ...
    refreshed_at: float | None = None  # last read from the Graph API
    updated_at: float | None = None  # last change, from either source


class NumberFields(msgspec.Struct, frozen=True, kw_only=True):
    """`GET /{phone-number-id}?fields=...` as Meta answers it."""

    verified_name: str | None = None
    display_phone_number: str | None = None
    name_status: str | None = None
    new_name_status: str | None = None
    quality_rating: str | None = None
    messaging_limit_tier: str | None = None
    is_official_business_account: bool | None = None
    official_business_account: dict[str, str] | None = None


class NameUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """A `phone_number_name_update` webhook's value."""

    display_phone_number: str
    decision: str
    requested_verified_name: str | None = None
    rejection_reason: str | None = None


class QualityUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """A `phone_number_quality_update` webhook's value. `current_limit` is leaving
    Meta's payload (2026) for `max_daily_conversations_per_business`: either is read."""

    display_phone_number: str
    event: str
    current_limit: str | None = None
    old_limit: str | None = None
    max_daily_conversations_per_business: str | None = None


def digits(phone: str) -> str:
    """A display phone number as its digits: "+1 555-012-3456" and Meta's webhook
    form "15550123456" are one number."""
    return "".join(char for char in phone if char.isdigit())


def from_graph(fields: NumberFields, now: float, previous: Standing | None = None) -> Standing:
    """The standing a Graph API read gives. A name under review shows as
    `new_name_status` (a pending change of an approved name); the review that matters
    is that one while it lasts. The reason of a decline is only in the webhook, so it is
    kept from `previous` while the name stays declined."""
    reviewing = fields.new_name_status not in (None, "", "NONE")
    name_status = fields.new_name_status if reviewing else fields.name_status
    reason = previous.name_rejection_reason if previous and name_status == DECLINED else None
    oba = (fields.official_business_account or {}).get("oba_status")
    return Standing(
        verified_name=fields.verified_name,
        display_phone_number=fields.display_phone_number,
        name_status=name_status,
        requested_name=previous.requested_name if previous else None,
        name_rejection_reason=reason,
        quality_rating=fields.quality_rating,
        messaging_limit=fields.messaging_limit_tier,
        official_business_account=fields.is_official_business_account,
        oba_status=oba,
        refreshed_at=now,
        updated_at=now,
    )


def after_name_update(standing: Standing, update: NameUpdate, now: float) -> Standing:
    """Meta decided on a display name: approved, it is the verified name now."""
    status = _DECISIONS.get(update.decision, update.decision)
    requested = update.requested_verified_name or standing.requested_name
    reason = update.rejection_reason
    return msgspec.structs.replace(
        standing,
        name_status=status,
        requested_name=requested,
        verified_name=requested if status == APPROVED and requested else standing.verified_name,
        name_rejection_reason=reason
        if status == DECLINED and reason not in (None, "NONE")
        else None,
        updated_at=now,
    )


def after_quality_update(standing: Standing, update: QualityUpdate, now: float) -> Standing:
    changes: dict[str, object] = {"updated_at": now}
    limit = update.max_daily_conversations_per_business or update.current_limit
    if limit:
        changes["messaging_limit"] = limit
    if update.event in _QUALITY_EVENTS:
        changes["quality_rating"] = _QUALITY_EVENTS[update.event]
    return msgspec.structs.replace(standing, **changes)


def problems(standing: Standing) -> list[str]:
    """What an admin must act on: a declined name (no sends until a new one is
    approved), a RED quality rating (the messaging limit is at risk)."""
    found = []
    if standing.name_status == DECLINED:
        found.append("name_declined")
    if standing.quality_rating == RED:
        found.append("quality_red")
    return found
