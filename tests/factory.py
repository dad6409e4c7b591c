"""Conversation events for tests, in the envelope the engine reads."""

import uuid

from parley.events import (
    Actor,
    AddNote,
    AddTag,
    AddTopic,
    AgentReply,
    Assign,
    CustomerMessage,
    Event,
    Identity,
    Media,
    MessageStatus,
    Move,
    Payload,
    Role,
    Snooze,
    Unassign,
)

AGENT = Actor("alice", Role.CONTRIBUTOR)


def event(
    channel: str, wa_id: str, payload: Payload, at: float, event_id: str | None = None
) -> Event:
    """An event about the customer whose phone is `wa_id` (their id, when they were
    first seen by it)."""
    return Event(
        id=event_id or uuid.uuid4().hex,
        channel=channel,
        identity=Identity(phone=wa_id),
        occurred_at=at,
        received_at=at,
        payload=payload,
    )


def customer(channel: str, wa_id: str, at: float, wamid: str | None = None) -> Event:
    wamid = wamid or f"wamid.{uuid.uuid4().hex}"
    return event(channel, wa_id, CustomerMessage(wamid=wamid, type="text", text="hi"), at, wamid)


def customer_file(
    channel: str, wa_id: str, at: float, wamid: str, kind: str = "image", media_id: str = "m1"
) -> Event:
    """The customer sends a file (`kind`: image, video, audio, document or sticker)."""
    media = Media(id=media_id, mime_type="image/png", filename="photo.png")
    message = CustomerMessage(wamid=wamid, type=kind, text="the broken part", media=media)
    return event(channel, wa_id, message, at, wamid)


def reply(channel: str, wa_id: str, at: float, user: str = "alice") -> Event:
    return event(channel, wa_id, AgentReply(actor=Actor(user, Role.CONTRIBUTOR), text="hello"), at)


def move(channel: str, wa_id: str, queue: str, at: float) -> Event:
    return event(channel, wa_id, Move(actor=AGENT, queue=queue), at)


def snooze(channel: str, wa_id: str, until: float, at: float) -> Event:
    return event(channel, wa_id, Snooze(actor=AGENT, until=until), at)


def assign(channel: str, wa_id: str, user: str, at: float) -> Event:
    return event(channel, wa_id, Assign(actor=AGENT, assignee=user), at)


def unassign(channel: str, wa_id: str, at: float) -> Event:
    return event(channel, wa_id, Unassign(actor=AGENT), at)


def tag(channel: str, wa_id: str, name: str, at: float) -> Event:
    return event(channel, wa_id, AddTag(actor=AGENT, tag=name), at)


def note(channel: str, wa_id: str, text: str, at: float) -> Event:
    return event(channel, wa_id, AddNote(actor=AGENT, text=text), at)


def topic(channel: str, wa_id: str, name: str, at: float) -> Event:
    return event(channel, wa_id, AddTopic(actor=AGENT, topic=name), at)


def status(channel: str, wa_id: str, wamid: str, state: str, at: float) -> Event:
    payload = MessageStatus(wamid=wamid, status=state)
    return event(channel, wa_id, payload, at, f"{wamid}:{state}")
