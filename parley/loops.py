"""The long-running parts of a process: periodic loops, and how they stop together.

Shaped after SAQ's worker: the signal only sets one event; every loop watches it, stops
taking work and finishes what it holds; the process waits one grace period for all of
them together, then cancels what is left and waits a hard deadline. Every task is kept
and its result collected, so a crash is logged rather than lost.
"""

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final, Protocol

from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# What a periodic loop lives through: Redis and the network come back. TimeoutError is
# an OSError, so a step that overran `timeout_s` counts as one too.
EXPECTED: Final[tuple[type[Exception], ...]] = (RedisError, OSError)

Step = Callable[[], Awaitable[bool | None]]


def log_error(error: Exception) -> None:
    """The default `on_error`: one warning line naming the task and the error's type
    (never its text, which may carry a customer's data)."""
    task = asyncio.current_task()
    log.warning(
        "loop step failed",
        extra={"task": task.get_name() if task else None, "error": type(error).__name__},
    )


async def run_every(
    interval_s: float,
    step: Step,
    stopping: asyncio.Event,
    *,
    on_error: Callable[[Exception], None] = log_error,
    expected: tuple[type[Exception], ...] = EXPECTED,
    error_wait_s: float | None = None,
    timeout_s: float | None = None,
) -> None:
    """Run `step()` at once, then again `interval_s` after each run ends, until
    `stopping` is set; returns then.

    - Between runs the loop waits on `stopping`, so setting it ends the wait at once. A
      run in progress is never interrupted: it is finished, then the loop returns (to cut
      it short, cancel the task).
    - `step` may return True to say it did work and more may be waiting: it is run again
      without waiting (`stopping` is still checked first).
    - `timeout_s` bounds each run; one that overruns raises TimeoutError inside it.
    - An error of an `expected` type (default: Redis and OS errors, timeouts included)
      goes to `on_error` and the loop goes on after `error_wait_s` (default
      `interval_s`). Any other exception propagates and ends the loop: a bug shows
      rather than spins.
    - Cancellation is never caught (`expected` holds `Exception` types only).
    """
    while not stopping.is_set():
        delay = interval_s
        try:
            async with asyncio.timeout(timeout_s):
                again = await step()
        except expected as error:
            on_error(error)
            delay = interval_s if error_wait_s is None else error_wait_s
        else:
            if again:
                await asyncio.sleep(0)  # a step that never suspends must not starve the rest
                continue
        await wait_for_stop(stopping, delay)


async def wait_for_stop(stopping: asyncio.Event, timeout_s: float) -> None:
    """Wait until `stopping` is set or `timeout_s` has passed, whichever comes first."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            await stopping.wait()


class Taker(Protocol):
    """Work taken from streams and finished in the background: the sender, the fetcher."""

    async def run_once(self) -> int: ...
    async def recover(self) -> int: ...
    async def drain(self) -> None: ...
    async def cancel(self) -> None: ...


async def run_taker(
    taker: Taker,
    stopping: asyncio.Event,
    *,
    poll_s: float,
    retry_s: float,
    drain_s: float,
    recover_every_s: float,
    monotonic: Callable[[], float] = time.monotonic,
) -> None:
    """Take work as it comes (looking again every `poll_s` when there was none), recover
    every `recover_every_s`, and ride out Redis errors (`retry_s` apart). On stopping,
    finish what is in hand within `drain_s`: its records must land before the process
    exits. Work cut off, here or by cancelling the task, stays pending on its stream for
    the next recovery."""
    last_recovery = -math.inf

    async def step() -> bool:
        nonlocal last_recovery
        if monotonic() - last_recovery >= recover_every_s:
            await taker.recover()
            last_recovery = monotonic()
        return await taker.run_once() > 0  # took some: there may be more at once

    def failed(error: Exception) -> None:
        log.warning(
            "pass failed", extra={"taker": type(taker).__name__, "error": type(error).__name__}
        )

    try:
        await run_every(poll_s, step, stopping, on_error=failed, error_wait_s=retry_s)
    except asyncio.CancelledError:
        await taker.cancel()  # past the deadline: no time to finish anything
        raise
    except Exception:
        await _finish_in_hand(taker, drain_s)  # what is in hand does not depend on the loop
        raise
    await _finish_in_hand(taker, drain_s)


async def _finish_in_hand(taker: Taker, drain_s: float) -> None:
    try:
        await asyncio.wait_for(taker.drain(), drain_s)
    except TimeoutError:
        await taker.cancel()


class Workers:
    """The tasks a process runs until it stops, under one `stopping` event.

    `start()` keeps a reference to each task and logs its end at once if it crashed or
    returned before the stop. `stop()` is the shutdown: it sets `stopping`, gives all
    tasks ONE grace period together to finish what they hold, then cancels the rest and
    waits at most `deadline_s` more. `stop()` returns within about
    `grace_s + deadline_s`; a task that ignores cancellation is logged and left behind.
    """

    def __init__(self, *, grace_s: float, deadline_s: float) -> None:
        self.stopping = asyncio.Event()
        self._grace_s = grace_s
        self._deadline_s = deadline_s
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def ended(self) -> list[str]:
        """Names of the tasks that are no longer running (before `stop()`: they died)."""
        return [task.get_name() for task in self._tasks if task.done()]

    def start(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(work, name=name)
        task.add_done_callback(self._collect)
        self._tasks.append(task)
        return task

    async def stop(self) -> None:
        self.stopping.set()
        if not self._tasks:
            return
        try:
            _, pending = await asyncio.wait(self._tasks, timeout=self._grace_s)
            if not pending:
                return
            for task in pending:
                log.warning("task cancelled after the grace period", extra=_named(task))
                task.cancel()
            _, stuck = await asyncio.wait(pending, timeout=self._deadline_s)
            for task in stuck:
                log.error("task still running after the deadline", extra=_named(task))
        except asyncio.CancelledError:
            for task in self._tasks:
                task.cancel()
            raise

    def _collect(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()  # retrieved: asyncio never reports it as lost
        if error is not None:
            log.error("task failed", extra=_named(task), exc_info=error)
        elif not self.stopping.is_set():
            log.error("task ended before the stop", extra=_named(task))


def _named(task: asyncio.Task[None]) -> dict[str, str]:
    return {"task": task.get_name()}
