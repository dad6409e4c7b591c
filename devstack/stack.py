"""`make run`: the whole thing on one machine.

Starts a local Tansu broker and redis-server unless PARLEY_KAFKA_BOOTSTRAP /
PARLEY_REDIS_URL point at real ones, then `python -m ingest` and `python -m engine`,
prints where everything is, and stops it all on Ctrl-C (or SIGTERM).
"""

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from devstack.servers import (
    LOCAL_SESSION_TIMEOUT_S,
    Server,
    start_kafka,
    start_redis,
    wait_for_port,
)
from devstack.settings import dev_settings_from_env
from parley.settings import SettingsError

ROOT = Path(__file__).resolve().parents[1]
DEMO_CHANNELS = ROOT / "deploy" / "local" / "channels.toml"
ENV_FILE = ROOT / ".run" / "parley.env"


def wait_until_consuming(readyz: str, engine: subprocess.Popen[bytes]) -> None:
    """Until the engine owns partitions (joining the group takes a few seconds), so the
    first webhook sent after the banner shows up in the queues at once."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and engine.poll() is None:
        try:
            with urllib.request.urlopen(readyz, timeout=2) as response:  # noqa: S310 (loopback)
                if json.loads(response.read()).get("partitions", 0) > 0:
                    return
        except (OSError, ValueError):
            pass  # not answering yet, or 503 while Kafka or Redis come up
        time.sleep(0.2)


def main() -> int:
    env = dict(os.environ)
    try:
        dev = dev_settings_from_env(env)
    except SettingsError as error:
        print(f"parley stack: {error}", file=sys.stderr)
        return 2
    servers: list[Server] = []
    children: list[subprocess.Popen[bytes]] = []
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        if not env.get("PARLEY_KAFKA_BOOTSTRAP"):
            kafka = start_kafka()
            servers.append(kafka)
            env["PARLEY_KAFKA_BOOTSTRAP"] = f"127.0.0.1:{kafka.port}"
            env.setdefault("PARLEY_KAFKA_SESSION_TIMEOUT_S", str(LOCAL_SESSION_TIMEOUT_S))
        if not env.get("PARLEY_REDIS_URL"):
            redis = start_redis()
            servers.append(redis)
            env["PARLEY_REDIS_URL"] = f"redis://127.0.0.1:{redis.port}/0"
        env.setdefault("PARLEY_CHANNELS_FILE", str(DEMO_CHANNELS))
        # Customers' and agents' files, in a directory beside the run's other state.
        env.setdefault("PARLEY_MEDIA_URL", f"file://{ROOT / '.run' / 'media'}")
        # A fresh bootstrap admin token per run unless one is given; it goes in the env
        # file (which only this user can read), never on the screen.
        env.setdefault("PARLEY_ADMIN_TOKEN", secrets.token_urlsafe(24))
        # For a second terminal: `set -a; . .run/parley.env; set +a` reaches this stack.
        ENV_FILE.parent.mkdir(exist_ok=True)
        host = env.setdefault("PARLEY_HTTP_HOST", "127.0.0.1")
        http_port = int(env.setdefault("PARLEY_HTTP_PORT", "8080"))
        env["PARLEY_API"] = f"http://{host}:{http_port}/v1"
        # Nothing here talks to Meta: replies go to a local Graph API stand-in, which
        # answers like Meta and posts the delivery statuses back to the receiver.
        standin = not env.get("PARLEY_GRAPH_URL")
        if standin:
            graph_port = dev.graph_standin_port
            env["PARLEY_GRAPH_STANDIN_PORT"] = str(graph_port)
            env["PARLEY_GRAPH_URL"] = f"http://127.0.0.1:{graph_port}/v21.0"
            webhook = f"http://{host}:{http_port}/webhooks/whatsapp"
            children.append(
                subprocess.Popen(
                    [sys.executable, "-m", "devstack.graph_standin", "--webhook-url", webhook],
                    cwd=ROOT,
                    env=env,
                )
            )
            wait_for_port(graph_port, children[-1], 30)
        ENV_FILE.touch(mode=0o600)
        ENV_FILE.write_text(
            "".join(
                f"{name}={env[name]}\n"
                for name in (
                    "PARLEY_KAFKA_BOOTSTRAP",
                    "PARLEY_REDIS_URL",
                    "PARLEY_CHANNELS_FILE",
                    "PARLEY_ADMIN_TOKEN",
                    "PARLEY_API",
                    "PARLEY_GRAPH_URL",
                    "PARLEY_MEDIA_URL",
                )
            )
        )
        metrics_port = int(env.setdefault("PARLEY_METRICS_PORT", "9108"))
        ingest, engine = (
            subprocess.Popen([sys.executable, "-m", module], cwd=ROOT, env=env)
            for module in ("ingest", "engine")
        )
        children += [ingest, engine]
        wait_for_port(http_port, ingest, 30)
        wait_for_port(metrics_port, engine, 30)
        wait_until_consuming(f"http://127.0.0.1:{metrics_port}/readyz", engine)
        print(
            f"""
Parley is running.
  webhook   http://{host}:{http_port}/webhooks/whatsapp
  api       {env["PARLEY_API"]}   (bearer: $PARLEY_ADMIN_TOKEN from the settings file below)
  graph     {env["PARLEY_GRAPH_URL"]}{"   (local stand-in: GET /_standin/sent)" if standin else ""}
  ingest    http://{host}:{http_port}/readyz   http://{host}:{http_port}/metrics
  engine    http://{host}:{metrics_port}/readyz   http://{host}:{metrics_port}/metrics
  kafka     {env["PARLEY_KAFKA_BOOTSTRAP"]}   redis {env["PARLEY_REDIS_URL"]}
  channels  {env["PARLEY_CHANNELS_FILE"]}
  media     {env["PARLEY_MEDIA_URL"]}
  settings  {ENV_FILE} (load it in another terminal: set -a; . .run/parley.env; set +a)
Ctrl-C stops everything.
""",
            flush=True,
        )
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.2)
        failed = [child.args for child in children if child.poll() not in (None, 0)]
        return 1 if failed else 0
    finally:
        ENV_FILE.unlink(missing_ok=True)
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=12)
            except subprocess.TimeoutExpired:
                child.kill()
        for server in servers:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
