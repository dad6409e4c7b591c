"""The webhook handlers, /webhooks/whatsapp: Meta's verification handshake (GET) and its
event calls (POST)."""

import asyncio
import logging
import time

import msgspec
from aiohttp import web
from redis.exceptions import RedisError

from ingest.appkeys import CHANNELS, CLOCK, METRICS, PRODUCER, REDIS, SETTINGS
from ingest.meta_payload import decode_webhook
from ingest.normalize import normalize
from ingest.routing import route
from ingest.signature import SignatureError, signing_secret
from parley.events import MessageStatus
from parley.http import error_response
from parley.producer import ProduceError
from parley.standing import NameUpdate
from store import standing
from store.templates import apply_updates

log = logging.getLogger(__name__)


class Answer(msgspec.Struct, frozen=True):
    """What a webhook call that Kafka acknowledged is answered."""

    accepted: int
    dead_lettered: int


_answer_encoder = msgspec.json.Encoder()
routes = web.RouteTableDef()
PATH = "/webhooks/whatsapp"

# Header names and hub.* parameters are Meta's.
SIGNATURE_HEADER = "X-Hub-Signature-256"


@routes.get(PATH)
async def verify(request: web.Request) -> web.Response:
    """Meta's subscription handshake: echo hub.challenge for a verify token we know."""
    query = request.query
    known = request.app[CHANNELS].knows_verify_token(query.get("hub.verify_token", ""))
    if query.get("hub.mode") != "subscribe" or not known or "hub.challenge" not in query:
        _count(request, "GET", "forbidden")
        return error_response(403, "forbidden", "unknown verify token or not a subscribe request")
    _count(request, "GET", "ok")
    return web.Response(text=query["hub.challenge"])


@routes.post(PATH)
async def receive(request: web.Request) -> web.Response:
    """Answers 200 only once Kafka acknowledged every event of the call."""
    started = time.perf_counter()
    response = await _receive(request)
    request.app[METRICS].post_seconds.observe(time.perf_counter() - started)
    return response


async def _receive(request: web.Request) -> web.Response:
    app = request.app
    metrics = app[METRICS]
    limit = app[SETTINGS].max_body_bytes
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _fail(request, 413, "body_too_large", f"bodies over {limit} bytes are refused")
    try:
        secret = signing_secret(body, request.headers.get(SIGNATURE_HEADER), app[CHANNELS].secrets)
    except SignatureError as error:
        metrics.signature_failures.labels(error.failure.value).inc()
        return _fail(request, 401, "bad_signature", f"{SIGNATURE_HEADER} is {error.failure.value}")
    try:
        webhook = decode_webhook(body)
    except msgspec.ValidationError as error:
        return _fail(request, 400, "not_a_webhook", f"not a WhatsApp webhook: {error}")
    except msgspec.DecodeError:
        return _fail(request, 400, "malformed_json", "the body is not valid JSON")

    received_at = app[CLOCK]()
    batch = normalize(webhook, received_at=received_at)
    # What Meta says of the business account (templates, numbers) goes straight to Redis.
    applied: list[bool] = []
    if batch.template_updates or batch.number_updates:
        try:
            async with asyncio.timeout(app[SETTINGS].produce_timeout_s):
                await apply_updates(app[REDIS], batch.template_updates, received_at)
                applied = await standing.apply_updates(
                    app[REDIS], batch.number_updates, received_at
                )
        except (RedisError, OSError):  # TimeoutError included
            return _fail(
                request, 503, "store_unavailable", "template or number status not saved; retry"
            )
    for update, done in zip(batch.number_updates, applied, strict=True):
        field = "name" if isinstance(update, NameUpdate) else "quality"
        metrics.number_updates.labels(field, "applied" if done else "unknown_number").inc()
    routed = route(batch.events, batch.unusable, app[CHANNELS], secret, received_at)
    try:
        await app[PRODUCER].publish(routed)
    except ProduceError as error:
        log.warning("kafka did not acknowledge", extra={"error": str(error)})
        return _fail(request, 503, "kafka_unavailable", "events not acknowledged; retry later")

    for event in routed.events:
        if isinstance(event.payload, MessageStatus):
            error_code = (event.payload.error or "").partition(" ")[0]
            metrics.message_statuses.labels(event.payload.status, error_code).inc()
    for field in batch.other_fields:
        metrics.changes_ignored.labels(field).inc()
    for code in batch.value_errors:
        metrics.value_errors.labels(str(code)).inc()
    metrics.posts_ok.inc()
    answer = Answer(accepted=len(routed.events), dead_lettered=len(routed.dead_letters))
    return web.Response(body=_answer_encoder.encode(answer), content_type="application/json")


def _fail(request: web.Request, status: int, code: str, message: str) -> web.Response:
    _count(request, "POST", code)
    return error_response(status, code, message)


def _count(request: web.Request, method: str, outcome: str) -> None:
    request.app[METRICS].webhook_requests.labels(method, outcome).inc()
