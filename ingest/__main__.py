"""`python -m ingest`: the webhook receiver (and, later, the /v1 API)."""

import logging
import os
import sys

from aiohttp import web

from ingest.app import create_app
from parley.channels import ChannelFileError, load_channels
from parley.logs import setup_logging
from parley.runtime import tune_gc, use_uvloop
from parley.settings import SettingsError, settings_from_env

# SIGTERM: stop accepting, finish calls in flight, flush the producer, exit within 10 s.
SHUTDOWN_GRACE_S = 8.0


def main() -> int:
    try:
        settings = settings_from_env(os.environ)
        channels = load_channels(settings.channels_file)
    except (SettingsError, ChannelFileError) as error:
        print(f"parley ingest: {error}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    logging.getLogger(__name__).info(
        "starting receiver",
        extra={"host": settings.http_host, "port": settings.http_port, "channels": len(channels)},
    )
    use_uvloop()
    tune_gc()
    web.run_app(
        create_app(settings, channels),
        host=settings.http_host,
        port=settings.http_port,
        shutdown_timeout=SHUTDOWN_GRACE_S,
        print=None,
        access_log=None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
