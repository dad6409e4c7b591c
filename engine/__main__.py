"""`python -m engine`: run the engine; `show KEY` and `queues CHANNEL` for operators.

Imports here are only what comes before the group join: the engine itself is imported
while the join is under way (`_run`), and the operators' commands import what they use.
"""

import argparse
import asyncio
import importlib
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import uvloop

from engine.joining import Joining
from parley.channels import ChannelFileError, load_channels
from parley.logs import setup_logging
from parley.settings import Settings, SettingsError, settings_from_env

if TYPE_CHECKING:
    from store.reader import Reader

log = logging.getLogger(__name__)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# A stop before the app runs waits this long for the join in flight to end, then leaves.
STOP_JOINING_S = 5.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run", help="consume events, sweep, serve /metrics (the default)")
    show = commands.add_parser("show", help="print a conversation as JSON")
    show.add_argument(
        "conversation", help="{phone_number_id}:{customer}: a phone, BSUID or username"
    )
    queues = commands.add_parser("queues", help="print a channel's queue sizes as JSON")
    queues.add_argument("channel", help="the channel's phone_number_id")
    args = parser.parse_args(argv)
    try:
        settings = settings_from_env(os.environ)
    except SettingsError as error:
        print(f"parley engine: {error}", file=sys.stderr)
        return 2
    if args.command in ("show", "queues"):
        from engine import cli

        view = cli.show_conversation if args.command == "show" else cli.queue_sizes
        target = args.conversation if args.command == "show" else args.channel
        return asyncio.run(_inspect(settings, view, target))
    return _run(settings)


async def _inspect(
    settings: Settings, view: Callable[["Reader", str], Awaitable[object]], target: str
) -> int:
    from redis.exceptions import RedisError

    from engine.cli import NotFound, show_conversation
    from parley.redis import connect_redis
    from store.reader import Reader

    if settings.redis_url is None:
        print("parley engine: PARLEY_REDIS_URL is not set", file=sys.stderr)
        return 2
    client = connect_redis(settings.redis_url)
    try:
        result = await view(Reader(client), target)
    except (NotFound, ValueError) as error:
        print(f"parley engine: {error}", file=sys.stderr)
        return 1
    except (RedisError, OSError) as error:
        print(f"parley engine: redis: {error}", file=sys.stderr)
        return 1
    finally:
        await client.aclose()
    # Queue sizes on one line (easy to grep and watch); a conversation laid out to read.
    print(json.dumps(result, indent=2 if view is show_conversation else None, ensure_ascii=False))
    return 0


def _run(settings: Settings) -> int:
    try:
        channels = load_channels(settings.channels_file)
    except ChannelFileError as error:
        print(f"parley engine: {error}", file=sys.stderr)
        return 2
    if settings.kafka_bootstrap is None:
        print("parley engine: PARLEY_KAFKA_BOOTSTRAP is not set", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    loop = uvloop.new_event_loop()
    joining = loop.run_until_complete(_join_while_importing(settings, len(channels)))
    if joining is None:
        loop.close()
        return 0
    from engine.app import create_app
    from parley.runtime import serve

    app = create_app(settings, channels, joining=joining)
    serve(app, settings.http_host, settings.metrics_port, loop=loop)
    return 0


async def _join_while_importing(settings: Settings, channels: int) -> Joining | None:
    """Begin the group join, then import the engine; None if stopped meanwhile.

    The imports take most of a second of CPU, the join a second or more of waiting on
    the broker: in a thread, the imports overlap the join (the loop runs it meanwhile).
    Until the app handles them, SIGTERM and SIGINT stop start-up cleanly: a member
    killed mid-join would hold up the group for a session. (In this one run of the loop:
    uvloop drops a signal that comes between two.)"""
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop_requested.set)
    try:
        joining = Joining(settings)
        log.info(
            "starting engine", extra={"metrics_port": settings.metrics_port, "channels": channels}
        )
        await asyncio.to_thread(_import_the_engine)
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
    if not stop_requested.is_set():
        return joining
    await joining.close(STOP_JOINING_S)
    return None


def _import_the_engine() -> None:
    for module in ("engine.app", "parley.runtime"):
        importlib.import_module(module)


if __name__ == "__main__":
    sys.exit(main())
