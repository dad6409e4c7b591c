"""A conversation, and what agents do to it. Every change is an event on the
conversation's partition: the engine stays the one writer, and the API waits briefly
for its decision."""

import uuid
from collections.abc import Awaitable, Callable
from typing import Literal

from aiohttp import web

from api import errors, replies
from api.access import on_channel
from api.appkeys import CLOCK, DIRECTORY, PRODUCER, READER, SETTINGS
from api.body import read_body
from api.responses import json
from api.schemas import (
    Accepted,
    ActionApplied,
    ActionStatus,
    AssigneeBody,
    ConversationView,
    MoveTo,
    NoteBody,
    ReactionBody,
    ReadBody,
    ReplyBody,
    SnoozeBody,
    TagBody,
    TopicBody,
    conversation_view,
)
from api.spec import Endpoint
from assign import Action, User, decide
from parley.events import (
    Actor,
    AddNote,
    AddTag,
    AddTopic,
    Assign,
    Event,
    Identity,
    MarkRead,
    Move,
    Payload,
    Snooze,
    Unassign,
)
from parley.producer import ProduceError, Routed
from parley.state import Outcome
from store.reader import ConversationRecord

# {customer}: any identifier of the customer (phone, BSUID, username, Parley's id).
ONE = "/v1/conversations/{channel}/{customer}"


def _where(request: web.Request) -> tuple[str, str]:
    return request.match_info["channel"], request.match_info["customer"]


async def _customer(request: web.Request, channel: str, identifier: str) -> str:
    """Parley's id of the customer `identifier` names; 404 when there is none."""
    customer = await request.config_dict[READER].find_customer(channel, identifier)
    if customer is None:
        raise errors.not_found(f"no conversation {identifier} on channel {channel}")
    return customer


async def get_conversation(request: web.Request) -> web.Response:
    channel, identifier = _where(request)
    await on_channel(request, channel, Action.SEE)
    customer = await _customer(request, channel, identifier)
    record = await request.config_dict[READER].conversation(channel, customer)
    if record is None:
        raise errors.not_found(f"no conversation {identifier} on channel {channel}")
    return json(conversation_view(record))


# Builds an action's payload from the request (reading and checking its body).
Build = Callable[[web.Request, Actor, str, str, float], Awaitable[Payload]]


async def _act(request: web.Request, action: Action, build: Build) -> web.Response:
    """Check, build the event, produce it, and wait up to PARLEY_ACTION_WAIT_S for the
    engine's decision: 200 (applied or nothing to do), 409 (refused), else 202."""
    channel, identifier = _where(request)
    user, role = await on_channel(request, channel, action)
    reader = request.config_dict[READER]
    customer = await _customer(request, channel, identifier)
    current = await reader.state(channel, customer)
    if current is None:
        raise errors.not_found(f"no conversation {identifier} on channel {channel}")
    now = request.config_dict[CLOCK]()
    payload = await build(request, Actor(user.id, role), channel, customer, now)
    record = current.customer
    event = Event(
        id=uuid.uuid4().hex,
        channel=channel,
        # Keyed as the customer's webhooks are, so the engine sees one order.
        identity=Identity(phone=record.phone, user_id=record.user_id, group_id=record.group_id),
        customer=customer,
        occurred_at=now,
        received_at=now,
        payload=payload,
    )
    try:
        await request.config_dict[PRODUCER].publish(Routed([event], []))
    except ProduceError:
        raise errors.ApiError(
            503, "kafka_unavailable", "the events topic is unavailable; nothing was done"
        ) from None
    result = await reader.wait_for_result(
        channel, event.id, request.config_dict[SETTINGS].action_wait_s
    )
    if result is None:
        status_url = f"/v1/conversations/{channel}/{customer}/actions/{event.id}"
        return json(Accepted(event_id=event.id, status_url=status_url), status=202)
    if result.outcome is Outcome.REJECTED:
        raise errors.conflict("rejected", result.reason or "the engine refused the action")
    after = await reader.conversation(channel, customer)
    if after is None:  # cannot happen: applied actions leave a conversation
        raise errors.not_found(f"no conversation {identifier} on channel {channel}")
    outcome: Literal["applied", "ignored"] = "ignored"
    if result.outcome is Outcome.APPLIED:
        outcome = "applied"
    return json(
        ActionApplied(
            event_id=event.id,
            outcome=outcome,
            reason=result.reason,
            conversation=conversation_view(after),
        )
    )


async def _conversation(request: web.Request, channel: str, customer: str) -> ConversationRecord:
    found = await request.config_dict[READER].conversation(channel, customer)
    if found is None:
        raise errors.not_found(f"no conversation {customer} on channel {channel}")
    return found


async def _reply(
    request: web.Request, actor: Actor, channel: str, customer: str, now: float
) -> Payload:
    conversation = await _conversation(request, channel, customer)
    return await replies.reply(request, channel, conversation, actor, now)


async def _reaction(
    request: web.Request, actor: Actor, channel: str, customer: str, now: float
) -> Payload:
    conversation = await _conversation(request, channel, customer)
    return await replies.reaction(request, conversation, actor, now)


async def _read(
    request: web.Request, actor: Actor, channel: str, customer: str, now: float
) -> Payload:
    typing = False
    if request.can_read_body:
        typing = (await read_body(request, ReadBody)).typing
    return MarkRead(actor=actor, typing=typing)


async def _typing(
    request: web.Request, actor: Actor, channel: str, customer: str, now: float
) -> Payload:
    return MarkRead(actor=actor, typing=True)


async def _move(
    request: web.Request, actor: Actor, channel: str, customer: str, now: float
) -> Payload:
    return Move(actor=actor, queue=(await read_body(request, MoveTo)).queue)


# The longest snooze: further than this is almost surely a mistyped year.
MAX_SNOOZE_S = 366 * 86400


async def _snooze(
    request: web.Request, actor: Actor, channel: str, customer: str, now: float
) -> Payload:
    until = (await read_body(request, SnoozeBody)).until
    if until.tzinfo is None:
        raise errors.invalid("until", "needs a time zone, e.g. 2026-12-01T09:00:00+01:00 or Z")
    at = until.timestamp()
    if at <= now:
        raise errors.invalid("until", "must be in the future")
    if at > now + MAX_SNOOZE_S:
        raise errors.invalid("until", "must be within a year")
    return Snooze(actor=actor, until=at)


async def _assign(
    request: web.Request, actor: Actor, channel: str, customer: str, now: float
) -> Payload:
    assignee = (await read_body(request, AssigneeBody)).user
    await _check_assignee(request, channel, assignee)
    return Assign(actor=actor, assignee=assignee)


async def _unassign(
    request: web.Request, actor: Actor, channel: str, customer: str, now: float
) -> Payload:
    return Unassign(actor=actor)


async def _tag(
    request: web.Request, actor: Actor, channel: str, customer: str, now: float
) -> Payload:
    return AddTag(actor=actor, tag=_clean("tag", (await read_body(request, TagBody)).tag))


async def _topic(
    request: web.Request, actor: Actor, channel: str, customer: str, now: float
) -> Payload:
    return AddTopic(actor=actor, topic=_clean("topic", (await read_body(request, TopicBody)).topic))


async def _note(
    request: web.Request, actor: Actor, channel: str, customer: str, now: float
) -> Payload:
    return AddNote(actor=actor, text=_clean("text", (await read_body(request, NoteBody)).text))


def _clean(field: str, value: str) -> str:
    value = value.strip()
    if not value:
        raise errors.invalid(field, "must not be blank")
    return value


async def _check_assignee(request: web.Request, channel: str, user_id: str) -> None:
    """An assignee must be someone who can answer on this channel."""
    directory = request.config_dict[DIRECTORY]
    record = await directory.get_user(user_id)
    if record is None:
        raise errors.invalid("user", f"no user {user_id}")
    access = await directory.channel_access(channel)
    candidate = User(id=record.id, admin=record.admin, teams=frozenset(record.teams))
    if not decide(candidate, access, Action.REPLY).allowed:
        raise errors.invalid("user", f"{user_id} may not reply on channel {channel}")


async def reply(request: web.Request) -> web.Response:
    return await _act(request, Action.REPLY, _reply)


async def react(request: web.Request) -> web.Response:
    return await _act(request, Action.REPLY, _reaction)


async def mark_read(request: web.Request) -> web.Response:
    """The agent opened the conversation: the customer's last message is marked read
    (once; not where the channel turned read receipts off)."""
    return await _act(request, Action.REPLY, _read)


async def typing(request: web.Request) -> web.Response:
    return await _act(request, Action.REPLY, _typing)


async def move(request: web.Request) -> web.Response:
    return await _act(request, Action.MOVE, _move)


async def snooze(request: web.Request) -> web.Response:
    """Park in Pending until a time: it wakes to Open (assigned) or New, or earlier when
    the customer writes. Whoever may move a conversation may snooze it."""
    return await _act(request, Action.MOVE, _snooze)


async def assign(request: web.Request) -> web.Response:
    return await _act(request, Action.ASSIGN, _assign)


async def unassign(request: web.Request) -> web.Response:
    return await _act(request, Action.ASSIGN, _unassign)


async def add_tag(request: web.Request) -> web.Response:
    return await _act(request, Action.ANNOTATE, _tag)


async def add_note(request: web.Request) -> web.Response:
    return await _act(request, Action.ANNOTATE, _note)


async def add_topic(request: web.Request) -> web.Response:
    return await _act(request, Action.ANNOTATE, _topic)


async def action_status(request: web.Request) -> web.Response:
    """What became of an action answered 202: pending until the engine decides it."""
    channel, _ = _where(request)
    await on_channel(request, channel, Action.SEE)
    event_id = request.match_info["event_id"]
    result = await request.config_dict[READER].action_result(channel, event_id)
    if result is None:
        return json(ActionStatus(event_id=event_id, status="pending"))
    status: Literal["applied", "ignored", "rejected"] = result.outcome.value  # type: ignore[assignment]
    return json(ActionStatus(event_id=event_id, status=status, reason=result.reason))


_ACTION = {
    200: ("Applied, or nothing to do (`outcome`: ignored, with the reason)", ActionApplied),
    202: ("On its way; not applied within the wait: ask `status_url`", Accepted),
}
_ACTION_ERRORS = (403, 404, 409)
ENDPOINTS = [
    Endpoint("GET", ONE, get_conversation,
             "Queue, assignee, tags, notes, topics and recent messages", 200,
             ConversationView, errors=(404,), tag="conversations"),
    Endpoint("POST", f"{ONE}/replies", reply, "Reply (contributors and up)", 200,
             ActionApplied, body=ReplyBody, errors=_ACTION_ERRORS, extra=_ACTION,
             tag="actions"),
    Endpoint("POST", f"{ONE}/reactions", react,
             "React to a message with an emoji (\"\" takes it back); contributors and up",
             200, ActionApplied, body=ReactionBody, errors=_ACTION_ERRORS, extra=_ACTION,
             tag="actions"),
    Endpoint("POST", f"{ONE}/read", mark_read,
             "Opened: mark the customer's last message read (once); contributors and up",
             200, ActionApplied, body=ReadBody, errors=_ACTION_ERRORS, extra=_ACTION,
             tag="actions"),
    Endpoint("POST", f"{ONE}/typing", typing,
             "Show the customer a typing indicator (marks their last message read)", 200,
             ActionApplied, errors=_ACTION_ERRORS, extra=_ACTION, tag="actions"),
    Endpoint("POST", f"{ONE}/move", move, "Move to pending or resolved", 200,
             ActionApplied, body=MoveTo, errors=_ACTION_ERRORS, extra=_ACTION, tag="actions"),
    Endpoint("POST", f"{ONE}/snooze", snooze,
             "Snooze: park in Pending until a time; it wakes to Open or New on time, or "
             "when the customer writes", 200, ActionApplied, body=SnoozeBody,
             errors=_ACTION_ERRORS, extra=_ACTION, tag="actions"),
    Endpoint("PUT", f"{ONE}/assignee", assign, "Assign (contributors and up)", 200,
             ActionApplied, body=AssigneeBody, errors=_ACTION_ERRORS, extra=_ACTION,
             tag="actions"),
    Endpoint("DELETE", f"{ONE}/assignee", unassign, "Unassign (contributors and up)", 200,
             ActionApplied, errors=_ACTION_ERRORS, extra=_ACTION, tag="actions"),
    Endpoint("POST", f"{ONE}/tags", add_tag, "Add a tag", 200, ActionApplied, body=TagBody,
             errors=_ACTION_ERRORS, extra=_ACTION, tag="actions"),
    Endpoint("POST", f"{ONE}/notes", add_note, "Add a note", 200, ActionApplied,
             body=NoteBody, errors=_ACTION_ERRORS, extra=_ACTION, tag="actions"),
    Endpoint("POST", f"{ONE}/topics", add_topic, "Add a topic", 200, ActionApplied,
             body=TopicBody, errors=_ACTION_ERRORS, extra=_ACTION, tag="actions"),
    Endpoint("GET", f"{ONE}/actions/{{event_id}}", action_status,
             "What became of an action (kept ten minutes)", 200, ActionStatus, errors=(404,),
             tag="actions"),
]  # fmt: skip
