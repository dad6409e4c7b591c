"""The router: hands waiting conversations to agents with room, and takes them back from
agents who went offline. Every engine runs one; a lease lets one decide at a time.

Event-driven: a pass runs when something it depends on changed (a conversation entered
New or left Open, told by this engine's consumer and sweeper; an availability, a
capacity or a channel's routing, told by any process over Redis pub/sub), coalescing
what arrives while a pass runs, and at least every `interval_s` in case a wake-up was
lost (an engine that died between applying and telling).

A pass per channel, in this order:
1. **returned**: the customers who wrote to a Pending conversation with an assignee; one
   whose assignee is offline is released to New (`machine.release`, RETURNED);
2. (routing channels) **offline**: the conversations held by offline agents that the
   channel says to release (OFFLINE);
3. (routing channels) **route**: the pool's oldest conversations, as many as there is
   room, planned by `parley.routing.plan` and applied by `machine.route`.
Each decision goes through the one apply path (engine/settle.py) on the version it was
decided on, so it is exactly-once like every other change.
"""

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from assign import Action, User, decide
from engine.applier import Applied
from engine.machine import release, route
from engine.model import Decision, Released, ReleaseReason, Returned, Unassigned
from engine.settle import settle, versioned
from metrics import EngineMetrics
from parley.channels import ChannelSettings
from parley.redis import RedisClient
from parley.routing import Agent, RoutingSettings, Waiting, plan
from parley.state import Conversation, Outcome, Queue
from store.channels import channel_ids, settings_of
from store.conversations import ConversationStore
from store.directory import Directory
from store.presence import Availability, PresenceStore
from store.routing import EVERY_CHANNEL, RoutingStore, RoutingView

log = logging.getLogger(__name__)
ROUTE, RELEASE = "route", "release"  # the kinds of the router's changes on the feed
route_id = versioned(ROUTE)
release_id = versioned(RELEASE)
LEASE_S = 30.0  # longer than any pass; a crashed holder's lease lapses by itself
LEASE_RETRY_S = 0.02
# Users and grants change rarely, and reading them costs the most of a pass: they are
# read again once this old (so a new agent is routed to within it).
ROSTER_TTL_S = 5.0


class Router:
    def __init__(
        self,
        client: RedisClient,
        store: ConversationStore,
        metrics: EngineMetrics,
        clock: Callable[[], float],
    ) -> None:
        self._client = client
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._routing = RoutingStore(client)
        self._directory = Directory(client)
        self._presence = PresenceStore(client)
        self._dirty: set[str] = set()
        self._woken = asyncio.Event()
        self._routing_channels: set[str] = set()  # as of the last pass
        # Who may answer on each routing channel, and when that was read (monotonic).
        self._repliers: dict[str, list[str]] = {}
        self._roster_read_at = -ROSTER_TTL_S

    def wake(self, channel: str = EVERY_CHANNEL) -> None:
        """Something `channel`'s routing depends on changed: pass over it soon."""
        self._dirty.add(channel)
        self._woken.set()

    def changed(self, channel: str) -> None:
        """This engine changed conversations on `channel` (its consumer, its sweeper): a
        wake-up only if the channel routes, as of the last pass (one switched on since
        was told by the API, whose wake-up is never filtered). Without this every batch
        of every channel would cost a pass."""
        if channel in self._routing_channels:
            self.wake(channel)

    async def run(self, stopping: asyncio.Event, interval_s: float) -> None:
        """Pass whenever woken, and over every channel at least every `interval_s`."""
        self.wake()
        while not stopping.is_set():
            woken = asyncio.ensure_future(self._woken.wait())
            stop = asyncio.ensure_future(stopping.wait())
            await asyncio.wait({woken, stop}, timeout=interval_s, return_when="FIRST_COMPLETED")
            woken.cancel()
            stop.cancel()
            if stopping.is_set():
                return
            if not self._woken.is_set():
                self._dirty.add(EVERY_CHANNEL)  # the interval passed: a full pass
            try:
                await self._woken_pass()
            except Exception as error:
                log.warning("routing pass failed", extra={"error": type(error).__name__})
                self.wake()
                await asyncio.sleep(1.0)

    async def run_once(self, channels: Iterable[str] | None = None) -> int:
        """One pass over `channels` as if the consumer had woken the router for them
        (None: every channel, as an availability change or the interval does); the
        number of changes."""
        for channel in [EVERY_CHANNEL] if channels is None else channels:
            self.wake(channel)
        return await self._woken_pass()

    async def _woken_pass(self) -> int:
        """One pass over the channels woken since the last; the number of changes."""
        token = await self._routing.lease(LEASE_S)
        while token is None:  # another engine is deciding: ours comes after it
            await asyncio.sleep(LEASE_RETRY_S)
            token = await self._routing.lease(LEASE_S)
        self._woken.clear()
        dirty, self._dirty = self._dirty, set()
        started = time.perf_counter()
        try:
            return await self._pass(dirty)
        except BaseException:
            self._dirty |= dirty  # not done: the next pass takes them again
            raise
        finally:
            await self._routing.give_back(token)
            self._metrics.routing_seconds.observe(time.perf_counter() - started)

    async def _pass(self, dirty: set[str]) -> int:
        now = self._clock()
        every = await channel_ids(self._client)
        channels = every if EVERY_CHANNEL in dirty else sorted(dirty & set(every))
        found = await settings_of(self._client, channels)
        settings = {c: s for c, s in zip(channels, found, strict=True) if s is not None}
        routed = [channel for channel, s in settings.items() if s.routing is not None]
        if EVERY_CHANNEL in dirty:
            self._routing_channels = set(routed)
        else:
            self._routing_channels = (self._routing_channels - set(settings)) | set(routed)
        if not routed:
            return 0  # nothing routes here: nothing to hand out, release or look at
        roster = await self._roster(routed)
        # Availability changes wake every channel: only such a pass (or the interval's)
        # looks for what offline agents hold.
        full = EVERY_CHANNEL in dirty
        view = await self._routing.view(
            every=every,
            routed=routed,
            held=routed if full else [],
            returned=routed,
        )
        team = _Team(roster, view)
        changed = 0
        for channel in routed:
            channel_settings = settings[channel]
            changed += await self._returned(channel, channel_settings, team, now)
            changed += await self._offline(channel, channel_settings, team, now)
            changed += await self._route(channel, channel_settings, team, now)
        return changed

    async def _roster(self, channels: list[str]) -> dict[str, list[str]]:
        """Who may answer on each channel (their role lets them reply), read again once
        ROSTER_TTL_S old: a new user or grant is routed to within that."""
        fresh = time.monotonic() - self._roster_read_at < ROSTER_TTL_S
        if fresh and all(channel in self._repliers for channel in channels):
            return {channel: self._repliers[channel] for channel in channels}
        users = await self._directory.list_users()
        accesses = await self._directory.channel_accesses(channels)
        people = [User(id=u.id, admin=u.admin, teams=frozenset(u.teams)) for u in users]
        self._repliers = {
            access.channel: [who.id for who in people if decide(who, access, Action.REPLY).allowed]
            for access in accesses
        }
        self._roster_read_at = time.monotonic()
        return dict(self._repliers)

    async def _returned(
        self, channel: str, settings: ChannelSettings, team: "_Team", now: float
    ) -> int:
        """Release to New the conversations whose customer wrote to them while Pending
        with an offline assignee."""
        customers = team.returned(channel)
        if not customers:
            return 0
        states = await self._states(channel, customers)
        held = [(c, s) for c, s in states.items() if s is not None and s.assignee is not None]
        absent = await self._absent({s.assignee for _, s in held if s.assignee})
        decided = [
            (customer, state, release(state, state.assignee, ReleaseReason.RETURNED, settings))
            for customer, state in held
            if state.assignee in absent
        ]
        changed = await self._release(channel, decided, now)
        await self._routing.forget_returned(channel, customers)
        return changed

    async def _offline(
        self, channel: str, settings: ChannelSettings, team: "_Team", now: float
    ) -> int:
        """Release what offline agents hold and the channel says to release."""
        changed = 0
        for agent in await self._absent(set(team.holders(channel))):
            customers = await self._routing.held_by(channel, agent)
            states = await self._states(channel, customers)
            decided = [
                (c, states.get(c), release(states.get(c), agent, ReleaseReason.OFFLINE, settings))
                for c in customers
            ]
            changed += await self._release(channel, decided, now)
        return changed

    async def _absent(self, users: set[str]) -> set[str]:
        """Which of `users` are offline (or no longer users)."""
        found = await self._presence.many(sorted(users)) if users else {}
        return {user for user, record in found.items() if record.status is Availability.OFFLINE}

    async def _release(
        self,
        channel: str,
        decided: Sequence[tuple[str, Conversation | None, Decision]],
        now: float,
    ) -> int:
        """Apply releases. The loads this pass routes by need no change: a release takes
        a conversation from someone offline, who is handed nothing."""
        applied = await settle(
            self._store, channel, decided, now=now, kind=RELEASE, event_id_of=release_id
        )
        for _, decision in applied:
            for effect in decision.effects:
                if isinstance(effect, Released):
                    self._metrics.released.labels(channel, effect.why.value).inc()
        if applied:
            log.info("released", extra={"channel": channel, "count": len(applied)})
        return len(applied)

    async def _route(
        self, channel: str, settings: ChannelSettings, team: "_Team", now: float
    ) -> int:
        """Hand the pool's oldest conversations to the agents with room."""
        assert settings.routing is not None
        below = team.below_capacity(channel, settings.routing)
        availability, handed = await self._routing.candidates(channel, below)
        online = [user for user in below if availability[user] is Availability.ONLINE]
        agents = team.agents(channel, settings.routing, online, handed)
        room = sum(agent.room for agent in agents)
        pool = await self._routing.pool(channel, room)
        states = await self._states(channel, [c for c, _ in pool])
        waiting = [
            Waiting(customer=customer, since=since, passed_over=state.passed_over)
            for customer, since in pool
            if (state := states.get(customer)) is not None
        ]
        decided = [
            (step.customer, state, route(state, step.agent, settings, now))
            for step in plan(waiting, agents)
            for state in [states.get(step.customer)]
        ]
        applied = await settle(
            self._store, channel, decided, now=now, kind=ROUTE, event_id_of=route_id
        )
        for _, decision in applied:
            assert decision.state is not None and decision.state.assignee is not None
            team.handed(channel, decision.state.assignee)
        if applied:
            self._metrics.routed.labels(channel).inc(len(applied))
            log.info("routed", extra={"channel": channel, "count": len(applied)})
        self._metrics.routing_waiting.labels(channel).set(team.waiting(channel) - len(applied))
        return len(applied)

    async def _states(self, channel: str, customers: list[str]) -> dict[str, Conversation | None]:
        if not customers:
            return {}
        return (await self._store.states({channel: customers}))[channel]


class _Team:
    """Who may be handed work during one pass, and their loads as the pass hands it out."""

    def __init__(self, roster: dict[str, list[str]], view: RoutingView) -> None:
        self._roster = roster
        self._view = view
        self._totals: Counter[str] = Counter()
        for loads in view.loads.values():
            self._totals.update(loads)

    def returned(self, channel: str) -> list[str]:
        return self._view.returned.get(channel, [])

    def holders(self, channel: str) -> list[str]:
        return self._view.holders.get(channel, [])

    def waiting(self, channel: str) -> int:
        return self._view.waiting.get(channel, 0)

    def below_capacity(self, channel: str, settings: RoutingSettings) -> list[str]:
        """Who may answer on `channel` and holds less than its capacity there (the
        others have no room: a pass with most agents full looks closer at only the few)."""
        loads = self._view.loads.get(channel, {})
        return [
            user for user in self._roster.get(channel, []) if loads.get(user, 0) < settings.capacity
        ]

    def agents(
        self,
        channel: str,
        settings: RoutingSettings,
        candidates: list[str],
        handed: dict[str, float],
    ) -> list[Agent]:
        """The `candidates` as the plan sees them."""
        loads, capacities = self._view.loads.get(channel, {}), self._view.capacities
        return [
            Agent(
                id=user,
                online=True,
                can_reply=True,
                load=loads.get(user, 0),
                capacity=settings.capacity,
                total_load=self._totals[user],
                total_capacity=capacities.get(user),
                idle_since=handed.get(user, 0.0),
            )
            for user in candidates
        ]

    def handed(self, channel: str, agent: str) -> None:
        """`agent` was just handed one more Open conversation on `channel`."""
        loads = self._view.loads.setdefault(channel, {})
        loads[agent] = loads.get(agent, 0) + 1
        self._totals[agent] += 1


def routing_wakes(results: Iterable[Applied]) -> set[str]:
    """The channels whose routing an applied batch may have changed: a conversation in
    or into New, out of Open (pending, resolved), released, or a customer back on an
    assigned Pending one. Replies and statuses on Open conversations change nothing."""
    return {
        result.event.channel
        for result in results
        if result.outcome is Outcome.APPLIED
        and result.decision is not None
        and result.decision.state is not None
        and (
            result.decision.state.queue is not Queue.OPEN
            or any(isinstance(e, Returned | Unassigned) for e in result.decision.effects)
        )
    }
