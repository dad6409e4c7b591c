"""A process's one graceful stop, asked for by SIGTERM (orchestrators, systemd) or
SIGINT (Ctrl-C). Light on purpose, asyncio included (imported only once a loop runs):
`python -m ingest` and `python -m engine` import it before anything else, to hold the
signals while they import the rest."""

import signal
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


def hold() -> set[int | signal.Signals]:
    """Blocks the stop signals, first thing in a process: its imports take a second or
    more (more under load), and one that comes meanwhile is held, then handled once
    Stop.take() lets it in, rather than kill the process (-15) or end it in a
    KeyboardInterrupt traceback. Returns the mask before, for a command that does not
    serve to restore."""
    return signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


class Stop:
    """The stop, asked for by a signal (a Python handler: see take) or by the loop.

    Not the loop's add_signal_handler: uvloop hears a signal only while it runs, and one
    that comes before (or between two runs) stays unseen until another comes. A worker
    took its supervisor's SIGTERM that way while it was about to run its loop (CI, once:
    status 1): it served on until killed. A Python handler runs whenever the signal comes:
    in the main thread before the loop runs, or woken by the loop's wakeup fd while it
    does."""

    def __init__(self, loop: "asyncio.AbstractEventLoop") -> None:
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

    def event(self) -> "asyncio.Event":
        """In the loop: an event set once the stop is asked for (now, if it was)."""
        import asyncio

        self._event = asyncio.Event()
        if self._requested:
            self._event.set()
        return self._event

    def close(self) -> None:
        """The loop is done with: later requests change nothing."""
        self._requested = True
        self._event = None
