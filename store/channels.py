"""Channel settings in Redis: seeded from the channels file, edited through the API,
read by the engine on every batch.

The file creates a channel's settings; after that they belong to the API. Seeding only
fills fields a channel does not have yet, so a restart never undoes an admin's edit (and
a setting added in a later version gets its default from the file).

`waba_id` is optional: absent or empty means None. Seeding writes it only when the file
gives one (so a channel first seeded without one gets it when the file later names one),
and an admin clearing it stores it empty (so a restart does not bring the file's back).
"""

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import msgspec

from parley.business_hours import BusinessHours, OutOfHoursReply
from parley.channels import DEFAULT_SEND_RATE, Channel, ChannelSettings
from parley.redis import RedisClient, as_text
from parley.routing import RoutingSettings
from parley.sla import SlaTargets
from store import _keys as keys

_T = TypeVar("_T")
OFF = "off"
WABA_ID = "waba_id"
APP_ID = "app_id"
# JSON, "" when unset (an admin's clearing survives a restart, as waba_id's does).
HOURS = "business_hours"
OUT_OF_HOURS = "out_of_hours_reply"
SLA = "sla"
ROUTING = "routing"


def encode_settings(settings: ChannelSettings) -> dict[str, str]:
    return {
        "display_name": settings.display_name,
        "auto_assign": "1" if settings.auto_assign else "0",
        "auto_resolve_new_s": _period(settings.auto_resolve_new_s),
        "auto_resolve_pending_s": _period(settings.auto_resolve_pending_s),
        "send_rate": _period(settings.send_rate),
        WABA_ID: settings.waba_id or "",
        APP_ID: settings.app_id or "",
        "read_receipts": "1" if settings.read_receipts else "0",
        HOURS: _json(settings.business_hours),
        OUT_OF_HOURS: _json(settings.out_of_hours_reply),
        SLA: _json(settings.sla),
        ROUTING: _json(settings.routing),
    }


def decode_settings(fields: Mapping[Any, Any]) -> ChannelSettings | None:
    """Settings from a settings hash; None when the channel has none."""
    if not fields:
        return None
    text = {as_text(k): as_text(v) for k, v in fields.items()}
    return ChannelSettings(
        display_name=text["display_name"],
        auto_assign=text.get("auto_assign", "1") == "1",
        auto_resolve_new_s=_seconds(text.get("auto_resolve_new_s", OFF)),
        auto_resolve_pending_s=_seconds(text.get("auto_resolve_pending_s", OFF)),
        send_rate=_seconds(text.get("send_rate", str(DEFAULT_SEND_RATE))),
        waba_id=text.get(WABA_ID) or None,
        app_id=text.get(APP_ID) or None,
        read_receipts=text.get("read_receipts", "1") == "1",
        business_hours=_decode(text.get(HOURS), BusinessHours),
        out_of_hours_reply=_decode(text.get(OUT_OF_HOURS), OutOfHoursReply),
        sla=_decode(text.get(SLA), SlaTargets),
        routing=_decode(text.get(ROUTING), RoutingSettings),
    )


async def save_channel_settings(
    client: RedisClient, channel: str, settings: ChannelSettings
) -> None:
    fields = [part for pair in encode_settings(settings).items() for part in pair]
    await client.hset(keys.settings(channel), items=fields)
    await client.sadd(keys.CHANNELS, channel)


async def update_channel_settings(
    client: RedisClient, channel: str, current: ChannelSettings, changed: ChannelSettings
) -> None:
    """Write only the fields that differ, so two admins changing different settings at
    the same time both keep their change."""
    before = encode_settings(current)
    fields = [
        part
        for name, value in encode_settings(changed).items()
        if before.get(name) != value
        for part in (name, value)
    ]
    if fields:
        await client.hset(keys.settings(channel), items=fields)


async def seed_channels(client: RedisClient, channels: list[Channel]) -> None:
    """Give every configured channel the file's settings for the fields it has none of."""
    for channel in channels:
        pipe = client.pipeline(transaction=False)
        for field, value in encode_settings(channel.settings).items():
            if field in (WABA_ID, APP_ID, HOURS, OUT_OF_HOURS, SLA, ROUTING) and not value:
                continue  # the file names none: leave it for a later file (or the API)
            pipe.hsetnx(keys.settings(channel.id), field, value)
        pipe.sadd(keys.CHANNELS, channel.id)
        await pipe.execute()


async def load_channel_settings(client: RedisClient, channel: str) -> ChannelSettings | None:
    return decode_settings(await client.hgetall(keys.settings(channel)))


async def channel_ids(client: RedisClient) -> list[str]:
    members = await client.smembers(keys.CHANNELS)
    return sorted(as_text(member) for member in members)


async def channels_by_waba(client: RedisClient) -> dict[str, list[str]]:
    """Every channel that has a business account, by that account's id: two round
    trips, the channel ids and then all their accounts in one pipeline."""
    ids = await channel_ids(client)
    if not ids:
        return {}
    pipe = client.pipeline(transaction=False)
    for channel in ids:
        pipe.hget(keys.settings(channel), WABA_ID)
    found: dict[str, list[str]] = {}
    for channel, waba in zip(ids, await pipe.execute(), strict=True):
        if waba:
            found.setdefault(as_text(waba), []).append(channel)
    return found


def _period(seconds: int | None) -> str:
    return OFF if seconds is None else str(seconds)


def _seconds(text: str) -> int | None:
    return None if text == OFF else int(text)


async def is_channel(client: RedisClient, channel: str) -> bool:
    """Whether `channel` has settings (from the file, or registered and active)."""
    return bool(await client.sismember(keys.CHANNELS, channel))


async def settings_of(client: RedisClient, channels: Sequence[str]) -> list[ChannelSettings | None]:
    """The settings of each channel (None where it has none), in one round trip."""
    if not channels:
        return []
    pipe = client.pipeline(transaction=False)
    for channel in channels:
        pipe.hgetall(keys.settings(channel))
    return [decode_settings(fields) for fields in await pipe.execute()]


def _json(value: BusinessHours | OutOfHoursReply | SlaTargets | RoutingSettings | None) -> str:
    return "" if value is None else msgspec.json.encode(value).decode()


def _decode(text: str | None, kind: type[_T]) -> _T | None:
    return msgspec.json.decode(text, type=kind) if text else None
