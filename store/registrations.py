"""Numbers registered through the API: their registration record (parley/registration.py
has the lifecycle's rules). A registered number's secrets live here, so Redis is
protected as the channels file is."""

import msgspec

from parley.redis import RedisClient
from parley.registration import Registration
from store import _keys as keys

_decoder = msgspec.json.Decoder(Registration)
RECORD = "record"


async def load(client: RedisClient, channel: str) -> Registration | None:
    raw = await client.hget(keys.registration(channel), RECORD)
    return None if raw is None else _decoder.decode(raw)


async def save(client: RedisClient, registration: Registration) -> None:
    await client.hset(
        keys.registration(registration.channel), RECORD, msgspec.json.encode(registration)
    )


async def create(client: RedisClient, registration: Registration) -> bool:
    """False when the number already has a registration."""
    return bool(
        await client.hsetnx(
            keys.registration(registration.channel), RECORD, msgspec.json.encode(registration)
        )
    )
