"""What Parley knows of the messages of a conversation, in its messages hash. Pure.

The hash (`keys.messages`) holds, per reply Parley sent:
- `e:<event id>` -> the `wamid` WhatsApp gave it, or `!<why it was not sent>`;
- `<wamid>` -> its delivery status: `accepted`, then what the status webhooks say
  (sent, delivered, read, played; failed), only ever forward (apply.lua);
- `x:<wamid>` -> the error of a `failed` status, "<code> <title>";
- `pc:<wamid>` -> its pricing, "<category>/<type>"; `cb:<wamid>` -> the callback data.
And per message of either side, what the customer did to it later:
- `r:<wamid>` -> the customer's reaction (an emoji);
- `t:<wamid>` -> the text of the customer's edit; `d:<wamid>` -> "1" once deleted.
A reply with no `e:` field yet is `queued`: the sender has not finished with it.
"""

import msgspec

QUEUED = "queued"  # applied, not sent yet
ACCEPTED = "accepted"  # WhatsApp took it and gave it a wamid
SENT = "sent"
FAILED = "failed"
UNCONFIRMED = "unconfirmed"  # the send was interrupted: it may or may not have gone out
NOT_SENT = "!"  # prefix of an `e:` value that is a reason, not a wamid


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    status: str
    wamid: str | None = None
    error: str | None = None


def sent_field(event_id: str) -> str:
    return f"e:{event_id}"


def error_field(wamid: str) -> str:
    return f"x:{wamid}"


def pricing_field(wamid: str) -> str:
    return f"pc:{wamid}"


def callback_field(wamid: str) -> str:
    return f"cb:{wamid}"


def reaction_field(wamid: str) -> str:
    return f"r:{wamid}"


def edit_field(wamid: str) -> str:
    return f"t:{wamid}"


def deleted_field(wamid: str) -> str:
    return f"d:{wamid}"


def not_sent(reason: str) -> str:
    """The `e:` value of a reply that did not go out."""
    return f"{NOT_SENT}{reason}"


def delivery(sent: str | None, status: str | None, error: str | None) -> Delivery:
    """A reply's delivery from its `e:` value, and its wamid's status and error."""
    if sent is None:
        return Delivery(status=QUEUED)
    if sent.startswith(NOT_SENT):
        reason = sent[len(NOT_SENT) :]
        if reason == UNCONFIRMED:
            return Delivery(
                status=UNCONFIRMED,
                error="the send was interrupted; it may or may not have reached the customer",
            )
        return Delivery(status=FAILED, error=reason)
    return Delivery(status=status or ACCEPTED, wamid=sent, error=error)
