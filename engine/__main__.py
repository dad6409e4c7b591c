"""`python -m engine`: run the engine; `show KEY` and `queues CHANNEL` for operators.

Nothing is imported before main() holds the stop signals (parley.stopping.hold) but
what this needs to hold them; then only what comes before the group join: the
engine itself is imported while the join is under way (`_run`), and the operators'
commands import what they use.
"""

import signal
import sys
from typing import TYPE_CHECKING

from parley import stopping

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from engine.joining import Joining
    from parley.settings import Settings
    from store.reader import Reader

# A stop before the app runs waits this long for the join in flight to end, then leaves.
STOP_JOINING_S = 5.0


def main(argv: list[str] | None = None) -> int:
    held = stopping.hold()
    import argparse
    import asyncio
    import os

    from parley.settings import SettingsError, settings_from_env

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

        signal.pthread_sigmask(signal.SIG_SETMASK, held)  # an operator's command: as usual
        if args.command == "show":
            # A conversation laid out to read; queue sizes on one line (to grep and watch).
            return asyncio.run(_inspect(settings, cli.show_conversation, args.conversation, 2))
        return asyncio.run(_inspect(settings, cli.queue_sizes, args.channel, None))
    return _run(settings)


async def _inspect(
    settings: "Settings",
    view: "Callable[[Reader, str], Awaitable[object]]",
    target: str,
    indent: int | None,
) -> int:
    import json

    from redis.exceptions import RedisError

    from engine.cli import NotFound
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
    print(json.dumps(result, indent=indent, ensure_ascii=False))
    return 0


def _run(settings: "Settings") -> int:
    """Runs until stopped; the stop signals are the engine's (parley.stopping) from
    before the join: a stop while it starts ends start-up cleanly."""
    import uvloop

    from parley.channels import ChannelFileError, load_channels
    from parley.logs import setup_logging

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
    stop = stopping.Stop(loop)
    stop.take()
    joining = loop.run_until_complete(_join_while_importing(settings, len(channels), stop))
    if joining is None:
        stop.close()
        loop.close()
        return 0
    from engine.app import create_app
    from parley.runtime import serve

    app = create_app(settings, channels, joining=joining)
    serve(app, settings.http_host, settings.metrics_port, loop=loop, stop=stop)
    return 0


async def _join_while_importing(
    settings: "Settings", channels: int, stop: stopping.Stop
) -> "Joining | None":
    """Begin the group join, then import the engine; None if stopped meanwhile.

    The imports take most of a second of CPU, the join a second or more of waiting on
    the broker: in a thread, the imports overlap the join (the loop runs it meanwhile).
    A stop before the app runs ends start-up cleanly: a member killed mid-join would
    hold up the group for a session."""
    import asyncio
    import logging

    from engine.joining import Joining

    asked = stop.event()
    joining = Joining(settings)
    logging.getLogger(__name__).info(
        "starting engine", extra={"metrics_port": settings.metrics_port, "channels": channels}
    )
    await asyncio.to_thread(_import_the_engine)
    if not asked.is_set():
        return joining
    await joining.close(STOP_JOINING_S)
    return None


def _import_the_engine() -> None:
    import importlib

    for module in ("engine.app", "parley.runtime"):
        importlib.import_module(module)


if __name__ == "__main__":
    sys.exit(main())
