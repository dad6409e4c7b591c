"""Who may do what on a channel: roles from grants, and the decision for one action."""

from assign.access import (
    PERMISSIONS,
    RANK,
    AccessDecision,
    Action,
    ChannelAccess,
    User,
    allowed,
    decide,
    effective_role,
)

__all__ = [
    "PERMISSIONS",
    "RANK",
    "AccessDecision",
    "Action",
    "ChannelAccess",
    "User",
    "allowed",
    "decide",
    "effective_role",
]
