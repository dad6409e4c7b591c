"""parley.loops: the periodic-loop helper and stopping tasks together.

Time passes only in the loops' own waits, kept short by the intervals the tests pass;
every loop here is ended by its stop event (or a cancellation), never by a sleep.
"""

import asyncio
import logging
import time

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from parley.loops import Workers, run_every

FAST_S = 0.001
NEVER_S = 3600.0


async def test_runs_at_once_and_again_until_stopped() -> None:
    stopping = asyncio.Event()
    runs = 0

    async def step() -> None:
        nonlocal runs
        runs += 1
        if runs == 3:
            stopping.set()

    async with asyncio.timeout(5):
        await run_every(FAST_S, step, stopping)
    assert runs == 3


async def test_does_not_run_once_stopped() -> None:
    stopping = asyncio.Event()
    stopping.set()
    runs = 0

    async def step() -> None:
        nonlocal runs
        runs += 1

    await run_every(FAST_S, step, stopping)
    assert runs == 0


async def test_stopping_ends_the_wait_at_once() -> None:
    stopping = asyncio.Event()
    ran = asyncio.Event()
    runs = 0

    async def step() -> None:
        nonlocal runs
        runs += 1
        ran.set()

    task = asyncio.create_task(run_every(NEVER_S, step, stopping))
    await ran.wait()
    await asyncio.sleep(0)  # the loop is in its hour-long wait now
    started = time.monotonic()
    stopping.set()
    async with asyncio.timeout(1):
        await task
    assert time.monotonic() - started < 0.5
    assert runs == 1


async def test_a_run_in_progress_is_finished_not_interrupted() -> None:
    stopping = asyncio.Event()
    release = asyncio.Event()
    finished = False

    async def step() -> None:
        nonlocal finished
        stopping.set()  # the stop arrives mid-run
        await release.wait()
        finished = True

    task = asyncio.create_task(run_every(NEVER_S, step, stopping))
    await asyncio.sleep(0)
    assert not task.done()
    release.set()
    async with asyncio.timeout(1):
        await task
    assert finished


async def test_a_step_with_more_to_do_runs_again_without_waiting() -> None:
    stopping = asyncio.Event()
    runs = 0

    async def step() -> bool:
        nonlocal runs
        runs += 1
        if runs == 3:
            stopping.set()
        return True

    async with asyncio.timeout(1):  # an hour's interval: only `True` brings the next run
        await run_every(NEVER_S, step, stopping)
    assert runs == 3


async def test_an_expected_error_is_reported_and_the_loop_goes_on() -> None:
    stopping = asyncio.Event()
    reported: list[Exception] = []
    failure = RedisConnectionError("redis went away")
    runs = 0

    async def step() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise failure
        stopping.set()

    async with asyncio.timeout(5):
        await run_every(NEVER_S, step, stopping, on_error=reported.append, error_wait_s=FAST_S)
    assert reported == [failure]
    assert runs == 2


async def test_an_overrunning_step_is_timed_out_and_reported() -> None:
    stopping = asyncio.Event()
    reported: list[Exception] = []
    runs = 0

    async def step() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            await asyncio.Event().wait()  # never answers
        stopping.set()

    async with asyncio.timeout(5):
        await run_every(FAST_S, step, stopping, on_error=reported.append, timeout_s=0.01)
    assert [type(error) for error in reported] == [TimeoutError]
    assert runs == 2


async def test_an_unexpected_error_propagates() -> None:
    stopping = asyncio.Event()
    reported: list[Exception] = []

    async def step() -> None:
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        await run_every(FAST_S, step, stopping, on_error=reported.append)
    assert reported == []


@pytest.mark.parametrize("where", ["in a run", "between runs"])
async def test_cancellation_is_never_swallowed(where: str) -> None:
    stopping = asyncio.Event()
    reported: list[Exception] = []
    ran = asyncio.Event()

    async def step() -> None:
        ran.set()
        if where == "in a run":
            await asyncio.Event().wait()

    task = asyncio.create_task(
        run_every(NEVER_S, step, stopping, on_error=reported.append, timeout_s=NEVER_S)
    )
    await ran.wait()
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert reported == []


async def test_workers_stop_with_one_grace_period_for_all(
    caplog: pytest.LogCaptureFixture,
) -> None:
    grace_s = 0.2
    workers = Workers(grace_s=grace_s, deadline_s=1.0)
    finished: list[str] = []

    async def finishes_on_stop(name: str) -> None:
        await workers.stopping.wait()
        finished.append(name)

    async def ignores_stop() -> None:
        await asyncio.Event().wait()

    for name in ("consumer", "sender"):
        workers.start(finishes_on_stop(name), name)
    stuck = [workers.start(ignores_stop(), f"stuck-{n}") for n in range(3)]
    await asyncio.sleep(0)
    started = time.monotonic()
    await workers.stop()
    elapsed = time.monotonic() - started
    # One grace for all five, not one each in turn.
    assert grace_s <= elapsed < 2 * grace_s
    assert sorted(finished) == ["consumer", "sender"]
    assert all(task.cancelled() for task in stuck)
    cancelled = [
        r for r in caplog.records if r.getMessage() == "task cancelled after the grace period"
    ]
    assert sorted(r.__dict__["task"] for r in cancelled) == ["stuck-0", "stuck-1", "stuck-2"]


async def test_workers_log_a_crash_with_its_exception(caplog: pytest.LogCaptureFixture) -> None:
    workers = Workers(grace_s=1.0, deadline_s=1.0)

    async def crashes() -> None:
        raise RuntimeError("boom")

    task = workers.start(crashes(), "sweeper")
    with caplog.at_level(logging.ERROR, logger="parley.loops"):
        await asyncio.wait([task])
        await asyncio.sleep(0)  # done callbacks run on the next turn
    assert workers.ended == ["sweeper"]
    [record] = [r for r in caplog.records if r.getMessage() == "task failed"]
    assert record.__dict__["task"] == "sweeper"
    assert record.exc_info is not None and str(record.exc_info[1]) == "boom"
    await workers.stop()  # the crash was collected: nothing left to report or wait for
