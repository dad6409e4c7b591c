"""Typed keys for everything the receiver's aiohttp app holds."""

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CollectorRegistry

from ingest.producer import EventProducer
from ingest.routing import ChannelDirectory
from metrics import IngestMetrics
from parley.graph import GraphClient
from parley.redis import RedisClient
from parley.settings import Settings
from store.directory import Directory

SETTINGS = web.AppKey("settings", Settings)
CHANNELS = web.AppKey("channels", ChannelDirectory)
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("clock")
REGISTRY = web.AppKey("registry", CollectorRegistry)
METRICS = web.AppKey("metrics", IngestMetrics)
PRODUCER = web.AppKey("producer", EventProducer)
REDIS = web.AppKey("redis", RedisClient)
DIRECTORY = web.AppKey("directory", Directory)
GRAPH = web.AppKey("graph", GraphClient)
