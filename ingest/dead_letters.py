"""`python -m ingest dead-letters list | redrive`: the webhook items the receiver could
not use (`<PARLEY_TOPIC>.dead-letter`, one `DeadLetter` each), listed, and re-driven to
the events topic once their cause is fixed: a channel configured after its webhooks
arrived, or a parser fixed in a later release.

What to do with a letter is decided by `redrive_decision`, a pure function of the letter
and the channels configured now; the rest of the module is the I/O around it. The topic
is read with a throwaway consumer (no group, nothing committed) up to the end offsets it
had when the command started. Nothing printed holds a secret or the item itself.
"""

import argparse
import asyncio
import json
import math
import re
import sys
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from redis.exceptions import RedisError

from ingest.app import load_registered
from ingest.meta_payload import Change, Entry, Webhook
from ingest.normalize import (
    ITEMS,
    MESSAGES,
    NO_CUSTOMER_IDENTIFIER,
    NO_PHONE_NUMBER_ID,
    UNREADABLE_ITEM,
    UNREADABLE_VALUE,
    normalize,
)
from ingest.routing import SIGNED_BY_ANOTHER_APP, UNKNOWN_CHANNEL, ChannelRegistry
from parley.channels import Channel, ChannelFileError, load_channels
from parley.events import DeadLetter, Event, decode_dead_letter, encode
from parley.kafka import ensure_topics
from parley.redis import connect_redis
from parley.settings import Settings

# A record on the dead-letter topic that is not a DeadLetter (listed, never re-driven).
UNDECODABLE = "undecodable_letter"
REASONS = (
    UNKNOWN_CHANNEL,
    SIGNED_BY_ANOTHER_APP,
    UNREADABLE_VALUE,
    NO_PHONE_NUMBER_ID,
    UNREADABLE_ITEM,
    NO_CUSTOMER_IDENTIFIER,
    UNDECODABLE,
)

# Why a letter is not re-driven, besides the normalizer's reasons when an item still
# cannot be read (bounded: they are counted in the summary).
UNSIGNED = "no_signing_channel"
SIGNER_NOT_CONFIGURED = "signing_channel_not_configured"
CHANNEL_NOT_CONFIGURED = "channel_not_configured"
OTHER_APP = "channel_of_another_app"
ITEM_NOT_KEPT = "item_not_kept"
NO_EVENT = "no_event"

CONNECT_TIMEOUT_S = 15.0
# Reading stops with an error when the broker sends nothing for this long.
STALL_TIMEOUT_S = 30.0
_NOT_AN_ARRAY = re.compile(r"^(\w+) is not an array$")


class Redrive(msgspec.Struct, frozen=True):
    """Produce these events to the events topic, each keyed `event.key`."""

    events: list[Event]


class Skip(msgspec.Struct, frozen=True):
    """Leave the letter where it is: `why` is a short code, `detail` says it in words."""

    why: str
    detail: str


def redrive_decision(letter: DeadLetter, channels: Mapping[str, Channel]) -> Redrive | Skip:
    """What to do with `letter` given the channels configured now (by id).

    The call's signature cannot be checked again, so a letter is re-driven only to a
    channel that shares the app secret of `signed_by`, the configured channel whose
    secret signed the call. Secrets are compared, never returned or described.
    """
    if letter.reason == SIGNED_BY_ANOTHER_APP:
        return Skip(
            SIGNED_BY_ANOTHER_APP,
            "signed with another app's secret: the signature cannot be checked again",
        )
    if letter.signed_by is None:
        return Skip(UNSIGNED, "no configured channel signed the call: it cannot be checked again")
    signer = channels.get(letter.signed_by)
    if signer is None:
        return Skip(
            SIGNER_NOT_CONFIGURED,
            f"channel {letter.signed_by}, whose app secret signed the call, is not configured",
        )
    if letter.event is not None:
        events = [letter.event]
    else:
        read = read_again(letter)
        if isinstance(read, Skip):
            return read
        events = read
    for event in events:
        channel = channels.get(event.channel)
        if channel is None:
            return Skip(CHANNEL_NOT_CONFIGURED, f"channel {event.channel} is not configured")
        if channel.app_secret != signer.app_secret:
            return Skip(
                OTHER_APP,
                f"channel {event.channel} does not share the app secret of channel "
                f"{letter.signed_by}, which signed the call",
            )
    return Redrive(events)


def read_again(letter: DeadLetter) -> list[Event] | Skip:
    """The events today's normalizer reads from the letter's item, wrapped in a minimal
    webhook value of its field and channel (the value's contacts were not kept, so
    events carry no profile name); a Skip with the normalizer's reason when it still
    cannot be read. Events keep the letter's `received_at`, so a second re-drive
    produces the same events."""
    if letter.item is None:
        return Skip(ITEM_NOT_KEPT, letter.detail or "the item was not kept")
    arrays = ITEMS.get(letter.field or "")
    if letter.field is None or arrays is None:
        return Skip(UNREADABLE_VALUE, f"field {letter.field!r} carries no items Parley reads")
    if letter.reason == UNREADABLE_VALUE:
        # The item is what Meta sent in place of an array: put it back there.
        found = _NOT_AN_ARRAY.match(letter.detail or "")
        if found is None or found.group(1) not in arrays:
            return Skip(UNREADABLE_VALUE, letter.detail or "the value could not be read")
        array, items = found.group(1), letter.item
    else:
        array, items = _array_of(letter.field, letter.item), [letter.item]
    value: dict[str, Any] = {"messaging_product": "whatsapp", array: items}
    if letter.channel is not None:
        value["metadata"] = {"phone_number_id": letter.channel}
    change = Change(field=letter.field, value=msgspec.Raw(msgspec.json.encode(value)))
    webhook = Webhook(object="whatsapp_business_account", entry=[Entry(changes=[change])])
    batch = normalize(webhook, received_at=letter.received_at)
    if batch.unusable:
        unusable = batch.unusable[0]
        return Skip(unusable.reason, unusable.detail or "the item still cannot be read")
    if not batch.events:
        return Skip(NO_EVENT, "the item is read but becomes no event")
    return batch.events


def _array_of(field: str, item: Any) -> str:
    """The array of the field's value the item came from: a `messages` value carries
    messages and statuses, and only a status has a `status`."""
    if field == MESSAGES:
        return "statuses" if isinstance(item, dict) and "status" in item else "messages"
    return ITEMS[field][0]


def describe(partition: int, offset: int, letter: DeadLetter) -> dict[str, Any]:
    """A letter as `list` prints it: where it is and why, never the item or a secret."""
    return {
        "partition": partition,
        "offset": offset,
        "reason": letter.reason,
        "channel": letter.channel,
        "field": letter.field,
        "detail": letter.detail,
        "received_at": _time(letter.received_at),
        "event": letter.event.id if letter.event is not None else None,
        "signed_by": letter.signed_by,
    }


def _time(seconds: float) -> str | None:
    if not math.isfinite(seconds):
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# I/O: the commands.


class Unavailable(Exception):
    """Kafka (or Redis) did not answer: the command exits 1."""


class Stored(msgspec.Struct, frozen=True):
    """A record of the dead-letter topic: `letter` None when it is not a DeadLetter."""

    partition: int
    offset: int
    letter: DeadLetter | None


def add_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """`dead-letters list` and `dead-letters redrive` under `commands`."""
    group = commands.add_parser(
        "dead-letters",
        help="list or re-drive the webhook items on <PARLEY_TOPIC>.dead-letter",
        description=(
            "The webhook items the receiver could not use, on <PARLEY_TOPIC>.dead-letter. "
            "Exit codes: 0 ok, 2 bad settings or arguments, 1 Kafka or Redis unreachable."
        ),
    )
    actions = group.add_subparsers(dest="action", required=True)
    listing = actions.add_parser(
        "list",
        help="print each letter as a JSON line, then counts by reason",
        description=(
            "Print one JSON line per dead letter (partition, offset, reason, channel, "
            "field, detail, received_at, event id, signed_by), read from the beginning "
            "of the topic to its end when the command started, then a summary line of "
            "counts by reason. Nothing is committed."
        ),
    )
    redrive = actions.add_parser(
        "redrive",
        help="produce the letters that can now be used to <PARLEY_TOPIC>",
        description=(
            "Re-drive each letter whose channel is now configured (PARLEY_CHANNELS_FILE, "
            "and the active channels registered in Redis when PARLEY_REDIS_URL is set) "
            "and shares the app secret of the channel that signed the call: its event, "
            "or the events today's parser reads from its item, go to <PARLEY_TOPIC> "
            "(acks=all). Letters signed by another app, or by no configured channel, "
            "are never re-driven: their signature cannot be checked again. Prints a "
            "JSON line per letter, then what was re-driven and skipped (counts by "
            "reason). Letters stay on the dead-letter topic. Re-driving twice is "
            "harmless: the engine applies each event id once."
        ),
    )
    for parser in (listing, redrive):
        parser.add_argument(
            "--reason",
            choices=REASONS,
            metavar="REASON",
            help=f"only the letters with this reason: {', '.join(REASONS)}",
        )
    redrive.add_argument(
        "--dry-run", action="store_true", help="decide and print, but produce nothing"
    )


async def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run `args.action`; the exit code."""
    if settings.kafka_bootstrap is None:
        _error("PARLEY_KAFKA_BOOTSTRAP is not set")
        return 2
    try:
        if args.action == "list":
            await list_letters(settings.kafka_bootstrap, settings.dead_letter_topic, args.reason)
            return 0
        try:
            channels = load_channels(settings.channels_file)
        except ChannelFileError as error:
            _error(str(error))
            return 2
        directory = await _channels(settings, channels)
        await redrive_letters(settings, directory.by_id, args.reason, dry_run=args.dry_run)
        return 0
    except Unavailable as error:
        _error(str(error))
        return 1


async def list_letters(bootstrap: str, topic: str, reason: str | None) -> None:
    counts: Counter[str] = Counter()
    async for stored in read_letters(bootstrap, topic):
        line = _line(stored)
        if reason is None or line["reason"] == reason:
            counts[line["reason"]] += 1
            _print(line)
    _print({"letters": sum(counts.values()), "by_reason": dict(sorted(counts.items()))})


async def redrive_letters(
    settings: Settings, channels: Mapping[str, Channel], reason: str | None, *, dry_run: bool
) -> None:
    assert settings.kafka_bootstrap is not None
    events: list[Event] = []
    redriven: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    async for stored in read_letters(settings.kafka_bootstrap, settings.dead_letter_topic):
        line = _line(stored)
        if reason is not None and line["reason"] != reason:
            continue
        decision = (
            Skip(UNDECODABLE, "the record is not a dead letter")
            if stored.letter is None
            else redrive_decision(stored.letter, channels)
        )
        where = {key: line[key] for key in ("partition", "offset", "reason", "channel")}
        if isinstance(decision, Redrive):
            redriven[line["reason"]] += 1
            events.extend(decision.events)
            _print({**where, "action": "redrive", "events": [e.id for e in decision.events]})
        else:
            skipped[decision.why] += 1
            _print({**where, "action": "skip", "why": decision.why, "detail": decision.detail})
    if events and not dry_run:
        await produce(settings, events)
    _print(
        {
            "redriven": sum(redriven.values()),
            "redriven_by_reason": dict(sorted(redriven.items())),
            "events": len(events),
            "produced": 0 if dry_run else len(events),
            "skipped": sum(skipped.values()),
            "skipped_by_reason": dict(sorted(skipped.items())),
            "dry_run": dry_run,
        }
    )


async def read_letters(bootstrap: str, topic: str) -> AsyncIterator[Stored]:
    """Every record of `topic` from the beginning up to the end offsets read at start;
    raises Unavailable."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            await consumer.start()
            if topic not in await consumer.topics():
                return
            partitions = [
                TopicPartition(topic, partition)
                for partition in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            consumer.assign(partitions)
            ends = await consumer.end_offsets(partitions)
            await consumer.seek_to_beginning(*partitions)
            remaining = {tp for tp in partitions if await consumer.position(tp) < ends[tp]}
        while remaining:
            async with asyncio.timeout(STALL_TIMEOUT_S):
                fetched: dict[TopicPartition, list[Any]] = {}
                while not fetched:
                    fetched = await consumer.getmany(*remaining, timeout_ms=500)
            for tp, records in sorted(fetched.items()):
                for record in records:
                    if record.offset < ends[tp]:
                        yield Stored(tp.partition, record.offset, _decode(record.value))
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    except (KafkaError, OSError, TimeoutError) as error:
        raise Unavailable(f"kafka at {bootstrap}: {_name(error)}") from error
    finally:
        await consumer.stop()


async def produce(settings: Settings, events: list[Event]) -> None:
    """Every event to the events topic keyed `event.key`, acks=all, waiting for every
    acknowledgement; raises Unavailable (some may have landed: running again is safe)."""
    assert settings.kafka_bootstrap is not None
    timeout_ms = int(settings.produce_timeout_s * 1000) + 1000
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=settings.kafka_idempotence,
        request_timeout_ms=timeout_ms,
    )
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            await ensure_topics(
                settings.kafka_bootstrap, {settings.topic: settings.topic_partitions}
            )
            await producer.start()
        deliveries = [
            await producer.send(
                settings.topic,
                key=event.key.encode(),
                value=encode(event),
                headers=[("kind", event.kind.encode())],
            )
            for event in events
        ]
        for delivery in deliveries:
            await delivery
    except (KafkaError, OSError, TimeoutError) as error:
        raise Unavailable(
            f"kafka at {settings.kafka_bootstrap}: {_name(error)}; some events may have "
            "been produced: running redrive again is safe"
        ) from error
    finally:
        await producer.stop()


async def _channels(settings: Settings, channels: list[Channel]) -> ChannelRegistry:
    """The channels of the file, and the active channels registered in Redis."""
    directory = ChannelRegistry(channels)
    if settings.redis_url is None:
        return directory
    client = connect_redis(settings.redis_url)
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            await load_registered(client, directory)
    except (RedisError, OSError, TimeoutError) as error:
        raise Unavailable(f"redis: {_name(error)}") from error
    finally:
        await client.aclose()
    return directory


def _decode(value: bytes | None) -> DeadLetter | None:
    try:
        return decode_dead_letter(value or b"")
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def _line(stored: Stored) -> dict[str, Any]:
    if stored.letter is None:
        return {"partition": stored.partition, "offset": stored.offset, "reason": UNDECODABLE,
                "channel": None}  # fmt: skip
    return describe(stored.partition, stored.offset, stored.letter)


def _name(error: BaseException) -> str:
    name, text = type(error).__name__, str(error)
    return text if text.startswith(name) else f"{name}: {text}" if text else name


def _print(line: dict[str, Any]) -> None:
    print(json.dumps(line, ensure_ascii=False), flush=True)


def _error(message: str) -> None:
    print(f"parley ingest dead-letters: {message}", file=sys.stderr)
