"""Who may do what on a channel: roles from grants, and the decision for one action."""

from assign.access import (
    PERMISSIONS,
    RANK,
    Action,
    ChannelAccess,
    Decision,
    User,
    allowed,
    decide,
    effective_role,
    visible_channels,
)

__all__ = [
    "PERMISSIONS",
    "RANK",
    "Action",
    "ChannelAccess",
    "Decision",
    "User",
    "allowed",
    "decide",
    "effective_role",
    "visible_channels",
]
