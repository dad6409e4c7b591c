"""JSON logs on stderr. Callers log ids and counts, never message bodies or secrets."""

import logging
import sys

from pythonjsonlogger.json import JsonFormatter


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiokafka logs every reconnect attempt at ERROR; our own lines say what matters.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
