"""Deterministic streams of realistic conversation events, for fault tests and benchmarks."""

import random

import msgspec

from parley.events import Event
from tests import factory as f

AGENTS = ("alice", "bob", "carol", "dave")
T0 = 1_790_000_000.0


def stream(
    count: int, conversations: int, channels: tuple[str, ...], seed: int = 7, t0: float = T0
) -> list[Event]:
    """`count` events over `conversations` conversations: customer messages, replies,
    moves, (un)assignments, tags, notes, topics, statuses, and re-deliveries of earlier
    events (as Meta's retries would make), with time moving forward."""
    rng = random.Random(seed)
    events: list[Event] = []
    now = t0
    for n in range(count):
        now += rng.random()
        channel = channels[n % len(channels)]
        wa_id = f"1555{rng.randrange(conversations):07d}"
        roll = rng.random()
        if events and roll < 0.03:
            events.append(rng.choice(events[-500:]))  # a re-delivery
            continue
        if roll < 0.40:
            event = f.customer(channel, wa_id, now, wamid=f"wamid.{seed}.{n}")
        elif roll < 0.60:
            event = f.reply(channel, wa_id, now, user=rng.choice(AGENTS))
        elif roll < 0.70:
            event = f.move(channel, wa_id, rng.choice(("pending", "resolved", "open")), now)
        elif roll < 0.76:
            event = f.assign(channel, wa_id, rng.choice(AGENTS), now)
        elif roll < 0.80:
            event = f.unassign(channel, wa_id, now)
        elif roll < 0.86:
            event = f.tag(channel, wa_id, rng.choice(("vip", "billing", "late")), now)
        elif roll < 0.90:
            event = f.note(channel, wa_id, f"note {n}", now)
        elif roll < 0.93:
            event = f.topic(channel, wa_id, rng.choice(("refund", "delivery")), now)
        else:
            event = f.status(
                channel, wa_id, f"wamid.out.{wa_id}.{n % 3}", rng.choice(("sent", "read")), now
            )
        # Ids must be deterministic too, so two runs over one stream compare equal.
        events.append(_with_id(event, f"{seed}-{n}") if not event.id.startswith("wamid") else event)
    return events


def _with_id(event: Event, event_id: str) -> Event:
    return msgspec.structs.replace(event, id=event_id)
