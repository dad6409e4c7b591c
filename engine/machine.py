"""The conversation state machine: state and event in, decision out. No I/O, no clock.

The table it implements, and why each open case went the way it did, is
docs/transitions.md. Event ids, versions and duplicates are the adapter's business: a
returned state carries the input's `version`, and the adapter bumps it when it writes.
"""

from typing import Any, assert_never

import msgspec

from engine.model import (
    Assigned,
    Decision,
    EchoSent,
    Edited,
    Effect,
    FirstResponse,
    IdentityChanged,
    NoteAdded,
    Opened,
    OutOfHoursReplied,
    Reacted,
    ReactionSent,
    ReadSent,
    Released,
    ReleaseReason,
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
    Unassigned,
    Woke,
)
from parley import sla
from parley.business_hours import is_open
from parley.channels import ChannelSettings
from parley.events import (
    AddNote,
    AddTag,
    AddTopic,
    AgentReply,
    Assign,
    CustomerMessage,
    Echo,
    Edit,
    Event,
    Identity,
    IdentityChange,
    MarkRead,
    MessageStatus,
    Move,
    Preference,
    React,
    Reaction,
    Revoke,
    Snooze,
    Unassign,
)
from parley.sla import FIRST_RESPONSE, NEXT_RESPONSE, RESOLUTION
from parley.state import AUTO_RESOLVE_QUEUES, Conversation, Outcome, Queue

NO_CONVERSATION = "no conversation"
MOVE_TARGETS = frozenset({Queue.PENDING, Queue.RESOLVED})
MARKETING = "marketing_messages"
WELCOME = "request_welcome"


def transition(
    state: Conversation | None, event: Event, settings: ChannelSettings, now: float
) -> Decision:
    """What `event` does to `state` (None: no conversation yet).

    `now` is deliberately unused: stored times come from `event.occurred_at` only, so
    replaying the same events over the same state always gives the same result.
    Never returns Outcome.DUPLICATE; the adapter detects duplicates by event id.
    """
    at = event.occurred_at
    payload = event.payload
    match payload:
        case CustomerMessage():
            return _customer_message(state, event.identity, payload, settings, at)
        case MessageStatus():
            pricing = None
            if payload.pricing_category or payload.pricing_type:
                pricing = f"{payload.pricing_category or ''}/{payload.pricing_type or ''}"
            received = StatusReceived(
                payload.wamid, payload.status, payload.error, pricing, payload.callback_data
            )
            # A receipt is not the customer acting: it never moves activity, so a read
            # weeks later cannot postpone auto-resolve.
            return _about(state, event.identity, received)
        case Reaction():
            return _about(state, event.identity, Reacted(payload.target, payload.emoji))
        case Edit():
            return _about(state, event.identity, Edited(payload.target, payload.text))
        case Revoke():
            return _about(state, event.identity, Revoked(payload.target))
        case IdentityChange():
            if state is None:
                return _ignored(state, NO_CONVERSATION)
            customer = _merge(_merge(state.customer, event.identity), payload.new)
            changed = msgspec.structs.replace(state, customer=customer)
            return _applied(changed, IdentityChanged(payload.reason, payload.text))
        case Preference():
            if state is None:
                return _ignored(state, NO_CONVERSATION)
            if payload.category != MARKETING:
                return _ignored(state, f"no preference {payload.category}")
            customer = _merge(state.customer, event.identity)
            return _applied(
                msgspec.structs.replace(state, customer=customer, marketing=payload.value)
            )
        case Echo():
            return _echo(state, event.identity, payload, at)
        case AgentReply():
            return _reply(state, event.identity, payload, settings, at)
        case Move():
            return _move(state, payload.queue, at)
        case Snooze():
            return _snooze(state, payload.until, at)
        case Assign():
            return _assign(state, payload.assignee, at)
        case Unassign():
            return _unassign(state, at)
        case AddTag():
            return _annotate(state, at, "tag", payload.tag, TagAdded(payload.tag))
        case AddNote():
            note = NoteAdded(payload.actor.user, payload.text, at)
            return _annotate(state, at, "note", payload.text, note)
        case AddTopic():
            return _annotate(state, at, "topic", payload.topic, TopicAdded(payload.topic))
        case React():
            if state is None:
                return _rejected(state, NO_CONVERSATION)
            return _applied(_touch(state, at), ReactionSent(payload.target, payload.emoji))
        case MarkRead():
            return _mark_read(state, payload.typing, settings)
    assert_never(payload)


def auto_resolve(state: Conversation | None, settings: ChannelSettings, now: float) -> Decision:
    """What one sweep at `now` does to `state`: resolve it if it sat idle long enough."""
    if state is None:
        return _ignored(state, NO_CONVERSATION)
    if state.queue not in AUTO_RESOLVE_QUEUES:
        return _ignored(state, f"{state.queue} conversations do not auto-resolve")
    if state.snoozed_until is not None:
        # Its timer wakes it first; the woken conversation's period counts from then.
        return _ignored(state, "snoozed")
    cutoff = auto_resolve_cutoff(state.queue, settings, now)
    if cutoff is None:
        return _ignored(state, f"auto-resolve is off for {state.queue}")
    # Compared as the queue's score is read (activity <= cutoff), not as activity +
    # period <= now, so that float rounding cannot make the two disagree.
    if state.last_activity_at > cutoff:
        return _ignored(state, "not idle long enough")
    # Activity stays: a sweep is nobody acting on the conversation.
    return _resolve(state, ResolvedBy.AUTO, now)


def next_due(state: Conversation | None) -> float | None:
    """When the conversation's next timer fires (what the store's timer set scores it
    by): a snooze's end, an SLA warning or breach; None when it has none. Auto-resolve
    is not here: the queue sets time it."""
    if state is None:
        return None
    times = [deadline.next_at for deadline in state.sla]
    if state.queue is Queue.PENDING:
        times.append(state.snoozed_until)
    elif state.queue is Queue.OPEN:
        times.append(state.reassign_at)
    found = [at for at in times if at is not None]
    return min(found) if found else None


def fire_timers(state: Conversation | None, settings: ChannelSettings, now: float) -> Decision:
    """What the timers due at `now` do to `state`:
    - an SLA target's warning, then its breach, each once (not activity);
    - a routed conversation its assignee has not answered goes back to New for the next
      agent (not activity: nobody acted);
    - a snooze ends, waking the conversation to Open when it has an assignee, else New;
      its activity moves to the wake-up time (not `now`), so that replaying gives the
      same state and a woken New conversation's auto-resolve counts from when it woke."""
    if state is None:
        return _ignored(state, NO_CONVERSATION)
    due = next_due(state)
    if due is None:
        return _ignored(state, "no timer")
    if due > now:
        return _ignored(state, "not due yet")
    effects: list[Effect] = []
    deadlines = []
    for deadline in state.sla:
        if not deadline.breached and deadline.due <= now:
            if not deadline.warned and deadline.warn_at < deadline.due:
                effects.append(SlaWarned(deadline.target, deadline.due))
            effects.append(SlaBreached(deadline.target, deadline.due))
            deadline = msgspec.structs.replace(deadline, warned=True, breached=True)
        elif not deadline.warned and deadline.warn_at < deadline.due and deadline.warn_at <= now:
            effects.append(SlaWarned(deadline.target, deadline.due))
            deadline = msgspec.structs.replace(deadline, warned=True)
        deadlines.append(deadline)
    state = msgspec.structs.replace(state, sla=tuple(deadlines))
    snoozed = state.snoozed_until
    if state.queue is Queue.PENDING and snoozed is not None and snoozed <= now:
        state = _wake(_touch(state, snoozed))
        effects.append(Woke(early=False))
    reassign = state.reassign_at
    if state.queue is Queue.OPEN and reassign is not None and reassign <= now:
        if settings.routing is None or settings.routing.reassign_after_s is None:
            # Switched off since it was routed: its assignee keeps it.
            state = _unhand(state)
        else:
            state, released = _release(state, ReleaseReason.UNANSWERED)
            state = msgspec.structs.replace(state, passed_over=released[-1].user)
            effects += released
    return _applied(state, *effects)


def route(
    state: Conversation | None, agent: str, settings: ChannelSettings, now: float
) -> Decision:
    """The router hands a conversation waiting in New to `agent` (its plan decided who):
    Open, assigned, unanswered since `now`; with the channel's reassign limit, the
    conversation goes to the next agent if `agent` has not answered by then. Not
    activity: nobody acted on it."""
    if state is None:
        return _ignored(state, NO_CONVERSATION)
    if state.queue is not Queue.NEW or state.assignee is not None:
        return _ignored(state, f"{state.queue} conversations are not waiting")
    limit = settings.routing.reassign_after_s if settings.routing else None
    routed = msgspec.structs.replace(
        state,
        queue=Queue.OPEN,
        assignee=agent,
        handed_at=now,
        reassign_at=None if limit is None else now + limit,
        passed_over=None,
    )
    return _applied(routed, Assigned(agent, auto=True))


def release(
    state: Conversation | None, agent: str, why: ReleaseReason, settings: ChannelSettings
) -> Decision:
    """Take the conversation from `agent`, who is offline (the router checked):
    - OFFLINE: one routed to them and not answered since goes back to New; with the
      channel's `release_all_when_offline`, their Open ones go to New and their Pending
      ones stay Pending, unassigned;
    - RETURNED: the customer wrote to their Pending conversation (now Open): to New.
    Not activity: nobody acted on it."""
    if state is None:
        return _ignored(state, NO_CONVERSATION)
    if state.assignee != agent:
        return _ignored(state, f"not assigned to {agent}")
    everything = settings.routing is not None and settings.routing.release_all_when_offline
    held = state.queue in (Queue.OPEN, Queue.PENDING)
    if (why is ReleaseReason.OFFLINE and held and (everything or state.handed_at is not None)) or (
        why is ReleaseReason.RETURNED and state.queue is Queue.OPEN
    ):
        released, effects = _release(state, why)
        return _applied(released, *effects)
    return _ignored(state, "kept by its assignee")


def _release(
    state: Conversation, why: ReleaseReason
) -> tuple[Conversation, tuple[Unassigned, Released]]:
    """`state` taken from its assignee: Open goes back to New, Pending stays Pending."""
    assert state.assignee is not None
    queue = Queue.NEW if state.queue is Queue.OPEN else state.queue
    released = _unhand(msgspec.structs.replace(state, queue=queue, assignee=None))
    return released, (Unassigned(state.assignee), Released(state.assignee, why))


def _unhand(state: Conversation) -> Conversation:
    """`state` no longer waiting on a routed assignee's first answer."""
    if state.handed_at is None and state.reassign_at is None:
        return state
    return msgspec.structs.replace(state, handed_at=None, reassign_at=None)


def _start_sla(
    state: Conversation, settings: ChannelSettings, at: float, *targets: str
) -> Conversation:
    """`state` with the deadlines of `targets` started at `at`, replacing any of the same
    target (a target the channel does not set starts nothing)."""
    hours = settings.business_hours
    started = [
        found for target in targets if (found := sla.deadline(settings.sla, hours, target, at))
    ]
    if not started:
        return state
    kept = [d for d in state.sla if d.target not in {s.target for s in started}]
    return msgspec.structs.replace(state, sla=(*kept, *started))


def _meet_sla(state: Conversation, *targets: str) -> Conversation:
    """`state` without the deadlines of `targets`: met (or no longer running)."""
    if not any(d.target in targets for d in state.sla):
        return state
    return msgspec.structs.replace(
        state, sla=tuple(d for d in state.sla if d.target not in targets)
    )


def _wake(state: Conversation) -> Conversation:
    queue = Queue.OPEN if state.assignee is not None else Queue.NEW
    return msgspec.structs.replace(state, queue=queue, snoozed_until=None)


def auto_resolve_cutoff(queue: Queue, settings: ChannelSettings, now: float) -> float | None:
    """Last activity at or below which conversations in `queue` are due at `now`;
    None when the queue never auto-resolves or the channel switched it off."""
    if queue is Queue.NEW:
        period = settings.auto_resolve_new_s
    elif queue is Queue.PENDING:
        period = settings.auto_resolve_pending_s
    else:
        return None
    return None if period is None else now - period


def _customer_message(
    state: Conversation | None,
    identity: Identity,
    message: CustomerMessage,
    settings: ChannelSettings,
    at: float,
) -> Decision:
    decision = _customer_wrote(state, identity, message, at, routed=settings.routing is not None)
    written = decision.state
    assert written is not None  # a customer's message always leaves a conversation
    if any(isinstance(effect, Opened) for effect in decision.effects):
        written = _start_sla(written, settings, at, FIRST_RESPONSE, RESOLUTION)
    elif written.first_response_at is not None and not _running(written, NEXT_RESPONSE):
        # Answered before, and the customer writes again: the next answer is due.
        written = _start_sla(written, settings, at, NEXT_RESPONSE)
    return _out_of_hours(msgspec.structs.replace(decision, state=written), settings, at)


def _running(state: Conversation, target: str) -> bool:
    return any(deadline.target == target for deadline in state.sla)


def _out_of_hours(decision: Decision, settings: ChannelSettings, at: float) -> Decision:
    """A customer writing outside the channel's business hours is sent its out-of-hours
    reply, once a cycle (decided on the message's own time, so a replay agrees). Nobody
    in Parley answered: no assignment, no first response, not activity."""
    state, reply = decision.state, settings.out_of_hours_reply
    if (
        state is None
        or reply is None
        or state.out_of_hours_replied
        or is_open(settings.business_hours, at)
    ):
        return decision
    return _applied(
        msgspec.structs.replace(state, out_of_hours_replied=True),
        *decision.effects,
        OutOfHoursReplied(reply.text, reply.template, reply.language),
    )


def _customer_wrote(
    state: Conversation | None,
    identity: Identity,
    message: CustomerMessage,
    at: float,
    *,
    routed: bool,
) -> Decision:
    """`routed`: the channel routes by availability, so a customer back on a Pending
    conversation with an assignee is Returned (released if the assignee is offline)."""
    told = identity
    if message.shared_phone and not identity.group_id:
        # Answering a contact request: the number is the customer's own.
        told = msgspec.structs.replace(identity, phone=message.shared_phone)
    # What read receipts mark read (a chat opened is no message to mark).
    inbound = message.wamid if message.type != WELCOME else None
    if state is None or state.queue is Queue.RESOLVED:
        opened = _new_cycle(state, at, last_customer_at=at)
        customer = _merge(opened.customer, told)
        last = inbound or opened.last_inbound
        return _applied(
            msgspec.structs.replace(opened, customer=customer, last_inbound=last), Opened()
        )
    effects: list[Effect] = []
    if state.queue is Queue.PENDING:
        if state.snoozed_until is not None:
            effects.append(Woke(early=True))
        if routed and state.assignee is not None:
            effects.append(Returned(state.assignee))
        state = _wake(state)
    last_customer_at = at if state.last_customer_at is None else max(state.last_customer_at, at)
    customer = _merge(state.customer, told)
    touched = _touch(
        state,
        at,
        last_customer_at=last_customer_at,
        customer=customer,
        last_inbound=inbound or state.last_inbound,
    )
    return _applied(touched, *effects)


def _mark_read(state: Conversation | None, typing: bool, settings: ChannelSettings) -> Decision:
    """An agent opened the conversation (or is writing in it): the customer's last
    message is marked read once; the typing indicator goes with a read, so it too is
    sent only where read receipts are on. Neither is activity."""
    if state is None:
        return _rejected(state, NO_CONVERSATION)
    if not settings.read_receipts:
        return _ignored(state, "read receipts are off on this channel")
    if state.last_inbound is None:
        return _ignored(state, "no message from the customer to mark read")
    if state.read == state.last_inbound and not typing:
        return _ignored(state, "already marked read")
    marked = msgspec.structs.replace(state, read=state.last_inbound)
    return _applied(marked, ReadSent(state.last_inbound, typing))


def _about(state: Conversation | None, identity: Identity, effect: Effect) -> Decision:
    """Something about the conversation's messages (a status, a reaction, an edit, a
    deletion): recorded, but not activity, and never a reopening."""
    if state is None:
        return _ignored(state, NO_CONVERSATION)
    return _applied(
        msgspec.structs.replace(state, customer=_merge(state.customer, identity)), effect
    )


def _echo(state: Conversation | None, identity: Identity, echo: Echo, at: float) -> Decision:
    """The business answered from the WhatsApp Business app: nobody in Parley did, so
    it assigns no one and moves no queue, but the customer had an answer (first
    response) and the conversation was active. A resolved one stays resolved."""
    if state is None:
        return _ignored(state, NO_CONVERSATION)
    sent = EchoSent(echo.wamid, echo.type, echo.text)
    customer = _merge(state.customer, identity)
    if state.queue is Queue.RESOLVED:
        return _applied(msgspec.structs.replace(state, customer=customer), sent)
    touched = _touch(state, at, customer=customer)
    state = _unhand(_meet_sla(touched, FIRST_RESPONSE, NEXT_RESPONSE))
    if state.first_response_at is not None:
        return _applied(state, sent)
    state = msgspec.structs.replace(state, first_response_at=at)
    return _applied(state, sent, FirstResponse(at - state.opened_at))


def _merge(known: Identity, told: Identity) -> Identity:
    """The customer record after an event told us `told`: what it says wins, what it
    leaves out stays."""
    if known == told:
        return known
    changes = {
        field: value
        for field in Identity.__struct_fields__
        if (value := getattr(told, field)) is not None and value != getattr(known, field)
    }
    return msgspec.structs.replace(known, **changes) if changes else known


def _reply(
    state: Conversation | None,
    identity: Identity,
    reply: AgentReply,
    settings: ChannelSettings,
    at: float,
) -> Decision:
    if (
        _blank(reply.text)
        and _blank(reply.template)
        and reply.attachment is None
        and reply.interactive is None
    ):
        return _rejected(state, "reply needs text, a template, a file or choices")
    user = reply.actor.user
    effects: list[Effect] = []
    if state is None:
        # Reaching out first: the customer is who the producer addressed.
        state = msgspec.structs.replace(
            _new_cycle(None, at, last_customer_at=None), customer=identity
        )
        effects.append(Opened())
    elif state.queue is Queue.RESOLVED:
        state = _new_cycle(state, at, last_customer_at=state.last_customer_at)
        effects.append(Opened())
    else:
        state = _touch(state, at)
    # Only new and pending can be unassigned here; an open one keeps its assignee even
    # when a colleague answers.
    if settings.auto_assign and state.assignee is None:
        queue = Queue.OPEN if state.queue is Queue.NEW else state.queue
        state = msgspec.structs.replace(state, queue=queue, assignee=user)
        effects.append(Assigned(user, auto=True))
    effects.append(
        SendReply(
            user,
            reply.text,
            reply.template,
            reply.language,
            reply.parameters,
            reply.attachment,
            reply.interactive,
            reply.reply_to,
        )
    )
    if state.first_response_at is None:
        state = msgspec.structs.replace(state, first_response_at=at)
        effects.append(FirstResponse(at - state.opened_at))
    state = _unhand(_meet_sla(state, FIRST_RESPONSE, NEXT_RESPONSE))
    if any(isinstance(effect, Opened) for effect in effects):
        state = _start_sla(state, settings, at, RESOLUTION)
    return _applied(state, *effects)


def _move(state: Conversation | None, target: str, at: float) -> Decision:
    if target not in MOVE_TARGETS:
        return _rejected(state, "can only move to pending or resolved")
    if state is None:
        return _rejected(state, NO_CONVERSATION)
    if target == Queue.PENDING:
        if state.queue is Queue.PENDING:
            return _ignored(state, "already pending")
        if state.queue is Queue.RESOLVED:
            return _rejected(state, "resolved conversations cannot be pending")
        # Waiting on the customer now: no answer is due from the team.
        pending = _touch(state, at, queue=Queue.PENDING)
        return _applied(_unhand(_meet_sla(pending, NEXT_RESPONSE)))
    if state.queue is Queue.RESOLVED:
        return _ignored(state, "already resolved")
    return _resolve(_touch(state, at), ResolvedBy.AGENT, at)


def _snooze(state: Conversation | None, until: float, at: float) -> Decision:
    """Park in Pending until `until`, keeping the assignee; snoozing again moves the
    wake-up. Activity: an agent acted."""
    if state is None:
        return _rejected(state, NO_CONVERSATION)
    if state.queue is Queue.RESOLVED:
        return _rejected(state, "resolved conversations cannot be snoozed")
    if until <= at:
        return _rejected(state, "a snooze must end in the future")
    if state.queue is Queue.PENDING and state.snoozed_until == until:
        return _ignored(state, "already snoozed until then")
    snoozed = _touch(state, at, queue=Queue.PENDING, snoozed_until=until)
    return _applied(_unhand(_meet_sla(snoozed, NEXT_RESPONSE)), Snoozed(until))


def _assign(state: Conversation | None, assignee: str, at: float) -> Decision:
    if not assignee.strip():
        return _rejected(state, "assignee must not be empty")
    if state is None:
        return _rejected(state, NO_CONVERSATION)
    if state.queue is Queue.RESOLVED:
        return _rejected(state, "resolved conversations have no assignee")
    if state.assignee == assignee:
        return _ignored(state, "already assigned")
    effects: list[Effect] = []
    if state.assignee is not None:
        effects.append(Unassigned(state.assignee))
    effects.append(Assigned(assignee, auto=False))
    queue = Queue.OPEN if state.queue is Queue.NEW else state.queue
    return _applied(_unhand(_touch(state, at, queue=queue, assignee=assignee)), *effects)


def _unassign(state: Conversation | None, at: float) -> Decision:
    if state is None:
        return _rejected(state, NO_CONVERSATION)
    if state.assignee is None:
        return _ignored(state, "not assigned")
    # Open means assigned, so it falls back to new; pending keeps waiting, unassigned.
    queue = Queue.NEW if state.queue is Queue.OPEN else state.queue
    effect = Unassigned(state.assignee)
    return _applied(_unhand(_touch(state, at, queue=queue, assignee=None)), effect)


def _annotate(
    state: Conversation | None, at: float, what: str, value: str, effect: Effect
) -> Decision:
    if not value.strip():
        return _rejected(state, f"{what} must not be empty")
    if state is None:
        return _rejected(state, NO_CONVERSATION)
    return _applied(_touch(state, at), effect)


def _resolve(state: Conversation, by: ResolvedBy, at: float) -> Decision:
    effects: list[Effect] = []
    if state.assignee is not None:
        effects.append(Unassigned(state.assignee))
    effects.append(Resolved(by, cycle_seconds=at - state.opened_at))
    resolved = msgspec.structs.replace(
        state,
        queue=Queue.RESOLVED,
        assignee=None,
        snoozed_until=None,
        sla=(),
        handed_at=None,
        reassign_at=None,
        passed_over=None,
    )
    return _applied(resolved, *effects)


def _new_cycle(
    state: Conversation | None, at: float, *, last_customer_at: float | None
) -> Conversation:
    if state is None:
        return Conversation(
            queue=Queue.NEW, opened_at=at, last_activity_at=at, last_customer_at=last_customer_at
        )
    # A resolved conversation reopens in place, keeping its version for the adapter's
    # compare-and-set; activity still never moves backwards.
    return _touch(
        state,
        at,
        queue=Queue.NEW,
        assignee=None,
        opened_at=at,
        last_customer_at=last_customer_at,
        first_response_at=None,
        snoozed_until=None,
        out_of_hours_replied=False,
        sla=(),
        handed_at=None,
        reassign_at=None,
        passed_over=None,
    )


def _touch(state: Conversation, at: float, **changes: Any) -> Conversation:
    # Kafka order decides transitions; a late timestamp must not pull activity back.
    return msgspec.structs.replace(
        state, last_activity_at=max(state.last_activity_at, at), **changes
    )


def _blank(text: str | None) -> bool:
    return text is None or not text.strip()


def _applied(state: Conversation, *effects: Effect) -> Decision:
    return Decision(outcome=Outcome.APPLIED, state=state, effects=effects)


def _rejected(state: Conversation | None, reason: str) -> Decision:
    return Decision(outcome=Outcome.REJECTED, state=state, reason=reason)


def _ignored(state: Conversation | None, reason: str) -> Decision:
    return Decision(outcome=Outcome.IGNORED, state=state, reason=reason)
