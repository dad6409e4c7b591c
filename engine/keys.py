"""Every Redis key Parley uses, built in one place.

The hash tag rule: every key of a channel carries `{phone_number_id}`, so all keys one
script touches (a conversation, its channel's queues, its dedupe set) hash to one slot
and the same scripts run on one Redis or a Redis Cluster. The cost: one channel lives on
one cluster node; channels, not conversations, are what spreads across a cluster.
"""

from engine.model import Queue

PREFIX = "parley"
# Every channel id that has settings; the sweeper and the metrics walk it. No hash tag:
# no script touches it.
CHANNELS = f"{PREFIX}:channels"

# Event ids applied (or decided) within this long are refused as duplicates. Meta
# retries a webhook for up to 7 days; one more day covers a retry's own journey. Kafka's
# topic retention must not exceed it, or a replay from offset 0 could apply an event
# whose id was forgotten.
DEDUPE_RETENTION_S = 8 * 86400


def tag(channel: str) -> str:
    return f"{PREFIX}:{{{channel}}}"


def conversation(channel: str, wa_id: str) -> str:
    """Hash: q (queue), a (assignee), la (last activity), oa (cycle opened at),
    lc (last customer message), fr (first response), v (version)."""
    return f"{tag(channel)}:c:{wa_id}"


def queue(channel: str, name: Queue) -> str:
    """Sorted set of wa_ids in that queue, scored by last activity."""
    return f"{tag(channel)}:q:{name.value}"


def queues(channel: str) -> list[str]:
    """The four queue keys in Queue order (scripts index them that way)."""
    return [queue(channel, name) for name in Queue]


def seen(channel: str) -> str:
    """Sorted set of event ids already decided, scored by when Parley received them."""
    return f"{tag(channel)}:seen"


def tags(channel: str, wa_id: str) -> str:
    return f"{tag(channel)}:tags:{wa_id}"


def topics(channel: str, wa_id: str) -> str:
    return f"{tag(channel)}:topics:{wa_id}"


def notes(channel: str, wa_id: str) -> str:
    """List of JSON notes, oldest first."""
    return f"{tag(channel)}:notes:{wa_id}"


def messages(channel: str, wa_id: str) -> str:
    """Hash of our sent messages' wamid -> delivery status."""
    return f"{tag(channel)}:msgs:{wa_id}"


def settings(channel: str) -> str:
    """Hash of the channel's inbox settings (see engine/channel_store.py)."""
    return f"{tag(channel)}:settings"
