"""Which channel an event belongs to, and what to do with events for no known channel."""

from collections.abc import Iterable

from ingest.normalize import Unusable
from parley.channels import Channel
from parley.events import DeadLetter, Event
from parley.producer import Routed

UNKNOWN_CHANNEL = "unknown_channel"
SIGNED_BY_ANOTHER_APP = "signed_by_another_app"


class ChannelRegistry:
    """The configured channels, looked up the ways the receiver needs."""

    def __init__(self, channels: Iterable[Channel]) -> None:
        self.by_id: dict[str, Channel] = {}
        self.secrets: list[str] = []
        self._verify_tokens: set[str] = set()
        self._signers: dict[str, str] = {}  # app secret -> the first channel by id
        for channel in channels:
            self.add(channel)

    def add(self, channel: Channel) -> None:
        """A channel registered while running (through the API)."""
        self.by_id[channel.id] = channel
        self.secrets = sorted({known.app_secret for known in self.by_id.values()})
        self._verify_tokens.add(channel.verify_token)
        # The first by id wins: sorted backwards, it is written last.
        self._signers = {
            known.app_secret: id_ for id_, known in sorted(self.by_id.items(), reverse=True)
        }

    def knows_verify_token(self, token: str) -> bool:
        return token in self._verify_tokens

    def signed_by(self, secret: str) -> str | None:
        """A channel configured with `secret` (the first by id), to name the app that
        signed a call without naming the secret."""
        return self._signers.get(secret)


def route(
    events: Iterable[Event],
    unusable: Iterable[Unusable],
    directory: ChannelRegistry,
    signing_secret: str,
    received_at: float,
) -> Routed:
    """Events of channels configured with the secret that signed the call go on; the rest,
    and every item that could not be read, go to the dead-letter topic with the reason,
    so nothing is dropped silently."""
    accepted: list[Event] = []
    dead: list[DeadLetter] = []
    for event in events:
        channel = directory.by_id.get(event.channel)
        reason = None
        if channel is None:
            reason = UNKNOWN_CHANNEL
        elif channel.app_secret != signing_secret:
            reason = SIGNED_BY_ANOTHER_APP
        if reason is None:
            accepted.append(event)
        else:
            dead.append(
                DeadLetter(
                    reason=reason,
                    received_at=received_at,
                    channel=event.channel,
                    event=event,
                    signed_by=directory.signed_by(signing_secret),
                )
            )
    for item in unusable:
        dead.append(
            DeadLetter(
                reason=item.reason,
                received_at=received_at,
                detail=item.detail,
                channel=item.channel,
                field=item.field,
                item=item.item,
                signed_by=directory.signed_by(signing_secret),
            )
        )
    return Routed(accepted, dead)
