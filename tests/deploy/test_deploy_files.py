"""The files in deploy/: rendered by the real tools where installed, and checked for structure.

`docker-compose config` (or `docker compose config`) and `kubectl kustomize` render the files
without a Docker daemon or a cluster. When a tool is missing the test is skipped locally and fails
under CI, so CI cannot pass without checking them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"

ONE_SHOT = {"search-attributes", "memory-migrate"}
# The collector image is built FROM scratch: nothing inside it can run a health check.
NO_CONTAINER_HEALTHCHECK = {"otel-collector"}
WORKER_ENV = {
    "TEMPORAL_ADDRESS",
    "TEMPORAL_NAMESPACE",
    "CAIRN_TASK_QUEUE",
    "CAIRN_MEMORY_URL",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "CAIRN_HEALTH_PORT",
    "CAIRN_ENCRYPTION_KEYS",
}
SEARCH_ATTRIBUTES = ("CairnTenant", "CairnSession", "CairnTeam", "CairnAgent")
NAMESPACE_FLAG = '--namespace "$$TEMPORAL_NAMESPACE"'  # `$$` is compose's escaped `$`
PINNED = re.compile(r"^[\w./-]+:(?:\$\{[A-Z0-9_]+:-(?P<default>[^}]+)\}|(?P<tag>[^$]+))$")


def require(command: list[str] | None, what: str) -> list[str]:
    if command is not None:
        return command
    message = f"{what} is not installed"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; .ci/run must install it")
    pytest.skip(message)


def compose_command() -> list[str] | None:
    if path := shutil.which("docker-compose"):
        return [path]
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    return None


def kustomize_command() -> list[str] | None:
    if path := shutil.which("kubectl"):
        return [path, "kustomize"]
    if path := shutil.which("kustomize"):
        return [path, "build"]
    return None


def run(command: list[str], env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stderr}"
    return result.stdout


def render_compose(tmp_path: Path, **overrides: str) -> dict[str, Any]:
    command = require(compose_command(), "docker-compose (Debian package docker-compose)")
    empty_env_file = tmp_path / "empty.env"  # so a developer's deploy/.env cannot leak in
    empty_env_file.write_text("")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **overrides}
    args = ["-f", str(COMPOSE_FILE), "--env-file", str(empty_env_file), "config"]
    output = run([*command, *args], env=env)
    assert "${" not in output, "a variable was left uninterpolated"
    rendered: dict[str, Any] = yaml.safe_load(output)
    return rendered


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    source: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return source


# --- docker-compose.yml --------------------------------------------------------------------


def test_compose_renders_with_development_defaults(tmp_path: Path) -> None:
    services = render_compose(tmp_path)["services"]

    assert {
        "postgresql",
        "temporal",
        "temporal-ui",
        "search-attributes",
        "memory-migrate",
        "cairn-worker",
        "otel-collector",
        "jaeger",
    } <= set(services)
    worker = services["cairn-worker"]
    assert int(worker["deploy"]["replicas"]) == 2
    assert worker["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert worker["environment"]["CAIRN_MEMORY_URL"].startswith("postgresql+psycopg://")
    assert worker["environment"]["CAIRN_MEMORY_URL"].endswith("@postgresql:5432/cairn")
    assert services["temporal"]["image"] == "temporalio/auto-setup:1.29.1"


def test_compose_takes_versions_ports_and_secrets_from_the_environment(tmp_path: Path) -> None:
    services = render_compose(
        tmp_path,
        POSTGRES_PASSWORD="from-the-env",
        CAIRN_WORKER_REPLICAS="5",
        TEMPORAL_VERSION="1.29.2",
        TEMPORAL_UI_PORT="18080",
        CAIRN_ENCRYPTION_KEYS="k1:AAAA",
    )["services"]

    worker = services["cairn-worker"]
    assert int(worker["deploy"]["replicas"]) == 5
    assert ":from-the-env@postgresql:" in worker["environment"]["CAIRN_MEMORY_URL"]
    assert worker["environment"]["CAIRN_ENCRYPTION_KEYS"] == "k1:AAAA"
    assert services["postgresql"]["environment"]["POSTGRES_PASSWORD"] == "from-the-env"
    assert services["temporal"]["environment"]["POSTGRES_PWD"] == "from-the-env"
    assert services["temporal"]["image"] == "temporalio/auto-setup:1.29.2"
    assert "18080" in str(services["temporal-ui"]["ports"])


def test_third_party_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if "build" in service:
            continue
        match = PINNED.match(service["image"])
        assert match, f"{name}: image {service['image']!r} has no tag"
        version = match["default"] or match["tag"]
        assert re.match(r"\d+\.\d+", version), f"{name}: {version!r} is not a pinned version"


def test_every_long_running_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ONE_SHOT:
        assert services[name]["restart"] == "no", f"{name} must run once"
    missing = {
        name
        for name, service in services.items()
        if name not in ONE_SHOT and "healthcheck" not in service
    }
    assert missing == NO_CONTAINER_HEALTHCHECK


def test_one_shot_services_run_before_the_workers(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["memory-migrate"]["command"] == ["cairn", "memory", "migrate"]
    search = services["search-attributes"]
    assert search["image"].startswith("temporalio/admin-tools:")
    script = " ".join(search["command"])
    for name in SEARCH_ATTRIBUTES:
        assert f"search-attribute create {NAMESPACE_FLAG} --name {name} --type Keyword" in script

    depends = services["cairn-worker"]["depends_on"]
    for name in ONE_SHOT:
        assert depends[name]["condition"] == "service_completed_successfully"
    assert depends["temporal"]["condition"] == "service_healthy"
    assert services["temporal"]["depends_on"]["postgresql"]["condition"] == "service_healthy"


def test_workers_are_configured_by_environment_and_can_scale(compose: dict[str, Any]) -> None:
    worker = compose["services"]["cairn-worker"]
    assert set(worker["environment"]) >= WORKER_ENV
    assert worker["build"]["dockerfile"] == "deploy/Dockerfile"
    assert "replicas" in worker["deploy"]
    # A fixed name or host port would make a second replica fail to start.
    assert "container_name" not in worker
    assert "ports" not in worker
    seconds = int(worker["stop_grace_period"].removesuffix("s"))
    assert seconds > 30, "workers need longer than their 30 s drain"


def test_compose_holds_no_secret_values(compose: dict[str, Any]) -> None:
    secretish = re.compile(r"PASSWORD|PWD|TOKEN|SECRET|KEYS?$|API_KEY")
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if secretish.search(key):
                assert re.fullmatch(r"\$\{[A-Z_]+:-[^}]*\}", str(value)), f"{name}.{key}"
    text = COMPOSE_FILE.read_text()
    assert "${POSTGRES_PASSWORD:-" in text
    assert re.search(r"postgresql\+psycopg://\$\{POSTGRES_USER:-\w+\}:\$\{POSTGRES_PASSWORD", text)


def test_collector_config_is_complete_and_exports_to_jaeger(compose: dict[str, Any]) -> None:
    collector = compose["services"]["otel-collector"]
    mount = next(v for v in collector["volumes"] if "otel-collector.yaml" in v)
    source = DEPLOY / mount.split(":")[0]
    config = yaml.safe_load(source.read_text())

    service = config["service"]
    for pipeline in service["pipelines"].values():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in config[kind], f"{component} is used but not defined"
    for extension in service["extensions"]:
        assert extension in config["extensions"]
    for protocol in config["receivers"]["otlp"]["protocols"].values():
        assert protocol["endpoint"].startswith("0.0.0.0:")
    [traces_exporter] = service["pipelines"]["traces"]["exporters"]
    host = config["exporters"][traces_exporter]["endpoint"].split(":")[0]
    assert host in compose["services"]
    assert compose["services"]["cairn-worker"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == (
        "http://otel-collector:4317"
    )


# --- Dockerfile ----------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_dockerfile_builds_a_pinned_non_root_worker_image() -> None:
    instructions = dockerfile_instructions()
    values = {name: value for name, value in instructions}  # the last of each wins, as in Docker

    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", values["FROM"])
    assert values["USER"].split(":")[0] not in {"0", "root"}
    assert values["CMD"] == '["python", "worker.py"]'
    assert any(
        name == "RUN" and "pip install --no-cache-dir ." in value for name, value in instructions
    )
    healthcheck = values["HEALTHCHECK"]
    assert "/healthz" in healthcheck
    assert "CAIRN_HEALTH_PORT" in healthcheck and "'8080'" in healthcheck


def test_dockerfile_copies_every_package_the_project_installs() -> None:
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    copies = " ".join(value for name, value in dockerfile_instructions() if name == "COPY")
    packages = {p.split(".")[0] for p in setuptools["packages"]["find"]["include"]}
    assert packages == {"memory", "activities", "workflows", "cairn"}
    for package in packages:
        assert f"{package}/" in copies, f"deploy/Dockerfile does not copy {package}/"
    for module in setuptools["py-modules"]:
        assert f"{module}.py" in copies, f"deploy/Dockerfile does not copy {module}.py"


# --- Kubernetes ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def k8s() -> dict[str, dict[str, Any]]:
    command = require(kustomize_command(), "kubectl (Debian package kubernetes-client)")
    documents = [d for d in yaml.safe_load_all(run([*command, str(DEPLOY / "k8s")])) if d]
    by_kind = {}
    for document in documents:
        assert document["kind"] not in by_kind, f"two {document['kind']} objects"
        by_kind[document["kind"]] = document
    return by_kind


def test_kustomize_base_has_workers_autoscaling_settings_and_migration(
    k8s: dict[str, dict[str, Any]],
) -> None:
    assert set(k8s) == {"ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Job"}
    assert "Secret" not in k8s  # referenced, never stored
    settings = k8s["ConfigMap"]["data"]
    assert WORKER_ENV - {"CAIRN_MEMORY_URL", "CAIRN_ENCRYPTION_KEYS"} <= set(settings)

    hpa = k8s["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"]["kind"] == "Deployment"
    assert hpa["scaleTargetRef"]["name"] == k8s["Deployment"]["metadata"]["name"]
    assert 1 <= hpa["minReplicas"] < hpa["maxReplicas"]


def test_worker_deployment_drains_probes_and_runs_locked_down(
    k8s: dict[str, dict[str, Any]],
) -> None:
    pod = k8s["Deployment"]["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 60
    assert pod["securityContext"]["runAsNonRoot"] is True
    [worker] = pod["containers"]
    assert worker["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert worker["readinessProbe"]["httpGet"]["path"] == "/readyz"
    ports = {port["name"]: port["containerPort"] for port in worker["ports"]}
    for probe in ("livenessProbe", "readinessProbe"):
        assert ports[worker[probe]["httpGet"]["port"]] == 8080
    assert worker["securityContext"]["readOnlyRootFilesystem"] is True
    assert worker["securityContext"]["allowPrivilegeEscalation"] is False
    assert {"cpu", "memory"} <= set(worker["resources"]["requests"])
    assert "command" not in worker  # the image's `python worker.py`

    assert worker["envFrom"][0]["configMapRef"]["name"] == k8s["ConfigMap"]["metadata"]["name"]
    secrets = {
        entry["name"]: entry["valueFrom"]["secretKeyRef"]
        for entry in worker["env"]
        if "secretKeyRef" in entry.get("valueFrom", {})
    }
    assert secrets["CAIRN_MEMORY_URL"]["name"] == "cairn-secrets"
    assert secrets["CAIRN_ENCRYPTION_KEYS"]["optional"] is True
    assert all("value" not in entry for entry in worker["env"])


def test_migration_job_uses_the_worker_image(k8s: dict[str, dict[str, Any]]) -> None:
    [migrate] = k8s["Job"]["spec"]["template"]["spec"]["containers"]
    [worker] = k8s["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert migrate["command"] == ["cairn", "memory", "migrate"]
    assert migrate["image"] == worker["image"]
    assert re.search(r":\d+\.\d+\.\d+$", worker["image"])
    assert k8s["Job"]["spec"]["template"]["spec"]["restartPolicy"] == "Never"


# --- README --------------------------------------------------------------------------------


def test_readme_documents_settings_and_where_the_server_comes_from(
    compose: dict[str, Any],
) -> None:
    readme = (DEPLOY / "README.md").read_text()
    documented = set(compose["services"]["cairn-worker"]["environment"]) | {
        "TEMPORAL_API_KEY",
        "TEMPORAL_TLS_CLIENT_CERT_PATH",
        "TEMPORAL_TLS_CLIENT_KEY_PATH",
        "CAIRN_CODEC_TOKEN",
    }
    for variable in documented:
        assert f"`{variable}`" in readme, f"deploy/README.md does not document {variable}"
    assert "https://github.com/temporalio/helm-charts" in readme
    assert "helm-charts" in (DEPLOY / "k8s" / "kustomization.yaml").read_text()
