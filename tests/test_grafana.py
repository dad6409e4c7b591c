"""The provisioned Grafana dashboard and its provisioning files (no network, no servers).

Every metric a panel queries must be one the services expose, and every metric the
services declare must be on the dashboard unless listed in NOT_ON_DASHBOARD with a reason.
"""

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from metrics import EngineMetrics, IngestMetrics

GRAFANA = Path(__file__).resolve().parent.parent / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "parley.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "parley.yml"

# Metric families declared in metrics/definitions.py that no panel shows, and why.
NOT_ON_DASHBOARD = {
    "parley_apply_batch_events": (
        "batch size is a throughput-tuning figure for `make bench`, not an operational "
        "signal; apply latency and consumer lag show a struggling engine"
    ),
}

METRIC_NAME = re.compile(r"\bparley_[A-Za-z0-9_:]*")

# The sample names prometheus_client exposes for each family type, by suffix. A counter's
# family name has `_total` stripped; `_created` is exposed for counters and histograms.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}

REQUIRED_KEYS = {"title", "uid", "time", "refresh", "templating", "panels", "schemaVersion"}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = dashboard["panels"]
    assert isinstance(found, list)
    assert found
    return found


def exposed_families() -> dict[str, set[str]]:
    """Every family the services declare: its name, and the sample names it exposes."""
    registry = CollectorRegistry()
    IngestMetrics(registry)
    EngineMetrics(registry)
    families: dict[str, set[str]] = {}
    for family in registry.collect():
        key = f"{family.name}_total" if family.type == "counter" else family.name
        families[key] = {family.name + suffix for suffix in SUFFIXES[family.type]}
    return families


def metric_names(expr: str) -> set[str]:
    return set(METRIC_NAME.findall(expr))


def panel_metrics(panel: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for target in panel["targets"]:
        names |= metric_names(target["expr"])
    return names


def test_the_dashboard_has_the_required_top_level_keys(dashboard: dict[str, Any]) -> None:
    assert dashboard.keys() >= REQUIRED_KEYS
    assert dashboard["uid"] == "parley-overview"
    assert dashboard["title"]
    assert dashboard["schemaVersion"] == 39
    assert {"from", "to"} <= dashboard["time"].keys()
    assert dashboard["refresh"]


def test_the_dashboard_has_a_datasource_and_a_channel_variable(
    dashboard: dict[str, Any],
) -> None:
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    datasource = variables["datasource"]
    assert datasource["type"] == "datasource"
    assert datasource["query"] == "prometheus"
    channel = variables["channel"]
    assert channel["type"] == "query"
    assert channel["datasource"]["uid"] == "${datasource}"
    query = channel["query"]
    query = query["query"] if isinstance(query, dict) else query
    assert query == "label_values(parley_queue_conversations, channel)"
    assert channel["multi"]
    assert channel["includeAll"]


def test_panel_ids_are_unique(panels: list[dict[str, Any]]) -> None:
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))


def test_every_panel_has_a_title_a_type_a_grid_position_and_a_query(
    panels: list[dict[str, Any]],
) -> None:
    for panel in panels:
        assert panel.get("title"), panel
        name = panel["title"]
        assert panel["type"] in {"timeseries", "stat"}, name
        assert {"h", "w", "x", "y"} <= panel["gridPos"].keys(), name
        assert panel["datasource"]["uid"] == "${datasource}", name
        assert panel["targets"], name
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), name
        for target in panel["targets"]:
            assert target["expr"].strip(), name
            assert target["refId"], name
            assert target.get("datasource", panel["datasource"])["uid"] == "${datasource}", name


def test_panels_fit_the_grid_without_overlapping(panels: list[dict[str, Any]]) -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["w"] > 0
        assert grid["h"] > 0
        assert grid["x"] >= 0
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[x, y]}"
                taken[x, y] = panel["title"]


def test_panels_filtered_by_channel_use_the_channel_variable(
    panels: list[dict[str, Any]],
) -> None:
    channel_labelled = {
        "parley_queue_conversations",
        "parley_auto_resolved_total",
        "parley_assignments_total",
        "parley_resolutions_total",
    }
    for panel in panels:
        for target in panel["targets"]:
            if metric_names(target["expr"]) & channel_labelled:
                assert 'channel=~"$channel"' in target["expr"], panel["title"]


def test_every_metric_a_panel_queries_is_exposed(panels: list[dict[str, Any]]) -> None:
    exposed = set().union(*exposed_families().values())
    for panel in panels:
        unknown = panel_metrics(panel) - exposed
        assert not unknown, f"{panel['title']} queries {sorted(unknown)}"


def test_every_declared_metric_is_on_the_dashboard_or_excused(
    panels: list[dict[str, Any]],
) -> None:
    families = exposed_families()
    assert NOT_ON_DASHBOARD.keys() <= families.keys(), "excused metric no longer declared"
    used = set().union(*(panel_metrics(panel) for panel in panels))
    missing = sorted(
        name
        for name, samples in families.items()
        if not samples & used and name not in NOT_ON_DASHBOARD
    )
    assert not missing, f"declared but on no panel: {missing}"
    shown_anyway = sorted(name for name in NOT_ON_DASHBOARD if families[name] & used)
    assert not shown_anyway, f"excused but on a panel: {shown_anyway}"


def test_the_datasource_provisioning_points_at_prometheus() -> None:
    provisioned = yaml.safe_load(DATASOURCES.read_text(encoding="utf-8"))
    assert provisioned["apiVersion"] == 1
    [datasource] = provisioned["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["uid"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"


def test_the_dashboard_provider_loads_the_dashboards_directory() -> None:
    provisioned = yaml.safe_load(PROVIDERS.read_text(encoding="utf-8"))
    assert provisioned["apiVersion"] == 1
    [provider] = provisioned["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
