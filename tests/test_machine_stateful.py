"""Random event sequences through the machine, checked against a tiny reference model.

The reference below is written from docs/transitions.md with plain dicts and ifs; it
shares no code with engine/machine.py, so a bug has to be made twice to go unnoticed.
"""

from typing import Any

import msgspec
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from engine.machine import auto_resolve, transition
from engine.model import Decision, Resolved, ResolvedBy
from parley.channels import ChannelSettings
from parley.events import (
    Actor,
    AddNote,
    AddTag,
    AddTopic,
    AgentReply,
    Assign,
    CustomerMessage,
    Event,
    Identity,
    MessageStatus,
    Move,
    Payload,
    Role,
    Unassign,
)
from parley.state import Conversation, Outcome, Queue

USERS = st.sampled_from(["alice", "bob", "carol"])
PERIODS = st.sampled_from([None, 1, 60, 3600, 86400])
TEXTS = st.sampled_from(["vip", "billing", "", "  ", "\n"])
# Time mostly moves forward, but an event may carry a timestamp up to 100 s older than
# the previous one (Meta's clock against ours; Kafka order is what counts).
ADVANCE = st.integers(min_value=0, max_value=5000)
SKEW = st.integers(min_value=-100, max_value=0)
ACTOR = Actor("viewer", Role.VIEWER)


class Reference:
    """Queue, assignee and activity by the book; each method says whether anything changed."""

    def __init__(self) -> None:
        self.conv: dict[str, Any] | None = None

    def touch(self, at: float) -> bool:
        assert self.conv is not None
        self.conv["activity"] = max(self.conv["activity"], at)
        return True

    def open_cycle(self, at: float) -> None:
        previous = self.conv["activity"] if self.conv else at
        self.conv = {"queue": "new", "assignee": None, "activity": max(previous, at)}

    def customer(self, at: float) -> bool:
        if self.conv is None or self.conv["queue"] == "resolved":
            self.open_cycle(at)
            return True
        if self.conv["queue"] == "pending":
            self.conv["queue"] = "open" if self.conv["assignee"] else "new"
        return self.touch(at)

    def status(self, at: float) -> bool:
        # Applied, but a receipt is not activity.
        return self.conv is not None

    def reply(self, user: str, has_content: bool, auto_assign: bool, at: float) -> bool:
        if not has_content:
            return False
        if self.conv is None or self.conv["queue"] == "resolved":
            self.open_cycle(at)
        assert self.conv is not None
        self.touch(at)
        if auto_assign and self.conv["assignee"] is None:
            self.conv["assignee"] = user
            if self.conv["queue"] == "new":
                self.conv["queue"] = "open"
        return True

    def move(self, target: str, at: float) -> bool:
        if self.conv is None or target not in ("pending", "resolved"):
            return False
        if self.conv["queue"] in (target, "resolved"):
            return False
        self.conv["queue"] = target
        if target == "resolved":
            self.conv["assignee"] = None
        return self.touch(at)

    def assign(self, user: str, at: float) -> bool:
        if self.conv is None or self.conv["queue"] == "resolved":
            return False
        if self.conv["assignee"] == user:
            return False
        self.conv["assignee"] = user
        if self.conv["queue"] == "new":
            self.conv["queue"] = "open"
        return self.touch(at)

    def unassign(self, at: float) -> bool:
        if self.conv is None or self.conv["assignee"] is None:
            return False
        self.conv["assignee"] = None
        if self.conv["queue"] == "open":
            self.conv["queue"] = "new"
        return self.touch(at)

    def annotate(self, text: str, at: float) -> bool:
        return self.conv is not None and text.strip() != "" and self.touch(at)

    def sweep(self, periods: dict[str, int | None], now: float) -> bool:
        if self.conv is None or self.conv["queue"] not in periods:
            return False
        period = periods[self.conv["queue"]]
        # The sweeper's own comparison (activity <= now - period).
        if period is None or self.conv["activity"] > now - period:
            return False
        self.conv["queue"] = "resolved"
        self.conv["assignee"] = None
        return True


class ConversationMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state: Conversation | None = None
        self.reference = Reference()
        self.clock = 1_700_000_000.0
        self.activity_seen = float("-inf")
        self.settings = ChannelSettings(display_name="EU")

    @initialize(auto_assign=st.booleans(), new_period=PERIODS, pending_period=PERIODS)
    def configure(
        self, auto_assign: bool, new_period: int | None, pending_period: int | None
    ) -> None:
        self.change_settings(auto_assign, new_period, pending_period)

    @rule(auto_assign=st.booleans(), new_period=PERIODS, pending_period=PERIODS)
    def change_settings(
        self, auto_assign: bool, new_period: int | None, pending_period: int | None
    ) -> None:
        self.settings = ChannelSettings(
            display_name="EU",
            auto_assign=auto_assign,
            auto_resolve_new_s=new_period,
            auto_resolve_pending_s=pending_period,
        )

    def tick(self, advance: int, skew: int) -> float:
        self.clock += advance
        return self.clock + skew

    def send(self, payload: Payload, at: float, changed: bool) -> Decision:
        event = Event(
            id=f"e{at}",
            channel="106540352242922",
            identity=Identity(phone="31612345678"),
            occurred_at=at,
            received_at=self.clock,
            payload=payload,
        )
        return self.check(transition(self.state, event, self.settings, self.clock), changed)

    def check(self, decision: Decision, changed: bool) -> Decision:
        assert decision.outcome is not Outcome.DUPLICATE
        assert (decision.outcome is Outcome.APPLIED) is changed, decision
        if decision.outcome is Outcome.APPLIED:
            assert decision.state is not None
            version = self.state.version if self.state else 0
            assert decision.state.version == version  # bumping is the adapter's job
            self.state = msgspec.structs.replace(decision.state, version=version + 1)
        else:
            assert decision.state == self.state
            assert decision.effects == ()
            assert decision.reason
        return decision

    @rule(advance=ADVANCE, skew=SKEW)
    def customer_message(self, advance: int, skew: int) -> None:
        at = self.tick(advance, skew)
        changed = self.reference.customer(at)
        self.send(CustomerMessage(wamid=f"wamid.{at}", type="text", text="hi"), at, changed)

    @rule(advance=ADVANCE, skew=SKEW, status=st.sampled_from(["sent", "delivered", "read"]))
    def message_status(self, advance: int, skew: int, status: str) -> None:
        at = self.tick(advance, skew)
        changed = self.reference.status(at)
        self.send(MessageStatus(wamid="wamid.out", status=status), at, changed)

    @rule(
        advance=ADVANCE,
        skew=SKEW,
        user=USERS,
        text=st.sampled_from([None, "", " ", "hello"]),
        template=st.sampled_from([None, "order_update"]),
    )
    def reply(
        self, advance: int, skew: int, user: str, text: str | None, template: str | None
    ) -> None:
        at = self.tick(advance, skew)
        has_content = bool(template) or bool(text and text.strip())
        changed = self.reference.reply(user, has_content, self.settings.auto_assign, at)
        actor = Actor(user, Role.CONTRIBUTOR)
        self.send(AgentReply(actor=actor, text=text, template=template), at, changed)

    @rule(
        advance=ADVANCE,
        skew=SKEW,
        queue=st.sampled_from(["pending", "resolved", "new", "open", "closed"]),
    )
    def move(self, advance: int, skew: int, queue: str) -> None:
        at = self.tick(advance, skew)
        changed = self.reference.move(queue, at)
        decision = self.send(Move(actor=ACTOR, queue=queue), at, changed)
        resolved = [e for e in decision.effects if isinstance(e, Resolved)]
        assert len(resolved) == (1 if changed and queue == "resolved" else 0)

    @rule(advance=ADVANCE, skew=SKEW, user=USERS)
    def assign(self, advance: int, skew: int, user: str) -> None:
        at = self.tick(advance, skew)
        changed = self.reference.assign(user, at)
        self.send(Assign(actor=ACTOR, assignee=user), at, changed)

    @rule(advance=ADVANCE, skew=SKEW)
    def unassign(self, advance: int, skew: int) -> None:
        at = self.tick(advance, skew)
        changed = self.reference.unassign(at)
        self.send(Unassign(actor=ACTOR), at, changed)

    @rule(advance=ADVANCE, skew=SKEW, kind=st.sampled_from(["tag", "note", "topic"]), text=TEXTS)
    def annotate(self, advance: int, skew: int, kind: str, text: str) -> None:
        at = self.tick(advance, skew)
        changed = self.reference.annotate(text, at)
        payload: Payload
        if kind == "tag":
            payload = AddTag(actor=ACTOR, tag=text)
        elif kind == "note":
            payload = AddNote(actor=ACTOR, text=text)
        else:
            payload = AddTopic(actor=ACTOR, topic=text)
        self.send(payload, at, changed)

    @rule(advance=st.integers(min_value=0, max_value=100_000))
    def sweep(self, advance: int) -> None:
        self.clock += advance
        self.sweep_now()

    @rule(offset=st.sampled_from([-1, 0, 1]))
    def sweep_around_the_deadline(self, offset: int) -> None:
        # Random sweeps rarely land on the exact second a conversation becomes due.
        if self.state is None:
            return
        period = {
            Queue.NEW: self.settings.auto_resolve_new_s,
            Queue.PENDING: self.settings.auto_resolve_pending_s,
        }.get(self.state.queue)
        if period is not None:
            self.clock = max(self.clock, self.state.last_activity_at + period + offset)
        self.sweep_now()

    def sweep_now(self) -> None:
        periods = {
            "new": self.settings.auto_resolve_new_s,
            "pending": self.settings.auto_resolve_pending_s,
        }
        changed = self.reference.sweep(periods, self.clock)
        decision = self.check(auto_resolve(self.state, self.settings, self.clock), changed)
        if changed:
            assert self.state is not None
            cycle = self.clock - self.state.opened_at
            assert decision.effects[-1] == Resolved(ResolvedBy.AUTO, cycle)

    @invariant()
    def matches_the_reference(self) -> None:
        expected = self.reference.conv
        if self.state is None:
            assert expected is None
            return
        assert expected is not None
        assert self.state.queue.value == expected["queue"]
        assert self.state.assignee == expected["assignee"]
        assert self.state.last_activity_at == expected["activity"]

    @invariant()
    def queue_and_assignee_agree(self) -> None:
        if self.state is None:
            return
        if self.state.queue in (Queue.NEW, Queue.RESOLVED):
            assert self.state.assignee is None
        if self.state.queue is Queue.OPEN:
            assert self.state.assignee is not None

    @invariant()
    def times_are_ordered(self) -> None:
        if self.state is None:
            return
        assert self.state.last_activity_at >= self.activity_seen
        self.activity_seen = self.state.last_activity_at
        assert self.state.opened_at <= self.state.last_activity_at


ConversationMachine.TestCase.settings = settings(
    max_examples=200, stateful_step_count=40, deadline=None, database=None
)
TestConversationMachine = ConversationMachine.TestCase
