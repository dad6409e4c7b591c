"""Users, teams and channel grants against a real redis-server (and one Redis Cluster)."""

import asyncio
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from assign.access import ChannelAccess, User, effective_role
from parley.events import Role
from parley.redis import as_text, connect_redis
from store import _keys as keys
from store.directory import (
    AlreadyExists,
    Directory,
    Missing,
    TeamRecord,
    UserRecord,
    token_digest,
)

T0 = 1_700_000_000.0
EU, US = "106540352242922", "106540352242923"


@pytest.fixture
async def directory(redis: Redis) -> Directory:
    await redis.sadd(keys.CHANNELS, EU, US)
    return Directory(redis, clock=lambda: T0)


async def redis_contents(redis: Redis) -> bytes:
    """Every key and value in the database, concatenated, to search for a secret."""
    parts = []
    async for key in redis.scan_iter():
        parts.append(key)
        kind = as_text(await redis.type(key))
        if kind == "hash":
            parts += [part for pair in (await redis.hgetall(key)).items() for part in pair]
        elif kind == "set":
            parts += list(await redis.smembers(key))
        else:
            parts.append(await redis.dump(key))
    return b"\n".join(parts)


async def test_create_get_and_list_users(directory: Directory) -> None:
    ana, token = await directory.create_user("ana", "Ana Lima", admin=True)
    await directory.create_user("bo", "Bo")

    assert ana == UserRecord(id="ana", name="Ana Lima", admin=True, teams=[], created_at=T0)
    assert token.startswith("parley_") and len(token) > 40
    assert await directory.get_user("ana") == ana
    assert await directory.get_user("nobody") is None
    assert [user.id for user in await directory.list_users()] == ["ana", "bo"]


async def test_a_duplicate_user_is_refused_and_the_first_keeps_its_token(
    directory: Directory,
) -> None:
    _, token = await directory.create_user("ana", "Ana")
    with pytest.raises(AlreadyExists, match=r"^user ana already exists$"):
        await directory.create_user("ana", "Another Ana", admin=True)

    assert await directory.authenticate(token) == User("ana")
    assert (await directory.get_user("ana")) == UserRecord(id="ana", name="Ana", created_at=T0)


async def test_concurrent_creates_of_one_id_give_one_user(directory: Directory) -> None:
    results = await asyncio.gather(
        *(directory.create_user("ana", f"Ana {n}") for n in range(10)), return_exceptions=True
    )

    created = [result for result in results if isinstance(result, tuple)]
    refused = [result for result in results if isinstance(result, AlreadyExists)]
    assert len(created) == 1 and len(refused) == 9
    record, token = created[0]
    assert await directory.get_user("ana") == record
    assert await directory.authenticate(token) == User("ana")


async def test_authenticate(directory: Directory, redis: Redis) -> None:
    _, token = await directory.create_user("ana", "Ana", admin=True)

    assert await directory.authenticate(token) == User("ana", admin=True)
    assert await directory.authenticate(token + "x") is None
    assert await directory.authenticate("") is None
    contents = await redis_contents(redis)
    assert token.encode() not in contents
    assert token_digest(token).encode() in contents


async def test_rotate_token_swaps_tokens_at_once(directory: Directory, redis: Redis) -> None:
    _, old = await directory.create_user("ana", "Ana")

    new = await directory.rotate_token("ana")

    assert new != old
    assert await directory.authenticate(old) is None
    assert await directory.authenticate(new) == User("ana")
    assert await redis.hlen("parley:{directory}:tokens") == 1
    with pytest.raises(Missing, match=r"^no user bo$"):
        await directory.rotate_token("bo")


async def test_delete_user_locks_out_and_removes_memberships_and_grants(
    directory: Directory,
) -> None:
    _, token = await directory.create_user("ana", "Ana")
    await directory.create_user("bo", "Bo")
    await directory.create_team("sales", "Sales")
    await directory.add_member("sales", "ana")
    await directory.add_member("sales", "bo")
    for channel in (EU, US):
        await directory.grant_user(channel, "ana", Role.SUPERVISOR)
        await directory.grant_user(channel, "bo", Role.VIEWER)
    await directory.grant_team(EU, "sales", Role.CONTRIBUTOR)

    await directory.delete_user("ana")

    assert await directory.authenticate(token) is None
    assert await directory.get_user("ana") is None
    team = await directory.get_team("sales")
    assert team is not None and team.members == ["bo"]
    eu, us = await directory.channel_accesses([EU, US])
    assert eu.user_grants == {"bo": Role.VIEWER} and us.user_grants == {"bo": Role.VIEWER}
    assert eu.team_grants == {"sales": Role.CONTRIBUTOR}
    with pytest.raises(Missing, match=r"^no user ana$"):
        await directory.delete_user("ana")


async def test_teams_and_membership(directory: Directory) -> None:
    _, token = await directory.create_user("ana", "Ana")
    await directory.create_user("bo", "Bo")
    sales = await directory.create_team("sales", "Sales")
    await directory.create_team("billing", "Billing")
    with pytest.raises(AlreadyExists, match=r"^team sales already exists$"):
        await directory.create_team("sales", "Sales again")

    for team in ("sales", "billing"):
        await directory.add_member(team, "ana")
    await directory.add_member("sales", "bo")
    await directory.add_member("sales", "bo")  # idempotent

    assert sales == TeamRecord(id="sales", name="Sales", members=[], created_at=T0)
    assert await directory.get_team("sales") == TeamRecord(
        id="sales", name="Sales", members=["ana", "bo"], created_at=T0
    )
    assert await directory.get_team("nope") is None
    assert [team.id for team in await directory.list_teams()] == ["billing", "sales"]
    assert await directory.authenticate(token) == User("ana", teams=frozenset({"sales", "billing"}))
    ana = await directory.get_user("ana")
    assert ana is not None and ana.teams == ["billing", "sales"]

    await directory.remove_member("sales", "ana")
    await directory.remove_member("sales", "ana")  # idempotent
    assert await directory.authenticate(token) == User("ana", teams=frozenset({"billing"}))


async def test_membership_names_what_is_missing(directory: Directory) -> None:
    await directory.create_user("ana", "Ana")
    await directory.create_team("sales", "Sales")

    for change in (directory.add_member, directory.remove_member):
        with pytest.raises(Missing, match=r"^no team support$"):
            await change("support", "ana")
        with pytest.raises(Missing, match=r"^no user bo$"):
            await change("sales", "bo")


async def test_concurrent_membership_changes_all_land(directory: Directory) -> None:
    _, token = await directory.create_user("ana", "Ana")
    teams = [f"team-{n}" for n in range(8)]
    for team in teams:
        await directory.create_team(team, team)

    await asyncio.gather(*(directory.add_member(team, "ana") for team in teams))

    assert await directory.authenticate(token) == User("ana", teams=frozenset(teams))


async def test_delete_team_removes_memberships_and_team_grants(directory: Directory) -> None:
    _, token = await directory.create_user("ana", "Ana")
    await directory.create_team("sales", "Sales")
    await directory.create_team("billing", "Billing")
    await directory.add_member("sales", "ana")
    await directory.add_member("billing", "ana")
    await directory.grant_team(EU, "sales", Role.SUPERVISOR)
    await directory.grant_team(US, "sales", Role.VIEWER)
    await directory.grant_team(US, "billing", Role.VIEWER)
    await directory.grant_user(US, "ana", Role.CONTRIBUTOR)

    await directory.delete_team("sales")

    assert await directory.get_team("sales") is None
    assert await directory.authenticate(token) == User("ana", teams=frozenset({"billing"}))
    eu, us = await directory.channel_accesses([EU, US])
    assert eu == ChannelAccess(EU)
    assert us == ChannelAccess(
        US, user_grants={"ana": Role.CONTRIBUTOR}, team_grants={"billing": Role.VIEWER}
    )
    with pytest.raises(Missing, match=r"^no team sales$"):
        await directory.delete_team("sales")


async def test_grants_and_switches_combine_to_the_highest_role(directory: Directory) -> None:
    _, token = await directory.create_user("ana", "Ana")
    await directory.create_team("sales", "Sales")
    await directory.add_member("sales", "ana")
    user = await directory.authenticate(token)
    assert user is not None
    assert await directory.channel_access(EU) == ChannelAccess(channel=EU)

    await directory.set_switches(EU, all_users=Role.VIEWER)
    assert effective_role(user, await directory.channel_access(EU)) is Role.VIEWER
    await directory.grant_user(EU, "ana", Role.CONTRIBUTOR)
    assert effective_role(user, await directory.channel_access(EU)) is Role.CONTRIBUTOR
    await directory.grant_team(EU, "sales", Role.SUPERVISOR)
    await directory.set_switches(EU, all_teams=Role.VIEWER)  # all_users left alone

    access = await directory.channel_access(EU)
    assert access == ChannelAccess(
        EU,
        user_grants={"ana": Role.CONTRIBUTOR},
        team_grants={"sales": Role.SUPERVISOR},
        all_users=Role.VIEWER,
        all_teams=Role.VIEWER,
    )
    assert effective_role(user, access) is Role.SUPERVISOR

    await directory.revoke_team(EU, "sales")
    await directory.revoke_user(EU, "ana")
    await directory.revoke_user(EU, "ana")  # idempotent
    await directory.set_switches(EU, all_users=None)
    assert await directory.channel_access(EU) == ChannelAccess(EU, all_teams=Role.VIEWER)
    await directory.set_switches(EU, all_teams=None)
    assert await directory.channel_access(EU) == ChannelAccess(EU)


async def test_grants_refuse_unknown_ids_and_the_admin_role(directory: Directory) -> None:
    await directory.create_user("ana", "Ana")
    await directory.create_team("sales", "Sales")

    with pytest.raises(Missing, match=r"^no user bo$"):
        await directory.grant_user(EU, "bo", Role.VIEWER)
    with pytest.raises(Missing, match=r"^no team support$"):
        await directory.grant_team(EU, "support", Role.VIEWER)
    with pytest.raises(ValueError, match="admin"):
        await directory.grant_user(EU, "ana", Role.ADMIN)
    with pytest.raises(ValueError, match="admin"):
        await directory.grant_team(EU, "sales", Role.ADMIN)
    with pytest.raises(ValueError, match="admin"):
        await directory.set_switches(EU, all_teams=Role.ADMIN)
    assert await directory.channel_access(EU) == ChannelAccess(EU)


async def test_channel_accesses_answers_in_the_order_asked(directory: Directory) -> None:
    await directory.create_user("ana", "Ana")
    await directory.grant_user(US, "ana", Role.VIEWER)

    assert await directory.channel_accesses([]) == []
    assert await directory.channel_accesses([US, "elsewhere", EU]) == [
        ChannelAccess(US, user_grants={"ana": Role.VIEWER}),
        ChannelAccess("elsewhere"),
        ChannelAccess(EU),
    ]


IDS = st.text(alphabet="abc:{}-", min_size=1, max_size=4)
CHANNEL_ROLES = st.sampled_from([Role.VIEWER, Role.CONTRIBUTOR, Role.SUPERVISOR])


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    user_grants=st.dictionaries(IDS, CHANNEL_ROLES, max_size=4),
    team_grants=st.dictionaries(IDS, CHANNEL_ROLES, max_size=4),
    all_users=st.none() | CHANNEL_ROLES,
    all_teams=st.none() | CHANNEL_ROLES,
)
async def test_any_set_of_grants_round_trips(
    redis: Redis,
    user_grants: dict[str, Role],
    team_grants: dict[str, Role],
    all_users: Role | None,
    all_teams: Role | None,
) -> None:
    await redis.flushdb()  # one database for all the examples of this test
    directory = Directory(redis)
    for user_id, role in user_grants.items():
        await directory.create_user(user_id, user_id)
        await directory.grant_user(EU, user_id, role)
    for team_id, role in team_grants.items():
        await directory.create_team(team_id, team_id)
        await directory.grant_team(EU, team_id, role)
    await directory.set_switches(EU, all_users=all_users, all_teams=all_teams)

    assert await directory.channel_access(EU) == ChannelAccess(
        EU, user_grants, team_grants, all_users, all_teams
    )


async def test_the_directory_works_on_a_redis_cluster(redis_cluster_url: str) -> None:
    # Directory keys share one hash tag, so its WATCH/MULTI transactions run on a
    # cluster; grants live in each channel's slot.
    client = connect_redis(redis_cluster_url)
    directory = Directory(client)
    user, team = f"ana-{uuid.uuid4().hex}", f"sales-{uuid.uuid4().hex}"
    try:
        _, token = await directory.create_user(user, "Ana")
        with pytest.raises(AlreadyExists):
            await directory.create_user(user, "Ana")
        await directory.create_team(team, "Sales")
        await directory.add_member(team, user)
        await directory.grant_user(EU, user, Role.VIEWER)
        await directory.grant_team(US, team, Role.SUPERVISOR)
        await directory.set_switches(US, all_users=Role.VIEWER)
        token = await directory.rotate_token(user)
        assert await directory.authenticate(token) == User(user, teams=frozenset({team}))
        eu, us = await directory.channel_accesses([EU, US])
        assert eu.user_grants[user] is Role.VIEWER and us.team_grants[team] is Role.SUPERVISOR

        await directory.delete_team(team)
        await directory.delete_user(user)
        assert await directory.authenticate(token) is None
    finally:
        await directory.set_switches(US, all_users=None)
        await directory.revoke_user(EU, user)
        await directory.revoke_team(US, team)
        await client.aclose()
