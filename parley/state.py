"""A conversation's state and the queues: the model the engine decides on, the store
keeps and the API shows. No I/O."""

from enum import StrEnum

import msgspec

from parley.events import Identity
from parley.sla import Deadline


class Queue(StrEnum):
    NEW = "new"  # nobody has taken it; never has an assignee
    OPEN = "open"  # assigned and being handled; always has an assignee
    PENDING = "pending"  # waiting, e.g. on the customer; may have an assignee
    RESOLVED = "resolved"  # done; never has an assignee


# Queues whose conversations carry an auto-resolve deadline (last activity + the
# channel's period for that queue).
AUTO_RESOLVE_QUEUES = frozenset({Queue.NEW, Queue.PENDING})


class Outcome(StrEnum):
    APPLIED = "applied"  # the state or its annotations changed
    DUPLICATE = "duplicate"  # this event id was applied before; nothing changed
    REJECTED = "rejected"  # not allowed in this state (e.g. assigning a resolved one)
    IGNORED = "ignored"  # nothing to do (e.g. a status for an unknown conversation)


class Conversation(msgspec.Struct, frozen=True, kw_only=True):
    """One customer's conversation on one channel, in its current cycle, and what is
    known of the customer (their record: identifiers, name, preferences).

    A cycle starts when a customer (or an agent) writes on no conversation or a resolved
    one; `opened_at` is its start. Times are Unix seconds. `version` is bumped by every
    write and is the compare-and-set token between the engine and the sweeper.
    """

    queue: Queue
    assignee: str | None = None
    last_activity_at: float
    opened_at: float
    last_customer_at: float | None = None
    first_response_at: float | None = None
    version: int = 0
    customer: Identity = Identity()
    marketing: str | None = None  # "stop" once the customer stopped marketing messages
    last_inbound: str | None = None  # the wamid of the customer's last message
    read: str | None = None  # the last inbound wamid marked read for the customer
    # Parked in Pending until then (an agent's snooze); it wakes to New or Open then, or
    # earlier when the customer writes.
    snoozed_until: float | None = None
    # This cycle's customer was sent the channel's out-of-hours reply (once a cycle).
    out_of_hours_replied: bool = False
    # The SLA targets running in this cycle, at most one of each (parley/sla.py).
    sla: tuple[Deadline, ...] = ()
    # Handed to its assignee by routing at this time, and not answered by them since.
    handed_at: float | None = None
    # ...and at this time it goes to the next agent (routing.reassign_after_s).
    reassign_at: float | None = None
    # The agent who let it go unanswered: routed to someone else first.
    passed_over: str | None = None

    @property
    def queue_score(self) -> float:
        """What its queue set scores it by: the last activity, or a snooze's end when
        later (a sleeping conversation is never found due for auto-resolve: its timer
        wakes it first)."""
        if self.snoozed_until is None:
            return self.last_activity_at
        return max(self.last_activity_at, self.snoozed_until)
