"""What a decided event writes besides the conversation's state, in the store's words
(store/writes.py): the customer record, annotations, the recent-messages log, what
happened to messages (statuses, reactions, edits), the day's report counters, a reply to
send, and an agent action's result. Pure."""

from collections.abc import Sequence

import msgspec

from engine.machine import next_due
from engine.model import (
    Decision,
    EchoSent,
    Edited,
    FirstResponse,
    IdentityChanged,
    NoteAdded,
    Opened,
    OutOfHoursReplied,
    Reacted,
    ReactionSent,
    ReadSent,
    Released,
    Resolved,
    ResolvedBy,
    Returned,
    Revoked,
    SendReply,
    SlaBreached,
    SlaWarned,
    Snoozed,
    StatusReceived,
    TagAdded,
    TopicAdded,
    Woke,
)
from parley.events import AGENT_ACTIONS, CustomerMessage, Identity, MessageStatus, Payload
from parley.state import Conversation, Outcome
from store import delivery, reports, writes
from store.changes import Change
from store.fetches import FetchJob
from store.outbox import MESSAGE, REACTION, READ, Outgoing
from store.writes import (
    BUSINESS_APP,
    INBOUND,
    OUT_OF_HOURS,
    OUTBOUND,
    RELEASED,
    SLA_BREACH,
    SLA_WARNING,
    SNOOZED,
    SYSTEM,
    WOKE,
    WOKE_EARLY,
    ActionResult,
    LogLine,
    MediaLine,
    Op,
)


def records(
    decision: Decision,
    *,
    channel: str,
    event_id: str,
    kind: str,
    at: float,
    customer: str,
    old: Conversation | None,
    payload: Payload | None = None,
) -> list[Op]:
    """Everything a decision writes besides its state: that of event `event_id` of
    `kind` (its `payload`), or of the sweeper (no payload), at `at`. Applied decisions
    write their effects, log line, customer record and report counters, and publish the
    change on the channel's feed; an agent action also leaves its result, whatever the
    outcome, for the API that waits on it."""
    ops: list[Op] = []
    new = decision.state
    if decision.outcome is Outcome.APPLIED and new is not None:
        if old is None or new.customer != old.customer or new.marketing != old.marketing:
            ops.append(writes.Record(old, new))
        if isinstance(payload, CustomerMessage):  # logged before what it caused
            ops.append(writes.Log(inbound(payload, at)))
            if payload.media is not None:
                job = FetchJob(wamid=payload.wamid, customer=customer, media=payload.media)
                ops.append(writes.Fetch(job))
        ops += _effects(event_id, at, decision.effects, customer, new.customer)
        if (due := next_due(new)) != next_due(old):
            ops.append(writes.Timer(due))
        if old is None or (old.queue, old.assignee) != (new.queue, new.assignee):
            ops.append(writes.Holding(old, new, at))
        change = _change(channel, customer, kind, event_id, old, new, ops)
        ops.append(writes.Publish(change, when_known=isinstance(payload, MessageStatus)))
    if isinstance(payload, AGENT_ACTIONS):
        result = ActionResult(outcome=decision.outcome, reason=decision.reason)
        ops.append(writes.Done(event_id, result))
    return ops


def _effects(
    event_id: str, at: float, effects: Sequence[object], customer: str, identity: Identity
) -> list[Op]:
    ops: list[Op] = []
    for effect in effects:
        match effect:
            case TagAdded(tag=tag):
                ops.append(writes.AddTag(tag))
            case TopicAdded(topic=topic):
                ops.append(writes.AddTopic(topic))
            case NoteAdded(user=user, text=text, at=noted_at):
                ops.append(writes.AddNote(user, text, noted_at))
            case StatusReceived():
                ops.append(
                    writes.Delivered(
                        effect.wamid,
                        effect.status,
                        effect.error,
                        effect.pricing,
                        effect.callback_data,
                    )
                )
            case Reacted(target=target, emoji=emoji):
                ops.append(writes.Reacted(target, emoji))
            case Edited(target=target, text=text):
                ops.append(writes.Edited(target, text))
            case Revoked(target=target):
                ops.append(writes.Deleted(target))
            case IdentityChanged(reason=reason, text=text):
                line = LogLine(id=event_id, direction=SYSTEM, type=reason, at=at, text=text)
                ops.append(writes.Log(line))
            case EchoSent(wamid=wamid, kind=kind, text=text):
                ops.append(writes.Count(at, reports.REPLIES))
                ops.append(writes.Sent(wamid, delivery.SENT))
                line = LogLine(
                    id=wamid, direction=OUTBOUND, type=kind, at=at, text=text, source=BUSINESS_APP
                )
                ops.append(writes.Log(line))
            case Opened():
                ops.append(writes.Count(at, reports.OPENED))
            case SendReply():
                ops.append(writes.Count(at, reports.REPLIES))
                ops.append(writes.Send(_outgoing(event_id, customer, identity, effect)))
                ops.append(writes.Log(_sent_line(event_id, at, effect)))
            case ReactionSent(target=target, emoji=emoji):
                reaction = _to(event_id, customer, identity, kind=REACTION, user="")
                ops.append(
                    writes.Send(msgspec.structs.replace(reaction, target=target, emoji=emoji))
                )
                ops.append(writes.BusinessReacted(target, emoji))
            case ReadSent(wamid=wamid, typing=typing):
                read = _to(event_id, customer, identity, kind=READ, user="")
                ops.append(writes.Send(msgspec.structs.replace(read, target=wamid, typing=typing)))
            case SlaWarned(target=target, due=due) | SlaBreached(target=target, due=due):
                breached = isinstance(effect, SlaBreached)
                kind = SLA_BREACH if breached else SLA_WARNING
                line = LogLine(
                    id=f"{event_id}:{kind}:{target}",
                    direction=SYSTEM,
                    type=kind,
                    at=at,
                    text=target,
                    until=due,
                )
                ops.append(writes.Log(line))
                ops.append(
                    writes.Count(at, reports.SLA_BREACHES if breached else reports.SLA_WARNINGS)
                )
            case Returned():
                ops.append(writes.Returned(at))
            case Released(user=user, why=why):
                line = LogLine(
                    id=f"{event_id}:{RELEASED}",
                    direction=SYSTEM,
                    type=RELEASED,
                    at=at,
                    text=why.value,
                    user=user,
                )
                ops.append(writes.Log(line))
            case Snoozed(until=until):
                line = LogLine(id=event_id, direction=SYSTEM, type=SNOOZED, at=at, until=until)
                ops.append(writes.Log(line))
            case Woke(early=early):
                # Its own id: woken early, the event is a customer message whose line
                # carries the wamid, and a log's lines are told apart by id.
                kind = WOKE_EARLY if early else WOKE
                line = LogLine(id=f"{event_id}:{kind}", direction=SYSTEM, type=kind, at=at)
                ops.append(writes.Log(line))
            case OutOfHoursReplied(text=text, template=template, language=language):
                # Its own id: the event is the customer's message, whose line has the
                # wamid; the sender records the reply's delivery under this one.
                reply_id = f"{event_id}:{OUT_OF_HOURS}"
                reply = SendReply(user="", text=text, template=template, language=language)
                ops.append(writes.Send(_outgoing(reply_id, customer, identity, reply)))
                line = LogLine(
                    id=reply_id,
                    direction=OUTBOUND,
                    type="template" if template else "text",
                    at=at,
                    text=text,
                    template=template,
                    source=OUT_OF_HOURS,
                )
                ops.append(writes.Log(line))
            case FirstResponse(seconds=seconds):
                ops.append(writes.CountTime(at, reports.FIRST_RESPONSE, seconds))
            case Resolved(by=by, cycle_seconds=seconds):
                ops.append(writes.Count(at, reports.RESOLVED))
                if by is ResolvedBy.AUTO:
                    ops.append(writes.Count(at, reports.AUTO_RESOLVED))
                ops.append(writes.CountTime(at, reports.RESOLUTION, seconds))
            case _:
                pass  # assignments are counted in metrics, not stored
    return ops


def _change(
    channel: str,
    customer: str,
    kind: str,
    event_id: str,
    old: Conversation | None,
    new: Conversation,
    ops: Sequence[Op],
) -> Change:
    version = old.version if old is not None else 0
    lines = [op.line for op in ops if isinstance(op, writes.Log)]
    return Change(
        channel=channel,
        customer=customer,
        kind=kind,
        event=event_id,
        version=version + 1 if new != old else version,
        was=old.queue.value if old is not None else None,
        queue=new.queue.value,
        assignee=new.assignee,
        last_activity_at=new.last_activity_at,
        last_customer_message_at=new.last_customer_at,
        snoozed_until=new.snoozed_until,
        customer_name=new.customer.name or new.customer.username,
        preview=next((writes.preview(line) for line in lines), None),
    )


def _to(event_id: str, customer: str, identity: Identity, *, kind: str, user: str) -> Outgoing:
    return Outgoing(
        id=event_id,
        customer=customer,
        user=user,
        phone=identity.phone,
        user_id=identity.user_id,
        group_id=identity.group_id,
        kind=kind,
    )


def _outgoing(event_id: str, customer: str, identity: Identity, reply: SendReply) -> Outgoing:
    return msgspec.structs.replace(
        _to(event_id, customer, identity, kind=MESSAGE, user=reply.user),
        text=reply.text,
        template=reply.template,
        language=reply.language,
        parameters=reply.parameters,
        attachment=reply.attachment,
        interactive=reply.interactive,
        reply_to=reply.reply_to,
    )


def _sent_line(event_id: str, at: float, reply: SendReply) -> LogLine:
    kind = "text"
    media = None
    if reply.template:
        kind = "template"
    elif reply.attachment is not None:
        kind = reply.attachment.kind
        media = MediaLine(
            kind=kind,
            mime_type=reply.attachment.mime_type,
            filename=reply.attachment.filename,
            key=reply.attachment.key,
            size=reply.attachment.size,
        )
    elif reply.interactive is not None:
        kind = "interactive"
    return LogLine(
        id=event_id,
        direction=OUTBOUND,
        type=kind,
        at=at,
        text=reply.text or (reply.interactive.body if reply.interactive else None),
        template=reply.template,
        user=reply.user,
        reply_to=reply.reply_to,
        media=media,
        interactive=reply.interactive,
    )


def inbound(message: CustomerMessage, at: float) -> LogLine:
    author = None
    if message.author is not None:
        author = message.author.name or message.author.username or message.author.phone
        author = author or message.author.user_id
    media = None
    if message.media is not None:
        media = MediaLine(
            kind=message.type,
            mime_type=message.media.mime_type,
            filename=message.media.filename,
            voice=message.media.voice,
        )
    return LogLine(
        id=message.wamid,
        direction=INBOUND,
        type=message.type,
        at=at,
        text=message.text,
        author=author,
        reply_to=message.context_wamid,
        media=media,
        place=message.place,
        cards=message.cards,
    )
