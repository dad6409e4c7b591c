"""Which channel an event belongs to, and what to do with events for no known channel."""

from collections.abc import Iterable

import msgspec

from parley.channels import Channel
from parley.events import DeadLetter, Event


class ChannelDirectory:
    """The configured channels, looked up the ways the receiver needs."""

    def __init__(self, channels: Iterable[Channel]) -> None:
        self.by_id: dict[str, Channel] = {}
        self.secrets: list[str] = []
        self._verify_tokens: set[str] = set()
        for channel in channels:
            self.add(channel)

    def add(self, channel: Channel) -> None:
        """A channel registered while running (through the API)."""
        self.by_id[channel.id] = channel
        self.secrets = sorted({known.app_secret for known in self.by_id.values()})
        self._verify_tokens.add(channel.verify_token)

    def knows_verify_token(self, token: str) -> bool:
        return token in self._verify_tokens


class Routed(msgspec.Struct, frozen=True):
    events: list[Event]
    dead_letters: list[DeadLetter]


def route(events: Iterable[Event], directory: ChannelDirectory, signing_secret: str) -> Routed:
    """Events of channels configured with the secret that signed the call go on; the rest
    go to the dead-letter topic with the reason, so nothing is dropped silently."""
    accepted: list[Event] = []
    dead: list[DeadLetter] = []
    for event in events:
        channel = directory.by_id.get(event.channel)
        if channel is None:
            dead.append(DeadLetter(reason="unknown_channel", event=event))
        elif channel.app_secret != signing_secret:
            dead.append(DeadLetter(reason="signed_by_another_app", event=event))
        else:
            accepted.append(event)
    return Routed(accepted, dead)
