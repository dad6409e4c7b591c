"""The Prometheus configuration, the alert rules and what a real Prometheus scrapes.

promtool checks the scrape config and the rules and runs the rules' unit tests; it lints
both /metrics bodies after real traffic; and a real Prometheus server scrapes the
receiver and the engine running in-process and answers queries with the expected values.
"""

import json
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from devstack.samples import text_message
from devstack.servers import free_port
from devstack.signing import sign
from engine.app import create_app as create_engine
from ingest.app import create_app as create_receiver
from parley.channels import Channel
from parley.settings import Settings
from parley.standing import Standing
from store import standing
from tests.conftest import EU, US
from tests.http_tools import post_message
from tests.kafka_tools import eventually

PROMETHEUS_DIR = Path(__file__).resolve().parent.parent / "deploy" / "prometheus"
CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULES = PROMETHEUS_DIR / "rules" / "parley.rules.yml"
RULE_TESTS = PROMETHEUS_DIR / "rules" / "parley.rules.test.yml"
PROMTOOL = "/usr/bin/promtool"
PROMETHEUS = "/usr/bin/prometheus"
WAIT_S = 30.0

# Recent, so the sweeper (30-day periods) leaves these conversations alone.
T0 = int(time.time()) - 3600

Client = TestClient[web.Request, web.Application]


def promtool(*args: str, cwd: Path = PROMETHEUS_DIR, stdin: bytes | None = None) -> str:
    """Run promtool, assert it exited 0 and return what it printed."""
    done = subprocess.run(
        [PROMTOOL, *args], cwd=cwd, input=stdin, capture_output=True, timeout=WAIT_S, check=False
    )
    output = (done.stdout + done.stderr).decode()
    assert done.returncode == 0, f"promtool {' '.join(args)} exited {done.returncode}:\n{output}"
    return output


# --- the files on their own ---------------------------------------------------------


def test_the_scrape_config_is_valid() -> None:
    output = promtool("check", "config", CONFIG.name)
    assert "SUCCESS: 1 rule files found" in output, output


def test_the_scrape_config_scrapes_both_processes() -> None:
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    assert config["global"]["scrape_interval"] == "15s"
    assert config["rule_files"] == ["rules/*.rules.yml"]
    targets = {
        job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
        for job in config["scrape_configs"]
    }
    assert targets == {"parley-ingest": ["127.0.0.1:8080"], "parley-engine": ["127.0.0.1:9108"]}


def test_the_rules_are_valid() -> None:
    output = promtool("check", "rules", RULES.name, cwd=RULES.parent)
    assert "SUCCESS: 12 rules found" in output, output


def test_the_rules_unit_tests_pass() -> None:
    output = promtool("test", "rules", RULE_TESTS.name, cwd=RULES.parent)
    assert "SUCCESS" in output, output


def test_every_alert_has_its_annotations_and_a_firing_and_a_quiet_test() -> None:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    alerts = {rule["alert"]: rule for group in groups for rule in group["rules"]}
    assert set(alerts) == {
        "ParleyWebhook5xxRatio",
        "ParleySignatureFailureSpike",
        "ParleyProduceLatencyHigh",
        "ParleyConsumerLagGrowing",
        "ParleySweeperNotRunning",
        "ParleyNewQueueGrowingWithoutReplies",
        "ParleyOutboundFailures",
        "ParleyMediaFetchesFailing",
        "ParleySlaBreaches",
        "ParleyRoutingBacklog",
        "ParleyNumberNameDeclined",
        "ParleyNumberQualityRed",
    }
    for name, rule in alerts.items():
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), name
        assert len(rule["annotations"]["runbook"]) > 200, name
        assert rule["labels"]["severity"] in {"warning", "critical"}, name

    cases = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))["tests"]
    checks = [check for case in cases for check in case["alert_rule_test"]]
    for name in alerts:
        mine = [check["exp_alerts"] for check in checks if check["alertname"] == name]
        assert [] in mine, f"{name}: no case where it stays quiet"
        firing = [alert for exp in mine for alert in exp]
        assert firing, f"{name}: no case where it fires"
        assert all("summary" in alert["exp_annotations"] for alert in firing), name


# --- the services, in-process, against the session's real Kafka and Redis -----------


@pytest.fixture
async def engine(
    aiohttp_client: Callable[..., Awaitable[Client]],
    settings: Settings,
    channels: list[Channel],
    redis: Redis,  # first: it empties the database, then the engine seeds it
) -> Client:
    return await aiohttp_client(create_engine(settings, channels))


@pytest.fixture
async def receiver(
    aiohttp_client: Callable[..., Awaitable[Client]],
    settings: Settings,
    channels: list[Channel],
    engine: Client,
) -> Client:
    return await aiohttp_client(create_receiver(settings, channels))


async def post_forged(receiver: Client) -> None:
    body = json.dumps(text_message(EU.id, "16315559999", "wamid.FORGED", "hi", T0)).encode()
    response = await receiver.post(
        "/webhooks/whatsapp", data=body, headers={"X-Hub-Signature-256": sign(body, "wrong")}
    )
    assert response.status == 401, await response.text()


async def scrape(client: Client) -> str:
    response = await client.get("/metrics")
    assert response.status == 200
    return await response.text()


def sample_sum(body: str, sample: str, **labels: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
        if s.name == sample and labels.items() <= s.labels.items()
    )


def applied(engine: Client, count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        body = await scrape(engine)
        return sample_sum(body, "parley_events_applied_total", outcome="applied") >= count

    return check


async def test_both_metrics_bodies_pass_promtool_check_metrics(
    receiver: Client, engine: Client, redis: Redis
) -> None:
    # A number whose display name Meta declined: the engine exports it for the alert.
    declined = Standing(display_phone_number="+1 555-012-3456", name_status="DECLINED")
    await standing.change(redis, EU.id, lambda _: declined)
    await post_message(receiver, EU, "16315550101", "wamid.PROM.1", T0)
    await post_forged(receiver)
    await eventually(applied(engine, 1), timeout_s=WAIT_S)

    for name, client in (("receiver", receiver), ("engine", engine)):
        body = await scrape(client)
        assert "parley_" in body, f"{name}: {body}"
        output = promtool("check", "metrics", stdin=body.encode())
        assert output.strip() == "", f"promtool check metrics on the {name}'s body:\n{output}"

    ingest_body = await scrape(receiver)
    assert sample_sum(ingest_body, "parley_webhook_requests_total", method="POST") == 2
    assert sample_sum(ingest_body, "parley_webhook_signature_failures_total") == 1
    engine_body = await scrape(engine)
    assert sample_sum(engine_body, "parley_queue_conversations", channel=EU.id, queue="new") == 1
    problem = {
        name: sample_sum(engine_body, "parley_number_problem", channel=EU.id, problem=name)
        for name in ("name_declined", "quality_red")
    }
    assert problem == {"name_declined": 1, "quality_red": 0}


# --- a real Prometheus server scraping both -------------------------------------------


@pytest.fixture
def prometheus(receiver: Client, engine: Client, tmp_path: Path) -> Iterator[str]:
    """A Prometheus server scraping the in-process receiver and engine every second."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                "job_name": job,
                "static_configs": [{"targets": [f"{client.server.host}:{client.server.port}"]}],
            }
            for job, client in (("parley-ingest", receiver), ("parley-engine", engine))
        ],
    }
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
async def prometheus_api(
    prometheus: str,
) -> AsyncIterator[Callable[[str, dict[str, str]], Awaitable[Any]]]:
    """`api(path, params)`: the data of an HTTP API answer, once the server is ready."""
    async with aiohttp.ClientSession(base_url=prometheus) as session:

        async def ready() -> bool:
            try:
                async with session.get("/-/ready") as response:
                    return response.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(ready, timeout_s=WAIT_S)

        async def api(path: str, params: dict[str, str]) -> Any:
            async with session.get(f"/api/v1/{path}", params=params) as response:
                answer = await response.json()
                assert answer["status"] == "success", answer
                return answer["data"]

        yield api


def equals(
    query: Callable[[str], Awaitable[Any]], promql: str, expected: float
) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        result = await query(promql)
        return len(result) == 1 and float(result[0]["value"][1]) == expected

    return check


async def test_a_real_prometheus_scrapes_both_processes(
    receiver: Client,
    engine: Client,
    prometheus_api: Callable[[str, dict[str, str]], Awaitable[Any]],
) -> None:
    async def query(promql: str) -> Any:
        return (await prometheus_api("query", {"query": promql}))["result"]

    for i in range(3):
        await post_message(receiver, EU, f"1631555020{i}", f"wamid.PROM.EU.{i}", T0)
    await post_message(receiver, US, "16315550210", "wamid.PROM.US.0", T0)
    await post_forged(receiver)
    await eventually(applied(engine, 4), timeout_s=WAIT_S)

    checks = {
        "sum(parley_webhook_requests_total)": 5,
        'sum(parley_webhook_requests_total{method="POST",outcome="ok"})': 4,
        "sum(parley_webhook_signature_failures_total)": 1,
        f'parley_queue_conversations{{queue="new",channel="{EU.id}"}}': 3,
        f'parley_queue_conversations{{queue="new",channel="{US.id}"}}': 1,
        'sum(up{job=~"parley-ingest|parley-engine"})': 2,
    }
    for promql, expected in checks.items():
        await eventually(equals(query, promql, expected), timeout_s=WAIT_S)

    # The rules load and evaluate against the real series without error, and with both
    # services healthy none stays pending (ParleySweeperNotRunning's absent() is pending
    # at the first evaluation when it comes before the first scrape of the engine).
    async def rules_quiet() -> Any:
        groups = (await prometheus_api("rules", {"type": "alert"}))["groups"]
        rules = {rule["name"]: rule for group in groups for rule in group["rules"]}
        states = {name: (rule["health"], rule["state"]) for name, rule in rules.items()}
        return states if set(states.values()) == {("ok", "inactive")} else None

    states = await eventually(rules_quiet, timeout_s=WAIT_S)
    assert len(states) == 12, states
