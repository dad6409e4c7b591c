"""Applying what the engine decided on its own (the sweeper's and the router's
decisions), through the same apply path as events: each under a deterministic id and
on the version it was decided on, so two engines racing make the second a duplicate,
and a conversation touched meanwhile is left for the next pass."""

from collections.abc import Callable, Sequence

from engine.model import Decision
from engine.records import records
from parley.state import Conversation, Outcome
from store.conversations import Answer, ConversationStore, digest
from store.writes import Write

# The id a decision on a conversation as it is now is applied under.
EventId = Callable[[str, Conversation], str]


def versioned(prefix: str) -> EventId:
    """Ids `<prefix>:<customer>:<version>`: the same for every engine that sees the
    conversation as it is (its version rises with every write), so only one applies
    it; a later cycle, even with the same times, has another."""

    def event_id(customer: str, state: Conversation) -> str:
        return f"{prefix}:{customer}:{state.version}"

    return event_id


async def settle(
    store: ConversationStore,
    channel: str,
    decided: Sequence[tuple[str, Conversation | None, Decision]],
    *,
    now: float,
    kind: str,
    event_id_of: EventId,
) -> list[tuple[str, Decision]]:
    """Apply the (customer, state it was decided on, decision) that change something;
    the (customer, decision) applied."""
    writes, applying = [], []
    for customer, state, decision in decided:
        if state is None or decision.outcome is not Outcome.APPLIED:
            continue  # gone, or nothing to do
        event_id = event_id_of(customer, state)
        ops = records(
            decision, channel=channel, event_id=event_id, kind=kind, at=now,
            customer=customer, old=state,
        )  # fmt: skip
        applying.append((customer, decision))
        writes.append(
            Write(
                digest=digest(event_id),
                received_at=now,
                expected_version=state.version,
                customer=customer,
                state=decision.state,
                was_in=state.queue,
                ops=ops,
            )
        )
    if not writes:
        return []
    answers = (await store.apply({channel: writes}))[channel]
    return [
        applied for applied, answer in zip(applying, answers, strict=True) if answer is Answer.OK
    ]
