"""Each channel's media fetches: files customers sent, waiting to be downloaded from the
Graph API into the media store. Queued by apply.lua in the step that applies the
message (so none is lost, and a duplicate webhook queues none twice), taken by the
engine's fetchers through a consumer group, and finished with their outcome recorded
on the message (`delivery.media_field`) in the transaction that acknowledges them."""

from typing import cast

import msgspec

from parley.events import Media
from parley.redis import RedisClient
from parley.state import Conversation
from store import _keys as keys
from store import delivery
from store._codec import FIELDS, decode_conversation
from store._work import WorkStreams
from store.changes import Change

GROUP = "fetchers"
MEDIA_FETCHED = "media.fetched"  # the kind of the change a finished fetch publishes


class FetchJob(msgspec.Struct, frozen=True, kw_only=True):
    wamid: str
    customer: str
    media: Media


class MediaRecord(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What became of a message's file: `stored` (under `key` in the media store), or
    `failed` with `error`."""

    state: str
    key: str | None = None
    mime_type: str | None = None
    size: int | None = None
    filename: str | None = None
    error: str | None = None


class Taken(msgspec.Struct, frozen=True):
    channel: str
    id: str
    job: FetchJob


_decoder = msgspec.json.Decoder(FetchJob)
_encoder = msgspec.json.Encoder()


class Fetches:
    """The fetch streams of every channel. Raises redis errors."""

    def __init__(self, client: RedisClient, consumer: str) -> None:
        self._client = client
        self._streams = WorkStreams(client, consumer, GROUP, keys.fetches, b"j")

    async def take(self, channel: str, count: int) -> list[Taken]:
        return [
            Taken(channel, entry_id, _decoder.decode(raw))
            for entry_id, raw in await self._streams.take(channel, count)
        ]

    async def claim_idle(self, channel: str, idle_ms: int) -> list[Taken]:
        """Jobs another fetcher took over `idle_ms` ago and never finished, now ours:
        fetching again is harmless (the store is content-addressed)."""
        return [
            Taken(channel, entry_id, _decoder.decode(raw))
            for entry_id, raw in await self._streams.claim_idle(channel, idle_ms)
        ]

    async def finish(self, taken: Taken, record: MediaRecord) -> None:
        """The file's outcome on its message, the job acknowledged, and a change on the
        channel's feed (so that a page showing "fetching" hears of it), together."""
        channel, customer = taken.channel, taken.job.customer
        fields = await self._client.hmget(keys.conversation(channel, customer), FIELDS)
        state = decode_conversation(cast(list[bytes | None], fields), customer)
        async with self._client.pipeline(transaction=True) as pipe:
            messages = keys.messages(channel, customer)
            pipe.hset(messages, delivery.media_field(taken.job.wamid), _encoder.encode(record))
            self._streams.done(pipe, channel, taken.id)
            if state is not None:
                change = _encoder.encode(_fetched(channel, customer, taken.id, state))
                pipe.xadd(keys.feed(channel), {"c": change}, maxlen=keys.FEED_LENGTH)
            await pipe.execute()


def _fetched(channel: str, customer: str, job_id: str, state: Conversation) -> Change:
    """A file arrived: the conversation as it stands, its version unchanged."""
    return Change(
        channel=channel,
        customer=customer,
        kind=MEDIA_FETCHED,
        event=f"fetch:{job_id}",
        version=state.version,
        was=state.queue.value,
        queue=state.queue.value,
        assignee=state.assignee,
        last_activity_at=state.last_activity_at,
        last_customer_message_at=state.last_customer_at,
        customer_name=state.customer.name or state.customer.username,
    )


def encode_job(job: FetchJob) -> str:
    return _encoder.encode(job).decode()
