"""Each channel's outbox: replies the engine applied, waiting for the sender.

A Redis stream per channel, read through one consumer group (`GROUP`), so that with
several engines each reply goes to one of them. apply.lua adds a reply in the step that
applies it; `record` removes it in the transaction that records its outcome, so a reply
is either pending or recorded, never both (engine/sender.py says why that matters).
"""

import msgspec

from parley.events import Attachment, Interactive, TemplateParameters
from parley.redis import RedisClient
from store import _keys as keys
from store import delivery
from store._work import WorkStreams

GROUP = "senders"
MESSAGE, REACTION, READ = "message", "reaction", "read"


class Outgoing(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Work for the sender: the customer (their id keys the records), where WhatsApp
    should deliver it, and what: a `message` (text, template, file, choices), an agent's
    `reaction` to `target`, or a `read` receipt for `target` (with `typing`)."""

    id: str  # the event id: the key of a message's delivery record
    user: str
    customer: str = ""
    phone: str | None = None
    user_id: str | None = None
    group_id: str | None = None
    kind: str = MESSAGE
    text: str | None = None
    template: str | None = None
    language: str | None = None
    parameters: TemplateParameters | None = None
    attachment: Attachment | None = None
    interactive: Interactive | None = None
    reply_to: str | None = None
    target: str | None = None  # the wamid a reaction or a read is about
    emoji: str | None = None
    typing: bool = False
    wa_id: str | None = None  # release 0.1 queued replies by phone alone

    @property
    def owner(self) -> str:
        """The customer id whose records this reply belongs to."""
        return self.customer or self.wa_id or ""

    @property
    def to_phone(self) -> str | None:
        return self.phone or self.wa_id


class Entry(msgspec.Struct, frozen=True):
    channel: str
    id: str
    outgoing: Outgoing


_decoder = msgspec.json.Decoder(Outgoing)


class Outbox:
    """The outboxes of every channel. Raises redis errors; `take` never blocks."""

    def __init__(self, client: RedisClient, consumer: str) -> None:
        self._client = client
        self._streams = WorkStreams(client, consumer, GROUP, keys.outbox, b"m")

    async def take(self, channel: str, count: int) -> list[Entry]:
        """Up to `count` replies of `channel` nobody has taken yet, now ours."""
        return [
            Entry(channel, entry_id, _decoder.decode(raw))
            for entry_id, raw in await self._streams.take(channel, count)
        ]

    async def claim_idle(self, channel: str, idle_ms: int) -> list[Entry]:
        """Every reply of `channel` another sender took over `idle_ms` ago and never
        finished (it died), now ours."""
        return [
            Entry(channel, entry_id, _decoder.decode(raw))
            for entry_id, raw in await self._streams.claim_idle(channel, idle_ms)
        ]

    async def record(self, entry: Entry, wamid: str | None, failure: str | None) -> None:
        """The reply's outcome (its wamid, or why it was not sent) and the stream's
        acknowledgement, in one transaction (one slot: the channel's hash tag)."""
        outgoing = entry.outgoing
        messages = keys.messages(entry.channel, outgoing.owner)
        async with self._client.pipeline(transaction=True) as pipe:
            if outgoing.kind == READ and failure is None:
                pass  # a read receipt leaves nothing to show
            elif wamid:
                pipe.hset(messages, delivery.wamid_field(outgoing.id), wamid)
                pipe.hsetnx(messages, wamid, delivery.ACCEPTED)
            else:
                pipe.hset(messages, delivery.failure_field(outgoing.id), failure or "unknown")
            self._streams.done(pipe, entry.channel, entry.id)
            await pipe.execute()
