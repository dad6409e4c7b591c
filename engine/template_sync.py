"""Templates synced from each WhatsApp Business Account on a schedule: Meta's webhooks
say when a template's status changes, but not when one is created or edited in the
WhatsApp Manager, so the list itself is read now and then (`template_sync_s`)."""

import logging
import time
from collections.abc import Awaitable, Callable

from parley.graph import GraphClient, GraphError
from parley.redis import RedisClient
from store.channels import channels_by_waba
from store.templates import from_definitions, replace_templates

log = logging.getLogger(__name__)


async def sync_all(
    client: RedisClient,
    graph: GraphClient,
    token: Callable[[str], Awaitable[str | None]],
    clock: Callable[[], float] = time.time,
) -> int:
    """Every account's list, read once with the token of one of its active channels,
    becomes the templates of each of its channels; the number of accounts synced. An
    account Meta refuses or does not answer for is logged and left as it was."""
    synced = 0
    for waba, channels in (await channels_by_waba(client)).items():
        tokens = [t for channel in channels if (t := await token(channel))]
        if not tokens:
            continue
        try:
            definitions = await graph.templates(waba, tokens[0])
        except GraphError as error:
            log.warning("templates not synced", extra={"waba": waba, "reason": str(error)})
            continue
        kept = from_definitions(definitions, clock())
        for channel in channels:
            await replace_templates(client, channel, kept)
        synced += 1
    return synced
