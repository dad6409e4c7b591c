"""The Graph API stand-in's onboarding rules, without HTTP: the records its onboarding
edges keep (business profiles, number records, upload sessions, logged requests), Meta's
documented limits on a profile and a template (`profile_problem`, `template_problem`),
Meta's decisions on a number and the webhooks that tell them (`number_decision`,
`business_webhook`), and what a logged request keeps (`logged_request`).

devstack.standin_onboarding serves them, and re-exports the records callers used from it.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import msgspec
from aiohttp import web

from devstack.graph_standin import _placeholders, _text
from parley.business_profile import VERTICALS  # a profile's `vertical`: Meta's categories
from parley.standing import FIELDS as STANDING_FIELDS

PROFILE_FIELDS = (
    "about",
    "address",
    "description",
    "email",
    "profile_picture_url",
    "websites",
    "vertical",
)
# Meta's limits on a profile's texts: (fewest, most) characters. `about` cannot be
# emptied; the others can.
PROFILE_TEXT_LIMITS: Mapping[str, tuple[int, int]] = {
    "about": (1, 139),
    "address": (0, 256),
    "description": (0, 512),
    "email": (0, 128),
}
WEBSITES_MAX = 2
WEBSITE_MAX = 256
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
UPLOAD_TYPES = ("application/pdf", "image/jpeg", "image/jpg", "image/png", "video/mp4")
PICTURE_TYPES = frozenset({"image/jpeg", "image/png"})  # what a profile picture may be
PICTURE_PATH = "/_standin/pictures/"  # no token needed, as Meta's pps.whatsapp.net URLs
# The fields a phone number read may ask for: the ones Parley reads.
NUMBER_FIELDS = STANDING_FIELDS
DEFAULT_VERIFIED_NAME = "Parley demo"
TEMPLATE_NAME = re.compile(r"[a-z0-9_]{1,512}")
TEMPLATE_CATEGORIES = ("MARKETING", "UTILITY", "AUTHENTICATION")
PARAMETER_FORMATS = ("POSITIONAL", "NAMED")
HEADER_FORMATS = ("TEXT", "IMAGE", "VIDEO", "DOCUMENT", "LOCATION")
# Meta's limits on a template's components (message templates reference).
TEMPLATE_TEXT_MAX = {"HEADER": 60, "BODY": 1024, "FOOTER": 60}
TEMPLATE_BUTTONS_MAX = 10
# Meta's answer to a template name and language that already exist.
DUPLICATE_SUBCODE = 2388024
DUPLICATE_TITLE = "Content in this language already exists"
VERSION_PREFIX = re.compile(r"^/v[0-9]+\.[0-9]+(?=/)")

ReviewStatus = Literal["APPROVED", "REJECTED", "PAUSED", "DISABLED"]
NameDecision = Literal["APPROVED", "DEFERRED", "PENDING", "REJECTED"]
QualityRating = Literal["GREEN", "YELLOW", "RED"]
QualityEvent = Literal[
    "FLAGGED", "UNFLAGGED", "DOWNGRADE", "UPGRADE", "ONBOARDING", "THROUGHPUT_UPGRADE"
]
Tier = Literal[
    "TIER_50", "TIER_250", "TIER_1K", "TIER_2K", "TIER_10K", "TIER_100K", "TIER_UNLIMITED"
]
ObaStatus = Literal["NOT_STARTED", "PENDING", "APPROVED", "REJECTED"]
TIERS: tuple[str, ...] = get_args(Tier)  # lowest first
# A display name decision -> the number's `name_status`; DEFERRED decides nothing yet.
NAME_STATUS_AFTER: Mapping[str, str] = {
    "APPROVED": "APPROVED",
    "PENDING": "PENDING_REVIEW",
    "REJECTED": "DECLINED",
}
WebhookChange = tuple[str, dict[str, Any]]  # (field, value)


class BusinessProfile(msgspec.Struct, frozen=True, omit_defaults=True):
    """A number's WhatsApp business profile; a field never set is left out."""

    about: str | None = None
    address: str | None = None
    description: str | None = None
    email: str | None = None
    profile_picture_url: str | None = None
    websites: list[str] | None = None
    vertical: str | None = None


class NumberRecord(msgspec.Struct, frozen=True):
    """What Meta knows of a phone number: its names, quality and limits."""

    id: str
    display_phone_number: str
    verified_name: str
    name_status: str = "APPROVED"
    new_name_status: str = "NONE"
    quality_rating: str = "GREEN"
    messaging_limit_tier: str = "TIER_1K"
    is_official_business_account: bool = False
    oba_status: str = "NOT_STARTED"

    def fields(self, names: Sequence[str]) -> dict[str, Any]:
        """The fields named, as `GET /{phone-number-id}?fields=...` shows them."""
        full: dict[str, Any] = {
            name: getattr(self, name)
            for name in NUMBER_FIELDS
            if name != "official_business_account"
        }
        full["official_business_account"] = {"oba_status": self.oba_status}
        return {name: full[name] for name in names}


class NumberUpdate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A control's change to a number, as Meta's reviews decide it."""

    name_decision: NameDecision | None = None
    requested_verified_name: str | None = None
    rejection_reason: str | None = None
    quality_rating: QualityRating | None = None
    quality_event: QualityEvent | None = None
    current_limit: Tier | None = None
    oba_status: ObaStatus | None = None


class Review(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    status: ReviewStatus
    reason: str | None = None


class LoggedRequest(msgspec.Struct, frozen=True):
    """A request an onboarding edge received: `path` without the version prefix, the
    body as JSON when it is JSON, its length, and which headers came (never a token:
    only the Authorization scheme, and `access_token` in the query shown as "***")."""

    method: str
    path: str
    query: dict[str, str]
    json_body: Any = msgspec.field(name="json")
    body_bytes: int = msgspec.field(name="bytes")
    headers: dict[str, str | None] = msgspec.field(default_factory=dict)


@dataclass
class Upload:
    """A resumable upload session: `id` as handed out ("upload:<opaque>?sig=<sig>", as
    Meta's carry their signature in a query string), `key` its path part."""

    key: str
    sig: str
    file_type: str
    file_length: int
    file_name: str | None
    data: bytearray = field(default_factory=bytearray)
    handle: str | None = None  # once every byte has come

    @property
    def id(self) -> str:
        return f"{self.key}?sig={self.sig}"


def display_phone_number(phone_number_id: str) -> str:
    """A stable display number for an id: "+1 555-" and the id's last 7 digits, e.g.
    "106540350123456" -> "+1 555-012-3456" (US 555 numbers, as Meta's test numbers)."""
    digits = "".join(char for char in phone_number_id if char.isdigit())[-7:].rjust(7, "0")
    return f"+1 555-{digits[:3]}-{digits[3:]}"


def digits_only(phone: str) -> str:
    """A display number as webhooks give it: "+1 555-012-3456" -> "15550123456"."""
    return "".join(char for char in phone if char.isdigit())


def profile_problem(body: Mapping[str, Any], pictures: Mapping[str, str]) -> str | None:
    """Why Meta would refuse a profile update (its `error_data.details`, naming the
    parameter), else None. `pictures`: finished uploads' handles -> their MIME type."""
    if body.get("messaging_product") != "whatsapp":
        return "Param messaging_product must be 'whatsapp'"
    for name, value in body.items():
        problem = _profile_value_problem(name, value, pictures)
        if problem is not None:
            return problem
    return None


def _profile_value_problem(name: str, value: Any, pictures: Mapping[str, str]) -> str | None:
    if name == "messaging_product":
        return None
    if name in PROFILE_TEXT_LIMITS:
        fewest, most = PROFILE_TEXT_LIMITS[name]
        if not isinstance(value, str) or not fewest <= len(value) <= most:
            return f"Param {name} must be a string of {fewest} to {most} characters"
        if name == "email" and value and not EMAIL.fullmatch(value):
            return "Param email must be an email address"
        return None
    if name == "websites":
        if not isinstance(value, list) or len(value) > WEBSITES_MAX:
            return f"Param websites must be a list of at most {WEBSITES_MAX} URLs"
        for website in value:
            if (
                not isinstance(website, str)
                or len(website) > WEBSITE_MAX
                or not website.startswith(("http://", "https://"))
            ):
                return f"Param websites must hold http:// or https:// URLs of at most {WEBSITE_MAX} characters"
        return None
    if name == "vertical":
        return (
            None if value in VERTICALS else f"Param vertical must be one of {', '.join(VERTICALS)}"
        )
    if name == "profile_picture_handle":
        if isinstance(value, str) and pictures.get(value) in PICTURE_TYPES:
            return None
        return "Param profile_picture_handle must be the handle of a finished image/jpeg or image/png upload"
    return f"Param {name} is not a valid parameter"


def template_problem(body: Mapping[str, Any]) -> str | None:
    """Why Meta would refuse to create a template (code 100; its details), else None.
    A name and language that already exist are the caller's to check."""
    name = body.get("name")
    if not isinstance(name, str) or not TEMPLATE_NAME.fullmatch(name):
        return "Param name must be 1 to 512 lowercase letters, digits or underscores"
    if not _text(body.get("language")):
        return "Param language is required"
    if body.get("category") not in TEMPLATE_CATEGORIES:
        return f"Param category must be one of {', '.join(TEMPLATE_CATEGORIES)}"
    if not isinstance(body.get("allow_category_change", False), bool):
        return "Param allow_category_change must be a boolean"
    parameter_format = body.get("parameter_format", "POSITIONAL")
    if parameter_format not in PARAMETER_FORMATS:
        return f"Param parameter_format must be one of {', '.join(PARAMETER_FORMATS)}"
    components = body.get("components")
    if not isinstance(components, list) or not all(isinstance(part, dict) for part in components):
        return "Param components must be a list of objects"
    kinds = [str(part.get("type", "")).upper() for part in components]
    if "BODY" not in kinds:
        return "Param components must have a BODY component"
    for index, (kind, part) in enumerate(zip(kinds, components, strict=True)):
        where = f"components[{index}]"
        if kind not in ("HEADER", "BODY", "FOOTER", "BUTTONS"):
            return f"Param {where}['type'] must be one of HEADER, BODY, FOOTER, BUTTONS"
        if kinds.count(kind) > 1:
            return f"Param components has more than one {kind}"
        problem = _component_problem(kind, part, where, parameter_format)
        if problem is not None:
            return problem
    return None


def _component_problem(
    kind: str, part: dict[str, Any], where: str, parameter_format: str
) -> str | None:
    if kind == "BUTTONS":
        buttons = part.get("buttons")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= TEMPLATE_BUTTONS_MAX:
            return f"Param {where}['buttons'] must hold 1 to {TEMPLATE_BUTTONS_MAX} buttons"
        return None
    if kind == "HEADER":
        header_format = str(part.get("format", "")).upper()
        if header_format not in HEADER_FORMATS:
            return f"Param {where}['format'] must be one of {', '.join(HEADER_FORMATS)}"
        if header_format != "TEXT":
            return None
    text = part.get("text")
    most = TEMPLATE_TEXT_MAX[kind]
    if not isinstance(text, str) or not text.strip() or len(text) > most:
        return f"Param {where}['text'] ({kind}) must be 1 to {most} characters"
    if kind != "BODY":
        return None
    return _variables_problem(_placeholders(text), part.get("example"), where, parameter_format)


def _variables_problem(
    names: list[str], example: Any, where: str, parameter_format: str
) -> str | None:
    """A body's variables: {{1}}..{{n}} (or {{name}}s when NAMED), with the examples
    Meta requires for them."""
    if not names:
        return None
    example = example if isinstance(example, dict) else {}
    if parameter_format == "NAMED":
        given = example.get("body_text_named_params")
        named = (
            {
                item.get("param_name")
                for item in given
                if isinstance(item, dict) and _text(item.get("example"))
            }
            if isinstance(given, list)
            else set()
        )
        if named != set(names):
            return f"Param {where}['example']['body_text_named_params'] must give an example for each of {names}"
        return None
    if sorted(names, key=lambda name: (len(name), name)) != [
        str(n) for n in range(1, len(names) + 1)
    ]:
        return f"Param {where}['text'] variables must be numbered {{{{1}}}} to {{{{{len(names)}}}}} without gaps"
    rows = example.get("body_text")
    if not (
        isinstance(rows, list)
        and rows
        and all(
            isinstance(row, list) and len(row) == len(names) and all(_text(value) for value in row)
            for row in rows
        )
    ):
        return f"Param {where}['example']['body_text'] must give {len(names)} example values"
    return None


def number_decision(
    record: NumberRecord, update: NumberUpdate
) -> tuple[NumberRecord, list[WebhookChange]]:
    """The number after `update`, and the webhooks Meta would send about it. A REJECTED
    name makes the name DECLINED, an APPROVED one the verified name; FLAGGED makes the
    quality RED unless `quality_rating` says otherwise. ValueError when the update says
    nothing Meta could send (a limit unchanged without an event, a name without a
    decision)."""
    if update.name_decision is None and (update.requested_verified_name or update.rejection_reason):
        raise ValueError("requested_verified_name and rejection_reason need a name_decision")
    digits = digits_only(record.display_phone_number)
    changes: list[WebhookChange] = []
    after = record
    if update.name_decision is not None:
        requested = update.requested_verified_name or record.verified_name
        approved = update.name_decision == "APPROVED"
        after = msgspec.structs.replace(
            after,
            name_status=NAME_STATUS_AFTER.get(update.name_decision, record.name_status),
            verified_name=requested if approved else record.verified_name,
        )
        changes.append(
            (
                "phone_number_name_update",
                {
                    "display_phone_number": digits,
                    "decision": update.name_decision,
                    "requested_verified_name": requested,
                    "rejection_reason": update.rejection_reason or "NONE",
                },
            )
        )
    flagged = "RED" if update.quality_event == "FLAGGED" else None
    after = msgspec.structs.replace(
        after, quality_rating=update.quality_rating or flagged or record.quality_rating
    )
    if update.quality_event is not None or update.current_limit is not None:
        old = record.messaging_limit_tier
        current = update.current_limit or old
        event = update.quality_event or _limit_event(old, current)
        after = msgspec.structs.replace(after, messaging_limit_tier=current)
        changes.append(
            (
                "phone_number_quality_update",
                {
                    "display_phone_number": digits,
                    "event": event,
                    "current_limit": current,
                    "old_limit": old,
                    "max_daily_conversations_per_business": current,
                },
            )
        )
    if update.oba_status is not None:
        after = msgspec.structs.replace(
            after,
            oba_status=update.oba_status,
            is_official_business_account=update.oba_status == "APPROVED",
        )
    return after, changes


def _limit_event(old: str, current: str) -> str:
    if old == current:
        raise ValueError(f"current_limit is already {current}: say which quality_event")
    return "UPGRADE" if TIERS.index(current) > TIERS.index(old) else "DOWNGRADE"


def business_webhook(waba_id: str, at: int, change: WebhookChange) -> dict[str, Any]:
    """A business account webhook call (not `messages`) carrying one change."""
    name, value = change
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": waba_id, "time": at, "changes": [{"field": name, "value": value}]}],
    }


def logged_request(request: web.Request, body: bytes) -> LoggedRequest:
    query = {
        name: "***" if name == "access_token" else value for name, value in request.query.items()
    }
    try:
        payload = msgspec.json.decode(body) if body else None
    except msgspec.DecodeError:
        payload = None
    headers: dict[str, str | None] = {"authorization_scheme": _scheme(request)}
    if "file_offset" in request.headers:
        headers["file_offset"] = request.headers["file_offset"]
    return LoggedRequest(
        request.method, VERSION_PREFIX.sub("", request.path), query, payload, len(body), headers
    )


def _scheme(request: web.Request) -> str | None:
    """The Authorization header's scheme, never its token (a bare token is "other")."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, space, _ = header.partition(" ")
    return {"bearer": "Bearer", "oauth": "OAuth"}.get(scheme.lower(), "other") if space else "other"
