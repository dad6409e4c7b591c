"""Channel settings in Redis: seeded from the channels file, read by the engine."""

from collections.abc import Mapping

from engine import keys
from parley.channels import Channel, ChannelSettings
from parley.redis import RedisClient, as_text

OFF = "off"


def encode_settings(settings: ChannelSettings) -> dict[str, str]:
    return {
        "display_name": settings.display_name,
        "auto_assign": "1" if settings.auto_assign else "0",
        "auto_resolve_new_s": _period(settings.auto_resolve_new_s),
        "auto_resolve_pending_s": _period(settings.auto_resolve_pending_s),
    }


def decode_settings(fields: Mapping[bytes | str, bytes | str]) -> ChannelSettings | None:
    """Settings from a settings hash; None when the channel has none."""
    if not fields:
        return None
    text = {as_text(k): as_text(v) for k, v in fields.items()}
    return ChannelSettings(
        display_name=text["display_name"],
        auto_assign=text.get("auto_assign", "1") == "1",
        auto_resolve_new_s=_seconds(text.get("auto_resolve_new_s", OFF)),
        auto_resolve_pending_s=_seconds(text.get("auto_resolve_pending_s", OFF)),
    )


async def save_channel_settings(
    client: RedisClient, channel: str, settings: ChannelSettings
) -> None:
    fields = [part for pair in encode_settings(settings).items() for part in pair]
    await client.hset(keys.settings(channel), items=fields)
    await client.sadd(keys.CHANNELS, channel)


async def seed_channels(client: RedisClient, channels: list[Channel]) -> None:
    """Upsert every configured channel's settings (the file wins at start-up)."""
    for channel in channels:
        await save_channel_settings(client, channel.id, channel.settings)


async def load_channel_settings(client: RedisClient, channel: str) -> ChannelSettings | None:
    return decode_settings(await client.hgetall(keys.settings(channel)))


async def channel_ids(client: RedisClient) -> list[str]:
    members = await client.smembers(keys.CHANNELS)
    return sorted(as_text(member) for member in members)


def _period(seconds: int | None) -> str:
    return OFF if seconds is None else str(seconds)


def _seconds(text: str) -> int | None:
    return None if text == OFF else int(text)
