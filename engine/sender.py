"""The outbound sender: replies the engine applied, sent to WhatsApp by the Graph API.

apply.lua queues each applied reply on its channel's outbox stream in the same step
that applies it, so a reply is never lost between the engine and the sender. Senders
read the streams through one consumer group: with several engines, each reply goes to
one of them. A conversation's replies go out one after another, in order; different
conversations in parallel, within the channel's send rate.

The guarantee: **at most once, and never silently**. A reply leaves the stream in the
same transaction that records its outcome (its wamid, or why it failed). An engine that
dies between sending and recording leaves the reply pending on the stream; once it has
been idle for `claim_idle_s`, another sender claims it and marks it `unconfirmed`
rather than sending it again: the Graph API has no idempotency key, so a second send
could reach the customer twice. The agent sees `unconfirmed` and can send it again.
"""

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiolimiter import AsyncLimiter
from redis.exceptions import RedisError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from mediastore import MediaStore
from metrics import EngineMetrics
from parley import registration, whatsapp
from parley.events import Attachment
from parley.graph import GraphClient, GraphError, Recipient
from parley.loops import run_taker
from parley.redis import RedisClient
from store import delivery, registrations
from store.channels import channel_ids, load_channel_settings
from store.outbox import REACTION, READ, Entry, Outbox, Outgoing

log = logging.getLogger(__name__)
# On stopping, how long replies in hand may take to finish (within the engine's grace).
DRAIN_S = 3.0
# Idle, the sender looks for new replies this often; after a Redis error, this long.
POLL_S = 0.05
RETRY_S = 1.0
SETTINGS_TTL_S = 1.0
# The send-rate bucket holds this many seconds' worth of sends (at least one).
BURST_S = 0.1


def burst(rate: int) -> float:
    """How many sends the channel's bucket lets go at once."""
    return max(1.0, rate * BURST_S)


# How long recording a reply's outcome is retried while Redis is unreachable.
RECORD_RETRY_S = 60.0

Conversation = tuple[str, str]  # (channel, customer id)


class Credentials:
    """The Graph token of an active channel: from the channels file (numbers already
    registered), else from a registration done through the API."""

    def __init__(self, client: RedisClient, file_tokens: Mapping[str, str]) -> None:
        self._client = client
        self._tokens = dict(file_tokens)

    async def token(self, channel: str) -> str | None:
        """None when the channel is not active: only active channels send."""
        if channel in self._tokens:
            return self._tokens[channel]
        record = await registrations.load(self._client, channel)
        if record is None or record.status is not registration.Status.ACTIVE:
            return None
        # Active is the lifecycle's last step: read once, not once a reply.
        self._tokens[channel] = record.access_token
        return record.access_token


def _retryable(error: BaseException) -> bool:
    return isinstance(error, GraphError) and error.retryable


class Sender:
    """Call `run_once()` in a loop (it never blocks on Redis) and `recover()` now and
    then; `drain()` waits for the replies in hand."""

    def __init__(
        self,
        client: RedisClient,
        graph: GraphClient,
        credentials: Credentials,
        metrics: EngineMetrics,
        *,
        consumer: str,
        claim_idle_s: float = 120.0,
        max_attempts: int = 5,
        backoff_s: float = 0.2,
        max_in_hand: int = 2000,
        max_sending: int = 64,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        media: MediaStore | None = None,
    ) -> None:
        self._client = client
        self._media = media  # agents' files, uploaded to the Graph API when sent
        self._outbox = Outbox(client, consumer)
        self._graph = graph
        self._credentials = credentials
        self._metrics = metrics
        self._claim_idle_ms = int(claim_idle_s * 1000)
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._max_in_hand = max_in_hand
        # Sends in flight at once (below aiohttp's 100 connections): a conversation
        # waiting for its turn holds nothing.
        self._sending = asyncio.Semaphore(max_sending)
        self._sleep = sleep  # between attempts; tests record the backoff here
        # Per channel: (when read, the rate it was read with, its limiter).
        self._limiters: dict[str, tuple[float, int | None, AsyncLimiter | None]] = {}
        self._waiting: dict[Conversation, deque[Entry]] = {}
        self._chains: dict[Conversation, asyncio.Task[None]] = {}
        self._entries_in_hand: set[str] = set()

    @property
    def in_hand(self) -> int:
        return sum(len(waiting) for waiting in self._waiting.values()) + len(self._chains)

    async def run_once(self) -> int:
        """Take new replies from every channel's outbox; the number taken."""
        taken = 0
        for channel in await channel_ids(self._client):
            room = self._max_in_hand - self.in_hand
            if room <= 0:
                break
            for entry in await self._outbox.take(channel, min(room, 500)):
                self._enqueue(entry)
                taken += 1
        return taken

    async def recover(self) -> int:
        """Mark replies another sender took and never finished (it died) as unconfirmed;
        the number marked."""
        marked = 0
        for channel in await channel_ids(self._client):
            for entry in await self._outbox.claim_idle(channel, self._claim_idle_ms):
                if entry.id in self._entries_in_hand:
                    continue  # ours, still being sent (retries take a while)
                await self._record(entry, None, delivery.UNCONFIRMED)
                self._metrics.outbound.labels(channel, delivery.UNCONFIRMED).inc()
                log.warning(
                    "reply marked unconfirmed",
                    extra={"channel": channel, "event": entry.outgoing.id},
                )
                marked += 1
        return marked

    async def drain(self) -> None:
        while self._chains:
            await asyncio.gather(*list(self._chains.values()), return_exceptions=True)

    async def cancel(self) -> None:
        for chain in list(self._chains.values()):
            chain.cancel()
        await asyncio.gather(*list(self._chains.values()), return_exceptions=True)

    def _enqueue(self, entry: Entry) -> None:
        self._entries_in_hand.add(entry.id)
        conversation = (entry.channel, entry.outgoing.owner)
        self._waiting.setdefault(conversation, deque()).append(entry)
        if conversation not in self._chains:
            self._chains[conversation] = asyncio.create_task(self._chain(conversation))

    async def _chain(self, conversation: Conversation) -> None:
        """A conversation's replies, one after another, in stream order."""
        channel, _ = conversation
        try:
            while waiting := self._waiting.get(conversation):
                entry = waiting.popleft()
                try:
                    async with self._sending:
                        await self._deliver(entry)
                except Exception:
                    # Left pending on the stream: recovery marks it unconfirmed.
                    log.exception("reply left pending", extra={"channel": channel})
                finally:
                    self._entries_in_hand.discard(entry.id)
        finally:
            self._waiting.pop(conversation, None)
            self._chains.pop(conversation, None)

    async def _deliver(self, entry: Entry) -> None:
        channel, outgoing = entry.channel, entry.outgoing
        token = await self._credentials.token(channel)
        if token is None:
            await self._finish(entry, None, "channel is not active")
            return
        limiter = await self._limiter(channel)
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(_retryable),
                wait=wait_random_exponential(multiplier=self._backoff_s, max=10 * self._backoff_s),
                stop=stop_after_attempt(self._max_attempts),
                before_sleep=lambda state: self._count_retry(channel, state),
                sleep=self._sleep,
                reraise=True,
            ):
                with attempt:
                    if limiter is not None:
                        await limiter.acquire()
                    wamid = await self._send(channel, token, outgoing)
        except GraphError as error:
            await self._finish(entry, None, str(error))
        else:
            await self._finish(entry, wamid, None)

    def _count_retry(self, channel: str, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        self._metrics.outbound_retries.labels(channel, _reason(error)).inc()

    async def _send(self, channel: str, token: str, outgoing: Outgoing) -> str:
        started = time.perf_counter()
        try:
            # To the phone when known, else the BSUID (Meta: the phone wins when both are
            # given, so only one is sent), or the group.
            to = Recipient(
                phone=outgoing.to_phone, user_id=outgoing.user_id, group_id=outgoing.group_id
            )
            if outgoing.kind == READ:
                await self._graph.mark_read(
                    channel, token, outgoing.target or "", typing=outgoing.typing
                )
                return ""  # a read receipt has no wamid
            message = await self._message(channel, token, outgoing)
            return await self._graph.send(channel, token, to, message, reply_to=outgoing.reply_to)
        finally:
            self._metrics.outbound_seconds.observe(time.perf_counter() - started)

    async def _message(self, channel: str, token: str, outgoing: Outgoing) -> dict[str, Any]:
        """The message object WhatsApp is sent; an agent's file is uploaded first."""
        if outgoing.kind == REACTION:
            return whatsapp.reaction_message(outgoing.target or "", outgoing.emoji or "")
        if outgoing.template:
            parameters = outgoing.parameters
            header = parameters.header_media if parameters else None
            media_id = None if header is None else await self._upload(channel, token, header)
            return whatsapp.template_message(
                outgoing.template,
                outgoing.language or "en_US",
                parameters,
                header_media_id=media_id,
            )
        if outgoing.attachment is not None:
            attachment = outgoing.attachment
            media_id = await self._upload(channel, token, attachment)
            return whatsapp.media_message(
                attachment.kind, media_id, caption=outgoing.text, filename=attachment.filename
            )
        if outgoing.interactive is not None:
            return whatsapp.interactive_message(outgoing.interactive)
        return whatsapp.text_message(outgoing.text or "")

    async def _upload(self, channel: str, token: str, attachment: Attachment) -> str:
        """The file from the media store, uploaded to the Graph API: its media id. A file
        that is gone (past the store's retention) fails the send, never retried."""
        found = await self._media.get(attachment.key) if self._media else None
        if found is None:
            raise GraphError(None, None, "the file is no longer in the media store", False)
        data, mime_type = found
        return await self._graph.upload(
            channel, token, data, mime_type, attachment.filename or attachment.key[:16]
        )

    async def _finish(self, entry: Entry, wamid: str | None, failure: str | None) -> None:
        outcome = delivery.ACCEPTED if wamid else delivery.FAILED
        if entry.outgoing.kind == READ:
            outcome = delivery.FAILED if failure else READ
        self._metrics.outbound.labels(entry.channel, outcome).inc()
        if failure:
            log.warning(
                "reply not sent",
                extra={"channel": entry.channel, "event": entry.outgoing.id, "reason": failure},
            )
        await self._record(entry, wamid, failure)

    async def _record(self, entry: Entry, wamid: str | None, failure: str | None) -> None:
        """The outcome and the stream's acknowledgement, together (`Outbox.record`).
        The send happened: its record must land, so Redis trouble is waited out."""
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type((RedisError, OSError)),
            wait=wait_random_exponential(multiplier=0.05, max=2),
            stop=stop_after_delay(RECORD_RETRY_S),
            reraise=True,
        ):
            with attempt:
                await self._outbox.record(entry, wamid, failure)

    async def _limiter(self, channel: str) -> AsyncLimiter | None:
        """The channel's send rate (None: off), read again once a second so an admin's
        change applies at once without a read per reply."""
        now = time.monotonic()
        known = self._limiters.get(channel)
        if known is not None and now - known[0] < SETTINGS_TTL_S:
            return known[2]
        settings = await load_channel_settings(self._client, channel)
        rate = settings.send_rate if settings is not None else None
        # Looked up again after the await: chains that read the settings at the same
        # moment must share one bucket, or each would get the whole rate.
        known = self._limiters.get(channel)
        if known is not None and known[1] == rate:
            limiter = known[2]
        else:
            # A bucket of a tenth of a second's sends: any second holds at most 1.1 times
            # the rate (a bucket of a whole second would allow twice the rate, and Meta
            # counts per second), without spacing every send apart.
            limiter = None if rate is None else AsyncLimiter(burst(rate), burst(rate) / rate)
        self._limiters[channel] = (now, rate, limiter)
        return limiter


def _reason(error: BaseException | None) -> str:
    if isinstance(error, GraphError):
        if error.code is not None:
            return str(error.code)
        if error.status is None:
            return "timeout" if error.title == "timeout" else "connection"
        return f"http_{error.status // 100}xx"
    return "other"


async def run_sender(
    sender: Sender,
    stopping: asyncio.Event,
    recover_every_s: float = 30.0,
    *,
    monotonic: Callable[[], float] = time.monotonic,
) -> None:
    """The sender's loop (`run_taker`). A reply cut off stays pending and is marked
    unconfirmed by the next sender's recovery, never sent twice."""
    await run_taker(
        sender,
        stopping,
        poll_s=POLL_S,
        retry_s=RETRY_S,
        drain_s=DRAIN_S,
        recover_every_s=recover_every_s,
        monotonic=monotonic,
    )
