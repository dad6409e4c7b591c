"""Typed keys for everything the receiver's aiohttp app holds. What it shares with the
/v1 API it mounts (settings, clock, Redis, the producer) is keyed once, in
api/appkeys.py, and the receiver sets those, with the API's own, when it composes the
app (ingest/app.py)."""

from aiohttp import web
from prometheus_client import CollectorRegistry

from api.appkeys import CLOCK, PRODUCER, REDIS, SETTINGS
from ingest.routing import ChannelRegistry
from metrics import IngestMetrics

__all__ = ["CHANNELS", "CLOCK", "METRICS", "PRODUCER", "REDIS", "REGISTRY", "SETTINGS"]

CHANNELS = web.AppKey("channels", ChannelRegistry)
REGISTRY = web.AppKey("registry", CollectorRegistry)
METRICS = web.AppKey("metrics", IngestMetrics)
