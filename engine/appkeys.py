"""Typed keys for everything the engine's aiohttp app holds."""

import asyncio
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CollectorRegistry

from engine.consumer import EngineLoop
from engine.fetcher import Fetcher
from engine.joining import Joining
from engine.router import Router
from engine.sender import Credentials, Sender
from engine.sweeper import Sweeper
from mediastore import MediaStore
from metrics import EngineMetrics
from parley.channels import Channel
from parley.graph import GraphClient
from parley.loops import Workers
from parley.redis import RedisClient
from parley.settings import Settings
from store.conversations import ConversationStore

SETTINGS = web.AppKey("settings", Settings)
CHANNELS = web.AppKey("channels", list[Channel])
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("clock")
REGISTRY = web.AppKey("registry", CollectorRegistry)
METRICS = web.AppKey("metrics", EngineMetrics)
REDIS = web.AppKey("redis", RedisClient)
STORE = web.AppKey("store", ConversationStore)
LOOP = web.AppKey("loop", EngineLoop)
SWEEPER = web.AppKey("sweeper", Sweeper)
ROUTER = web.AppKey("router", Router)
SENDER = web.AppKey("sender", Sender)
FETCHER = web.AppKey("fetcher", Fetcher)
GRAPH = web.AppKey("graph", GraphClient)
CREDENTIALS = web.AppKey("credentials", Credentials)
MEDIA = web.AppKey("media", MediaStore)
# The consumer loop, the sender, the fetcher and the sweeper, under one stop event (`stopping`).
WORKERS = web.AppKey("workers", Workers)
JOINING = web.AppKey("joining", Joining)
# Set once the consumer has joined its group: /readyz says "starting" until then.
JOINED = web.AppKey("joined", asyncio.Event)
