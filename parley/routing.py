"""Capacity routing: which waiting conversations go to which agents. Pure: no clock, no I/O.

A channel in routing mode hands each conversation waiting in New to an online agent who
may reply on it and has room under their capacity (concurrent Open conversations on the
channel, and overall across channels), least loaded first, longest idle on a tie (then
by id, so a plan is the same every time). Conversations are served oldest first; an
agent who let a conversation go unanswered gets it back only when nobody else has room.
"""

import heapq
from collections.abc import Iterable, Sequence

import msgspec

MAX_CAPACITY = 1000
MAX_REASSIGN_S = 7 * 86400


class RoutingSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A channel's routing (None on the channel: assignment on reply only)."""

    # Open conversations an agent holds on this channel at most.
    capacity: int = 5
    # An assignee who has not answered within this long loses the conversation to the
    # next agent (None: never).
    reassign_after_s: int | None = None
    # An agent going offline releases only the conversations they have not answered yet;
    # with this on, their Open and Pending ones too.
    release_all_when_offline: bool = False


def problems(settings: RoutingSettings) -> list[tuple[str, str]]:
    """(field, problem) for what does not fit."""
    found = []
    if not 1 <= settings.capacity <= MAX_CAPACITY:
        found.append(("capacity", f"must be 1 to {MAX_CAPACITY}"))
    after = settings.reassign_after_s
    if after is not None and not 1 <= after <= MAX_REASSIGN_S:
        found.append(("reassign_after_s", f"must be 1 to {MAX_REASSIGN_S} seconds"))
    return found


class Agent(msgspec.Struct, frozen=True, kw_only=True):
    """Someone who might be handed a conversation on the channel being routed."""

    id: str
    online: bool
    can_reply: bool  # their role on the channel lets them answer
    load: int  # Open conversations on this channel
    capacity: int  # the channel's capacity
    total_load: int  # Open conversations on every channel
    total_capacity: int | None  # their own limit across channels (None: none)
    idle_since: float  # when they were last handed a conversation (0: never)

    @property
    def room(self) -> int:
        """How many more conversations they may be handed now."""
        if not (self.online and self.can_reply):
            return 0
        room = self.capacity - self.load
        if self.total_capacity is not None:
            room = min(room, self.total_capacity - self.total_load)
        return max(0, room)


class Waiting(msgspec.Struct, frozen=True, kw_only=True):
    customer: str
    since: float  # when its cycle opened: served oldest first
    passed_over: str | None = None  # the agent who let it go unanswered


class Route(msgspec.Struct, frozen=True):
    customer: str
    agent: str


def plan(waiting: Iterable[Waiting], agents: Sequence[Agent]) -> list[Route]:
    """Who gets which conversation: `waiting` oldest first, each to the eligible agent
    with room who is least loaded (overall), then longest idle, then first by id. Stops
    when nobody has room. O((w + a) log a)."""
    room = {agent.id: agent.room for agent in agents}
    heap = [
        (agent.total_load, agent.idle_since, agent.id) for agent in agents if room[agent.id] > 0
    ]
    heapq.heapify(heap)
    routes: list[Route] = []
    for conversation in sorted(waiting, key=lambda w: (w.since, w.customer)):
        if not heap:
            break
        best = heapq.heappop(heap)
        if best[2] == conversation.passed_over and heap:
            # Someone else first; the one who let it go keeps their place.
            best, skipped = heapq.heappop(heap), best
            heapq.heappush(heap, skipped)
        load, _, agent = best
        routes.append(Route(conversation.customer, agent))
        room[agent] -= 1
        if room[agent] > 0:
            # Just handed one: idle since now, behind everyone at the same load.
            heapq.heappush(heap, (load + 1, float("inf"), agent))
    return routes
