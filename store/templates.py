"""A channel's message templates (HSM) in Redis: registered by admins, their status and
category kept up to date by Meta's `message_template_status_update` and
`template_category_update` webhooks.

One hash per channel (`keys.templates`), field "<name>:<language>" -> the template as
JSON. Only an APPROVED template may be sent outside the 24-hour window.

Templates belong to a WhatsApp Business Account (WABA): a webhook names the account,
and changes the templates of the channels whose settings name that account, only.
"""

import asyncio
from collections.abc import Iterable
from typing import Any

import msgspec
from redis.exceptions import WatchError

from parley.graph import TemplateDefinition
from parley.redis import RedisClient
from store import _keys as keys
from store.channels import channels_by_waba

APPROVED = "APPROVED"
# Tries at one channel's optimistic transaction before giving up (a RedisError, so the
# webhook is answered 503 and Meta sends it again). Each failed try means another
# writer's transaction succeeded, so this is only reached under a flood of them.
MAX_ATTEMPTS = 100


class Template(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    language: str  # e.g. "en_US"
    category: str  # MARKETING, UTILITY or AUTHENTICATION
    status: str  # APPROVED, PENDING, REJECTED, PAUSED, DISABLED...
    reason: str | None = None  # Meta's, when rejected or paused
    updated_at: float
    # As the business account lists them (HEADER, BODY, FOOTER, BUTTONS): what a send's
    # variables are checked against. Empty for a template registered by hand.
    components: list[dict[str, Any]] = []
    id: str | None = None  # Meta's, once the business account has it


class TemplateUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """What a template webhook says about one template of the business account
    `waba_id` (None: the webhook named none, and nothing changes). A status update
    gives `status` (and `reason`, None when Meta gave none) and usually `category`; a
    category update gives only `category`."""

    waba_id: str | None
    name: str
    language: str
    status: str | None = None
    reason: str | None = None
    category: str | None = None


_decoder = msgspec.json.Decoder(Template)


def _field(name: str, language: str) -> str:
    return f"{name}:{language}"


async def save_template(client: RedisClient, channel: str, template: Template) -> None:
    field = _field(template.name, template.language)
    await client.hset(keys.templates(channel), field, msgspec.json.encode(template))


async def delete_template(client: RedisClient, channel: str, name: str, language: str) -> bool:
    return bool(await client.hdel(keys.templates(channel), _field(name, language)))


async def replace_templates(client: RedisClient, channel: str, found: Iterable[Template]) -> int:
    """The channel's templates become exactly `found` (the business account's list, which
    is the truth: a template deleted there can no longer be sent), in one transaction;
    the number kept."""
    key = keys.templates(channel)
    kept = {_field(t.name, t.language): t for t in found}
    async with client.pipeline(transaction=True) as pipe:
        pipe.delete(key)
        if kept:
            pipe.hset(key, mapping={f: msgspec.json.encode(t) for f, t in kept.items()})
        await pipe.execute()
    return len(kept)


def from_definitions(definitions: Iterable[TemplateDefinition], now: float) -> list[Template]:
    """The business account's templates as a channel keeps them."""
    return [
        Template(
            name=d.name,
            language=d.language,
            category=d.category,
            status=d.status,
            updated_at=now,
            components=d.components,
            id=d.id,
        )
        for d in definitions
    ]


async def templates(client: RedisClient, channel: str) -> list[Template]:
    found = await client.hvals(keys.templates(channel))
    return sorted((_decoder.decode(raw) for raw in found), key=lambda t: (t.name, t.language))


async def template(client: RedisClient, channel: str, name: str, language: str) -> Template | None:
    raw = await client.hget(keys.templates(channel), _field(name, language))
    return None if raw is None else _decoder.decode(raw)


async def apply_updates(client: RedisClient, updates: Iterable[TemplateUpdate], now: float) -> int:
    """Apply every update to the template it names on each channel of its business
    account that registered it; the number of templates changed (one per channel and
    template, however many updates named it). Unregistered templates, unknown accounts,
    updates naming no account and updates giving neither a status nor a category change
    nothing.

    Round trips: two to find the channels of every account, then, per channel concerned
    (concurrently), a WATCH, one read and one transaction; a try that lost a race to
    another writer of the channel's templates reads again."""
    named = [
        update
        for update in updates
        if update.waba_id is not None and (update.status is not None or update.category is not None)
    ]
    if not named:
        return 0
    by_waba = await channels_by_waba(client)
    per_channel: dict[str, list[TemplateUpdate]] = {}
    for update in named:
        for channel in by_waba.get(update.waba_id or "", []):
            per_channel.setdefault(channel, []).append(update)
    counts = await asyncio.gather(
        *(_apply_on_channel(client, channel, its, now) for channel, its in per_channel.items())
    )
    return sum(counts)


async def _apply_on_channel(
    client: RedisClient, channel: str, updates: list[TemplateUpdate], now: float
) -> int:
    """`updates` applied, in order, to the channel's templates in one optimistic
    transaction: WATCH the hash, read the templates named, write the changed ones only
    if nothing else wrote the hash meanwhile (an admin, another webhook), else again.
    The hash is one key of the channel, so this works on a Redis Cluster too."""
    key = keys.templates(channel)
    fields = list(dict.fromkeys(_field(update.name, update.language) for update in updates))
    async with client.pipeline(transaction=True) as pipe:
        for _ in range(MAX_ATTEMPTS):
            await pipe.watch(key)
            found = await pipe.hmget(key, fields)
            current = {
                field: _decoder.decode(raw)
                for field, raw in zip(fields, found, strict=True)
                if raw is not None
            }
            changed: dict[str, Template] = {}
            for update in updates:
                field = _field(update.name, update.language)
                registered = changed.get(field) or current.get(field)
                if registered is not None:
                    changed[field] = _updated(registered, update, now)
            if not changed:
                return 0  # leaving the block unwatches
            pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            pipe.hset(key, mapping={f: msgspec.json.encode(t) for f, t in changed.items()})
            try:
                await pipe.execute()
            except WatchError:
                continue
            return len(changed)
    raise WatchError(
        f"templates of channel {channel} changed under every one of {MAX_ATTEMPTS} tries"
    )


def _updated(template: Template, update: TemplateUpdate, now: float) -> Template:
    changes: dict[str, object] = {"updated_at": now}
    if update.status is not None:
        changes["status"] = update.status
        changes["reason"] = update.reason
    if update.category is not None:
        changes["category"] = update.category
    return msgspec.structs.replace(template, **changes)
