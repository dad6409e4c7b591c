"""How the processes run: the event loop and the garbage collector."""

import asyncio
import gc

import uvloop
from aiohttp import web

# SIGTERM: stop accepting, finish what is in flight, clean up, exit within 10 s.
SHUTDOWN_GRACE_S = 8.0

# The engine allocates a few short-lived objects an event, thousands a batch; at
# CPython's default (a young collection every 700 allocations, older ones every 10)
# collections took a third of its time. Young objects die young here: collect rarely.
GC_THRESHOLDS = (20_000, 50, 100)


def use_uvloop() -> None:
    """uvloop: libuv under asyncio, measurably faster for the receiver (make bench)."""
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def tune_gc() -> None:
    """Call once start-up is done: what exists then lives for the whole process, so it
    is frozen out of every later scan, and collections become rarer (see above)."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def serve(app: web.Application, host: str, port: int) -> None:
    """Run a process's app until SIGTERM or SIGINT, on uvloop with the tuned collector."""
    use_uvloop()
    tune_gc()
    web.run_app(
        app, host=host, port=port, shutdown_timeout=SHUTDOWN_GRACE_S, print=None, access_log=None
    )
