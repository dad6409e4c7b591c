"""What a transition decides: its outcome, the new state, and the effects it has
besides (the state itself is `parley.state.Conversation`). No I/O."""

from enum import StrEnum

import msgspec

from parley.events import Attachment, Interactive, TemplateParameters
from parley.state import Conversation, Outcome


class ResolvedBy(StrEnum):
    AGENT = "agent"
    AUTO = "auto"


# Effects: what happened besides the new state; adapters write, count and send them.
class Opened(msgspec.Struct, frozen=True, tag=True):
    """A new cycle began (first contact, or a message on a resolved conversation)."""


class Assigned(msgspec.Struct, frozen=True, tag=True):
    user: str
    auto: bool


class Unassigned(msgspec.Struct, frozen=True, tag=True):
    user: str


class Returned(msgspec.Struct, frozen=True, tag=True):
    """The customer wrote to a Pending conversation held by `user` (it wakes to Open):
    the router releases it if `user` is offline."""

    user: str


class ReleaseReason(StrEnum):
    OFFLINE = "offline"  # the assignee went offline
    RETURNED = "returned"  # the customer wrote to the offline assignee's Pending one
    UNANSWERED = "unanswered"  # routed, and not answered within the channel's limit


class Released(msgspec.Struct, frozen=True, tag=True):
    """Taken from its assignee and put back in New, for the routing pool."""

    user: str
    why: ReleaseReason


class Resolved(msgspec.Struct, frozen=True, tag=True):
    by: ResolvedBy
    cycle_seconds: float  # from opened_at to the resolution, for reports


class FirstResponse(msgspec.Struct, frozen=True, tag=True):
    seconds: float  # from opened_at to the first agent reply of the cycle


class SendReply(msgspec.Struct, frozen=True, tag=True):
    """An agent's reply to deliver to the customer (the outbound sender's work)."""

    user: str
    text: str | None
    template: str | None
    language: str | None = None
    parameters: TemplateParameters | None = None
    attachment: Attachment | None = None
    interactive: Interactive | None = None
    reply_to: str | None = None


class TagAdded(msgspec.Struct, frozen=True, tag=True):
    tag: str


class TopicAdded(msgspec.Struct, frozen=True, tag=True):
    topic: str


class NoteAdded(msgspec.Struct, frozen=True, tag=True):
    user: str
    text: str
    at: float


class StatusReceived(msgspec.Struct, frozen=True, tag=True):
    """A delivery status; recorded only on a message we know, and never backwards."""

    wamid: str
    status: str
    error: str | None = None  # of a failed one: Meta's "<code> <title>"
    pricing: str | None = None  # "<category>/<type>"
    callback_data: str | None = None


class Reacted(msgspec.Struct, frozen=True, tag=True):
    """The customer's reaction on a message (None: taken back)."""

    target: str
    emoji: str | None


class Edited(msgspec.Struct, frozen=True, tag=True):
    target: str
    text: str | None


class Revoked(msgspec.Struct, frozen=True, tag=True):
    target: str


class IdentityChanged(msgspec.Struct, frozen=True, tag=True):
    """Meta told of a new number or BSUID; shown in the conversation as a system line."""

    reason: str
    text: str | None


class EchoSent(msgspec.Struct, frozen=True, tag=True):
    """The business answered from the WhatsApp Business app (coexistence)."""

    wamid: str
    kind: str
    text: str | None


class ReactionSent(msgspec.Struct, frozen=True, tag=True):
    """An agent's reaction to a message, for the customer ("" takes it back)."""

    target: str
    emoji: str


class ReadSent(msgspec.Struct, frozen=True, tag=True):
    """Mark the customer's message read (and show that an agent is typing)."""

    wamid: str
    typing: bool


class OutOfHoursReplied(msgspec.Struct, frozen=True, tag=True):
    """The channel's out-of-hours reply, for the customer who wrote outside its hours."""

    text: str | None
    template: str | None
    language: str | None


class SlaWarned(msgspec.Struct, frozen=True, tag=True):
    """An SLA target comes due soon (its warning lead)."""

    target: str
    due: float


class SlaBreached(msgspec.Struct, frozen=True, tag=True):
    """An SLA target passed without being met."""

    target: str
    due: float


class Snoozed(msgspec.Struct, frozen=True, tag=True):
    """Parked in Pending until `until`."""

    until: float


class Woke(msgspec.Struct, frozen=True, tag=True):
    """A snooze ended: on time (the timer), or early (the customer wrote)."""

    early: bool


Effect = (
    Opened
    | Assigned
    | Unassigned
    | Released
    | Returned
    | Resolved
    | FirstResponse
    | SendReply
    | TagAdded
    | TopicAdded
    | NoteAdded
    | StatusReceived
    | Reacted
    | Edited
    | Revoked
    | IdentityChanged
    | EchoSent
    | ReactionSent
    | ReadSent
    | Snoozed
    | Woke
    | OutOfHoursReplied
    | SlaWarned
    | SlaBreached
)


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """The result of a transition: the new state (None: still no conversation), what
    else happened, and why nothing did when the outcome is rejected or ignored."""

    outcome: Outcome
    state: Conversation | None
    effects: tuple[Effect, ...] = ()
    reason: str | None = None
