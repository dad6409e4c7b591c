"""Channel settings in Redis: seeded from the channels file, read by the engine."""

from parley.channels import Channel, ChannelSettings
from parley.redis import RedisClient

from engine import keys

OFF = "off"


def encode_settings(settings: ChannelSettings) -> dict[str, str]:
    return {
        "display_name": settings.display_name,
        "auto_assign": "1" if settings.auto_assign else "0",
        "auto_resolve_new_s": _period(settings.auto_resolve_new_s),
        "auto_resolve_pending_s": _period(settings.auto_resolve_pending_s),
    }


def decode_settings(fields: dict[bytes, bytes]) -> ChannelSettings | None:
    """Settings from a settings hash; None when the channel has none."""
    if not fields:
        return None
    text = {k.decode(): v.decode() for k, v in fields.items()}
    return ChannelSettings(
        display_name=text["display_name"],
        auto_assign=text.get("auto_assign", "1") == "1",
        auto_resolve_new_s=_seconds(text.get("auto_resolve_new_s", OFF)),
        auto_resolve_pending_s=_seconds(text.get("auto_resolve_pending_s", OFF)),
    )


async def save_channel_settings(client: RedisClient, channel: str, settings: ChannelSettings) -> None:
    await client.hset(keys.settings(channel), mapping=encode_settings(settings))  # type: ignore[misc]
    await client.sadd(keys.CHANNELS, channel)  # type: ignore[misc]


async def seed_channels(client: RedisClient, channels: list[Channel]) -> None:
    """Upsert every configured channel's settings (the file wins at start-up)."""
    for channel in channels:
        await save_channel_settings(client, channel.id, channel.settings)


async def load_channel_settings(client: RedisClient, channel: str) -> ChannelSettings | None:
    return decode_settings(await client.hgetall(keys.settings(channel)))  # type: ignore[misc]


async def channel_ids(client: RedisClient) -> list[str]:
    members = await client.smembers(keys.CHANNELS)  # type: ignore[misc]
    return sorted(member.decode() for member in members)


def _period(seconds: int | None) -> str:
    return OFF if seconds is None else str(seconds)


def _seconds(text: str) -> int | None:
    return None if text == OFF else int(text)
