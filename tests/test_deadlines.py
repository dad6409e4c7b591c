"""The shared deadline bounds each wait as asyncio.timeout does, with one timer."""

import asyncio

import pytest

from parley.deadlines import SharedDeadline

SECONDS, TICK = 0.2, 0.02


async def _wait(deadline: SharedDeadline, seconds: float) -> str:
    async with deadline.bound():
        await asyncio.sleep(seconds)
    return "done"


async def test_a_wait_past_the_deadline_raises_timeout_within_a_tick() -> None:
    deadline = SharedDeadline(SECONDS, TICK)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        await _wait(deadline, 5)
    took = loop.time() - started
    assert SECONDS <= took < SECONDS + TICK + 0.1
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_concurrent_waits_expire_alone_and_the_timer_stops_when_idle() -> None:
    deadline = SharedDeadline(SECONDS, TICK)
    lengths = [0.01, 0.5, 0.05, 0.6, 0.1, 0.0]
    outcomes = await asyncio.gather(
        *(_wait(deadline, length) for length in lengths), return_exceptions=True
    )
    assert [type(o).__name__ if isinstance(o, BaseException) else o for o in outcomes] == [
        "done",
        "TimeoutError",
        "done",
        "TimeoutError",
        "done",
        "done",
    ]
    await asyncio.sleep(TICK * 2)
    assert deadline._timer is None  # nothing in flight: no timer armed


async def test_waits_that_begin_later_get_their_own_full_time() -> None:
    deadline = SharedDeadline(SECONDS, TICK)
    first = asyncio.ensure_future(_wait(deadline, 5))
    await asyncio.sleep(SECONDS * 0.75)
    # Begun three quarters in: the first one's expiry must not cut it short.
    second = asyncio.ensure_future(_wait(deadline, SECONDS * 0.75))
    with pytest.raises(TimeoutError):
        await first
    assert await second == "done"


async def test_a_cancellation_from_outside_stays_a_cancellation() -> None:
    deadline = SharedDeadline(SECONDS, TICK)
    task = asyncio.ensure_future(_wait(deadline, 5))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert deadline._due == {}
