"""Users' availability in a real redis-server (store/presence.py): what users set, what
their streams keep fresh, and the atomic pass that marks the absent offline."""

import asyncio

from redis.asyncio import Redis

from store.presence import NEVER, Availability, Presence, PresenceStore

T0 = 1_800_000_000.0


async def test_a_user_never_set_is_offline_and_a_choice_is_kept(redis: Redis) -> None:
    presence = PresenceStore(redis)
    assert await presence.get("ana") == NEVER
    assert await presence.set("ana", Availability.AWAY, T0) == Presence(
        status=Availability.AWAY, since=T0
    )
    assert await presence.many(["ana", "bob"]) == {
        "ana": Presence(status=Availability.AWAY, since=T0),
        "bob": NEVER,
    }


async def test_the_absent_go_offline_and_the_present_stay(redis: Redis) -> None:
    presence = PresenceStore(redis)
    for user in ("ana", "bob", "cy"):
        await presence.set(user, Availability.ONLINE, T0)
    await presence.seen("bob", T0 + 100)  # bob's stream is connected
    await presence.set("cy", Availability.AWAY, T0 + 90)  # cy chose again: seen then

    marked = await presence.mark_absent_offline(cutoff=T0 + 60, at=T0 + 180)
    assert marked == ["ana"]
    assert await presence.get("ana") == Presence(
        status=Availability.OFFLINE, since=T0 + 180, auto=True
    )
    assert (await presence.get("bob")).status is Availability.ONLINE
    assert (await presence.get("cy")).status is Availability.AWAY
    # Marked once: a second pass finds nobody more.
    assert await presence.mark_absent_offline(cutoff=T0 + 60, at=T0 + 181) == []


async def test_a_stream_never_brings_back_someone_offline(redis: Redis) -> None:
    presence = PresenceStore(redis)
    await presence.set("ana", Availability.ONLINE, T0)
    await presence.set("ana", Availability.OFFLINE, T0 + 10)  # her choice
    await presence.seen("ana", T0 + 20)  # her page is still open
    assert (await presence.get("ana")).status is Availability.OFFLINE
    assert await presence.mark_absent_offline(cutoff=T0 + 1000, at=T0 + 1000) == []
    assert await presence.get("ana") == Presence(status=Availability.OFFLINE, since=T0 + 10)


async def test_a_heartbeat_racing_the_pass_never_loses_to_it_half_way(redis: Redis) -> None:
    """Many users, their streams' heartbeats and the pass at once: each user ends either
    marked offline (and then out of the present set) or still online and present,
    never online but forgotten, nor offline but still tracked."""
    presence = PresenceStore(redis)
    users = [f"u{n}" for n in range(2000)]
    for user in users:
        await presence.set(user, Availability.ONLINE, T0)

    async def heartbeats() -> None:  # one stream per even user, one command each
        for user in users[::2]:
            await presence.seen(user, T0 + 100)

    marked, _ = await asyncio.gather(
        presence.mark_absent_offline(cutoff=T0 + 50, at=T0 + 120), heartbeats()
    )
    assert set(users[1::2]) <= set(marked)  # no heartbeat: offline
    states = await presence.many(users)
    present = {m.decode() for m in await redis.zrange("parley:{directory}:present", 0, -1)}
    for user in users:
        if user in marked:
            assert states[user].status is Availability.OFFLINE and user not in present
        else:
            assert states[user].status is Availability.ONLINE and user in present
