"""Channel access: who has which role on a channel, and what that role may do.

Facts in, decision out: the caller loads the user and the channel's grants, and these
functions answer without I/O, clock or environment, so the HTTP layer and the tests ask
the same question the same way.
"""

from collections.abc import Mapping
from enum import StrEnum

import msgspec

from parley.events import Role

# Role is declared lowest first in parley/events.py; this is the one place that turns
# that order into a rank, so "highest role" means the same thing everywhere.
RANK: dict[Role, int] = {role: rank for rank, role in enumerate(Role)}


class Action(StrEnum):
    """Something a user may try to do on a channel."""

    SEE = "see"  # the channel and its conversations
    MOVE = "move"  # a conversation to pending or resolved
    ANNOTATE = "annotate"  # tags, notes and topics
    ASSIGN = "assign"  # assign or unassign a conversation
    REPLY = "reply"
    REPORTS = "reports"
    MANAGE = "manage"  # channel settings and grants


_VIEWER = frozenset({Action.SEE, Action.MOVE, Action.ANNOTATE})
# ASSIGN sits with REPLY: an assignment hands a customer to someone who is expected to
# answer, and viewers cannot answer, so letting them hand out (or take) work would
# route conversations to people, or through people, with no way to reply.
_CONTRIBUTOR = _VIEWER | {Action.REPLY, Action.ASSIGN}
_SUPERVISOR = _CONTRIBUTOR | {Action.REPORTS}

PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.VIEWER: _VIEWER,
    Role.CONTRIBUTOR: _CONTRIBUTOR,
    Role.SUPERVISOR: _SUPERVISOR,
    Role.ADMIN: frozenset(Action),
}


class User(msgspec.Struct, frozen=True):
    """A user as access sees them: org admin or not, and the teams they belong to."""

    id: str
    admin: bool = False
    teams: frozenset[str] = frozenset()


class ChannelAccess(msgspec.Struct, frozen=True):
    """A channel's grants: per user, per team, and the two switches (None = off)."""

    channel: str
    user_grants: Mapping[str, Role] = msgspec.field(default_factory=dict)
    team_grants: Mapping[str, Role] = msgspec.field(default_factory=dict)
    all_users: Role | None = None  # "access for all users", with the role it gives
    all_teams: Role | None = None  # "access for all teams": any team member gets it


class AccessDecision(msgspec.Struct, frozen=True):
    """May the user do it, and with what role: no role means the channel is none of
    theirs (the API then answers as if it did not exist); a role without the right
    means they see it but may not do this."""

    allowed: bool
    role: Role | None


def effective_role(user: User, access: ChannelAccess) -> Role | None:
    """The highest role any grant gives `user` on the channel; None = no access."""
    if user.admin:
        return Role.ADMIN
    candidates = [
        access.user_grants.get(user.id),
        *(access.team_grants.get(team) for team in user.teams),
        access.all_users,
        # "All teams" is for team members: a user in no team is not covered by it.
        access.all_teams if user.teams else None,
    ]
    granted = [role for role in candidates if role is not None]
    return max(granted, key=RANK.__getitem__, default=None)


def allowed(role: Role | None, action: Action) -> bool:
    """Whether `role` may do `action`; no role may do nothing."""
    return role is not None and action in PERMISSIONS[role]


def decide(user: User, access: ChannelAccess, action: Action) -> AccessDecision:
    """Whether `user` may do `action` on the channel, and their role there."""
    role = effective_role(user, access)
    return AccessDecision(allowed=allowed(role, action), role=role)
