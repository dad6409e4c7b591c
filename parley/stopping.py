"""A process's one graceful stop, asked for by SIGTERM (orchestrators, systemd) or
SIGINT (Ctrl-C). Light on purpose: `python -m engine` takes its signals with this before
it imports the rest, so that a stop while it starts ends start-up cleanly."""

import asyncio
import signal
from types import FrameType

# `python -m ingest` and `python -m engine` block these from their first line, before
# their imports (a second or more, and more under load): one that comes meanwhile is
# held, then handled once Stop.take() lets them in, rather than kill the process (-15)
# or end it in a KeyboardInterrupt traceback.
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


class Stop:
    """The stop, asked for by a signal (a Python handler: see take) or by the loop.

    Not the loop's add_signal_handler: uvloop hears a signal only while it runs, and one
    that comes before (or between two runs) stays unseen until another comes. A worker
    took its supervisor's SIGTERM that way while it was about to run its loop (CI, once:
    status 1): it served on until killed. A Python handler runs whenever the signal comes:
    in the main thread before the loop runs, or woken by the loop's wakeup fd while it
    does."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._requested = False
        self._event: asyncio.Event | None = None

    def take(self, signals: frozenset[int] = STOP_SIGNALS) -> None:
        """Handle `signals` from now on, including one held until now."""
        for signum in signals:
            signal.signal(signum, self.request)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    def request(self, signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        if self._requested:
            return
        self._requested = True
        if self._event is not None:
            self._loop.call_soon_threadsafe(self._event.set)

    def event(self) -> asyncio.Event:
        """In the loop: an event set once the stop is asked for (now, if it was)."""
        self._event = asyncio.Event()
        if self._requested:
            self._event.set()
        return self._event

    def close(self) -> None:
        """The loop is done with: later requests change nothing."""
        self._requested = True
        self._event = None
