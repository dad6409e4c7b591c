"""`python -m ingest`: the webhook receiver and the /v1 API; `dead-letters list` and
`dead-letters redrive` for operators.

Nothing is imported before main() holds the stop signals (parley.stopping.hold) but
what this needs to hold them: the receiver's imports take a second or more, and a
SIGTERM or SIGINT meanwhile must stop it cleanly, not kill it."""

import signal
import sys
from typing import TYPE_CHECKING

from parley import stopping

if TYPE_CHECKING:
    from parley.settings import Settings


def main(argv: list[str] | None = None) -> int:
    held = stopping.hold()
    import argparse
    import asyncio
    import os

    from ingest import dead_letters
    from parley.settings import SettingsError, settings_from_env

    parser = argparse.ArgumentParser(prog="python -m ingest", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run", help="receive webhooks and serve the /v1 API (the default)")
    dead_letters.add_commands(commands)
    args = parser.parse_args(argv)
    try:
        settings = settings_from_env(os.environ)
    except SettingsError as error:
        print(f"parley ingest: {error}", file=sys.stderr)
        return 2
    if args.command == "dead-letters":
        signal.pthread_sigmask(signal.SIG_SETMASK, held)  # an operator's command: as usual
        return asyncio.run(dead_letters.run(settings, args))
    return _run(settings)


def _run(settings: "Settings") -> int:
    """Serves until stopped: serve() or run_workers() take the held signals."""
    import logging
    import os
    import tempfile

    from ingest.app import create_app, run_worker
    from parley.channels import ChannelFileError, load_channels
    from parley.logs import setup_logging
    from parley.runtime import run_workers, serve

    try:
        channels = load_channels(settings.channels_file)
    except ChannelFileError as error:
        print(f"parley ingest: {error}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    logging.getLogger(__name__).info(
        "starting receiver",
        extra={
            "host": settings.http_host,
            "port": settings.http_port,
            "channels": len(channels),
            "workers": settings.http_workers,
        },
    )
    if settings.http_workers == 1:
        serve(create_app(settings, channels), settings.http_host, settings.http_port)
        return 0
    # prometheus_client reads this when a worker imports it; the directory must start
    # empty every run, so it is this run's own.
    with tempfile.TemporaryDirectory(prefix="parley-metrics-") as metrics_dir:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        return run_workers(settings.http_workers, run_worker, settings, channels, metrics_dir)


if __name__ == "__main__":
    sys.exit(main())
