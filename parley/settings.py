"""Process settings: read from the environment once, at the edge, into one frozen struct."""

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import msgspec

PREFIX = "PARLEY_"
SECRETS = frozenset({"admin_token", "media_s3_secret_key"})
MAX_HTTP_WORKERS = 256


def available_cores() -> int:
    """The cores this process may use: its CPU affinity, capped by a container's CPU
    quota (cgroup v2 or v1), which os.cpu_count() ignores: a pod limited to one CPU on a
    32-core node gets one worker, not 32 (each with its own memory and connections)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    quota, period = _cpu_quota()
    if quota > 0 and period > 0:
        return max(1, min(cores or 1, math.ceil(quota / period)))
    return cores or 1


def default_http_workers() -> int:
    """PARLEY_HTTP_WORKERS when unset: a receiver worker per core this process may use
    (available_cores), within the setting's bounds."""
    return min(available_cores(), MAX_HTTP_WORKERS)


def _cpu_quota() -> tuple[int, int]:
    """(quota, period) in microseconds, or (-1, 0) where there is none."""
    try:  # cgroup v2: "max 100000" or "150000 100000"
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        return (-1 if quota == "max" else int(quota)), int(period)
    except (OSError, ValueError):
        pass
    try:  # cgroup v1: -1 when unlimited
        v1 = Path("/sys/fs/cgroup/cpu")
        return int((v1 / "cpu.cfs_quota_us").read_text()), int(
            (v1 / "cpu.cfs_period_us").read_text()
        )
    except (OSError, ValueError):
        return -1, 0


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a process needs to know about its surroundings.

    `kafka_bootstrap` and `redis_url` are None when unset: `make run` then starts local
    servers and passes their addresses in. Secrets are never part of the repr.
    """

    kafka_bootstrap: str | None = None
    redis_url: str | None = None
    topic: str = "parley.events"
    topic_partitions: Annotated[int, msgspec.Meta(ge=1, le=1024)] = 8
    http_host: str = "127.0.0.1"
    http_port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8080
    # Receiver processes (python -m ingest) sharing the HTTP port, each the whole app:
    # one per core this process may use, unless set.
    http_workers: Annotated[int, msgspec.Meta(ge=1, le=MAX_HTTP_WORKERS)] = msgspec.field(
        default_factory=default_http_workers
    )
    metrics_port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 9108
    channels_file: str | None = None
    admin_token: str | None = None
    graph_url: str = "https://graph.facebook.com/v21.0"
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 1024 * 1024
    # Off for Tansu (no idempotent producer in its memory build), on against Apache Kafka.
    kafka_idempotence: bool = False
    produce_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=10)] = 5.0
    # How long an API action waits for the engine to apply it before answering 202.
    action_wait_s: Annotated[float, msgspec.Meta(ge=0, le=30)] = 2.0
    consumer_group: str = "parley-engine"
    # The engine's Kafka session: a member silent this long is dropped and its partitions
    # move. 6 s is the least a stock Kafka broker accepts (group.min.session.timeout.ms);
    # the local broker (Tansu) holds a new member's join for half of it.
    kafka_session_timeout_s: Annotated[float, msgspec.Meta(ge=1, le=300)] = 6.0
    sweep_interval_s: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    log_level: str = "INFO"
    # Where customers' and agents' media is kept: "file:///a/directory" or "s3://bucket"
    # (S3-compatible: the endpoint, region and keys below, else botocore's own chain).
    media_url: str = "file://media"
    media_s3_endpoint: str | None = None
    media_s3_region: str = "us-east-1"
    media_s3_access_key: str | None = None
    media_s3_secret_key: str | None = None
    # The largest file kept (WhatsApp's own limit is 100 MB, for documents).
    media_max_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 100 * 1024 * 1024
    media_retention_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 30
    # Media downloads from the Graph API at once, per engine.
    media_fetches: Annotated[int, msgspec.Meta(ge=1, le=256)] = 32
    # How often the engine syncs each business account's templates (0: never; the API's
    # POST .../templates/sync still does on demand).
    template_sync_s: Annotated[float, msgspec.Meta(ge=0)] = 3600.0
    # An online or away user with no live stream connected this long goes offline.
    offline_after_s: Annotated[float, msgspec.Meta(ge=1, le=86400)] = 120.0

    def __repr__(self) -> str:
        shown = {
            field: ("***" if field in SECRETS and value else value)
            for field, value in msgspec.structs.asdict(self).items()
        }
        return f"Settings({shown})"

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.topic}.dead-letter"


class SettingsError(ValueError):
    """An environment variable with a value that does not fit its setting."""


def settings_from_env(env: Mapping[str, str]) -> Settings:
    """Build Settings from `PARLEY_*` variables; raises SettingsError naming the variable."""
    values = {
        name[len(PREFIX) :].lower(): value
        for name, value in env.items()
        if name.startswith(PREFIX) and value != ""
    }
    known = set(Settings.__struct_fields__)
    values = {name: value for name, value in values.items() if name in known}
    try:
        return msgspec.convert(values, Settings, strict=False)
    except msgspec.ValidationError as error:
        raise SettingsError(_name_variable(str(error))) from None


def _name_variable(message: str) -> str:
    # msgspec says "... - at `$.http_port`"; operators know the variable, not the path.
    if "`$." in message:
        head, _, path = message.partition(" - at `$.")
        return f"{PREFIX}{path.rstrip('`').upper()}: {head}"
    return message
