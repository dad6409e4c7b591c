"""What a decided event writes besides the conversation's state: the customer record,
its annotations, the recent-messages log, what happened to messages (statuses,
reactions, edits), the day's report counters, and an agent action's result. Pure: it
turns an event and its decision into apply.lua's records.
"""

import functools
from collections.abc import Sequence

import msgspec

from engine import delivery, keys, reports
from engine.codec import customer_changes
from engine.identity import USERNAME
from engine.model import (
    Conversation,
    Decision,
    EchoSent,
    Edited,
    FirstResponse,
    IdentityChanged,
    NoteAdded,
    Opened,
    Outcome,
    Reacted,
    Resolved,
    ResolvedBy,
    Revoked,
    SendReply,
    StatusReceived,
    TagAdded,
    TopicAdded,
)
from engine.protocol import Record
from parley.events import AGENT_ACTIONS, CustomerMessage, Event, Identity

# Messages kept per conversation for the agent's view; Parley is not the archive.
LOG_LENGTH = 20
# How long an action's result can be asked for, and how long an unclaimed wake-up waits.
RESULT_TTL_S = 600  # 384 bytes an action while kept: at 1,000 actions/s, 230 MB
WAKE_TTL_S = 60
INBOUND, OUTBOUND, SYSTEM = "inbound", "outbound", "system"
BUSINESS_APP = "business_app"


class LoggedMessage(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One line of a conversation's recent messages, as stored."""

    id: str  # the wamid of an inbound message or an echo; the event id of an agent's reply
    direction: str  # inbound, outbound or system
    type: str
    at: float
    text: str | None = None
    template: str | None = None
    user: str | None = None
    author: str | None = None  # who wrote, in a group: a name, else an identifier
    reply_to: str | None = None  # the wamid it answers
    source: str | None = None  # business_app: sent from the WhatsApp Business app


class Outgoing(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A reply for the sender, queued in the same step that applied it: the customer
    (their id keys the records) and where WhatsApp should deliver it."""

    id: str  # the reply's event id: the key of its delivery record
    user: str
    customer: str = ""
    phone: str | None = None
    user_id: str | None = None
    group_id: str | None = None
    text: str | None = None
    template: str | None = None
    language: str | None = None
    wa_id: str | None = None  # release 0.1 queued replies by phone alone

    @property
    def owner(self) -> str:
        """The customer id whose records this reply belongs to."""
        return self.customer or self.wa_id or ""

    @property
    def to_phone(self) -> str | None:
        return self.phone or self.wa_id


class ActionResult(msgspec.Struct, frozen=True, kw_only=True):
    outcome: Outcome
    reason: str | None = None


_encoder = msgspec.json.Encoder()


def records(
    event: Event, decision: Decision, channel: str, customer: str, old: Conversation | None
) -> list[Record]:
    """Everything `event` writes besides its state. Applied events write their effects,
    log line, customer record and report counters; an agent action also leaves its
    result, whatever the outcome, for the API that waits on it."""
    out: list[Record] = []
    new = decision.state
    if decision.outcome is Outcome.APPLIED and new is not None:
        _customer(out, channel, customer, old, new)
        _effects(out, event, decision.effects, channel, customer, new.customer)
        if isinstance(event.payload, CustomerMessage):
            _log(out, channel, customer, inbound(event.payload, event.occurred_at))
    if isinstance(event.payload, AGENT_ACTIONS):
        result = _encoder.encode(ActionResult(outcome=decision.outcome, reason=decision.reason))
        out.append(Record("result", keys.result(channel, event.id), result.decode()))
        out.append(Record("wake", keys.wake(channel, event.id), "1"))
    return out


def _customer(
    out: list[Record], channel: str, customer: str, old: Conversation | None, new: Conversation
) -> None:
    conversation = keys.conversation(channel, customer)
    for field, value in customer_changes(old, new):
        if value is None:
            out.append(Record("drop", conversation, field))
        else:
            out.append(Record("put", conversation, field, value))
    before = old.customer.username if old else None
    if new.customer.username != before:
        aliases = keys.aliases(channel)
        if before:
            out.append(Record("dropif", aliases, USERNAME + before, customer))
        if new.customer.username:
            out.append(Record("put", aliases, USERNAME + new.customer.username, customer))


def _effects(
    out: list[Record],
    event: Event,
    effects: Sequence[object],
    channel: str,
    customer: str,
    identity: Identity,
) -> None:
    report = ""  # the day's report key, built only for the effects that count
    messages = keys.messages(channel, customer)

    def day_report() -> str:
        nonlocal report
        report = report or _report_key(channel, int(event.occurred_at // keys.DAY_S))
        return report

    for effect in effects:
        match effect:
            case TagAdded(tag=tag):
                out.append(Record("sadd", keys.tags(channel, customer), tag))
            case TopicAdded(topic=topic):
                out.append(Record("sadd", keys.topics(channel, customer), topic))
            case NoteAdded():
                note = _encoder.encode(effect).decode()
                out.append(Record("rpush", keys.notes(channel, customer), note))
            case StatusReceived(wamid=wamid, status=status):
                out.append(Record("status", messages, wamid, status))
                for field, value in (
                    (delivery.error_field(wamid), effect.error),
                    (delivery.pricing_field(wamid), effect.pricing),
                    (delivery.callback_field(wamid), effect.callback_data),
                ):
                    if value:
                        out.append(Record("detail", messages, wamid, field, value))
            case Reacted(target=target, emoji=emoji):
                field = delivery.reaction_field(target)
                out.append(
                    Record("put", messages, field, emoji)
                    if emoji
                    else Record("drop", messages, field)
                )
            case Edited(target=target, text=text):
                out.append(Record("put", messages, delivery.edit_field(target), text or ""))
            case Revoked(target=target):
                out.append(Record("put", messages, delivery.deleted_field(target), "1"))
            case IdentityChanged(reason=reason, text=text):
                line = LoggedMessage(
                    id=event.id, direction=SYSTEM, type=reason, at=event.occurred_at, text=text
                )
                _log(out, channel, customer, line)
            case EchoSent(wamid=wamid, kind=kind, text=text):
                out.append(Record("count", day_report(), reports.REPLIES))
                out.append(Record("seed", messages, wamid, delivery.SENT))
                line = LoggedMessage(
                    id=wamid,
                    direction=OUTBOUND,
                    type=kind,
                    at=event.occurred_at,
                    text=text,
                    source=BUSINESS_APP,
                )
                _log(out, channel, customer, line)
            case Opened():
                out.append(Record("count", day_report(), reports.OPENED))
            case SendReply(user=user, text=text, template=template, language=language):
                out.append(Record("count", day_report(), reports.REPLIES))
                outgoing = Outgoing(
                    id=event.id,
                    customer=customer,
                    user=user,
                    phone=identity.phone,
                    user_id=identity.user_id,
                    group_id=identity.group_id,
                    text=text,
                    template=template,
                    language=language,
                )
                out.append(
                    Record("outbox", keys.outbox(channel), _encoder.encode(outgoing).decode())
                )
                line = LoggedMessage(
                    id=event.id,
                    direction=OUTBOUND,
                    type="template" if template else "text",
                    at=event.occurred_at,
                    text=text,
                    template=template,
                    user=user,
                )
                _log(out, channel, customer, line)
            case FirstResponse(seconds=seconds):
                field = reports.time_field(reports.FIRST_RESPONSE, seconds)
                out.append(Record("count", day_report(), field))
            case Resolved(by=by, cycle_seconds=seconds):
                out.append(Record("count", day_report(), reports.RESOLVED))
                if by is ResolvedBy.AUTO:
                    out.append(Record("count", day_report(), reports.AUTO_RESOLVED))
                field = reports.time_field(reports.RESOLUTION, seconds)
                out.append(Record("count", day_report(), field))
            case _:
                pass  # assignments are counted in metrics, not stored


@functools.lru_cache(maxsize=1024)
def _report_key(channel: str, epoch_day: int) -> str:
    return keys.report(channel, reports.day_of(epoch_day * keys.DAY_S))


def _log(out: list[Record], channel: str, customer: str, line: LoggedMessage) -> None:
    out.append(Record("log", keys.log(channel, customer), _encoder.encode(line).decode()))


def inbound(message: CustomerMessage, at: float) -> LoggedMessage:
    author = None
    if message.author is not None:
        author = message.author.name or message.author.username or message.author.phone
        author = author or message.author.user_id
    return LoggedMessage(
        id=message.wamid,
        direction=INBOUND,
        type=message.type,
        at=at,
        text=message.text,
        author=author,
        reply_to=message.context_wamid,
    )
