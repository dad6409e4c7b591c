"""Every Redis key Parley uses, built in one place.

The hash tag rule: every key of a channel carries `{phone_number_id}`, so all keys one
script touches (a conversation, its channel's queues, its dedupe set) hash to one slot
and the same scripts run on one Redis or a Redis Cluster. The cost: one channel lives on
one cluster node; channels, not conversations, are what spreads across a cluster.
"""

import functools
from datetime import date

from parley.state import Queue

PREFIX = "parley"
# Every channel id that has settings; the sweeper and the metrics walk it. No hash tag:
# no script touches it.
CHANNELS = f"{PREFIX}:channels"

# Event ids decided within this long are refused as duplicates. Meta retries a webhook
# for up to 7 days; one more day covers a retry's own journey. Kafka's topic retention
# must not exceed it, or a replay from offset 0 could apply an event whose id was
# forgotten.
DEDUPE_RETENTION_S = 8 * 86400
DAY_S = 86400
# Ids live in one set per day of receipt, which expires DEDUPE_RETENTION_S after its
# day ends: no sweep needed, and a set entry costs a third of a sorted-set one. An id is
# looked for in the sets of the DEDUPE_DAYS days up to the newest event's day.
DEDUPE_DAYS = DEDUPE_RETENTION_S // DAY_S + 2


@functools.lru_cache(maxsize=1024)
def tag(channel: str) -> str:
    return f"{PREFIX}:{{{channel}}}"


def conversation(channel: str, customer: str) -> str:
    """Hash of the customer's conversation and record (engine/codec.py names the
    fields): q (queue), a (assignee), la (last activity), oa (cycle opened at), lc (last
    customer message), fr (first response), li (last inbound wamid), rd (marked read), sz
    (snoozed until), oh (out-of-hours reply sent), sl (SLA deadlines, JSON), ha (handed by routing at,
    unanswered), ra (reassign if unanswered at), po (passed over by), v (version); p, u, pu, un, n, g, mk (phone,
    BSUID, parent BSUID, username, name, group, marketing preference)."""
    return f"{tag(channel)}:c:{customer}"


def aliases(channel: str) -> str:
    """Hash of the customers' identifiers -> their id (engine/identity.py)."""
    return f"{tag(channel)}:ids"


@functools.lru_cache(maxsize=1024)
def queue(channel: str, name: Queue) -> str:
    """Sorted set of wa_ids in that queue, scored by last activity."""
    return f"{tag(channel)}:q:{name.value}"


def timers(channel: str) -> str:
    """Sorted set of the customers whose conversation has a timer (a snooze's end),
    scored by when the next one fires (ms): the sweeper reads what is due by score."""
    return f"{tag(channel)}:timers"


def waiting(channel: str) -> str:
    """Sorted set of the customers whose conversation is in New, scored by when its
    cycle opened (ms): the routing pool, served oldest first."""
    return f"{tag(channel)}:waiting"


def load(channel: str) -> str:
    """Sorted set of agents by how many Open conversations they hold on the channel
    (an agent at none is not in it)."""
    return f"{tag(channel)}:load"


def held(channel: str) -> str:
    """Sorted set of agents by how many conversations (Open or Pending) they hold on
    the channel: whose to look at when an agent goes offline."""
    return f"{tag(channel)}:held"


def assigned(channel: str, agent: str) -> str:
    """Sorted set of the customers whose conversation `agent` holds on the channel,
    scored by when they were handed it (ms)."""
    return f"{tag(channel)}:assigned:{agent}"


def handed(channel: str) -> str:
    """Sorted set of agents by when they were last handed a conversation on the
    channel (ms): longest idle first on a tie in load."""
    return f"{tag(channel)}:handed"


def returned(channel: str) -> str:
    """Sorted set of the customers who wrote to a Pending conversation with an
    assignee (ms): the router releases those whose assignee is offline."""
    return f"{tag(channel)}:returned"


def seen(channel: str, day: int) -> str:
    """Set of the digests of event ids decided that Parley received on `day`."""
    return f"{tag(channel)}:seen:{day}"


def receipt_day(received_at: float) -> int:
    return int(received_at // DAY_S)


def seen_window(channel: str, newest_day: int) -> tuple[int, list[str]]:
    """The first day of the dedupe window ending on `newest_day`, and its sets, oldest
    first."""
    first = newest_day - DEDUPE_DAYS + 1
    return first, [seen(channel, day) for day in range(first, newest_day + 1)]


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


def log(channel: str, wa_id: str) -> str:
    """List of the conversation's recent messages (JSON), oldest first, capped."""
    return f"{tag(channel)}:log:{wa_id}"


def report(channel: str, day: date) -> str:
    """Hash of a day's report counters (see engine/reports.py); days are UTC."""
    return f"{tag(channel)}:report:{day.isoformat()}"


def result(channel: str, event_id: str) -> str:
    """String: what became of an agent's action (JSON), kept ten minutes."""
    return f"{tag(channel)}:result:{event_id}"


def wake(channel: str, event_id: str) -> str:
    """List the API blocks on (BLPOP) while it waits for an action to be applied."""
    return f"{tag(channel)}:wake:{event_id}"


def names(channel: str) -> str:
    """Sorted set (all scores 0) of "<name in lower case>\\0<customer id>": the
    customers by name and username, searched by prefix (ZRANGEBYLEX)."""
    return f"{tag(channel)}:names"


def saved_replies(channel: str) -> str:
    """Hash of the channel's saved replies: name -> text."""
    return f"{tag(channel)}:saved"


def fetches(channel: str) -> str:
    """Stream of media waiting to be fetched from the Graph API (store/fetches.py)."""
    return f"{tag(channel)}:fetch"


# Changes kept on each channel's feed (about: Redis trims whole nodes): what a client
# away that long can still resume from; ~200 bytes each.
FEED_LENGTH = 10_000


def feed(channel: str) -> str:
    """Stream of the channel's applied changes (store.changes.Change), capped."""
    return f"{tag(channel)}:feed"


def outbox(channel: str) -> str:
    """Stream of replies waiting to be sent, in the order the engine applied them."""
    return f"{tag(channel)}:outbox"


def registration(channel: str) -> str:
    """Hash of a number's registration: status, requested_at, its Graph token..."""
    return f"{tag(channel)}:registration"


def standing(channel: str) -> str:
    """The number's standing with Meta as JSON (parley/standing.py)."""
    return f"{tag(channel)}:standing"


# Display phone number (digits) -> channel id: Meta's number webhooks name a number by
# its display phone number, not its id. No hash tag: no script touches it.
NUMBERS = f"{PREFIX}:numbers"


def templates(channel: str) -> str:
    """Hash of the channel's message templates: "name:language" -> JSON."""
    return f"{tag(channel)}:templates"


# The directory (users, teams, memberships) shares one hash tag, so one MULTI/EXEC with
# WATCH can span it on a Redis Cluster too (store/directory.py).
DIRECTORY = f"{PREFIX}:{{directory}}"
USERS = f"{DIRECTORY}:users"  # user id -> JSON of the user
TOKENS = f"{DIRECTORY}:tokens"  # token digest -> user id (tokens are never stored)
TEAMS = f"{DIRECTORY}:teams"  # team id -> JSON of the team


# Each user's availability (user id -> JSON, store/presence.py), and the online and
# away ones by when a live stream of theirs was last seen (ms).
AVAILABILITY = f"{DIRECTORY}:availability"
PRESENT = f"{DIRECTORY}:present"


# Each user's own limit of Open conversations across channels (user id -> count); none:
# only the channels' capacities.
CAPACITY = f"{DIRECTORY}:capacity"
# One router at a time decides (a lease: SET NX PX), so that two engines never hand the
# same agent more than their capacity between them.
ROUTING_LOCK = f"{PREFIX}:routing:lock"
# Pub/sub channel: something routing depends on changed (a channel id, or "*").
ROUTING_WAKE = f"{PREFIX}:routing:wake"


def members(team_id: str) -> str:
    """Set of the team's user ids."""
    return f"{DIRECTORY}:members:{team_id}"


def memberships(user_id: str) -> str:
    """Set of the user's team ids (the same facts as `members`, indexed the other way)."""
    return f"{DIRECTORY}:memberships:{user_id}"


def access(channel: str) -> str:
    """Hash of the channel's grants: `u:<user>`, `t:<team>`, `all_users`, `all_teams` -> role."""
    return f"{tag(channel)}:access"


def session(digest: str) -> str:
    """String: a browser session (JSON), by the SHA-256 of its id; expires by itself."""
    return f"{DIRECTORY}:session:{digest}"
