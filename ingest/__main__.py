"""`python -m ingest`: the webhook receiver (and, later, the /v1 API)."""

import logging
import os
import sys

from ingest.app import create_app
from parley.channels import ChannelFileError, load_channels
from parley.logs import setup_logging
from parley.runtime import serve
from parley.settings import SettingsError, settings_from_env


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
    serve(create_app(settings, channels), settings.http_host, settings.http_port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
