"""`python -m ingest` as shipped, under `wrk` (a C load generator: 1 thread, 50
connections) posting signed one-message webhooks, against a bare aiohttp handler loaded
the same way in the same run, and one worker against two (PARLEY_HTTP_WORKERS): the
three in turn, ROUNDS times, and the medians of the rounds' ratios.

`python -m tests.bench.ingest_bench --profile` instead samples one worker with py-spy
(`pip install py-spy`) under the same load and prints where a call's time goes
(docs/profiles/receiver.md)."""

import asyncio
import collections
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import aiohttp
import msgspec

from devstack.samples import text_message
from devstack.servers import free_port, wait_for_port
from devstack.signing import sign
from tests.bench.common import report, servers
from tests.conftest import EU

ROOT = Path(__file__).resolve().parents[2]
PATH = "/webhooks/whatsapp"
THREADS = 1
CONNECTIONS = 50
DURATION_S = 8
WARMUP_S = 2
BODIES = 10_000
ROUNDS = 3
# The targets, one worker at 50 connections.
TARGET_RATIO = 0.5
TARGET_P99_MS = 15.0
SAMPLES_PER_S = 250  # py-spy's, when profiling

# Cycles through pre-signed calls (a line each: signature, tab, body), every one a new
# message: the receiver does not deduplicate (the engine does), but distinct calls keep
# the load honest. done() prints the figures as one JSON line for the bench to read.
WRK_SCRIPT = """
local calls = {}
local next_call = 1

function init(args)
  for line in io.lines(args[1]) do
    local signature, body = line:match("^(%S+)\\t(.*)$")
    calls[#calls + 1] = wrk.format("POST", "PATH", {
      ["Content-Type"] = "application/json",
      ["X-Hub-Signature-256"] = signature,
    }, body)
  end
end

function request()
  local call = calls[next_call]
  next_call = next_call % #calls + 1
  return call
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout, latency:percentile(99)))
end
""".replace("PATH", PATH)


class WrkRun(msgspec.Struct, frozen=True):
    requests: int
    duration_us: int
    non_2xx: int
    socket_errors: int
    p99_us: int

    @property
    def rate(self) -> float:
        return self.requests / (self.duration_us / 1e6)

    @property
    def p99_ms(self) -> float:
        return self.p99_us / 1000


def bodies(count: int) -> list[tuple[bytes, str]]:
    now = int(time.time())
    calls = []
    for n in range(count):
        body = json.dumps(
            text_message(
                EU.id, f"1555{n % 5000:07d}", f"wamid.bench.{n}", "Where is my order #4411?", now
            )
        ).encode()
        calls.append((body, sign(body, EU.app_secret)))
    return calls


def write_calls(directory: Path, count: int) -> tuple[Path, Path]:
    """The wrk script and its data file of `count` signed calls."""
    data = directory / "calls.tsv"
    with data.open("wb") as out:
        for body, signature in bodies(count):
            out.write(signature.encode() + b"\t" + body + b"\n")
    script = directory / "webhooks.lua"
    script.write_text(WRK_SCRIPT)
    return script, data


def wrk(port: int, script: Path, data: Path, duration_s: int) -> WrkRun:
    """One wrk run against loopback `port`; its --latency table goes to the void, the
    figures come from the script's done()."""
    wrk_binary = shutil.which("wrk")
    if wrk_binary is None:
        raise SystemExit("the receiver bench needs wrk: make bench-tools (apt-get install wrk)")
    out = subprocess.run(
        [
            wrk_binary,
            f"--threads={THREADS}",
            f"--connections={CONNECTIONS}",
            f"--duration={duration_s}s",
            "--latency",
            f"--script={script}",
            f"http://127.0.0.1:{port}{PATH}",
            "--",
            str(data),
        ],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    line = next(line for line in reversed(out.splitlines()) if line.startswith("{"))
    return msgspec.json.decode(line, type=WrkRun)


def cpu_seconds(pid: int) -> float:
    """CPU time used by `pid` and its children so far (a receiver's workers)."""
    pids = [pid, *map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]
    ticks = 0
    for each in pids:
        fields = Path(f"/proc/{each}/stat").read_text().rpartition(")")[2].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of every core so far."""
    values = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return sum(values) - idle, sum(values)


class Measured(NamedTuple):
    run: WrkRun
    cpu_us: float  # the server's CPU time per call
    machine_busy: float  # share of all cores busy (wrk and the broker included)


def measure(port: int, pid: int, script: Path, data: Path) -> Measured:
    """The wrk run after a warm-up, with what it cost the server and the machine."""
    wrk(port, script, data, WARMUP_S)  # connections, caches, the broker's first batches
    before, (busy, total) = cpu_seconds(pid), machine_ticks()
    run = wrk(port, script, data, DURATION_S)
    after, (busy_after, total_after) = cpu_seconds(pid), machine_ticks()
    return Measured(
        run,
        (after - before) / run.requests * 1e6,
        (busy_after - busy) / (total_after - total),
    )


def listeners(port: int) -> int:
    """Sockets listening on loopback `port`: one per worker (SO_REUSEPORT)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(
        1 for row in rows if row.split()[1] == f"0100007F:{port:04X}" and row.split()[3] == "0A"
    )


@contextmanager
def receiver(
    bootstrap: str, redis_url: str, channels: Path, workers: int, log: Path
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """`python -m ingest` with its shipped configuration but for the addresses and the
    number of workers."""
    port = free_port()
    env = {
        **os.environ,
        "PARLEY_KAFKA_BOOTSTRAP": bootstrap,
        "PARLEY_REDIS_URL": redis_url,
        "PARLEY_HTTP_PORT": str(port),
        "PARLEY_CHANNELS_FILE": str(channels),
        "PARLEY_HTTP_WORKERS": str(workers),
        "PARLEY_MEDIA_URL": f"file://{channels.parent / 'media'}",
    }
    with log.open("ab") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "ingest"], cwd=ROOT, env=env, stderr=stderr
        )
    try:
        wait_for_port(port, process, 30)
        deadline = time.monotonic() + 30
        while listeners(port) < workers:  # every worker, not just the first, before loading
            assert time.monotonic() < deadline and process.poll() is None, log.read_text()
            time.sleep(0.05)
        yield port, process
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=15)
        if code != 0:
            sys.stderr.write(log.read_text()[-4000:])
            raise SystemExit(f"python -m ingest ({workers} workers) exited with {code}")


@contextmanager
def bare_server() -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.bench.bare_server", str(port)], cwd=ROOT
    )
    try:
        wait_for_port(port, process, 30)
        yield port, process
    finally:
        process.terminate()
        process.wait(timeout=15)


def channels_file(directory: Path) -> Path:
    channels = directory / "channels.toml"
    channels.write_text(
        f'[[channels]]\nid = "{EU.id}"\napp_secret = "{EU.app_secret}"\n'
        f'verify_token = "v"\naccess_token = "t"\ndisplay_name = "EU"\n'
    )
    return channels


def produce_quantiles(metrics_url: str) -> str:
    """How long Kafka took to acknowledge, from the receiver's own histogram."""
    with urllib.request.urlopen(metrics_url, timeout=10) as response:
        text = response.read().decode()
    buckets = {
        float(le): float(count)
        for le, count in re.findall(
            r'parley_produce_seconds_bucket\{le="([0-9.e+-]+)"\} ([0-9.e+]+)', text
        )
    }
    total = max(buckets.values())
    return "  ".join(
        f"<= {le * 1000:g} ms: {buckets[le] / total:.1%}" for le in (0.005, 0.01, 0.025)
    )


# The media bench's load (a Python client): it measures media calls, not the receiver's
# ceiling, which wrk does.
async def load(url: str, calls: list[tuple[bytes, str]]) -> tuple[float, list[float], int]:
    """Requests/s, latencies and non-200 answers over 8 s after a 1 s warm-up, at 50
    connections."""
    latencies: list[float] = []
    failures = 0
    counter = 0
    duration_s, warmup_s = 8.0, 1.0
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        measure_from = start + warmup_s
        stop_at = measure_from + duration_s

        async def worker() -> None:
            nonlocal counter, failures
            while (now := time.perf_counter()) < stop_at:
                body, signature = calls[counter % len(calls)]
                counter += 1
                headers = {"X-Hub-Signature-256": signature, "Content-Type": "application/json"}
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    done = time.perf_counter()
                    if done >= measure_from:
                        latencies.append(done - now)
                        failures += response.status != 200

        await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
    return len(latencies) / duration_s, latencies, failures


def figure(measured: Measured) -> str:
    run = measured.run
    errors = run.non_2xx + run.socket_errors
    return (
        f"{run.rate:6,.0f} calls/s  p99 {run.p99_ms:5.1f} ms  "
        f"CPU {measured.cpu_us:3.0f} us/call  machine {measured.machine_busy:4.0%} busy"
    ) + (f"  failed: {run.non_2xx} non-2xx, {run.socket_errors} socket errors" if errors else "")


def against(value: float, target: float, text: str, *, at_most: bool = False) -> str:
    met = value <= target if at_most else value >= target
    return text if met else f"{text}  missed"


async def main() -> None:
    with (
        servers() as (bootstrap, redis_url, _),
        tempfile.TemporaryDirectory() as tmp,
    ):
        directory = Path(tmp)
        script, data = write_calls(directory, BODIES)
        channels = channels_file(directory)
        log = directory / "ingest.log"
        with (
            bare_server() as bare_handler,
            receiver(bootstrap, redis_url, channels, 1, log) as one_worker,
            receiver(bootstrap, redis_url, channels, 2, log) as two_workers,
        ):
            # In turn, round after round: the machine's speed drifts by a third within
            # minutes here, and a ratio of runs minutes apart measured that drift.
            rounds = []
            for _ in range(ROUNDS):
                bare, one, two = (
                    measure(port, process.pid, script, data)
                    for port, process in (bare_handler, one_worker, two_workers)
                )
                rounds.append(Round(bare, one, two))
            produce = produce_quantiles(f"http://127.0.0.1:{one_worker[0]}/metrics")
    ratio = statistics.median(r.one.run.rate / r.bare.run.rate for r in rounds)
    p99_ms = statistics.median(r.one.run.p99_ms for r in rounds)
    scaling = statistics.median(r.two.run.rate / r.one.run.rate for r in rounds)
    rows = []
    for number, r in enumerate(rounds, 1):
        rows += [
            (f"round {number}: bare aiohttp (read body, 200)", figure(r.bare)),
            (f"round {number}: python -m ingest, 1 worker", figure(r.one)),
            (f"round {number}: python -m ingest, 2 workers", figure(r.two)),
        ]
    report(
        f"receiver under wrk: signed one-message webhooks, {THREADS} thread, "
        f"{CONNECTIONS} connections, {DURATION_S} s each, {os.cpu_count()} cores, "
        f"{ROUNDS} rounds in turn (medians below)",
        [
            *rows,
            (
                "ratio to bare, 1 worker",
                against(ratio, TARGET_RATIO, f"{ratio:.2f}  (target >= {TARGET_RATIO})"),
            ),
            (
                "p99, 1 worker",
                against(
                    p99_ms,
                    TARGET_P99_MS,
                    f"{p99_ms:.1f} ms  (target <= {TARGET_P99_MS:g} ms)",
                    at_most=True,
                ),
            ),
            ("Kafka acknowledgement, share of calls", produce),
            ("scaling, 1 -> 2 workers", f"{scaling:.2f}x"),
        ],
    )
    for r in rounds:
        for measured in r:
            assert measured.run.non_2xx == 0 and measured.run.socket_errors == 0, measured


class Round(NamedTuple):
    """One round: the bare handler, one worker and two, measured in turn."""

    bare: Measured
    one: Measured
    two: Measured


# Where a call's time goes: the innermost frame that matches, by file, decides; the
# first match in this order wins for a frame.
PROFILE_PARTS = [
    ("signature check (HMAC-SHA256)", ("ingest/signature.py", "hmac.py")),
    ("JSON decode", ("ingest/meta_payload.py",)),
    ("normalise and route", ("ingest/normalize.py", "ingest/routing.py", "parley/events.py")),
    ("logging", ("logging/", "pythonjsonlogger")),
    ("metrics", ("prometheus_client",)),
    ("producing to Kafka", ("parley/producer.py", "aiokafka")),
    ("the handler's own lines", ("ingest/handlers.py",)),
    ("aiohttp (HTTP, request, response)", ("aiohttp",)),
]


def classify(stack: str) -> str:
    frames = stack.split(";")
    for frame in reversed(frames):
        for part, markers in PROFILE_PARTS:
            if any(marker in frame for marker in markers):
                return part
    return "event loop and the rest"


def profile() -> None:
    """One worker sampled by py-spy for DURATION_S under wrk; shares by part."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        raise SystemExit("profiling needs py-spy: pip install py-spy")
    with (
        servers() as (bootstrap, redis_url, _),
        tempfile.TemporaryDirectory() as tmp,
    ):
        directory = Path(tmp)
        script, data = write_calls(directory, BODIES)
        channels = channels_file(directory)
        raw = directory / "profile.txt"
        with receiver(bootstrap, redis_url, channels, 1, directory / "ingest.log") as (
            port,
            process,
        ):
            wrk(port, script, data, WARMUP_S)
            sampler = subprocess.Popen(
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(process.pid),
                    "--duration",
                    str(DURATION_S),
                    "--rate",
                    str(SAMPLES_PER_S),
                    "--format",
                    "raw",
                    "--nonblocking",
                    "--output",
                    str(raw),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            run = wrk(port, script, data, DURATION_S)
            sampler.wait(timeout=60)
        shares: collections.Counter[str] = collections.Counter()
        for line in raw.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            shares[classify(stack)] += int(count)
    total = sum(shares.values())
    busy_us_per_call = total / SAMPLES_PER_S * 1e6 / run.requests
    rows = [("load (while sampled)", f"{run.rate:,.0f} calls/s")]
    rows += [("CPU per call (busy samples)", f"{busy_us_per_call:.0f} us")]
    rows += [
        (part, f"{count / total:6.1%}  {busy_us_per_call * count / total:5.0f} us")
        for part, count in shares.most_common()
    ]
    report("receiver profile: one worker under wrk, py-spy samples by part", rows)


if __name__ == "__main__":
    if "--profile" in sys.argv[1:]:
        profile()
    else:
        asyncio.run(main())
