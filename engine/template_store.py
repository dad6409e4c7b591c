"""A channel's message templates (HSM) in Redis: registered by admins, their status
kept up to date by Meta's `message_template_status_update` webhooks.

One hash per channel (`keys.templates`), field "<name>:<language>" -> the template as
JSON. Only an APPROVED template may be sent outside the 24-hour window.
"""

from collections.abc import Iterable

import msgspec

from engine import keys
from parley.redis import RedisClient

APPROVED = "APPROVED"


class Template(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    language: str  # e.g. "en_US"
    category: str  # MARKETING, UTILITY or AUTHENTICATION
    status: str  # APPROVED, PENDING, REJECTED, PAUSED, DISABLED...
    reason: str | None = None  # Meta's, when rejected or paused
    updated_at: float


class TemplateUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """What a status-update webhook says about one template."""

    name: str
    language: str
    status: str
    reason: str | None = None


_decoder = msgspec.json.Decoder(Template)


def _field(name: str, language: str) -> str:
    return f"{name}:{language}"


async def save_template(client: RedisClient, channel: str, template: Template) -> None:
    field = _field(template.name, template.language)
    await client.hset(keys.templates(channel), field, msgspec.json.encode(template))


async def delete_template(client: RedisClient, channel: str, name: str, language: str) -> bool:
    return bool(await client.hdel(keys.templates(channel), _field(name, language)))


async def templates(client: RedisClient, channel: str) -> list[Template]:
    found = await client.hvals(keys.templates(channel))
    return sorted((_decoder.decode(raw) for raw in found), key=lambda t: (t.name, t.language))


async def template(client: RedisClient, channel: str, name: str, language: str) -> Template | None:
    raw = await client.hget(keys.templates(channel), _field(name, language))
    return None if raw is None else _decoder.decode(raw)


async def apply_updates(
    client: RedisClient,
    channels: Iterable[str],
    updates: Iterable[TemplateUpdate],
    now: float,
) -> int:
    """Move every registered template an update names to its new status, on every
    channel that has it (templates belong to the business account, which channels
    share); the number of templates changed. Unregistered templates are left alone."""
    changed = 0
    channels = list(channels)
    for update in updates:
        for channel in channels:
            current = await template(client, channel, update.name, update.language)
            if current is None:
                continue
            await save_template(
                client,
                channel,
                msgspec.structs.replace(
                    current, status=update.status, reason=update.reason, updated_at=now
                ),
            )
            changed += 1
    return changed
