"""Channels: one WhatsApp number each, with its secrets and its inbox settings.

`PARLEY_CHANNELS_FILE` is TOML with one `[[channels]]` table per number. A bad file stops
start-up with a message naming the channel and the field, never the secret's value.
"""

import tomllib
from pathlib import Path
from typing import Annotated, Any

import msgspec

from parley.business_hours import BusinessHours, OutOfHoursReply
from parley.durations import DurationError, format_period, parse_period
from parley.routing import RoutingSettings
from parley.sla import SlaTargets

DEFAULT_AUTO_RESOLVE_S = 30 * 86400
DISPLAY_NAME_MAX = 255
# Meta's default throughput for a business phone number, messages per second.
DEFAULT_SEND_RATE = 80

PhoneNumberId = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,32}$")]
# A WhatsApp Business Account id. (?!\n): Python's `$` also matches before a final
# newline; JSON Schema's does not.
WabaId = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[0-9]{1,32}$(?!\n)",
        description="the WhatsApp Business Account id: 1 to 32 digits",
    ),
]
AppId = Annotated[
    str,
    msgspec.Meta(pattern=r"^[0-9]{1,32}$(?!\n)", description="the Meta app id: 1 to 32 digits"),
]


class ChannelSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What an admin sets on a channel; the engine reads it on every decision.

    Auto-resolve periods are seconds, None when switched off.
    """

    display_name: str
    auto_assign: bool = True
    auto_resolve_new_s: int | None = DEFAULT_AUTO_RESOLVE_S
    auto_resolve_pending_s: int | None = DEFAULT_AUTO_RESOLVE_S
    # Replies sent per second at most (per engine instance); None: no limit.
    send_rate: int | None = DEFAULT_SEND_RATE
    # Mark a customer's message read when an agent opens the conversation.
    read_receipts: bool = True
    # The WhatsApp Business Account the number belongs to: Meta's template webhooks name
    # it, and change the templates of its channels only. None: no template updates.
    waba_id: str | None = None
    # The Meta app the number's token belongs to: files for the business profile go up
    # through its Resumable Upload API. None: no profile picture can be set.
    app_id: str | None = None
    # When the team answers (None: always), and what a customer writing outside those
    # hours is sent once a cycle (None: nothing).
    business_hours: BusinessHours | None = None
    out_of_hours_reply: OutOfHoursReply | None = None
    # SLA targets, counted in the business hours (None: none).
    sla: SlaTargets | None = None
    # Capacity routing (None: conversations are assigned to whoever answers them).
    routing: RoutingSettings | None = None


class Channel(msgspec.Struct, frozen=True, kw_only=True):
    """A configured number: its secrets (never shown in a repr) and its settings."""

    id: str
    app_secret: str
    verify_token: str
    access_token: str
    settings: ChannelSettings

    def __repr__(self) -> str:
        return f"Channel(id={self.id!r}, settings={self.settings!r})"


class ChannelFileError(ValueError):
    """The channels file cannot be used; the message names the channel and the field."""


class _ChannelEntry(msgspec.Struct, forbid_unknown_fields=False):
    id: PhoneNumberId
    app_secret: Annotated[str, msgspec.Meta(min_length=1)]
    verify_token: Annotated[str, msgspec.Meta(min_length=1)]
    access_token: Annotated[str, msgspec.Meta(min_length=1)]
    display_name: str
    auto_assign: bool = True
    auto_resolve_new: str = format_period(DEFAULT_AUTO_RESOLVE_S)
    auto_resolve_pending: str = format_period(DEFAULT_AUTO_RESOLVE_S)
    send_rate: Annotated[int, msgspec.Meta(ge=1, le=10_000)] | None = DEFAULT_SEND_RATE
    waba_id: WabaId | None = None
    app_id: AppId | None = None
    read_receipts: bool = True


def clean_display_name(raw: str) -> str:
    """Trimmed display name of 1 to 255 characters (any script); raises ValueError."""
    name = raw.strip()
    if not 1 <= len(name) <= DISPLAY_NAME_MAX:
        raise ValueError(
            f"must be 1 to {DISPLAY_NAME_MAX} characters after trimming, got {len(name)}"
        )
    return name


def parse_channels(document: dict[str, Any]) -> list[Channel]:
    """Channels from a parsed TOML document; raises ChannelFileError."""
    entries = document.get("channels", [])
    if not isinstance(entries, list):
        raise ChannelFileError("channels: expected an array of [[channels]] tables")
    channels: list[Channel] = []
    seen: set[str] = set()
    for index, raw in enumerate(entries):
        label = (
            f"channel {raw.get('id', f'#{index + 1}')!s}"
            if isinstance(raw, dict)
            else f"channel #{index + 1}"
        )
        try:
            entry = msgspec.convert(raw, _ChannelEntry)
        except msgspec.ValidationError as error:
            raise ChannelFileError(f"{label}: {_field_message(str(error))}") from None
        if entry.id in seen:
            raise ChannelFileError(f"{label}: id: appears more than once")
        seen.add(entry.id)
        channels.append(_channel_from_entry(entry, label))
    return channels


def _channel_from_entry(entry: _ChannelEntry, label: str) -> Channel:
    try:
        display_name = clean_display_name(entry.display_name)
    except ValueError as error:
        raise ChannelFileError(f"{label}: display_name: {error}") from None
    periods: dict[str, int | None] = {}
    for field in ("auto_resolve_new", "auto_resolve_pending"):
        try:
            periods[field] = parse_period(getattr(entry, field))
        except DurationError as error:
            raise ChannelFileError(f"{label}: {field}: {error}") from None
    return Channel(
        id=entry.id,
        app_secret=entry.app_secret,
        verify_token=entry.verify_token,
        access_token=entry.access_token,
        settings=ChannelSettings(
            display_name=display_name,
            auto_assign=entry.auto_assign,
            auto_resolve_new_s=periods["auto_resolve_new"],
            auto_resolve_pending_s=periods["auto_resolve_pending"],
            send_rate=entry.send_rate,
            waba_id=entry.waba_id,
            app_id=entry.app_id,
            read_receipts=entry.read_receipts,
        ),
    )


def load_channels(path: str | None) -> list[Channel]:
    """Channels from the TOML file at `path` (none when path is None)."""
    if path is None:
        return []
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ChannelFileError(f"{path}: cannot read: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ChannelFileError(f"{path}: not valid TOML: {error}") from None
    return parse_channels(document)


def _field_message(message: str) -> str:
    # "Expected `str`, got `int` - at `$.display_name`" -> "display_name: Expected `str`, got `int`"
    # The value itself is never echoed: it could be a secret.
    head, _, path = message.partition(" - at `$.")
    if path:
        return f"{path.rstrip('`')}: {head}"
    if message.startswith("Object missing required field"):
        field = message.split("`")[1]
        return f"{field}: missing"
    return message
