"""What a decided event writes besides the conversation's state: its annotations, the
recent-messages log, the day's report counters, and an agent action's result. Pure: it
turns an event and its decision into apply.lua's (key, operation, value) triples.
"""

import functools
from collections.abc import Sequence
from typing import Any

import msgspec

from engine import keys, reports
from engine.model import (
    Decision,
    FirstResponse,
    NoteAdded,
    Opened,
    Outcome,
    Resolved,
    ResolvedBy,
    SendReply,
    StatusReceived,
    TagAdded,
    TopicAdded,
)
from parley.events import AGENT_ACTIONS, CustomerMessage, Event

# Messages kept per conversation for the agent's view; Parley is not the archive.
LOG_LENGTH = 20
# WhatsApp's own limit on a text body.
TEXT_MAX = 4096
# How long an action's result can be asked for, and how long an unclaimed wake-up waits.
RESULT_TTL_S = 600  # 384 bytes an action while kept: at 1,000 actions/s, 230 MB
WAKE_TTL_S = 60


class LoggedMessage(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One line of a conversation's recent messages, as stored and as the API shows it."""

    id: str  # the wamid of an inbound message; the event id of an agent's reply
    direction: str  # "inbound" or "outbound"
    type: str
    at: float
    text: str | None = None
    template: str | None = None
    user: str | None = None


class Outgoing(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A reply for the sender, queued in the same step that applied it."""

    id: str  # the reply's event id: the key of its delivery record
    wa_id: str
    user: str
    text: str | None = None
    template: str | None = None
    language: str | None = None


class ActionResult(msgspec.Struct, frozen=True, kw_only=True):
    outcome: Outcome
    reason: str | None = None


_encoder = msgspec.json.Encoder()


class Writes:
    """Keys and (operation, value) pairs in the same order, as apply.lua takes them."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.pairs: list[str] = []

    def add(self, key: str, operation: str, value: str) -> None:
        self.keys.append(key)
        self.pairs += [operation, value]


def records(event: Event, decision: Decision, channel: str, wa_id: str) -> Writes:
    """Everything `event` writes besides its state. Applied events write their effects,
    log line and report counters; an agent action also leaves its result, whatever
    the outcome, for the API that waits on it."""
    writes = Writes()
    if decision.outcome is Outcome.APPLIED:
        _effects(writes, event, decision.effects, channel, wa_id)
        if isinstance(event.payload, CustomerMessage):
            _log(writes, channel, wa_id, inbound(event.payload, event.occurred_at))
    if isinstance(event.payload, AGENT_ACTIONS):
        result = _encoder.encode(ActionResult(outcome=decision.outcome, reason=decision.reason))
        writes.add(keys.result(channel, event.id), "result", result.decode())
        writes.add(keys.wake(channel, event.id), "wake", "1")
    return writes


def _effects(
    writes: Writes, event: Event, effects: Sequence[object], channel: str, wa_id: str
) -> None:
    report = ""  # the day's report key, built only for the effects that count

    def day_report() -> str:
        nonlocal report
        report = report or _report_key(channel, int(event.occurred_at // 86400))
        return report

    for effect in effects:
        match effect:
            case TagAdded(tag=tag):
                writes.add(keys.tags(channel, wa_id), "tag", tag)
            case TopicAdded(topic=topic):
                writes.add(keys.topics(channel, wa_id), "topic", topic)
            case NoteAdded():
                writes.add(keys.notes(channel, wa_id), "note", _encoder.encode(effect).decode())
            case StatusReceived(wamid=wamid, status=status, error=error):
                writes.add(keys.messages(channel, wa_id), "status", f"{wamid}={status}")
                if error:
                    writes.add(keys.messages(channel, wa_id), "error", f"{wamid}={error}")
            case Opened():
                writes.add(day_report(), "count", reports.OPENED)
            case SendReply(user=user, text=text, template=template, language=language):
                writes.add(day_report(), "count", reports.REPLIES)
                outgoing = Outgoing(
                    id=event.id,
                    wa_id=wa_id,
                    user=user,
                    text=text,
                    template=template,
                    language=language,
                )
                writes.add(keys.outbox(channel), "outbox", _encoder.encode(outgoing).decode())
                line = LoggedMessage(
                    id=event.id,
                    direction="outbound",
                    type="template" if template else "text",
                    at=event.occurred_at,
                    text=text,
                    template=template,
                    user=user,
                )
                _log(writes, channel, wa_id, line)
            case FirstResponse(seconds=seconds):
                writes.add(
                    day_report(), "count", reports.time_field(reports.FIRST_RESPONSE, seconds)
                )
            case Resolved(by=by, cycle_seconds=seconds):
                writes.add(day_report(), "count", reports.RESOLVED)
                if by is ResolvedBy.AUTO:
                    writes.add(day_report(), "count", reports.AUTO_RESOLVED)
                writes.add(day_report(), "count", reports.time_field(reports.RESOLUTION, seconds))
            case _:
                pass  # assignments are counted in metrics, not stored


@functools.lru_cache(maxsize=1024)
def _report_key(channel: str, epoch_day: int) -> str:
    return keys.report(channel, reports.day_of(epoch_day * 86400))


def _log(writes: Writes, channel: str, wa_id: str, line: LoggedMessage) -> None:
    writes.add(keys.log(channel, wa_id), "log", _encoder.encode(line).decode())


def inbound(message: CustomerMessage, at: float) -> LoggedMessage:
    return LoggedMessage(
        id=message.wamid,
        direction="inbound",
        type=message.type,
        at=at,
        text=message_text(message.type, message.message),
    )


def message_text(kind: str, message: dict[str, Any]) -> str | None:
    """What an agent reads of a customer's message: its text, a caption, the button or
    list row chosen, a place or a reaction; None for what has no text (a sticker)."""
    body = message.get(kind)
    if not isinstance(body, dict):
        return None
    text: object = None
    if kind == "text":
        text = body.get("body")
    elif kind in ("image", "video", "document", "audio", "sticker"):
        text = body.get("caption") or body.get("filename")
    elif kind == "button":
        text = body.get("text")
    elif kind == "interactive":
        chosen = body.get("button_reply") or body.get("list_reply") or {}
        text = chosen.get("title") if isinstance(chosen, dict) else None
    elif kind == "location":
        text = body.get("name") or body.get("address")
    elif kind == "reaction":
        text = body.get("emoji")
    return text[:TEXT_MAX] if isinstance(text, str) and text else None
