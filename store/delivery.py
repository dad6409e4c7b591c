"""What Parley knows of the messages of a conversation, in its messages hash. Pure.

The hash (`keys.messages`) holds, per reply Parley sent:
- `w:<event id>` -> the `wamid` WhatsApp gave it (any characters: wamids are opaque), or
  `f:<event id>` -> why it was not sent (release 0.1 kept both in `e:<event id>`, a
  reason prefixed `!`; those are still read);
- `<wamid>` -> its delivery status: `accepted`, then what the status webhooks say
  (sent, delivered, read, played; failed), only ever forward (apply.lua);
- `x:<wamid>` -> the error of a `failed` status, "<code> <title>";
- `pc:<wamid>` -> its pricing, "<category>/<type>"; `cb:<wamid>` -> the callback data.
And per message of either side, what the customer did to it later:
- `r:<wamid>` -> the customer's reaction (an emoji);
- `t:<wamid>` -> the text of the customer's edit; `d:<wamid>` -> "1" once deleted;
- `m:<wamid>` -> the message's file: fetched and stored, or why not (JSON);
- `br:<wamid>` -> an agent's reaction to it.
A reply with none of these yet is `queued`: the sender has not finished with it.
"""

import msgspec

QUEUED = "queued"  # applied, not sent yet
ACCEPTED = "accepted"  # WhatsApp took it and gave it a wamid
SENT = "sent"
FAILED = "failed"
UNCONFIRMED = "unconfirmed"  # the send was interrupted: it may or may not have gone out
LEGACY_NOT_SENT = "!"  # release 0.1: prefix of an `e:` value that is a reason, not a wamid


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    status: str
    wamid: str | None = None
    error: str | None = None


def wamid_field(event_id: str) -> str:
    return f"w:{event_id}"


def failure_field(event_id: str) -> str:
    return f"f:{event_id}"


def legacy_field(event_id: str) -> str:
    """Release 0.1's record of a reply: its wamid, or `!<reason>`."""
    return f"e:{event_id}"


def reply_fields(event_id: str) -> tuple[str, str, str]:
    """What to read of a reply's record, in the order `outcome` takes them."""
    return wamid_field(event_id), failure_field(event_id), legacy_field(event_id)


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


def media_field(wamid: str) -> str:
    """The file of a message: what became of fetching it (store/fetches.py)."""
    return f"m:{wamid}"


def business_reaction_field(wamid: str) -> str:
    """The business's (an agent's) reaction to a message."""
    return f"br:{wamid}"


def outcome(
    wamid: str | None, failure: str | None, legacy: str | None
) -> tuple[str | None, str | None]:
    """(wamid, why it was not sent) of a reply from its record; both None: queued."""
    if wamid is not None or failure is not None:
        return wamid, failure
    if legacy is not None and legacy.startswith(LEGACY_NOT_SENT):
        return None, legacy[len(LEGACY_NOT_SENT) :]
    return legacy, None


def delivery(
    wamid: str | None, failure: str | None, status: str | None, error: str | None
) -> Delivery:
    """A reply's delivery from its record (its wamid, or why it was not sent), and its
    wamid's status and error."""
    if failure is not None:
        if failure == UNCONFIRMED:
            return Delivery(
                status=UNCONFIRMED,
                error="the send was interrupted; it may or may not have reached the customer",
            )
        return Delivery(status=FAILED, error=failure)
    if wamid is None:
        return Delivery(status=QUEUED)
    return Delivery(status=status or ACCEPTED, wamid=wamid, error=error)
