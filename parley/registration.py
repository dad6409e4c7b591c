"""Registering a new WhatsApp number as a channel: pending -> code_requested ->
verified -> active. The rules are pure; the record lives in the channel's registration
hash (`parley:{<id>}:registration`, field `record`).

Numbers in PARLEY_CHANNELS_FILE are registered already: they are active and have no
record. Only an active channel receives conversations and sends.
"""

from enum import StrEnum

import msgspec

from parley.channels import Channel, ChannelSettings

# Meta's verification codes are valid this long after they are sent.
CODE_TTL_S = 600


class Status(StrEnum):
    PENDING = "pending"  # created, nothing asked of Meta yet
    CODE_REQUESTED = "code_requested"  # a 6-digit code went out by SMS or voice
    VERIFIED = "verified"  # the code was right: the number is ours
    ACTIVE = "active"  # registered for the Cloud API: it receives and sends


class Registration(msgspec.Struct, frozen=True, kw_only=True):
    channel: str
    display_name: str
    status: Status
    created_at: float
    code_method: str | None = None
    code_requested_at: float | None = None
    verified_at: float | None = None
    registered_at: float | None = None
    # Secrets: kept for the receiver and the sender, never shown by the API.
    access_token: str
    app_secret: str
    verify_token: str

    def __repr__(self) -> str:
        return f"Registration(channel={self.channel!r}, status={self.status.value!r})"


class LifecycleError(Exception):
    """A step asked for out of turn (`wrong_state`) or too late (`code_expired`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def code_requested(registration: Registration, method: str, now: float) -> Registration:
    """A (new) code was asked for: allowed until the number is verified."""
    if registration.status not in (Status.PENDING, Status.CODE_REQUESTED):
        raise LifecycleError("wrong_state", f"the number is {registration.status.value}")
    return msgspec.structs.replace(
        registration, status=Status.CODE_REQUESTED, code_method=method, code_requested_at=now
    )


def check_code_fresh(registration: Registration, now: float) -> None:
    """Before submitting a code: one must have been requested, within CODE_TTL_S."""
    if registration.status is not Status.CODE_REQUESTED or registration.code_requested_at is None:
        raise LifecycleError(
            "wrong_state",
            f"the number is {registration.status.value}: request a code first",
        )
    if now - registration.code_requested_at > CODE_TTL_S:
        raise LifecycleError(
            "code_expired",
            f"the code expired {CODE_TTL_S // 60} minutes after it was sent: request a new one",
        )


def verified(registration: Registration, now: float) -> Registration:
    check_code_fresh(registration, now)
    return msgspec.structs.replace(registration, status=Status.VERIFIED, verified_at=now)


def registered(registration: Registration, now: float) -> Registration:
    if registration.status is not Status.VERIFIED:
        raise LifecycleError(
            "wrong_state", f"the number is {registration.status.value}: verify it first"
        )
    return msgspec.structs.replace(registration, status=Status.ACTIVE, registered_at=now)


def active_channel(registration: Registration) -> Channel:
    """The channel an active registration is: its secrets, and a new channel's settings."""
    return Channel(
        id=registration.channel,
        app_secret=registration.app_secret,
        verify_token=registration.verify_token,
        access_token=registration.access_token,
        settings=ChannelSettings(display_name=registration.display_name),
    )
