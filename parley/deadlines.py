"""One timer for many bounded waits of the same length.

`asyncio.timeout` sets a timer when a wait begins and cancels it when it ends. For the
receiver's publish, one a call, that pair was about a tenth of a call's CPU
(docs/profiles/receiver.md). Waits that all last at most the same time expire in the
order they began, so one timer, re-armed every `tick_s` while any wait is in flight,
can cancel the ones past their deadline, as `asyncio.timeout` would: a wait is bounded
by `seconds` to `seconds + tick_s`.
"""

import asyncio
from types import TracebackType


class SharedDeadline:
    """`async with deadline.bound():` raises TimeoutError when the block runs past the
    deadline (the task is cancelled, as with `asyncio.timeout`)."""

    def __init__(self, seconds: float, tick_s: float) -> None:
        self.seconds = seconds
        self.tick_s = tick_s
        self._due: dict[asyncio.Task[object], float] = {}  # oldest first
        self._expired: set[asyncio.Task[object]] = set()
        self._timer: asyncio.TimerHandle | None = None

    def bound(self) -> "_Bound":
        return _Bound(self)

    def _enter(self, task: asyncio.Task[object]) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._due[task] = now + self.seconds
        if self._timer is None:
            self._timer = loop.call_at(now + self.tick_s, self._expire)

    def _leave(self, task: asyncio.Task[object]) -> bool:
        """Whether the deadline cancelled `task`."""
        del self._due[task]
        expired = task in self._expired
        self._expired.discard(task)
        return expired

    def _expire(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for task, due in self._due.items():
            if due > now:
                break  # the rest began later, so are due later
            if task not in self._expired:
                self._expired.add(task)
                task.cancel()
        self._timer = loop.call_at(now + self.tick_s, self._expire) if self._due else None


class _Bound:
    __slots__ = ("_cancelling", "_deadline", "_task")

    def __init__(self, deadline: SharedDeadline) -> None:
        self._deadline = deadline
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0

    async def __aenter__(self) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a bound needs a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._deadline._enter(task)

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._task is not None
        if not self._deadline._leave(self._task):
            return
        # Our cancellation, and no other pending: the test asyncio.timeout makes.
        if self._task.uncancel() <= self._cancelling and kind is asyncio.CancelledError:
            raise TimeoutError from error
