"""Applying events to a real redis-server: transitions, idempotence, the hash tag rule."""

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Redis
from redis.crc import key_slot

from engine.applier import Applier
from engine.cli import NotFound, queue_sizes, show_conversation
from parley.state import Outcome, Queue
from store import _keys as keys
from store.channels import seed_channels
from store.conversations import ConversationStore
from store.reader import Reader
from tests import factory as f
from tests.clock import Clock
from tests.conftest import EU, US

# Recent (the start of today): decided ids are kept 8 days after the day they arrived.
T0 = float(int(time.time()) // 86400 * 86400)


@pytest.fixture
async def applier(redis: Redis) -> AsyncIterator[Applier]:
    scripts = ConversationStore(redis)
    await scripts.start()
    await seed_channels(redis, [EU, US])
    yield Applier(scripts, Clock(T0))


async def state(redis: Redis, channel: str, wa_id: str) -> dict[str, object]:
    return await show_conversation(Reader(redis), f"{channel}:{wa_id}")


async def test_the_conversation_lifecycle_with_auto_assignment(
    applier: Applier, redis: Redis
) -> None:
    [first] = await applier.apply([f.customer(EU.id, "111", T0)])
    assert first.outcome is Outcome.APPLIED
    assert (await state(redis, EU.id, "111"))["queue"] == "new"
    assert (await state(redis, EU.id, "111"))["assignee"] is None

    await applier.apply([f.reply(EU.id, "111", T0 + 60, user="alice")])
    after_reply = await state(redis, EU.id, "111")
    assert (after_reply["queue"], after_reply["assignee"]) == ("open", "alice")

    await applier.apply([f.move(EU.id, "111", "resolved", T0 + 120)])
    resolved = await state(redis, EU.id, "111")
    assert (resolved["queue"], resolved["assignee"]) == ("resolved", None)

    await applier.apply([f.customer(EU.id, "111", T0 + 180)])
    reopened = await state(redis, EU.id, "111")
    assert (reopened["queue"], reopened["assignee"]) == ("new", None)
    sizes = await queue_sizes(Reader(redis), EU.id)
    assert sizes == {"new": 1, "open": 0, "pending": 0, "resolved": 0}


async def test_without_auto_assignment_a_reply_leaves_it_unassigned(
    applier: Applier, redis: Redis
) -> None:
    await applier.apply([f.customer(US.id, "222", T0), f.reply(US.id, "222", T0 + 5)])
    after = await state(redis, US.id, "222")
    assert (after["queue"], after["assignee"]) == ("new", None)


async def test_the_same_event_twice_is_applied_once(applier: Applier, redis: Redis) -> None:
    message = f.customer(EU.id, "333", T0, wamid="wamid.SAME")
    tagged = f.tag(EU.id, "333", "vip", T0 + 1)
    first = await applier.apply([message, tagged, message])
    assert [r.outcome for r in first] == [Outcome.APPLIED, Outcome.APPLIED, Outcome.DUPLICATE]
    before = await state(redis, EU.id, "333")
    again = await applier.apply([message, tagged])
    assert [r.outcome for r in again] == [Outcome.DUPLICATE, Outcome.DUPLICATE]
    assert await state(redis, EU.id, "333") == before


async def test_a_rejected_event_is_remembered_so_a_replay_cannot_apply_it_later(
    applier: Applier, redis: Redis
) -> None:
    early_assign = f.assign(EU.id, "444", "bob", T0)  # no conversation yet: rejected
    [result] = await applier.apply([early_assign])
    assert result.outcome is Outcome.REJECTED
    await applier.apply([f.customer(EU.id, "444", T0 + 1)])
    [replayed] = await applier.apply([early_assign])
    assert replayed.outcome is Outcome.DUPLICATE
    assert (await state(redis, EU.id, "444"))["assignee"] is None


async def test_annotations_are_stored(applier: Applier, redis: Redis) -> None:
    await applier.apply(
        [
            f.customer(EU.id, "555", T0),
            f.tag(EU.id, "555", "billing", T0 + 1),
            f.tag(EU.id, "555", "billing", T0 + 2),
            f.topic(EU.id, "555", "refund", T0 + 3),
            f.note(EU.id, "555", "called back", T0 + 4),
        ]
    )
    shown = await state(redis, EU.id, "555")
    assert shown["tags"] == ["billing"]
    assert shown["topics"] == ["refund"]
    assert len(shown["notes"]) == 1
    assert datetime.fromisoformat(shown["last_activity_at"]) == datetime.fromtimestamp(T0 + 4, UTC)


async def test_events_for_an_unconfigured_channel_are_rejected(applier: Applier) -> None:
    [result] = await applier.apply([f.customer("999", "666", T0)])
    assert result.outcome is Outcome.REJECTED


async def test_the_operator_view_says_when_nothing_exists(redis: Redis, applier: Applier) -> None:
    with pytest.raises(NotFound):
        await show_conversation(Reader(redis), f"{EU.id}:000")
    with pytest.raises(NotFound):
        await queue_sizes(Reader(redis), "999")
    with pytest.raises(ValueError):
        await show_conversation(Reader(redis), "no-colon")


@given(
    channel=st.from_regex(r"[0-9]{1,20}", fullmatch=True),
    wa_id=st.from_regex(r"[0-9]{1,20}", fullmatch=True),
)
def test_every_key_of_a_conversation_shares_its_channels_slot(channel: str, wa_id: str) -> None:
    per_conversation = [keys.conversation, keys.tags, keys.topics, keys.notes, keys.messages]
    slots = {key_slot(make(channel, wa_id).encode()) for make in per_conversation}
    slots |= {key_slot(keys.seen(channel, 20_000).encode())}
    slots |= {key_slot(keys.settings(channel).encode())}
    slots |= {key_slot(keys.queue(channel, queue).encode()) for queue in Queue}
    assert len(slots) == 1
