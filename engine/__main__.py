"""`python -m engine`: run the engine; `show KEY` and `queues CHANNEL` for operators."""

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError

from engine.app import create_app
from engine.cli import NotFound, queue_sizes, show_conversation
from parley.channels import ChannelFileError, load_channels
from parley.logs import setup_logging
from parley.redis import connect_redis
from parley.runtime import serve
from parley.settings import Settings, SettingsError, settings_from_env
from store.reader import Reader


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
    if args.command == "show":
        return asyncio.run(_inspect(settings, show_conversation, args.conversation))
    if args.command == "queues":
        return asyncio.run(_inspect(settings, queue_sizes, args.channel))
    return _run(settings)


async def _inspect(
    settings: Settings, view: Callable[[Reader, str], Awaitable[object]], target: str
) -> int:
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
    setup_logging(settings.log_level)
    logging.getLogger(__name__).info(
        "starting engine", extra={"metrics_port": settings.metrics_port, "channels": len(channels)}
    )
    serve(create_app(settings, channels), settings.http_host, settings.metrics_port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
