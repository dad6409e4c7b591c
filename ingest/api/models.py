"""What the /v1 API takes and gives: one struct per body, the source of both the
validation and the OpenAPI document's schemas."""

from enum import StrEnum
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

from parley.channels import WabaId
from store.reader import ConversationView

# User and team ids: what people type in a URL, up to 64 characters.
Id = Annotated[
    str,
    msgspec.Meta(
        # (?!\n): Python's `$` also matches before a final newline; JSON Schema's does not.
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$(?!\n)",
        description="letters, digits and . _ @ -, up to 64 characters",
    ),
]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
Label = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
Period = Annotated[
    str, msgspec.Meta(description='"90s", "15m", "12h", "30d" or "off"', max_length=16)
]
# A day (UTC); the API answers 400 for what is not a date, so the document says `date`.
Day = Annotated[
    str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$", extra_json_schema={"format": "date"})
]


class GrantRole(StrEnum):
    """The roles a grant can give on a channel (admins are admins everywhere)."""

    VIEWER = "viewer"
    CONTRIBUTOR = "contributor"
    SUPERVISOR = "supervisor"


class Body(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Request bodies refuse fields they do not know: a typo is an error, not a no-op."""


class NewUser(Body, frozen=True):
    id: Id
    name: Name
    admin: bool = False


class CreatedUser(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    admin: bool
    token: str  # shown once: only its digest is kept


class NewToken(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    token: str


class NewTeam(Body, frozen=True):
    id: Id
    name: Name


class Grant(Body, frozen=True):
    role: GrantRole


class Me(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    admin: bool
    teams: list[str]


class ChannelPatch(Body, frozen=True):
    """Only the fields present change. A switch set to null is off."""

    display_name: str | UnsetType = UNSET
    auto_assign: bool | UnsetType = UNSET
    auto_resolve_new: Period | UnsetType = UNSET
    auto_resolve_pending: Period | UnsetType = UNSET
    # Replies a second at most (per engine instance); null: no limit.
    send_rate: Annotated[int, msgspec.Meta(ge=1, le=10_000)] | UnsetType | None = UNSET
    # The WhatsApp Business Account the number belongs to, whose template webhooks change
    # this channel's templates; null: none (template webhooks change nothing here).
    waba_id: WabaId | UnsetType | None = UNSET
    all_users: GrantRole | UnsetType | None = UNSET
    all_teams: GrantRole | UnsetType | None = UNSET


class ChannelOut(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    display_name: str
    auto_assign: bool
    auto_resolve_new: str
    auto_resolve_pending: str
    send_rate: int | None
    waba_id: str | None  # the WhatsApp Business Account
    all_users: GrantRole | None
    all_teams: GrantRole | None
    role: str  # the caller's role on it: viewer, contributor, supervisor or admin


class ChannelList(msgspec.Struct, frozen=True, kw_only=True):
    channels: list[ChannelOut]


class AccessOut(msgspec.Struct, frozen=True, kw_only=True):
    channel: str
    users: dict[str, GrantRole]
    teams: dict[str, GrantRole]
    all_users: GrantRole | None
    all_teams: GrantRole | None


class Reply(Body, frozen=True):
    """Free-form text, or an approved template by name."""

    text: Text | None = None
    template: Label | None = None
    language: Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2,3}(_[A-Z]{2})?$(?!\n)")] | None = None


class MoveTo(Body, frozen=True):
    queue: Literal["pending", "resolved"]


class AssigneeBody(Body, frozen=True):
    user: Id


class TagBody(Body, frozen=True):
    tag: Label


class TopicBody(Body, frozen=True):
    topic: Label


class NoteBody(Body, frozen=True):
    text: Text


class Applied(msgspec.Struct, frozen=True, kw_only=True):
    """200: the engine decided the action within the wait."""

    event_id: str
    outcome: Literal["applied", "ignored"]
    reason: str | None  # why nothing changed, when ignored
    conversation: ConversationView


class Accepted(msgspec.Struct, frozen=True, kw_only=True):
    """202: on the conversation's partition, not decided yet; ask `status_url`."""

    event_id: str
    status: Literal["pending"] = "pending"
    status_url: str


class ActionStatus(msgspec.Struct, frozen=True, kw_only=True):
    event_id: str
    status: Literal["pending", "applied", "ignored", "rejected"]
    reason: str | None = None


class ListQuery(msgspec.Struct, frozen=True, kw_only=True):
    queue: Literal["new", "open", "pending", "resolved"] = "new"
    limit: Annotated[int, msgspec.Meta(ge=1, le=200)] = 50
    # oldest: least recent activity first (who has waited longest); newest: most recent
    order: Literal["oldest", "newest"] = "oldest"
    cursor: Annotated[str, msgspec.Meta(max_length=512)] | None = None


class ReportQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Days are UTC; `to` defaults to today and `from` to six days before `to`."""

    from_: Day | None = msgspec.field(default=None, name="from")
    to: Day | None = None


class ErrorDetail(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    message: str
    field: str | None = None


class ErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    error: ErrorDetail
