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
from collections.abc import Callable, Iterable, Sequence

from assign import Action, ChannelAccess, User, decide
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
from store.directory import Directory, UserRecord
from store.presence import Availability, Presence, PresenceStore
from store.routing import EVERY_CHANNEL, RoutingStore

log = logging.getLogger(__name__)
ROUTE, RELEASE = "route", "release"  # the kinds of the router's changes on the feed
route_id = versioned(ROUTE)
release_id = versioned(RELEASE)
LEASE_S = 30.0  # longer than any pass; a crashed holder's lease lapses by itself
LEASE_RETRY_S = 0.02
RETURNED_BATCH = 500


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

    def wake(self, channel: str = EVERY_CHANNEL) -> None:
        """Something `channel`'s routing depends on changed: pass over it soon."""
        self._dirty.add(channel)
        self._woken.set()

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

    async def run_once(self) -> int:
        """One pass over every channel; the number of changes."""
        self.wake()
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
        users = await self._directory.list_users()
        team = _Team(
            users,
            await self._presence.many([user.id for user in users]),
            await self._routing.capacities(),
            await self._routing.loads(every),
        )
        changed = 0
        for channel, channel_settings in settings.items():
            changed += await self._returned(channel, channel_settings, team, now)
            if channel_settings.routing is None:
                continue
            changed += await self._offline(channel, channel_settings, team, now)
            changed += await self._route(channel, channel_settings, team, now)
        return changed

    async def _returned(
        self, channel: str, settings: ChannelSettings, team: "_Team", now: float
    ) -> int:
        """Release to New the conversations whose customer wrote to them while Pending
        with an offline assignee."""
        customers = await self._routing.returned(channel, RETURNED_BATCH)
        if not customers:
            return 0
        states = await self._states(channel, customers)
        decided = []
        for customer in customers:
            state = states.get(customer)
            if state is not None and state.assignee is not None and team.offline(state.assignee):
                decision = release(state, state.assignee, ReleaseReason.RETURNED, settings)
                decided.append((customer, state, decision))
        changed = await self._release(channel, decided, now)
        await self._routing.forget_returned(channel, customers)
        return changed

    async def _offline(
        self, channel: str, settings: ChannelSettings, team: "_Team", now: float
    ) -> int:
        """Release what offline agents hold and the channel says to release."""
        changed = 0
        for agent in await self._routing.holders(channel):
            if not team.offline(agent):
                continue
            customers = await self._routing.held_by(channel, agent)
            states = await self._states(channel, customers)
            decided = [
                (c, states.get(c), release(states.get(c), agent, ReleaseReason.OFFLINE, settings))
                for c in customers
            ]
            changed += await self._release(channel, decided, now)
        return changed

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
        access = (await self._directory.channel_accesses([channel]))[0]
        handed = await self._routing.handed(channel)
        agents = [
            team.agent(user, channel, settings.routing, handed.get(user.id, 0.0), access)
            for user in team.users
        ]
        room = sum(agent.room for agent in agents)
        pool = await self._routing.pool(channel, room)
        states = await self._states(channel, [c for c, _ in pool])
        waiting = [
            Waiting(customer=customer, since=since, passed_over=state.passed_over)
            for customer, since in pool
            if (state := states.get(customer)) is not None
        ]
        routes = plan(waiting, agents)
        decided = [
            (step.customer, state, route(state, step.agent, settings, now))
            for step in routes
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
        self._metrics.routing_waiting.labels(channel).set(
            await self._routing.waiting_count(channel)
        )
        return len(applied)

    async def _states(self, channel: str, customers: list[str]) -> dict[str, Conversation | None]:
        if not customers:
            return {}
        return (await self._store.states({channel: customers}))[channel]


class _Team:
    """Who may be handed work during one pass, and their loads as the pass hands it out."""

    def __init__(
        self,
        users: Sequence[UserRecord],
        presence: dict[str, Presence],
        capacities: dict[str, int],
        loads: dict[str, dict[str, int]],
    ) -> None:
        self.users = users
        self._status = {user: record.status for user, record in presence.items()}
        self._capacities = capacities
        self._loads = loads

    def offline(self, user: str) -> bool:
        """Offline, or no longer a user."""
        return self._status.get(user, Availability.OFFLINE) is Availability.OFFLINE

    def agent(
        self,
        user: UserRecord,
        channel: str,
        settings: RoutingSettings,
        idle_since: float,
        access: ChannelAccess,
    ) -> Agent:
        who = User(id=user.id, admin=user.admin, teams=frozenset(user.teams))
        return Agent(
            id=user.id,
            online=self._status.get(user.id) is Availability.ONLINE,
            can_reply=decide(who, access, Action.REPLY).allowed,
            load=self._loads.get(channel, {}).get(user.id, 0),
            capacity=settings.capacity,
            total_load=sum(loads.get(user.id, 0) for loads in self._loads.values()),
            total_capacity=self._capacities.get(user.id),
            idle_since=idle_since,
        )

    def handed(self, channel: str, agent: str) -> None:
        """`agent` was just handed one more Open conversation on `channel`."""
        loads = self._loads.setdefault(channel, {})
        loads[agent] = loads.get(agent, 0) + 1


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
