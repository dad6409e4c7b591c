"""Users, teams and channel grants in Redis: the store behind the /v1 API.

Layout. The directory keys share the hash tag `{directory}`, so one MULTI/EXEC (with
WATCH) can span them on a Redis Cluster too:

- `parley:{directory}:users`: hash, user id -> JSON of the user (id, name, admin,
  created_at, token_digest); teams live in the membership sets, not here.
- `parley:{directory}:tokens`: hash, token digest -> user id. Tokens are never stored.
- `parley:{directory}:teams`: hash, team id -> JSON of the team (id, name, created_at).
- `parley:{directory}:members:<team>`: set of the team's user ids.
- `parley:{directory}:memberships:<user>`: set of the user's team ids (the same facts,
  indexed the other way; both sets change in one transaction).

A channel's grants live with the channel, `parley:{<channel>}:access`: a hash of
`u:<user>` -> role, `t:<team>` -> role, and the switches `all_users` / `all_teams` ->
role (absent = off). Deleting a user or a team removes its grants on every channel in
`keys.CHANNELS`; that crosses hash slots, so it runs after the directory transaction.
"""

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

import msgspec
from msgspec import UNSET, UnsetType
from redis.asyncio.client import Pipeline

from assign.access import ChannelAccess, User
from parley.events import Role
from parley.redis import RedisClient, as_text
from store import _keys as keys

USERS, TOKENS, TEAMS = keys.USERS, keys.TOKENS, keys.TEAMS
members, memberships, access = keys.members, keys.memberships, keys.access
USER_FIELD = "u:"
TEAM_FIELD = "t:"
ALL_USERS = "all_users"
ALL_TEAMS = "all_teams"


class DirectoryError(Exception):
    """A directory request that cannot be done as asked."""


class AlreadyExists(DirectoryError):
    pass


class Missing(DirectoryError):
    pass


class UserRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    admin: bool = False
    teams: list[str] = []  # sorted
    created_at: float


class TeamRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    members: list[str] = []  # sorted
    created_at: float


class _StoredUser(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    admin: bool
    created_at: float
    token_digest: str

    def record(self, teams: Iterable[bytes | str]) -> UserRecord:
        return UserRecord(
            id=self.id,
            name=self.name,
            admin=self.admin,
            teams=sorted(as_text(team) for team in teams),
            created_at=self.created_at,
        )


class _StoredTeam(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    created_at: float

    def record(self, user_ids: Iterable[bytes | str]) -> TeamRecord:
        return TeamRecord(
            id=self.id,
            name=self.name,
            members=sorted(as_text(user) for user in user_ids),
            created_at=self.created_at,
        )


_user_decoder = msgspec.json.Decoder(_StoredUser)
_team_decoder = msgspec.json.Decoder(_StoredTeam)


def token_digest(token: str) -> str:
    # Tokens are 256 random bits, so there is nothing to brute-force: a fast unsalted
    # hash is enough, and it lets a token be looked up by its digest in one HGET.
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "parley_" + secrets.token_urlsafe(32)


def decode_access(channel: str, fields: Mapping[bytes | str, bytes | str]) -> ChannelAccess:
    """A channel's access hash as a ChannelAccess; fields it does not know are skipped,
    so an older reader survives a newer writer during a rolling deploy."""
    user_grants: dict[str, Role] = {}
    team_grants: dict[str, Role] = {}
    switches: dict[str, Role] = {}
    for raw_field, raw_role in fields.items():
        field, role = as_text(raw_field), Role(as_text(raw_role))
        if field.startswith(USER_FIELD):
            user_grants[field.removeprefix(USER_FIELD)] = role
        elif field.startswith(TEAM_FIELD):
            team_grants[field.removeprefix(TEAM_FIELD)] = role
        elif field in (ALL_USERS, ALL_TEAMS):
            switches[field] = role
    return ChannelAccess(
        channel=channel,
        user_grants=user_grants,
        team_grants=team_grants,
        all_users=switches.get(ALL_USERS),
        all_teams=switches.get(ALL_TEAMS),
    )


def _multi(pipe: Pipeline) -> None:
    """End a transaction's reads: the writes queued after this run in one MULTI/EXEC."""
    pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves multi() unannotated


def _grantable(role: Role) -> Role:
    # Admin is an org-wide flag on the user, not something a channel hands out.
    if role is Role.ADMIN:
        raise ValueError("admin is not a channel role")
    return role


class Directory:
    def __init__(self, client: RedisClient, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.clock = clock

    # Users

    async def create_user(
        self, user_id: str, name: str, *, admin: bool = False
    ) -> tuple[UserRecord, str]:
        """The new user and their token; the token is shown this once, never stored."""
        token = new_token()
        stored = _StoredUser(
            id=user_id,
            name=name,
            admin=admin,
            created_at=self.clock(),
            token_digest=token_digest(token),
        )

        async def create(pipe: Pipeline) -> None:
            if await pipe.hexists(USERS, user_id):
                raise AlreadyExists(f"user {user_id} already exists")
            _multi(pipe)
            pipe.hset(USERS, user_id, msgspec.json.encode(stored))
            pipe.hset(TOKENS, stored.token_digest, user_id)

        await self._transaction(create, USERS)
        return stored.record([]), token

    async def authenticate(self, token: str) -> User | None:
        """The user a token belongs to; None for a token that is unknown or revoked."""
        digest = token_digest(token)
        user_id = await self.client.hget(TOKENS, digest)
        if user_id is None:
            return None
        pipe = self.client.pipeline(transaction=False)
        pipe.hget(USERS, user_id)
        pipe.smembers(memberships(as_text(user_id)))
        raw, teams = await pipe.execute()
        # A rotate or delete between the two round trips already revoked this token.
        if raw is None or (stored := _user_decoder.decode(raw)).token_digest != digest:
            return None
        return User(stored.id, admin=stored.admin, teams=frozenset(map(as_text, teams)))

    async def holder(self, user_id: str, digest: str) -> User | None:
        """The user, if the token whose digest is `digest` is still theirs (a session
        opened with it lives no longer than it does)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hget(USERS, user_id)
        pipe.smembers(memberships(user_id))
        raw, teams = await pipe.execute()
        if raw is None:
            return None
        stored = _user_decoder.decode(raw)
        if not hmac.compare_digest(stored.token_digest, digest):
            return None
        return User(stored.id, admin=stored.admin, teams=frozenset(map(as_text, teams)))

    async def get_user(self, user_id: str) -> UserRecord | None:
        pipe = self.client.pipeline(transaction=False)
        pipe.hget(USERS, user_id)
        pipe.smembers(memberships(user_id))
        raw, teams = await pipe.execute()
        return None if raw is None else _user_decoder.decode(raw).record(teams)

    async def list_users(self) -> list[UserRecord]:
        """Every user, by id."""
        stored = (await self.client.hgetall(USERS)).values()
        users = sorted(map(_user_decoder.decode, stored), key=lambda user: user.id)
        pipe = self.client.pipeline(transaction=False)
        for user in users:
            pipe.smembers(memberships(user.id))
        teams = await pipe.execute() if users else []
        return [user.record(user_teams) for user, user_teams in zip(users, teams, strict=True)]

    async def rotate_token(self, user_id: str) -> str:
        """A new token for the user; the old one stops working in the same transaction."""
        token = new_token()

        async def rotate(pipe: Pipeline) -> None:
            stored = await self._stored_user(pipe, user_id)
            _multi(pipe)
            pipe.hdel(TOKENS, stored.token_digest)
            renewed = msgspec.structs.replace(stored, token_digest=token_digest(token))
            pipe.hset(USERS, user_id, msgspec.json.encode(renewed))
            pipe.hset(TOKENS, renewed.token_digest, user_id)

        await self._transaction(rotate, USERS)
        return token

    async def delete_user(self, user_id: str) -> None:
        """Revoke the token and drop the user and their memberships in one transaction
        (locked out at once), then their direct grants on every channel."""

        async def delete(pipe: Pipeline) -> None:
            stored = await self._stored_user(pipe, user_id)
            teams = await pipe.smembers(memberships(user_id))
            _multi(pipe)
            pipe.hdel(TOKENS, stored.token_digest)
            pipe.hdel(USERS, user_id)
            for team in teams:
                pipe.srem(members(as_text(team)), user_id)
            pipe.delete(memberships(user_id))

        await self._transaction(delete, USERS, memberships(user_id))
        await self._revoke_everywhere(USER_FIELD + user_id)

    # Teams

    async def create_team(self, team_id: str, name: str) -> TeamRecord:
        stored = _StoredTeam(id=team_id, name=name, created_at=self.clock())
        # One key, so HSETNX alone settles a race between two creates.
        if not await self.client.hsetnx(TEAMS, team_id, msgspec.json.encode(stored)):
            raise AlreadyExists(f"team {team_id} already exists")
        return stored.record([])

    async def get_team(self, team_id: str) -> TeamRecord | None:
        pipe = self.client.pipeline(transaction=False)
        pipe.hget(TEAMS, team_id)
        pipe.smembers(members(team_id))
        raw, user_ids = await pipe.execute()
        return None if raw is None else _team_decoder.decode(raw).record(user_ids)

    async def list_teams(self) -> list[TeamRecord]:
        """Every team, by id."""
        stored = (await self.client.hgetall(TEAMS)).values()
        teams = sorted(map(_team_decoder.decode, stored), key=lambda team: team.id)
        pipe = self.client.pipeline(transaction=False)
        for team in teams:
            pipe.smembers(members(team.id))
        user_ids = await pipe.execute() if teams else []
        return [team.record(ids) for team, ids in zip(teams, user_ids, strict=True)]

    async def delete_team(self, team_id: str) -> None:
        """Drop the team and its memberships in one transaction, then its grants on
        every channel."""

        async def delete(pipe: Pipeline) -> None:
            await self._require_team(pipe, team_id)
            user_ids = await pipe.smembers(members(team_id))
            _multi(pipe)
            pipe.hdel(TEAMS, team_id)
            for user in user_ids:
                pipe.srem(memberships(as_text(user)), team_id)
            pipe.delete(members(team_id))

        await self._transaction(delete, TEAMS, members(team_id))
        await self._revoke_everywhere(TEAM_FIELD + team_id)

    async def add_member(self, team_id: str, user_id: str) -> None:
        await self._membership(team_id, user_id, add=True)

    async def remove_member(self, team_id: str, user_id: str) -> None:
        await self._membership(team_id, user_id, add=False)

    async def _membership(self, team_id: str, user_id: str, *, add: bool) -> None:
        async def change(pipe: Pipeline) -> None:
            # Watching both hashes: a concurrent delete of either retries this, so a
            # membership never outlives its team or user.
            await self._require_team(pipe, team_id)
            await self._require_user(pipe, user_id)
            _multi(pipe)
            if add:
                pipe.sadd(members(team_id), user_id)
                pipe.sadd(memberships(user_id), team_id)
            else:
                pipe.srem(members(team_id), user_id)
                pipe.srem(memberships(user_id), team_id)

        await self._transaction(change, TEAMS, USERS)

    # Channel grants

    async def channel_access(self, channel: str) -> ChannelAccess:
        return decode_access(channel, await self.client.hgetall(access(channel)))

    async def access_of(self, channel: str, user: User) -> tuple[bool, ChannelAccess]:
        """Whether the channel exists, and only the grants that can apply to `user`
        (theirs, their teams', the switches): one round trip, whatever the number of
        grants on the channel."""
        teams = sorted(user.teams)
        fields = [
            USER_FIELD + user.id,
            *(TEAM_FIELD + team for team in teams),
            ALL_USERS,
            ALL_TEAMS,
        ]
        pipe = self.client.pipeline(transaction=False)
        pipe.sismember(keys.CHANNELS, channel)
        pipe.hmget(access(channel), fields)
        exists, values = await pipe.execute()
        found: dict[bytes | str, bytes | str] = {
            name: value for name, value in zip(fields, values, strict=True) if value is not None
        }
        return bool(exists), decode_access(channel, found)

    async def channel_accesses(self, channels: Sequence[str]) -> list[ChannelAccess]:
        """Several channels' grants in one round trip, in the order asked."""
        if not channels:
            return []
        pipe = self.client.pipeline(transaction=False)
        for channel in channels:
            pipe.hgetall(access(channel))
        replies = await pipe.execute()
        return [decode_access(c, fields) for c, fields in zip(channels, replies, strict=True)]

    async def grant_user(self, channel: str, user_id: str, role: Role) -> None:
        field, missing = USER_FIELD + user_id, f"no user {user_id}"
        await self._grant(channel, field, _grantable(role), USERS, user_id, missing)

    async def revoke_user(self, channel: str, user_id: str) -> None:
        await self.client.hdel(access(channel), USER_FIELD + user_id)

    async def grant_team(self, channel: str, team_id: str, role: Role) -> None:
        field, missing = TEAM_FIELD + team_id, f"no team {team_id}"
        await self._grant(channel, field, _grantable(role), TEAMS, team_id, missing)

    async def revoke_team(self, channel: str, team_id: str) -> None:
        await self.client.hdel(access(channel), TEAM_FIELD + team_id)

    async def set_switches(
        self,
        channel: str,
        *,
        all_users: Role | UnsetType | None = UNSET,
        all_teams: Role | UnsetType | None = UNSET,
    ) -> None:
        """Turn "access for all users" / "all teams" on with a role, or off with None;
        UNSET leaves a switch as it is."""
        pipe = self.client.pipeline(transaction=True)
        for field, role in ((ALL_USERS, all_users), (ALL_TEAMS, all_teams)):
            if role is None:
                pipe.hdel(access(channel), field)
            elif not isinstance(role, UnsetType):
                pipe.hset(access(channel), field, _grantable(role).value)
        if len(pipe):
            await pipe.execute()

    async def _grant(
        self, channel: str, field: str, role: Role, table: str, id_: str, missing: str
    ) -> None:
        if not await self.client.hexists(table, id_):
            raise Missing(missing)
        await self.client.hset(access(channel), field, role.value)
        # The grant and the directory sit in different hash slots, so no transaction
        # spans them. If a delete ran in between, its sweep may have passed this channel
        # already: take the grant back, so it cannot resurface if the id is reused.
        if not await self.client.hexists(table, id_):
            await self.client.hdel(access(channel), field)
            raise Missing(missing)

    async def _revoke_everywhere(self, field: str) -> None:
        channels = await self.client.smembers(keys.CHANNELS)
        if not channels:
            return
        pipe = self.client.pipeline(transaction=False)
        for channel in channels:
            pipe.hdel(access(as_text(channel)), field)
        await pipe.execute()

    # Transactions

    async def _transaction(self, body: Callable[[Pipeline], Awaitable[None]], *watch: str) -> None:
        """Run `body` under WATCH on `watch` until EXEC goes through. `body` reads in
        immediate mode, raises to give up, then calls `multi()` and queues its writes."""
        await self.client.transaction(body, *watch)

    async def _stored_user(self, pipe: Pipeline, user_id: str) -> _StoredUser:
        raw = await pipe.hget(USERS, user_id)
        if raw is None:
            raise Missing(f"no user {user_id}")
        return _user_decoder.decode(raw)

    async def _require_user(self, pipe: Pipeline, user_id: str) -> None:
        if not await pipe.hexists(USERS, user_id):
            raise Missing(f"no user {user_id}")

    async def _require_team(self, pipe: Pipeline, team_id: str) -> None:
        if not await pipe.hexists(TEAMS, team_id):
            raise Missing(f"no team {team_id}")
