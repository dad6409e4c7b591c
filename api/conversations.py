"""A conversation, and what agents do to it. Every change is an event on the
conversation's partition: the engine stays the one writer, and the API waits briefly
for its decision."""

import uuid
from typing import Literal

import msgspec
from aiohttp import web

from api import errors, window
from api.access import on_channel
from api.appkeys import CLOCK, DIRECTORY, PRODUCER, READER, REDIS, SETTINGS
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
    ReplyBody,
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
    AgentReply,
    Assign,
    Event,
    Identity,
    Move,
    Payload,
    Unassign,
)
from parley.producer import ProduceError, Routed
from parley.state import Outcome
from store.templates import APPROVED, template, templates

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


async def _act(request: web.Request, action: Action, payload_of: type) -> web.Response:
    """Check, build the event, produce it, and wait up to PARLEY_ACTION_WAIT_S for the
    engine's decision: 200 (applied or nothing to do), 409 (refused), else 202."""
    channel, identifier = _where(request)
    user, role = await on_channel(request, channel, action)
    actor = Actor(user.id, role)
    payload = await _payload(request, payload_of, actor, channel)
    reader = request.config_dict[READER]
    customer = await _customer(request, channel, identifier)
    current = await reader.state(channel, customer)
    if current is None:
        raise errors.not_found(f"no conversation {identifier} on channel {channel}")
    now = request.config_dict[CLOCK]()
    if isinstance(payload, AgentReply):
        payload = await _sendable(request, channel, payload, current.last_customer_at, now)
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


async def _payload(request: web.Request, kind: type, actor: Actor, channel: str) -> Payload:
    if kind is AgentReply:
        reply = await read_body(request, ReplyBody)
        if not (reply.text or "").strip() and not (reply.template or "").strip():
            raise errors.invalid("text", "a reply needs text or a template")
        if reply.text and reply.template:
            raise errors.invalid("template", "send text or a template, not both")
        return AgentReply(
            actor=actor, text=reply.text, template=reply.template, language=reply.language
        )
    if kind is Move:
        return Move(actor=actor, queue=(await read_body(request, MoveTo)).queue)
    if kind is Assign:
        assignee = (await read_body(request, AssigneeBody)).user
        await _check_assignee(request, channel, assignee)
        return Assign(actor=actor, assignee=assignee)
    if kind is Unassign:
        return Unassign(actor=actor)
    if kind is AddTag:
        return AddTag(actor=actor, tag=_clean("tag", (await read_body(request, TagBody)).tag))
    if kind is AddTopic:
        topic = _clean("topic", (await read_body(request, TopicBody)).topic)
        return AddTopic(actor=actor, topic=topic)
    return AddNote(actor=actor, text=_clean("text", (await read_body(request, NoteBody)).text))


async def _sendable(
    request: web.Request,
    channel: str,
    reply: AgentReply,
    last_customer_at: float | None,
    now: float,
) -> AgentReply:
    """WhatsApp's rules, checked before anything is produced: free-form text only within
    24 hours of the customer's last message (409 template_required), and a template only
    when registered and approved on the channel (422)."""
    if not reply.template:
        if not window.is_open(last_customer_at, now):
            raise errors.conflict(
                "template_required",
                "the customer last wrote more than 24 hours ago: only an approved template "
                'can be sent now (send {"template": name, "language": code})',
            )
        return reply
    client = request.config_dict[REDIS]
    language = reply.language
    if language is None:
        languages = [
            t.language for t in await templates(client, channel) if t.name == reply.template
        ]
        if not languages:
            raise errors.invalid("template", f"no template {reply.template} on this channel")
        if len(languages) != 1:
            raise errors.invalid("language", f"say which language of {reply.template} to send")
        language = languages[0]
    found = await template(client, channel, reply.template, language)
    if found is None:
        raise errors.invalid(
            "template", f"no template {reply.template} ({language}) on this channel"
        )
    if found.status != APPROVED:
        raise errors.invalid(
            "template", f"template {reply.template} ({language}) is {found.status}"
        )
    return msgspec.structs.replace(reply, language=language)


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
    return await _act(request, Action.REPLY, AgentReply)


async def move(request: web.Request) -> web.Response:
    return await _act(request, Action.MOVE, Move)


async def assign(request: web.Request) -> web.Response:
    return await _act(request, Action.ASSIGN, Assign)


async def unassign(request: web.Request) -> web.Response:
    return await _act(request, Action.ASSIGN, Unassign)


async def add_tag(request: web.Request) -> web.Response:
    return await _act(request, Action.ANNOTATE, AddTag)


async def add_note(request: web.Request) -> web.Response:
    return await _act(request, Action.ANNOTATE, AddNote)


async def add_topic(request: web.Request) -> web.Response:
    return await _act(request, Action.ANNOTATE, AddTopic)


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
    Endpoint("POST", f"{ONE}/move", move, "Move to pending or resolved", 200,
             ActionApplied, body=MoveTo, errors=_ACTION_ERRORS, extra=_ACTION, tag="actions"),
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
