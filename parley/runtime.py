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
from collections.abc import Callable
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType

import uvloop
from aiohttp import web

log = logging.getLogger(__name__)

# SIGTERM: stop accepting, finish what is in flight, clean up, exit within 10 s.
SHUTDOWN_GRACE_S = 8.0
# A supervisor kills the workers still running this long after it told them to stop, so
# that it exits within those 10 s itself.
KILL_WORKERS_AFTER_S = SHUTDOWN_GRACE_S + 1.5

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
) -> None:
    """Run a process's app until SIGTERM or SIGINT, on uvloop with the tuned collector;
    in `loop` if given (what it already runs goes on), else in a new one.

    A `worker` (of run_workers) binds the port beside its siblings (SO_REUSEPORT: the
    kernel spreads new connections over them) and stops on its supervisor's SIGTERM, or
    when the supervisor is gone."""
    use_uvloop()
    tune_gc()
    if worker:
        loop = loop or asyncio.new_event_loop()
        _stop_once(loop)
    web.run_app(
        app,
        host=host,
        port=port,
        shutdown_timeout=SHUTDOWN_GRACE_S,
        print=None,
        access_log=None,
        handle_signals=not worker,
        reuse_port=True if worker else None,
        loop=loop,
    )


def _stop_once(loop: asyncio.AbstractEventLoop) -> None:
    """A worker's one graceful stop. A second GracefulExit would cut short the cleanup
    the first started, and signals come in pairs here: Ctrl-C and systemd signal every
    process of the group, and the supervisor forwards its own. SIGINT stays ignored (as
    run_workers started the worker): the supervisor turns it into SIGTERM."""
    stopping = False

    def stop() -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise web.GracefulExit

    loop.add_signal_handler(signal.SIGTERM, stop)
    parent = multiprocessing.parent_process()
    if parent is not None:
        # The supervisor's sentinel becomes readable when it dies, even by SIGKILL: an
        # orphan would keep serving the port beside whatever starts next.
        def orphaned() -> None:
            loop.remove_reader(parent.sentinel)
            os.kill(os.getpid(), signal.SIGTERM)

        loop.add_reader(parent.sentinel, orphaned)


def run_workers(count: int, target: Callable[..., None], *args: object) -> int:
    """Run `target(*args)` in `count` worker processes and supervise them; returns the
    exit status. Workers are spawned, not forked: each starts a fresh interpreter that
    imports what it needs, so what the environment says at import time (set it before
    calling) holds in every one, and no state of this process is shared.

    SIGTERM or SIGINT reach every worker once, as SIGTERM; 0 when all then stop cleanly
    within KILL_WORKERS_AFTER_S (the rest are killed). A worker that exits unasked
    stops the others and makes it 1: the orchestrator restarts the receiver, with its
    backoff and its restart count, where restarting the worker here would hide a crash
    loop behind siblings that keep answering /healthz."""
    context = multiprocessing.get_context("spawn")
    workers: list[BaseProcess] = [
        context.Process(target=target, args=args, name=f"worker-{n}") for n in range(count)
    ]
    running: list[BaseProcess] = []
    kill_at: float | None = None
    failed = False

    def stop(signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        nonlocal kill_at
        if kill_at is None:
            kill_at = time.monotonic() + KILL_WORKERS_AFTER_S
        for worker in running:
            if worker.pid is not None:
                with contextlib.suppress(ProcessLookupError):  # exited meanwhile
                    os.kill(worker.pid, signal.SIGTERM)

    # Workers inherit an ignored SIGINT (Python leaves it so): Ctrl-C reaches them only
    # through stop(), once.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN), signal.signal(signal.SIGTERM, stop)
    try:
        for worker in workers:
            worker.start()
            running.append(worker)
        signal.signal(signal.SIGINT, stop)
        log.info("workers started", extra={"pids": [worker.pid for worker in running]})
        if kill_at is not None:
            stop()  # a signal came while starting: the late ones hear it too
        while running:
            timeout = None if kill_at is None else max(0.0, kill_at - time.monotonic())
            wait([worker.sentinel for worker in running], timeout)
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
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
    return 1 if failed else 0
