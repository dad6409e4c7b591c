"""The pure pieces around the scripts: state encoding, the commit policy and the
batch sizes."""

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.consumer import BATCH_GROWTH, FIRST_BATCH, CommitPolicy, next_batch_limit
from parley.events import Identity
from parley.state import Conversation, Queue
from store._codec import (
    FIELDS,
    as_stored,
    customer_changes,
    decode_conversation,
    dedupe_digest,
    state_arguments,
    to_ms,
)

ID = "31612345678"

times = st.floats(min_value=1.5e9, max_value=4e9, allow_nan=False)
states = st.builds(
    Conversation,
    queue=st.sampled_from(Queue),
    assignee=st.one_of(st.none(), st.text(st.characters(codec="utf-8"), min_size=1, max_size=8)),
    last_activity_at=times,
    opened_at=times,
    last_customer_at=st.one_of(st.none(), times),
    first_response_at=st.one_of(st.none(), times),
    version=st.integers(min_value=0, max_value=10**6),
    customer=st.builds(
        Identity,
        phone=st.one_of(st.none(), st.from_regex(r"[1-9][0-9]{6,14}", fullmatch=True)),
        user_id=st.one_of(st.none(), st.from_regex(r"[A-Z]{2}\.[0-9A-Za-z]{1,40}", fullmatch=True)),
        username=st.one_of(st.none(), st.text(min_size=1, max_size=8)),
        name=st.one_of(st.none(), st.text(min_size=1, max_size=8)),
    ).filter(lambda identity: identity.phone or identity.user_id),
    marketing=st.sampled_from([None, "stop", "resume"]),
)


def as_redis_returns_it(state: Conversation) -> list[bytes | None]:
    """HMGET FIELDS after apply.lua wrote `state` ("" deletes a field) and the records
    wrote its customer (None deletes)."""
    written = [*state_arguments(state), str(state.version)]
    record = dict(customer_changes(None, state))
    fields = ["p", "u", "pu", "un", "n", "g", "mk"]
    return [value.encode() if value else None for value in written] + [
        None if record.get(field) is None else str(record[field]).encode() for field in fields
    ]


@given(states)
def test_a_state_reads_back_as_stored(state: Conversation) -> None:
    assert decode_conversation(as_redis_returns_it(state), ID) == as_stored(state)


@given(states)
def test_storing_is_stable(state: Conversation) -> None:
    once = as_stored(state)
    assert as_stored(once) == once
    assert decode_conversation(as_redis_returns_it(once), ID) == once


def test_a_conversation_release_0_1_wrote_is_its_phones() -> None:
    # Release 0.1 stored no customer fields: its ids are phones.
    legacy = {"q": b"new", "la": b"1500000000000", "oa": b"1500000000000", "v": b"1"}
    state = decode_conversation([legacy.get(field) for field in FIELDS], ID)
    assert state is not None
    assert state.customer == Identity(phone=ID)


@given(times, times)
def test_millisecond_rounding_keeps_order(a: float, b: float) -> None:
    # max() before or after rounding gives the same stored activity: what a batch
    # decides in memory equals what it would decide after re-reading Redis.
    assert to_ms(max(a, b)) == max(to_ms(a), to_ms(b))


def test_no_conversation_reads_as_none() -> None:
    assert decode_conversation([None] * len(FIELDS), ID) is None


def test_digests_are_short_and_distinct() -> None:
    digests = {dedupe_digest(f"wamid.{n}") for n in range(10_000)}
    assert len(digests) == 10_000
    assert {len(digest) for digest in digests} == {14}


@pytest.mark.parametrize(
    ("seconds_since_commit", "uncommitted", "commit"),
    [(0.0, 0, False), (0.5, 19_999, False), (0.5, 20_000, True), (1.0, 1, True), (5.0, 0, True)],
)
def test_commit_policy(seconds_since_commit: float, uncommitted: int, commit: bool) -> None:
    policy = CommitPolicy(interval_s=1.0, max_events=20_000)
    assert policy.should_commit(100.0 + seconds_since_commit, 100.0, uncommitted) is commit


@given(most=st.integers(1, 100_000))
def test_batches_start_small_and_grow_to_the_most_within_a_few_polls(most: int) -> None:
    limit = min(FIRST_BATCH, most)
    limits = [limit]
    while limit < most:
        limit = next_batch_limit(limit, most)
        limits.append(limit)
    assert limits[0] <= FIRST_BATCH
    assert all(b > a for a, b in itertools.pairwise(limits))
    assert limits[-1] == most
    # 5,000 (the default) is reached on the fourth poll: 250, 1,000, 4,000, 5,000.
    assert len(limits) <= 2 + max(0, math.ceil(math.log(most / FIRST_BATCH, BATCH_GROWTH)))
