"""`python -m engine` as a user runs it, watched from outside while it works a backlog.

The process gets the environment README.md documents and nothing else: the addresses
of Kafka and Redis, its topic and group, the metrics port, the channels file, media in
the run's own directory, a Graph API URL on a closed port (nothing may call Meta; a
reply's send fails fast), and the Kafka session `make run` sets when it starts the local
broker (devstack/stack.py: Tansu holds a new member's join for half the session). Every
other setting is its shipped default, the log level included (INFO). Any PARLEY_
variable of the caller's shell is dropped.

What is measured, from outside: /metrics (the sum of `parley_events_applied_total`,
every record the engine finished with, whatever its outcome) polled every POLL_S, the
group's committed offsets read by a consumer that never joins the group, and the
process's own log lines (their times) for where start-up went.
"""

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition

from devstack.servers import LOCAL_SESSION_TIMEOUT_S, free_port
from parley.channels import Channel

ROOT = Path(__file__).resolve().parents[2]
POLL_S = 0.05
APPLIED_METRIC = "parley_events_applied_total"
# Log lines whose times say where start-up went.
MILESTONES = ("starting engine", "consumer joined")
STOP_TIMEOUT_S = 15.0
# Nothing may call the real Graph API: replies fail fast on a closed port (as in
# tests/engine_proc.py).
CLOSED_GRAPH_URL = "http://127.0.0.1:9/v21.0"


class EngineFailed(RuntimeError):
    """The engine exited, or did not finish in time; the message ends with its log."""


@dataclass
class Catchup:
    """One backlog worked by one engine process; times are seconds after its start."""

    total: int
    metrics_up_s: float | None = None  # /metrics first answered
    first_s: float | None = None  # the first applied event seen on /metrics
    applied_s: float = 0.0  # every record applied
    caught_up_s: float = 0.0  # every record applied and its offset committed
    rate: float = 0.0  # events/s between 10% and 90% of the backlog applied
    stop_s: float = 0.0  # SIGTERM to exit
    exit_code: int | None = None
    # CPU seconds (/proc) of the engine and of redis-server from the first batch seen
    # applied to every event applied, and the events applied meanwhile.
    engine_cpu_s: float | None = None
    redis_cpu_s: float | None = None
    cpu_events: int = 0
    logged: dict[str, float] = field(default_factory=dict)  # MILESTONES seen in its log
    final: dict[str, float] = field(default_factory=dict)  # /metrics once caught up, summed
    samples: list[tuple[float, int]] = field(default_factory=list)


def channels_toml(channels: list[Channel]) -> str:
    """A PARLEY_CHANNELS_FILE for `channels`, written as an operator writes one."""
    tables = []
    for channel in channels:
        settings = channel.settings
        lines = [
            "[[channels]]",
            f"id = {json.dumps(channel.id)}",
            f"app_secret = {json.dumps(channel.app_secret)}",
            f"verify_token = {json.dumps(channel.verify_token)}",
            f"access_token = {json.dumps(channel.access_token)}",
            f"display_name = {json.dumps(settings.display_name)}",
            f"auto_assign = {'true' if settings.auto_assign else 'false'}",
        ]
        if settings.waba_id is not None:
            lines.append(f"waba_id = {json.dumps(settings.waba_id)}")
        tables.append("\n".join(lines))
    return "\n\n".join(tables) + "\n"


def engine_env(
    bootstrap: str, redis_url: str, topic: str, group: str, metrics_port: int, workdir: Path
) -> dict[str, str]:
    inherited = {
        name: value for name, value in os.environ.items() if not name.startswith("PARLEY_")
    }
    return {
        **inherited,
        "PARLEY_KAFKA_BOOTSTRAP": bootstrap,
        "PARLEY_REDIS_URL": redis_url,
        "PARLEY_TOPIC": topic,
        "PARLEY_CONSUMER_GROUP": group,
        "PARLEY_METRICS_PORT": str(metrics_port),
        "PARLEY_CHANNELS_FILE": str(workdir / "channels.toml"),
        "PARLEY_MEDIA_URL": f"file://{workdir / 'media'}",
        "PARLEY_GRAPH_URL": CLOSED_GRAPH_URL,
        # As `make run` sets it for its local broker.
        "PARLEY_KAFKA_SESSION_TIMEOUT_S": str(LOCAL_SESSION_TIMEOUT_S),
    }


async def run_engine(
    bootstrap: str,
    redis_url: str,
    topic: str,
    group: str,
    channels: list[Channel],
    total: int,
    workdir: Path,
    redis_pid: int | None = None,
    timeout_s: float = 180.0,
) -> Catchup:
    """Start `python -m engine` on a topic holding `total` records, wait until it has
    applied and committed them all, stop it with SIGTERM; what was seen on the way
    (with `redis_pid`, redis-server's CPU time too)."""
    _prepare(workdir, channels)
    port = free_port()
    env = engine_env(bootstrap, redis_url, topic, group, port, workdir)
    log_path = workdir / "engine.log"
    run = Catchup(total)
    offsets = await _Offsets.open(bootstrap, topic, group)
    try:
        with log_path.open("wb") as log:
            started_wall = time.time()
            started = time.perf_counter()
            process = subprocess.Popen(
                [sys.executable, "-m", "engine"], cwd=ROOT, env=env, stdout=log, stderr=log
            )
            try:
                watched = _Watched(process, started, redis_pid, timeout_s, log_path)
                await _watch(run, watched, port, offsets)
                run.stop_s, run.exit_code = await _terminate(process)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
    finally:
        await offsets.close()
    run.logged = _milestones(log_path, started_wall)
    run.rate = steady_rate(run.samples, total)
    return run


def _prepare(workdir: Path, channels: list[Channel]) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "channels.toml").write_text(channels_toml(channels), encoding="utf-8")


@dataclass(frozen=True)
class _Watched:
    process: subprocess.Popen[bytes]
    started: float  # perf_counter at start
    redis_pid: int | None
    timeout_s: float
    log_path: Path

    def check(self) -> None:
        if self.process.poll() is not None:
            raise EngineFailed(
                f"the engine exited with {self.process.returncode}\n{_tail(self.log_path)}"
            )
        if time.perf_counter() - self.started > self.timeout_s:
            raise EngineFailed(
                f"the engine did not catch up in {self.timeout_s:.0f} s\n{_tail(self.log_path)}"
            )

    def cpu(self) -> tuple[float | None, float | None]:
        """CPU seconds so far of the engine and of redis-server (None: unknown)."""
        redis = cpu_seconds(self.redis_pid) if self.redis_pid is not None else None
        return cpu_seconds(self.process.pid), redis


async def _watch(run: Catchup, watched: _Watched, port: int, offsets: "_Offsets") -> None:
    url = f"http://127.0.0.1:{port}/metrics"
    timeout = aiohttp.ClientTimeout(total=2)
    cpu_at_first: tuple[float | None, float | None] = (None, None)
    first_count = 0
    async with aiohttp.ClientSession(timeout=timeout) as http:
        while True:
            watched.check()
            sums = await _scrape(http, url)
            now = time.perf_counter() - watched.started
            if sums is not None:
                count = int(sums.get(APPLIED_METRIC, 0))
                if run.metrics_up_s is None:
                    run.metrics_up_s = now
                run.samples.append((now, count))
                if count and run.first_s is None:
                    run.first_s, cpu_at_first, first_count = now, watched.cpu(), count
                if count >= run.total:
                    run.applied_s = now
                    engine, redis = watched.cpu()
                    run.engine_cpu_s = _spent(cpu_at_first[0], engine)
                    run.redis_cpu_s = _spent(cpu_at_first[1], redis)
                    run.cpu_events = count - first_count
                    break
            await asyncio.sleep(POLL_S)
        while not await offsets.at_end():
            watched.check()
            await asyncio.sleep(POLL_S)
        run.caught_up_s = time.perf_counter() - watched.started
        run.final = await _scrape(http, url) or {}


def _spent(before: float | None, after: float | None) -> float | None:
    return after - before if before is not None and after is not None else None


def cpu_seconds(pid: int) -> float | None:
    """User and system CPU time of a process so far, from /proc (None: not readable)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return None
    # After the command's name: state is field 3, utime 14 and stime 15 (proc(5)).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _scrape(http: aiohttp.ClientSession, url: str) -> dict[str, float] | None:
    """Each metric's samples summed over their labels, or None while /metrics does not
    answer."""
    try:
        async with http.get(url) as response:
            if response.status != 200:
                return None
            text = await response.text()
    except (aiohttp.ClientError, OSError, TimeoutError):
        return None
    sums: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("parley_"):
            name, value = line.partition("{")[0].partition(" ")[0], line.rsplit(" ", 1)[1]
            sums[name] = sums.get(name, 0.0) + float(value)
    return sums


async def _terminate(process: subprocess.Popen[bytes]) -> tuple[float, int | None]:
    """SIGTERM, then how long it took to exit and with what code (None: killed)."""
    asked = time.perf_counter()
    process.send_signal(signal.SIGTERM)
    try:
        code = await asyncio.to_thread(process.wait, STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return time.perf_counter() - asked, None
    return time.perf_counter() - asked, code


class _Offsets:
    """The group's committed offsets against the topic's end, read by a consumer that
    carries the group's id but never subscribes (so never joins it)."""

    def __init__(self, consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> None:
        self._consumer = consumer
        self._ends = ends

    @classmethod
    async def open(cls, bootstrap: str, topic: str, group: str) -> "_Offsets":
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            await consumer.topics()
            numbers = consumer.partitions_for_topic(topic) or set()
            partitions = [TopicPartition(topic, number) for number in sorted(numbers)]
            ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        except BaseException:
            await consumer.stop()
            raise
        return cls(consumer, ends)

    async def at_end(self) -> bool:
        for tp, end in self._ends.items():
            if (await self._consumer.committed(tp) or 0) < end:
                return False
        return bool(self._ends)

    async def close(self) -> None:
        await self._consumer.stop()


def steady_rate(samples: list[tuple[float, int]], total: int) -> float:
    """Events/s between the first samples at 10% and at 90% of `total` applied: the
    events counted between those two samples over the time between them. The counter
    moves a whole batch at a time, and each of the two samples comes within one poll
    of a batch finishing: the batches counted between them finished between them."""
    low = next(((at, n) for at, n in samples if n >= 0.1 * total), None)
    high = next(((at, n) for at, n in samples if n >= 0.9 * total), None)
    if low is None or high is None or high[0] <= low[0]:
        return 0.0
    return (high[1] - low[1]) / (high[0] - low[0])


def _milestones(log_path: Path, started_wall: float) -> dict[str, float]:
    """Seconds after start of the first log line of each of MILESTONES."""
    seen: dict[str, float] = {}
    with contextlib.suppress(OSError), log_path.open(encoding="utf-8", errors="replace") as log:
        for line in log:
            if not line.startswith("{"):
                continue
            try:
                record = json.loads(line)
                message, stamp = record["message"], record["time"]
            except (ValueError, KeyError, TypeError):
                continue
            if message in MILESTONES and message not in seen:
                at = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
                seen[message] = at - started_wall
    return seen


def _tail(log_path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
