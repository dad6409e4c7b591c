"""How the processes run: the event loop, the garbage collector, and workers that share
one port."""

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator
from multiprocessing import resource_tracker
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import uvloop
from aiohttp import web

from parley.stopping import STOP_SIGNALS, Stop

log = logging.getLogger(__name__)

# SIGTERM: stop accepting, finish what is in flight, clean up, exit within 10 s.
SHUTDOWN_GRACE_S = 8.0
# A supervisor kills the workers still running this long after it told them to stop, so
# that it exits within those 10 s itself.
KILL_WORKERS_AFTER_S = SHUTDOWN_GRACE_S + 1.5
# A stop during the app's start-up lets it end for this long (it takes well under a
# second with Kafka and Redis answering), then cancels it.
STOP_START_UP_S = SHUTDOWN_GRACE_S / 2

# The engine allocates a few short-lived objects an event, thousands a batch; at
# CPython's default (a young collection every 700 allocations, older ones every 10)
# collections took a third of its time. Young objects die young here: collect rarely.
# A collection scans what is alive, which in the middle of a 5,000-event batch is the
# whole batch: at 20,000 a young collection came every few hundred events and took
# 5 to 9% of the engine's CPU; at 100,000, 2 to 4% (docs/profiles/engine.md). Cyclic
# garbage is rare (about a hundred objects in 30,000 events), so memory does not pay.
GC_THRESHOLDS = (100_000, 50, 100)


def use_uvloop() -> None:
    """uvloop: libuv under asyncio, measurably faster for the receiver (make bench)."""
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def tune_gc() -> None:
    """Call once start-up is done: what exists then lives for the whole process, so it
    is frozen out of every later scan, and collections become rarer (see above)."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def serve(
    app: web.Application,
    host: str,
    port: int,
    *,
    worker: bool = False,
    loop: asyncio.AbstractEventLoop | None = None,
    stop: Stop | None = None,
) -> None:
    """Run a process's app until SIGTERM or SIGINT, on uvloop with the tuned collector;
    in `loop` if given (what it already runs goes on), else in a new one; the process's
    `stop` if it took its signals already (python -m engine, while it starts).

    A `worker` (of run_workers) binds the port beside its siblings (SO_REUSEPORT: the
    kernel spreads new connections over them) and stops on its supervisor's SIGTERM, or
    when the supervisor is gone.

    The first stop, whenever it comes, is the one graceful stop (Stop). One that came
    before, held (STOP_SIGNALS), returns before the app starts; one during the app's
    start-up lets it end (_unless_stopped) and closes what it opened, serving nothing;
    after, it stops accepting, finishes what is in flight and cleans up. Later signals
    change nothing."""
    use_uvloop()
    tune_gc()
    loop = loop or asyncio.new_event_loop()
    stop = stop or Stop(loop)
    if worker:
        # Ignored, SIGINT drops what is held of it: Ctrl-C signals every process of the
        # group, and the supervisor turns its own into SIGTERM.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop.take(frozenset({signal.SIGTERM}) if worker else STOP_SIGNALS)
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(_serve(app, host, port, stop, worker=worker))
    finally:
        stop.close()
        _close_loop(loop)


async def _serve(app: web.Application, host: str, port: int, stop: Stop, *, worker: bool) -> None:
    stopping = stop.event()
    if worker:
        _stop_when_orphaned(stop)
    # What web.run_app does, but a stop during the app's start-up closes what it opened:
    # run_app cancels start-up outside its cleanup (a producer left open, its ERROR
    # lines at exit).
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_GRACE_S)
    try:
        if await _unless_stopped(runner.setup(), stopping):
            await web.TCPSite(runner, host, port, reuse_port=True if worker else None).start()
            await stopping.wait()
            await _stop_accepting(runner)
    finally:
        await runner.cleanup()


async def _stop_accepting(runner: web.AppRunner) -> None:
    """Stop listening, then let the connections accepted last begin: two passes of the
    loop, one for their connection_made (uvloop schedules it), one for the first step of
    their handler. aiohttp's cleanup closes the idle connections at once, and drops what
    a closed one receives: a connection whose handler had not begun missed that close,
    so its handler waited for a request that never came, and the stop waited the whole
    SHUTDOWN_GRACE_S for it (9.2 to 9.7 s in 5 of 30 stress runs with steady traffic)."""
    for site in list(runner.sites):
        await site.stop()
    for _ in range(2):
        await asyncio.sleep(0)


async def _unless_stopped(starting: Coroutine[Any, Any, None], stopping: asyncio.Event) -> bool:
    """Runs `starting` to its end: True, unless the stop came meanwhile: False.

    Start-up stopped midway is let end, within STOP_START_UP_S, then cancelled: not all
    of it is safe to cancel (aiokafka leaves the connection of a bootstrap cut short
    open: an "Unclosed AIOKafkaConnection" ERROR in 6 of 530 stress runs)."""
    start = asyncio.ensure_future(starting)
    stopped = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait((start, stopped), return_when=asyncio.FIRST_COMPLETED)
        if not start.done():
            await asyncio.wait((start,), timeout=STOP_START_UP_S)
    finally:
        stopped.cancel()
    if not start.done():
        start.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await start
        return False
    start.result()  # start-up's error, if any, ends the process
    return not stopping.is_set()


def _stop_when_orphaned(stop: Stop) -> None:
    """The supervisor's sentinel becomes readable when it dies, even by SIGKILL: an
    orphan would keep serving the port beside whatever starts next."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    loop = asyncio.get_running_loop()

    def orphaned() -> None:
        loop.remove_reader(parent.sentinel)
        stop.request()

    loop.add_reader(parent.sentinel, orphaned)


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """As web.run_app leaves it: what still runs cancelled, async generators closed."""
    try:
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                loop.call_exception_handler(
                    {
                        "message": "unhandled exception during shutdown",
                        "exception": task.exception(),
                        "task": task,
                    }
                )
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()


def run_workers(count: int, target: Callable[..., None], *args: object) -> int:
    """Run `target(*args)` in `count` worker processes and supervise them; returns the
    exit status. Workers are spawned, not forked: each starts a fresh interpreter that
    imports what it needs, so what the environment says at import time (set it before
    calling) holds in every one, and no state of this process is shared.

    SIGTERM or SIGINT, whenever they come, reach every worker started once, as SIGTERM,
    and no worker starts after them; 0 when all then stop cleanly within
    KILL_WORKERS_AFTER_S (the rest are killed). A worker that exits unasked stops the
    others and makes it 1: the orchestrator restarts the receiver, with its backoff and
    its restart count, where restarting the worker here would hide a crash loop behind
    siblings that keep answering /healthz.

    Workers start with SIGINT held (blocked: a process inherits that), so Ctrl-C's,
    which reaches the whole group, does not end one in a KeyboardInterrupt traceback
    while it imports; serve() then ignores it. A SIGTERM before a worker's serve() kills
    it (nothing in flight yet), after it stops it gracefully. The signals stay this
    function's after it returns, and change nothing then: the process is about to
    exit."""
    context = multiprocessing.get_context("spawn")
    workers: list[BaseProcess] = [
        context.Process(target=target, args=args, name=f"worker-{n}") for n in range(count)
    ]
    running: list[BaseProcess] = []
    kill_at: float | None = None
    failed = False
    done = False
    # stop() wakes the wait below through this pipe: before a stop it waits with no
    # timeout, and a signal alone does not end it (PEP 475 retries it). Without it, a
    # worker deaf to the stop kept the supervisor waiting until it was killed.
    woken, wake = os.pipe()
    os.set_blocking(wake, False)

    def stop(signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        nonlocal kill_at
        if kill_at is not None or done:
            return
        kill_at = time.monotonic() + KILL_WORKERS_AFTER_S
        os.write(wake, b"\0")
        for worker in running:
            if worker.pid is not None:
                with contextlib.suppress(ProcessLookupError):  # exited meanwhile
                    os.kill(worker.pid, signal.SIGTERM)

    for signum in STOP_SIGNALS:
        signal.signal(signum, stop)
    # Started on the first worker's start otherwise, multiprocessing's resource tracker
    # would let the signals in while the worker is spawned (it blocks and unblocks them
    # around its own start).
    resource_tracker.ensure_running()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # one held is handled here
    try:
        for worker in workers:
            if kill_at is not None:
                break  # stopped before this one started: it never does
            with _holding({signal.SIGINT}):
                worker.start()
            running.append(worker)
            if kill_at is not None and worker.pid is not None:
                os.kill(worker.pid, signal.SIGTERM)  # the stop came while it started
        if running:
            log.info("workers started", extra={"pids": [worker.pid for worker in running]})
        while running:
            timeout = None if kill_at is None else max(0.0, kill_at - time.monotonic())
            if woken in wait([woken, *(worker.sentinel for worker in running)], timeout):
                os.read(woken, 1)
            for worker in [worker for worker in running if worker.exitcode is not None]:
                running.remove(worker)
                asked = kill_at is not None
                # Killed by our SIGTERM before it set up its handler: nothing in flight.
                if asked and worker.exitcode in (0, -signal.SIGTERM):
                    continue
                failed = True
                log.error(
                    "worker exited" if asked else "worker exited unasked; stopping the others",
                    extra={"worker": worker.name, "pid": worker.pid, "code": worker.exitcode},
                )
                if not asked:
                    stop()
            if kill_at is not None and running and time.monotonic() >= kill_at:
                for worker in running:
                    log.error("worker killed", extra={"worker": worker.name, "pid": worker.pid})
                    worker.kill()
                    worker.join()
                failed = True
                running.clear()
    finally:
        done = True
        os.close(woken)
        os.close(wake)
    return 1 if failed else 0


@contextlib.contextmanager
def _holding(signals: Iterable[int]) -> Iterator[None]:
    """The signals blocked meanwhile (a process started meanwhile inherits that), then
    let in: one that came meanwhile is handled then."""
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)
