"""A change as a channel's feed keeps it (docs/inbox.md): written by apply.lua with each
applied event, and by the fetcher when a customer's file has arrived."""

import msgspec


class Change(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One applied change, as its channel's feed keeps it (docs/inbox.md): enough for a
    list of conversations to update itself without reading the conversation again."""

    channel: str
    customer: str
    kind: str  # the event's kind, or "auto.resolve"
    event: str  # the event's id
    version: int  # the conversation's version after the change
    was: str | None  # the queue before (None: it had none)
    queue: str
    assignee: str | None
    last_activity_at: float
    last_customer_message_at: float | None = None
    snoozed_until: float | None = None
    customer_name: str | None = None
    preview: str | None = None  # the text of the message this change added, if any
