"""Channel access: the role matrix of DESIGN.md, how grants combine, and the decision."""

from collections.abc import Iterable, Mapping

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from assign import (
    RANK,
    AccessDecision,
    Action,
    ChannelAccess,
    User,
    allowed,
    decide,
    effective_role,
)
from parley.events import Role

A = Action
# DESIGN.md "Channels and access", written out row by row rather than derived from
# PERMISSIONS, so a change to the table in assign/ has to be made here as well.
EXPECTED: dict[Role | None, set[Action]] = {
    None: set(),
    Role.VIEWER: {A.SEE, A.MOVE, A.ANNOTATE},
    Role.CONTRIBUTOR: {A.SEE, A.MOVE, A.ANNOTATE, A.REPLY, A.ASSIGN},
    Role.SUPERVISOR: {A.SEE, A.MOVE, A.ANNOTATE, A.REPLY, A.ASSIGN, A.REPORTS},
    Role.ADMIN: set(Action),
}
ORDER = [Role.VIEWER, Role.CONTRIBUTOR, Role.SUPERVISOR, Role.ADMIN]
MATRIX = [(role, action) for role in [None, *Role] for action in Action]


def ident(value: object) -> str:
    return "none" if value is None else str(value)


def test_expected_table_covers_every_role() -> None:
    assert set(EXPECTED) == {None, *Role}


@pytest.mark.parametrize(("role", "action"), MATRIX, ids=ident)
def test_allowed_matches_design(role: Role | None, action: Action) -> None:
    assert allowed(role, action) is (action in EXPECTED[role])


@pytest.mark.parametrize(("role", "action"), MATRIX, ids=ident)
def test_decide_matrix(role: Role | None, action: Action) -> None:
    grants = {} if role is None else {"u": role}
    decision = decide(User("u"), ChannelAccess("c", user_grants=grants), action)
    if role is None:
        assert decision == AccessDecision(allowed=False, role=None)
    elif action in EXPECTED[role]:
        assert decision == AccessDecision(allowed=True, role=role)
    else:
        assert decision == AccessDecision(allowed=False, role=role)


def test_rank_is_viewer_contributor_supervisor_admin() -> None:
    assert sorted(Role, key=RANK.__getitem__) == ORDER


def test_direct_and_team_grants_combine_to_the_highest() -> None:
    user = User("u", teams=frozenset({"sales", "care"}))
    access = ChannelAccess(
        "c",
        user_grants={"u": Role.CONTRIBUTOR},
        team_grants={"sales": Role.VIEWER, "care": Role.SUPERVISOR, "other": Role.ADMIN},
    )
    assert effective_role(user, access) is Role.SUPERVISOR
    # The team grant lifts the user above their own direct grant, and no further.
    assert effective_role(User("u"), access) is Role.CONTRIBUTOR
    assert effective_role(User("u", teams=frozenset({"sales"})), access) is Role.CONTRIBUTOR


def test_team_grant_alone_gives_access_and_foreign_teams_do_not() -> None:
    access = ChannelAccess("c", team_grants={"care": Role.VIEWER})
    assert effective_role(User("u", teams=frozenset({"care"})), access) is Role.VIEWER
    assert effective_role(User("u", teams=frozenset({"sales"})), access) is None
    assert effective_role(User("u"), access) is None


@pytest.mark.parametrize("role", list(Role), ids=ident)
def test_all_users_switch_grants_its_role_and_off_removes_it(role: Role) -> None:
    on = ChannelAccess("c", all_users=role)
    off = msgspec.structs.replace(on, all_users=None)
    for user in (User("u"), User("u", teams=frozenset({"care"}))):
        assert effective_role(user, on) is role
        assert effective_role(user, off) is None


@pytest.mark.parametrize("role", list(Role), ids=ident)
def test_all_teams_switch_grants_its_role_to_team_members_only(role: Role) -> None:
    on = ChannelAccess("c", all_teams=role)
    off = msgspec.structs.replace(on, all_teams=None)
    member = User("u", teams=frozenset({"anything"}))
    assert effective_role(member, on) is role
    assert effective_role(member, off) is None
    assert effective_role(User("u"), on) is None
    assert decide(User("u"), on, Action.SEE).role is None


def test_switches_do_not_lower_a_higher_grant() -> None:
    access = ChannelAccess(
        "c", user_grants={"u": Role.SUPERVISOR}, all_users=Role.VIEWER, all_teams=Role.VIEWER
    )
    assert effective_role(User("u", teams=frozenset({"care"})), access) is Role.SUPERVISOR


def test_admins_are_admin_everywhere() -> None:
    admin = User("boss", admin=True)
    closed = ChannelAccess("c")
    low = ChannelAccess("d", user_grants={"boss": Role.VIEWER})
    assert effective_role(admin, closed) is Role.ADMIN
    assert effective_role(admin, low) is Role.ADMIN
    assert decide(admin, closed, Action.MANAGE) == AccessDecision(True, Role.ADMIN)


def test_decide_representative_cases() -> None:
    access = ChannelAccess(
        "c",
        user_grants={"vic": Role.VIEWER, "sue": Role.SUPERVISOR},
        team_grants={"care": Role.CONTRIBUTOR},
    )
    carol = User("carol", teams=frozenset({"care"}))
    assert decide(User("vic"), access, Action.MOVE) == AccessDecision(True, Role.VIEWER)
    assert decide(User("vic"), access, Action.REPLY) == AccessDecision(False, Role.VIEWER)
    assert decide(carol, access, Action.REPLY) == AccessDecision(True, Role.CONTRIBUTOR)
    assert decide(carol, access, Action.REPORTS) == AccessDecision(False, Role.CONTRIBUTOR)
    assert decide(User("sue"), access, Action.REPORTS) == AccessDecision(True, Role.SUPERVISOR)
    assert decide(User("sue"), access, Action.MANAGE) == AccessDecision(False, Role.SUPERVISOR)
    # No role: 404 for every action, even the harmless ones, so nothing is revealed.
    for action in Action:
        assert decide(User("eve"), access, action) == AccessDecision(False, None)


def visible_channels(user: User, accesses: Iterable[ChannelAccess]) -> list[tuple[str, Role]]:
    """The channel selector's rule (GET /v1/channels): a channel with a role."""
    return sorted(
        (access.channel, role)
        for access in accesses
        if (role := effective_role(user, access)) is not None
    )


def test_the_selector_lists_exactly_the_channels_with_a_role() -> None:
    user = User("u", teams=frozenset({"care"}))
    accesses = [
        ChannelAccess("30", user_grants={"u": Role.VIEWER}),
        ChannelAccess("10", team_grants={"care": Role.SUPERVISOR}),
        ChannelAccess("40", user_grants={"someone-else": Role.ADMIN}),
        ChannelAccess("20", all_teams=Role.CONTRIBUTOR),
        ChannelAccess("50", team_grants={"sales": Role.VIEWER}),
    ]
    assert visible_channels(user, accesses) == [
        ("10", Role.SUPERVISOR),
        ("20", Role.CONTRIBUTOR),
        ("30", Role.VIEWER),
    ]
    assert visible_channels(User("nobody"), accesses) == []
    assert visible_channels(User("boss", admin=True), iter(accesses)) == [
        (channel, Role.ADMIN) for channel in ("10", "20", "30", "40", "50")
    ]


# Property tests: small pools so users, grants and teams actually overlap.
USERS = ["u1", "u2", "u3"]
TEAMS = ["t1", "t2", "t3", "t4"]
roles = st.sampled_from(list(Role))
switches = st.none() | roles
users = st.builds(
    User,
    id=st.sampled_from(USERS),
    admin=st.booleans(),
    teams=st.frozensets(st.sampled_from(TEAMS)),
)
accesses = st.builds(
    ChannelAccess,
    channel=st.just("c"),
    user_grants=st.dictionaries(st.sampled_from(USERS), roles),
    team_grants=st.dictionaries(st.sampled_from(TEAMS), roles),
    all_users=switches,
    all_teams=switches,
)


def reference_role(user: User, access: ChannelAccess) -> Role | None:
    """The rule read straight off the brief: every grant that applies, then the top one."""
    applicable: list[Role] = []
    if user.admin:
        applicable.append(Role.ADMIN)
    if user.id in access.user_grants:
        applicable.append(access.user_grants[user.id])
    applicable += [role for team, role in access.team_grants.items() if team in user.teams]
    if access.all_users is not None:
        applicable.append(access.all_users)
    if access.all_teams is not None and user.teams:
        applicable.append(access.all_teams)
    return max(applicable, key=ORDER.index) if applicable else None


def level(role: Role | None) -> int:
    return -1 if role is None else ORDER.index(role)


def higher(a: Role | None, b: Role | None) -> Role | None:
    return a if level(a) >= level(b) else b


def merged(a: Mapping[str, Role], b: Mapping[str, Role]) -> dict[str, Role]:
    return {key: role for key in {*a, *b} if (role := higher(a.get(key), b.get(key)))}


@given(users, accesses)
def test_effective_role_is_the_highest_applicable_grant(user: User, access: ChannelAccess) -> None:
    assert effective_role(user, access) == reference_role(user, access)


@given(users, accesses, accesses, st.frozensets(st.sampled_from(TEAMS)))
def test_granting_more_never_lowers_the_role(
    user: User, access: ChannelAccess, extra: ChannelAccess, more_teams: frozenset[str]
) -> None:
    # `more` grants at least what `access` grants, everywhere; the user may join teams.
    more = ChannelAccess(
        "c",
        user_grants=merged(access.user_grants, extra.user_grants),
        team_grants=merged(access.team_grants, extra.team_grants),
        all_users=higher(access.all_users, extra.all_users),
        all_teams=higher(access.all_teams, extra.all_teams),
    )
    joined = msgspec.structs.replace(user, teams=user.teams | more_teams)
    before = level(effective_role(user, access))
    assert level(effective_role(user, more)) >= before
    assert level(effective_role(joined, access)) >= before
    assert level(effective_role(joined, more)) >= before
