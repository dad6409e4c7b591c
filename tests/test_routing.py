"""Routing's pure parts: the plan (hypothesis: never over capacity, never to someone
offline or without a reply role, nobody waiting while an eligible agent has room, least
loaded first, oldest first) and the machine's route and release rules, with injected time."""

from collections import Counter

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.machine import fire_timers, next_due, release, route, transition
from engine.model import Assigned, Released, ReleaseReason, Returned, Unassigned
from parley.channels import ChannelSettings
from parley.events import Actor, AgentReply, CustomerMessage, Echo, Event, Move, Payload, Role
from parley.routing import Agent, RoutingSettings, Waiting, plan, problems
from parley.state import Conversation, Outcome, Queue
from tests import factory as f

T0 = 1_790_000_000.0
ROUTED = ChannelSettings(display_name="Support", routing=RoutingSettings(capacity=2))
REASSIGNING = ChannelSettings(
    display_name="Support", routing=RoutingSettings(capacity=2, reassign_after_s=300)
)
EVERYTHING = ChannelSettings(
    display_name="Support", routing=RoutingSettings(release_all_when_offline=True)
)
CH, WA = "15550001111", "15551230000"


def at(payload: Payload, when: float) -> Event:
    return f.event(CH, WA, payload, when)


def actor(user: str) -> Actor:
    return Actor(user, Role.CONTRIBUTOR)


NEW = Conversation(queue=Queue.NEW, opened_at=T0, last_activity_at=T0, last_customer_at=T0)

agents = st.builds(
    Agent,
    id=st.sampled_from([f"agent{i}" for i in range(8)]),
    online=st.booleans(),
    can_reply=st.booleans(),
    load=st.integers(0, 6),
    capacity=st.integers(1, 6),
    total_load=st.integers(0, 12),
    total_capacity=st.none() | st.integers(0, 12),
    idle_since=st.floats(0, 1e6),
).map(lambda a: msgspec.structs.replace(a, total_load=max(a.total_load, a.load)))
teams = st.lists(agents, max_size=8, unique_by=lambda a: a.id)
waiting = st.lists(
    st.builds(
        Waiting,
        customer=st.text("0123456789", min_size=1, max_size=6),
        since=st.floats(0, 1e6),
        passed_over=st.none() | st.sampled_from([f"agent{i}" for i in range(8)]),
    ),
    max_size=40,
    unique_by=lambda w: w.customer,
)


@given(waiting, teams)
def test_never_over_capacity_and_only_to_eligible_agents(
    pool: list[Waiting], team: list[Agent]
) -> None:
    routes = plan(pool, team)
    handed = Counter(step.agent for step in routes)
    by_id = {agent.id: agent for agent in team}
    for agent_id, count in handed.items():
        agent = by_id[agent_id]
        assert agent.online and agent.can_reply
        assert agent.load + count <= agent.capacity
        if agent.total_capacity is not None:
            assert agent.total_load + count <= agent.total_capacity
    assert len({step.customer for step in routes}) == len(routes)  # each at most once


@given(waiting, teams)
def test_nobody_waits_while_an_eligible_agent_has_room(
    pool: list[Waiting], team: list[Agent]
) -> None:
    routes = plan(pool, team)
    handed = Counter(step.agent for step in routes)
    room_left = sum(agent.room - handed[agent.id] for agent in team)
    assert len(routes) == len(pool) or room_left == 0


@given(waiting, teams)
def test_the_oldest_are_served_first(pool: list[Waiting], team: list[Agent]) -> None:
    routes = plan(pool, team)
    oldest = sorted(pool, key=lambda w: (w.since, w.customer))[: len(routes)]
    assert [step.customer for step in routes] == [w.customer for w in oldest]


@given(waiting, teams)
def test_each_goes_to_the_least_loaded_with_room(pool: list[Waiting], team: list[Agent]) -> None:
    """Replaying the plan: every conversation went to an agent whose overall load was
    the lowest among those with room, unless that was the one who let it go."""
    routes = plan(pool, team)
    room = {agent.id: agent.room for agent in team}
    load = {agent.id: agent.total_load for agent in team}
    passed = {w.customer: w.passed_over for w in pool}
    for step in routes:
        candidates = [a for a, r in room.items() if r > 0]
        others = [a for a in candidates if a != passed[step.customer]] or candidates
        assert load[step.agent] == min(load[a] for a in others)
        room[step.agent] -= 1
        load[step.agent] += 1


@given(st.integers(1, 30), st.integers(1, 200), st.integers(1, 8))
def test_equally_available_agents_stay_within_one_of_even(
    agents_count: int, waiting_count: int, capacity: int
) -> None:
    team = [
        Agent(
            id=f"a{i:02d}",
            online=True,
            can_reply=True,
            load=0,
            capacity=capacity,
            total_load=0,
            total_capacity=None,
            idle_since=0.0,
        )
        for i in range(agents_count)
    ]
    pool = [Waiting(customer=str(i), since=float(i)) for i in range(waiting_count)]
    handed = Counter(step.agent for step in plan(pool, team))
    loads = [handed[agent.id] for agent in team]
    assert max(loads) - min(loads) <= 1
    assert sum(loads) == min(waiting_count, agents_count * capacity)


def test_a_tie_in_load_goes_to_the_longest_idle() -> None:
    team = [
        Agent(id="ana", online=True, can_reply=True, load=1, capacity=5, total_load=1,
              total_capacity=None, idle_since=T0),
        Agent(id="bo", online=True, can_reply=True, load=1, capacity=5, total_load=1,
              total_capacity=None, idle_since=T0 - 600),
        Agent(id="cy", online=True, can_reply=True, load=2, capacity=5, total_load=2,
              total_capacity=None, idle_since=0.0),
    ]  # fmt: skip
    routes = plan([Waiting(customer="1", since=T0)], team)
    assert routes[0].agent == "bo"


def test_the_agent_who_let_it_go_gets_it_back_only_when_nobody_else_has_room() -> None:
    def agent(name: str, load: int) -> Agent:
        return Agent(id=name, online=True, can_reply=True, load=load, capacity=2,
                     total_load=load, total_capacity=None, idle_since=0.0)  # fmt: skip

    conversation = Waiting(customer="1", since=T0, passed_over="ana")
    assert plan([conversation], [agent("ana", 0), agent("bo", 1)])[0].agent == "bo"
    assert plan([conversation], [agent("ana", 0), agent("bo", 2)])[0].agent == "ana"


def test_the_overall_capacity_bounds_every_channel() -> None:
    busy = Agent(id="ana", online=True, can_reply=True, load=0, capacity=5, total_load=3,
                 total_capacity=3, idle_since=0.0)  # fmt: skip
    assert busy.room == 0
    assert plan([Waiting(customer="1", since=T0)], [busy]) == []


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        (RoutingSettings(capacity=0), "capacity"),
        (RoutingSettings(capacity=1001), "capacity"),
        (RoutingSettings(reassign_after_s=0), "reassign_after_s"),
        (RoutingSettings(reassign_after_s=8 * 86400), "reassign_after_s"),
    ],
)
def test_settings_out_of_range_are_named(settings: RoutingSettings, field: str) -> None:
    assert [name for name, _ in problems(settings)] == [field]


# The machine's rules (docs/transitions.md, "Routing").


def test_routing_hands_a_new_conversation_over_unanswered() -> None:
    decision = route(NEW, "ana", REASSIGNING, T0 + 5)
    assert decision.outcome is Outcome.APPLIED
    assert decision.effects == (Assigned("ana", auto=True),)
    state = decision.state
    assert state is not None
    assert (state.queue, state.assignee, state.handed_at) == (Queue.OPEN, "ana", T0 + 5)
    assert state.reassign_at == T0 + 305
    assert next_due(state) == T0 + 305
    assert state.last_activity_at == T0  # nobody acted


def test_without_a_reassign_limit_there_is_no_timer() -> None:
    state = route(NEW, "ana", ROUTED, T0 + 5).state
    assert state is not None and state.reassign_at is None and next_due(state) is None


@pytest.mark.parametrize("queue", [Queue.OPEN, Queue.PENDING, Queue.RESOLVED])
def test_only_waiting_conversations_are_routed(queue: Queue) -> None:
    state = msgspec.structs.replace(
        NEW, queue=queue, assignee="bo" if queue != "resolved" else None
    )
    assert route(state, "ana", ROUTED, T0).outcome is Outcome.IGNORED


def test_unanswered_past_the_limit_goes_to_the_next_agent() -> None:
    routed = route(NEW, "ana", REASSIGNING, T0).state
    assert fire_timers(routed, REASSIGNING, T0 + 299).outcome is Outcome.IGNORED
    decision = fire_timers(routed, REASSIGNING, T0 + 300)
    assert decision.effects == (Unassigned("ana"), Released("ana", ReleaseReason.UNANSWERED))
    state = decision.state
    assert state is not None
    assert (state.queue, state.assignee, state.passed_over) == (Queue.NEW, None, "ana")
    assert (state.handed_at, state.reassign_at, next_due(state)) == (None, None, None)


@pytest.mark.parametrize(
    "payload",
    [
        AgentReply(actor=actor("bo"), text="On it"),
        Echo(wamid="wamid.echo", type="text", text="From the phone"),
        Move(actor=actor("ana"), queue="pending"),
    ],
)
def test_an_answer_or_a_move_stops_the_reassign_timer(payload: Payload) -> None:
    routed = route(NEW, "ana", REASSIGNING, T0).state
    decision = transition(routed, at(payload, T0 + 60), REASSIGNING, T0 + 60)
    state = decision.state
    assert state is not None
    assert (state.handed_at, state.reassign_at) == (None, None)
    assert fire_timers(state, REASSIGNING, T0 + 400).outcome is Outcome.IGNORED


def test_a_customer_writing_again_keeps_the_timer() -> None:
    routed = route(NEW, "ana", REASSIGNING, T0).state
    message = CustomerMessage(wamid="wamid.2", type="text", text="Hello?")
    state = transition(routed, at(message, T0 + 60), REASSIGNING, T0 + 60).state
    assert state is not None and state.reassign_at == T0 + 300


def test_going_offline_releases_only_what_was_not_answered() -> None:
    routed = route(NEW, "ana", ROUTED, T0).state
    decision = release(routed, "ana", ReleaseReason.OFFLINE, ROUTED)
    assert decision.effects == (Unassigned("ana"), Released("ana", ReleaseReason.OFFLINE))
    assert decision.state is not None and decision.state.queue is Queue.NEW
    reply = AgentReply(actor=actor("ana"), text="Hi")
    answered = transition(routed, at(reply, T0 + 5), ROUTED, T0 + 5).state
    assert answered is not None
    assert release(answered, "ana", ReleaseReason.OFFLINE, ROUTED).outcome is Outcome.IGNORED
    pending = msgspec.structs.replace(answered, queue=Queue.PENDING)
    assert release(pending, "ana", ReleaseReason.OFFLINE, ROUTED).outcome is Outcome.IGNORED


def test_a_channel_may_release_everything_an_offline_agent_holds() -> None:
    answered = msgspec.structs.replace(NEW, queue=Queue.OPEN, assignee="ana")
    opened = release(answered, "ana", ReleaseReason.OFFLINE, EVERYTHING).state
    assert opened is not None and (opened.queue, opened.assignee) == (Queue.NEW, None)
    pending = msgspec.structs.replace(answered, queue=Queue.PENDING)
    kept = release(pending, "ana", ReleaseReason.OFFLINE, EVERYTHING).state
    assert kept is not None and (kept.queue, kept.assignee) == (Queue.PENDING, None)


def test_a_release_for_someone_else_changes_nothing() -> None:
    routed = route(NEW, "ana", ROUTED, T0).state
    assert release(routed, "bo", ReleaseReason.OFFLINE, ROUTED).outcome is Outcome.IGNORED
    assert release(None, "bo", ReleaseReason.OFFLINE, ROUTED).outcome is Outcome.IGNORED


def test_the_customer_back_on_a_held_pending_one_is_returned_on_routing_channels() -> None:
    pending = msgspec.structs.replace(NEW, queue=Queue.PENDING, assignee="ana")
    message = CustomerMessage(wamid="wamid.2", type="text", text="Still there?")
    routed = transition(pending, at(message, T0 + 60), ROUTED, T0 + 60)
    assert routed.effects == (Returned("ana"),)
    plain = ChannelSettings(display_name="Support")
    assert transition(pending, at(message, T0 + 60), plain, T0 + 60).effects == ()
    woken = routed.state
    decision = release(woken, "ana", ReleaseReason.RETURNED, ROUTED)
    assert decision.state is not None
    assert (decision.state.queue, decision.state.assignee) == (Queue.NEW, None)
    assert decision.effects[-1] == Released("ana", ReleaseReason.RETURNED)


@pytest.mark.parametrize("now_off", [ROUTED, ChannelSettings(display_name="Support")])
def test_a_reassign_timer_of_a_channel_no_longer_reassigning_keeps_the_assignee(
    now_off: ChannelSettings,
) -> None:
    routed = route(NEW, "ana", REASSIGNING, T0).state
    decision = fire_timers(routed, now_off, T0 + 300)
    assert decision.effects == ()
    state = decision.state
    assert state is not None
    assert (state.queue, state.assignee, state.reassign_at, next_due(state)) == (
        Queue.OPEN, "ana", None, None,
    )  # fmt: skip
