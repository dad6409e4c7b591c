"""Each number's standing with Meta (parley/standing.py): one JSON value per channel,
and the index from display phone number to channel that Meta's number webhooks need
(they name the number by its display phone number only).

Two writers meet here, a Graph API read (the API's refresh, the engine's schedule) and
the receiver applying a webhook, so a change is an optimistic transaction: WATCH the
value, read it, write the new one only if nothing else wrote it meanwhile."""

from collections.abc import Callable, Iterable

import msgspec
from redis.exceptions import WatchError

from parley.redis import RedisClient, as_text
from parley.standing import (
    NameUpdate,
    NumberFields,
    QualityUpdate,
    Standing,
    after_name_update,
    after_quality_update,
    digits,
    from_graph,
)
from store import _keys as keys

MAX_ATTEMPTS = 100
_decoder = msgspec.json.Decoder(Standing)
Update = NameUpdate | QualityUpdate


async def standing(client: RedisClient, channel: str) -> Standing | None:
    raw = await client.get(keys.standing(channel))
    return None if raw is None else _decoder.decode(raw)


async def standings(client: RedisClient, channels: Iterable[str]) -> dict[str, Standing]:
    """The standing of each channel that has one, in one round trip (a pipeline, not
    MGET: on a Redis Cluster the channels' keys live in different slots)."""
    ids = list(channels)
    pipe = client.pipeline(transaction=False)
    for channel in ids:
        pipe.get(keys.standing(channel))
    found = await pipe.execute() if ids else []
    return {channel: _decoder.decode(raw) for channel, raw in zip(ids, found, strict=True) if raw}


async def change(
    client: RedisClient, channel: str, rule: Callable[[Standing | None], Standing]
) -> Standing:
    """The channel's standing becomes `rule(current)`; its display phone number is
    indexed. A try that lost a race to another writer reads again."""
    key = keys.standing(channel)
    async with client.pipeline(transaction=True) as pipe:
        for _ in range(MAX_ATTEMPTS):
            await pipe.watch(key)
            raw = await pipe.get(key)
            new = rule(None if raw is None else _decoder.decode(raw))
            pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            pipe.set(key, msgspec.json.encode(new))
            if new.display_phone_number:
                pipe.hset(keys.NUMBERS, digits(new.display_phone_number), channel)
            try:
                await pipe.execute()
            except WatchError:
                continue
            return new
    raise WatchError(
        f"standing of channel {channel} changed under every one of {MAX_ATTEMPTS} tries"
    )


async def channel_of_number(client: RedisClient, display_phone_number: str) -> str | None:
    found = await client.hget(keys.NUMBERS, digits(display_phone_number))
    return None if found is None else as_text(found)


async def apply_updates(client: RedisClient, updates: Iterable[Update], now: float) -> list[bool]:
    """Each webhook update applied, in order, to the channel whose number it names;
    whether each was: False for a number no channel is known by (its standing was never
    read: a refresh learns the display phone number)."""
    applied: list[bool] = []
    for update in updates:
        channel = await channel_of_number(client, update.display_phone_number)
        if channel is not None:
            await change(client, channel, _rule(update, now))
        applied.append(channel is not None)
    return applied


def _rule(update: Update, now: float) -> Callable[[Standing | None], Standing]:
    def rule(current: Standing | None) -> Standing:
        base = current or Standing(display_phone_number=update.display_phone_number)
        if isinstance(update, NameUpdate):
            return after_name_update(base, update, now)
        return after_quality_update(base, update, now)

    return rule


async def save_read(
    client: RedisClient, channel: str, fields: NumberFields, now: float
) -> Standing:
    """What a Graph API read of the number said becomes its standing."""
    return await change(client, channel, lambda current: from_graph(fields, now, current))
