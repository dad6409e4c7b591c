"""Each active number's standing read from the Graph API on the template schedule
(`template_sync_s`): the webhooks move it between reads, but a number whose standing
was never read is not known by its display phone number, which those webhooks name."""

import logging
import time
from collections.abc import Awaitable, Callable

from parley.graph import GraphClient, GraphError
from parley.redis import RedisClient
from store.channels import channel_ids
from store.standing import save_read

log = logging.getLogger(__name__)


async def refresh_all(
    client: RedisClient,
    graph: GraphClient,
    token: Callable[[str], Awaitable[str | None]],
    clock: Callable[[], float] = time.time,
) -> int:
    """Reads every active channel's number; the number read. A number Meta refuses or
    does not answer for is logged and keeps its last standing."""
    refreshed = 0
    for channel in await channel_ids(client):
        secret = await token(channel)
        if secret is None:
            continue
        try:
            fields = await graph.number_fields(channel, secret)
        except GraphError as error:
            log.warning("standing not read", extra={"channel": channel, "reason": str(error)})
            continue
        await save_read(client, channel, fields, clock())
        refreshed += 1
    return refreshed
