"""Template webhooks change only the templates of the business account (WABA) they name.

Meta's `message_template_status_update` and `template_category_update` belong to a
WhatsApp Business Account: `entry[].id`. A channel (one number) names its account in its
settings; an update changes a registered template on that account's channels only.
"""

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from ingest.meta_payload import decode_webhook
from ingest.normalize import normalize
from parley.channels import Channel, ChannelSettings
from parley.redis import connect_redis
from store import _keys as keys
from store.channels import (
    channels_by_waba,
    load_channel_settings,
    save_channel_settings,
    seed_channels,
    update_channel_settings,
)
from store.templates import Template, TemplateUpdate, apply_updates, save_template, template
from tests.conftest import EU

PAYLOAD = Path(__file__).parent / "payloads" / "template_updates_two_wabas.json"
W1 = "102290129340398"  # the payload's first entry: abandoned_cart en_US REJECTED
W2 = "209876543210987"  # its second: welcome_template pt_BR UTILITY -> MARKETING
A1, A2, B, NONE = "106540352242001", "106540352242002", "106540352242003", "106540352242004"
T0, NOW = 1_700_000_000.0, 1_749_416_400.0

CART = Template(
    name="abandoned_cart", language="en_US", category="MARKETING", status="APPROVED", updated_at=T0
)
WELCOME = Template(
    name="welcome_template", language="pt_BR", category="UTILITY", status="APPROVED", updated_at=T0
)


async def add_channel(client: Redis, channel: str, waba: str | None, *found: Template) -> None:
    await save_channel_settings(
        client, channel, ChannelSettings(display_name=f"Channel {channel}", waba_id=waba)
    )
    for registered in found:
        await save_template(client, channel, registered)


@pytest.fixture
async def world(redis: Redis) -> Redis:
    """Two channels on W1 and one on W2, all with both templates; one channel names no
    account."""
    for channel, waba in [(A1, W1), (A2, W1), (B, W2), (NONE, None)]:
        await add_channel(redis, channel, waba, CART, WELCOME)
    return redis


async def snapshot(client: Redis, *channels: str) -> dict[str, dict[Any, Any]]:
    return {channel: await client.hgetall(keys.templates(channel)) for channel in channels}


def from_payload() -> list[TemplateUpdate]:
    batch = normalize(decode_webhook(PAYLOAD.read_bytes()), received_at=NOW)
    return batch.template_updates


async def test_the_payload_reads_as_one_update_per_account() -> None:
    assert from_payload() == [
        TemplateUpdate(
            waba_id=W1,
            name="abandoned_cart",
            language="en_US",
            status="REJECTED",
            reason="INVALID_FORMAT",
            category="MARKETING",
        ),
        TemplateUpdate(waba_id=W2, name="welcome_template", language="pt_BR", category="MARKETING"),
    ]


async def test_each_entry_changes_the_templates_of_its_accounts_channels_only(
    world: Redis,
) -> None:
    assert await apply_updates(world, from_payload(), NOW) == 3
    rejected = Template(
        name="abandoned_cart",
        language="en_US",
        category="MARKETING",
        status="REJECTED",
        reason="INVALID_FORMAT",
        updated_at=NOW,
    )
    for channel in (A1, A2):  # W1's channels: the cart is rejected, welcome untouched
        assert await template(world, channel, "abandoned_cart", "en_US") == rejected
        assert await template(world, channel, "welcome_template", "pt_BR") == WELCOME
    # W2's channel: the welcome template is recategorized, the cart stays approved.
    assert await template(world, B, "abandoned_cart", "en_US") == CART
    recategorized = Template(
        name="welcome_template",
        language="pt_BR",
        category="MARKETING",
        status="APPROVED",
        updated_at=NOW,
    )
    assert await template(world, B, "welcome_template", "pt_BR") == recategorized
    # A channel that names no account is never touched.
    for found, registered in [("abandoned_cart", CART), ("welcome_template", WELCOME)]:
        language = registered.language
        assert await template(world, NONE, found, language) == registered


async def test_a_category_update_changes_only_the_category(world: Redis) -> None:
    paused = Template(
        name="abandoned_cart",
        language="en_US",
        category="MARKETING",
        status="PAUSED",
        reason="LOW_QUALITY",
        updated_at=T0,
    )
    await save_template(world, A1, paused)
    update = TemplateUpdate(waba_id=W1, name="abandoned_cart", language="en_US", category="UTILITY")
    assert await apply_updates(world, [update], NOW) == 2
    assert await template(world, A1, "abandoned_cart", "en_US") == Template(
        name="abandoned_cart",
        language="en_US",
        category="UTILITY",
        status="PAUSED",
        reason="LOW_QUALITY",
        updated_at=NOW,
    )
    assert await template(world, A2, "abandoned_cart", "en_US") == Template(
        name="abandoned_cart",
        language="en_US",
        category="UTILITY",
        status="APPROVED",
        updated_at=NOW,
    )


async def test_a_status_without_a_reason_clears_the_old_reason_and_keeps_the_category(
    world: Redis,
) -> None:
    rejected = TemplateUpdate(
        waba_id=W2, name="welcome_template", language="pt_BR", status="REJECTED", reason="SCAM"
    )
    approved = TemplateUpdate(
        waba_id=W2, name="welcome_template", language="pt_BR", status="APPROVED"
    )
    assert await apply_updates(world, [rejected], NOW) == 1
    found = await template(world, B, "welcome_template", "pt_BR")
    assert found is not None and (found.status, found.reason) == ("REJECTED", "SCAM")
    assert await apply_updates(world, [approved], NOW + 1) == 1
    assert await template(world, B, "welcome_template", "pt_BR") == Template(
        name="welcome_template",
        language="pt_BR",
        category="UTILITY",
        status="APPROVED",
        reason=None,
        updated_at=NOW + 1,
    )


async def test_updates_in_one_call_apply_in_order_and_count_each_template_once(
    world: Redis,
) -> None:
    updates = [
        TemplateUpdate(waba_id=W1, name="abandoned_cart", language="en_US", status="PAUSED"),
        TemplateUpdate(waba_id=W1, name="abandoned_cart", language="en_US", status="DISABLED"),
        TemplateUpdate(waba_id=W1, name="abandoned_cart", language="en_US", category="UTILITY"),
    ]
    assert await apply_updates(world, updates, NOW) == 2  # one template on each of A1, A2
    for channel in (A1, A2):
        found = await template(world, channel, "abandoned_cart", "en_US")
        assert found is not None
        assert (found.status, found.category, found.updated_at) == ("DISABLED", "UTILITY", NOW)


@pytest.mark.parametrize(
    "update",
    [
        TemplateUpdate(
            waba_id="999999999", name="abandoned_cart", language="en_US", status="PAUSED"
        ),
        TemplateUpdate(waba_id=W1, name="not_registered", language="en_US", status="PAUSED"),
        TemplateUpdate(waba_id=W1, name="abandoned_cart", language="pt_BR", status="PAUSED"),
        TemplateUpdate(waba_id=None, name="abandoned_cart", language="en_US", status="PAUSED"),
        TemplateUpdate(waba_id=W2, name="welcome_template", language="pt_BR"),  # says nothing
    ],
    ids=["unknown-account", "unregistered", "other-language", "no-account", "empty"],
)
async def test_an_update_that_names_nothing_registered_changes_nothing(
    world: Redis, update: TemplateUpdate
) -> None:
    before = await snapshot(world, A1, A2, B, NONE)
    assert await apply_updates(world, [update], NOW) == 0
    assert await snapshot(world, A1, A2, B, NONE) == before


async def test_nothing_is_read_or_written_without_updates(world: Redis) -> None:
    before = await snapshot(world, A1, A2, B, NONE)
    assert await apply_updates(world, [], NOW) == 0
    assert await apply_updates(world, iter([]), NOW) == 0
    assert await snapshot(world, A1, A2, B, NONE) == before


async def test_concurrent_updates_all_land(world: Redis) -> None:
    """Many calls at once, each reading and writing the same channels' templates: a
    status change and a category change of the same template must both survive (a
    read-modify-write that is not atomic loses one of them)."""
    names = [f"tpl_{n}" for n in range(25)]
    for channel in (A1, A2):
        for name in names:
            await save_template(
                world,
                channel,
                Template(
                    name=name,
                    language="en_US",
                    category="MARKETING",
                    status="PENDING",
                    updated_at=T0,
                ),
            )
    calls = []
    for n, name in enumerate(names):
        status = TemplateUpdate(
            waba_id=W1, name=name, language="en_US", status="APPROVED", reason=f"r{n}"
        )
        category = TemplateUpdate(waba_id=W1, name=name, language="en_US", category="UTILITY")
        calls += [apply_updates(world, [status], NOW), apply_updates(world, [category], NOW)]
    counts = await asyncio.gather(*calls)
    assert counts == [2] * len(calls)  # every call changed its template on A1 and A2
    for channel in (A1, A2):
        for n, name in enumerate(names):
            assert await template(world, channel, name, "en_US") == Template(
                name=name,
                language="en_US",
                category="UTILITY",
                status="APPROVED",
                reason=f"r{n}",
                updated_at=NOW,
            )
    # The other templates and the other account's channel are as they were.
    assert await template(world, A1, "abandoned_cart", "en_US") == CART
    for name in names:
        assert await template(world, B, name, "en_US") is None


async def test_an_update_waits_for_an_admin_writing_the_same_templates(world: Redis) -> None:
    """An admin re-registering templates while webhooks arrive: every write lands, the
    webhook's change on top of whatever template it read last."""
    update = TemplateUpdate(waba_id=W1, name="abandoned_cart", language="en_US", status="PAUSED")
    other = Template(
        name="other", language="en_US", category="UTILITY", status="APPROVED", updated_at=T0
    )
    writes = [save_template(world, A1, other) for _ in range(20)]
    counts = await asyncio.gather(
        *writes, *(apply_updates(world, [update], NOW) for _ in range(20))
    )
    assert counts[20:] == [2] * 20
    assert await template(world, A1, "other", "en_US") == other
    found = await template(world, A1, "abandoned_cart", "en_US")
    assert found is not None and found.status == "PAUSED"


# The account in a channel's settings


async def test_channels_are_found_by_account(world: Redis) -> None:
    assert await channels_by_waba(world) == {W1: [A1, A2], W2: [B]}


async def test_the_account_round_trips_and_an_admin_clearing_it_survives_a_restart(
    redis: Redis,
) -> None:
    def configured(waba: str | None) -> Channel:
        return Channel(
            id=EU.id,
            app_secret="s",
            verify_token="v",
            access_token="t",
            settings=ChannelSettings(display_name="Support EU", waba_id=waba),
        )

    # A file without an account seeds none; absent reads as None.
    await seed_channels(redis, [configured(None)])
    assert not await redis.hexists(keys.settings(EU.id), "waba_id")
    stored = await load_channel_settings(redis, EU.id)
    assert stored is not None and stored.waba_id is None
    assert await channels_by_waba(redis) == {}
    # A later file that names one fills it in (the field was missing)...
    await seed_channels(redis, [configured(W1)])
    stored = await load_channel_settings(redis, EU.id)
    assert stored is not None and stored.waba_id == W1
    # ...and does not overwrite what the API set.
    await update_channel_settings(
        redis, EU.id, stored, ChannelSettings(display_name="Support EU", waba_id=W2)
    )
    await seed_channels(redis, [configured(W1)])
    stored = await load_channel_settings(redis, EU.id)
    assert stored is not None and stored.waba_id == W2
    # An admin clearing it: a restart does not bring the file's back.
    await update_channel_settings(
        redis, EU.id, stored, ChannelSettings(display_name="Support EU", waba_id=None)
    )
    await seed_channels(redis, [configured(W1)])
    stored = await load_channel_settings(redis, EU.id)
    assert stored is not None and stored.waba_id is None
    assert await channels_by_waba(redis) == {}


async def test_template_updates_work_on_a_redis_cluster(redis_cluster_url: str) -> None:
    """Every channel's keys share its hash tag; the channels themselves spread over the
    nodes, so finding them crosses slots and each transaction stays in one."""
    client = connect_redis(redis_cluster_url)
    run = uuid.uuid4().int % 10**12
    waba, other = str(run), str(run + 1)
    channels = [str(10**14 + run * 10 + n) for n in range(6)]
    try:
        for n, channel in enumerate(channels):
            await add_channel(client, channel, waba if n < 5 else other, CART, WELCOME)
        update = TemplateUpdate(
            waba_id=waba, name="abandoned_cart", language="en_US", status="PAUSED"
        )
        counts = await asyncio.gather(*(apply_updates(client, [update], NOW) for _ in range(10)))
        assert counts == [5] * 10
        for channel in channels[:5]:
            found = await template(client, channel, "abandoned_cart", "en_US")
            assert found is not None and (found.status, found.updated_at) == ("PAUSED", NOW)
        assert await template(client, channels[5], "abandoned_cart", "en_US") == CART
    finally:
        for channel in channels:
            await client.delete(keys.settings(channel), keys.templates(channel))
            await client.srem(keys.CHANNELS, channel)
        await client.aclose()
