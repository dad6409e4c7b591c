"""What the /v1 API reads from the process that mounts it. The composer (the receiver)
sets these on its own app, where the API's handlers find them through
`request.config_dict`; the API's sub-app holds only what it is given at composition."""

from collections.abc import Callable

from aiohttp import web

from api.feed import FeedHub
from mediastore import MediaStore
from parley.channels import Channel
from parley.graph import GraphClient
from parley.producer import EventProducer
from parley.redis import RedisClient
from parley.settings import Settings
from store.directory import Directory
from store.presence import PresenceStore
from store.reader import Reader
from store.routing import RoutingStore
from store.sessions import Sessions

SETTINGS = web.AppKey("settings", Settings)
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("clock")
REDIS = web.AppKey("redis", RedisClient)
READER = web.AppKey("reader", Reader)
DIRECTORY = web.AppKey("directory", Directory)
PRODUCER = web.AppKey("producer", EventProducer)
GRAPH = web.AppKey("graph", GraphClient)
SESSIONS = web.AppKey("sessions", Sessions)
PRESENCE = web.AppKey("presence", PresenceStore)  # users' availability
ROUTING = web.AppKey("routing", RoutingStore)  # capacities, loads, the router's wake-ups
MEDIA = web.AppKey("media", MediaStore)  # customers' and agents' files
# The Graph API token of an active channel (None: not active), for the calls the API
# makes on a channel's behalf (syncing its templates).
TOKENS: web.AppKey[Callable[[str], str | None]] = web.AppKey("tokens")
FEED_HUB = web.AppKey("feed_hub", FeedHub)  # the process's one reader of the change feeds
# Called with a channel that registration just made active (the receiver then takes its
# webhooks); held by the sub-app.
ON_CHANNEL_ACTIVE: web.AppKey[Callable[[Channel], None]] = web.AppKey("on_channel_active")
