"""docker-compose.yml, offline: the compose specification's schema, then what the schema cannot say.

No Docker engine runs here, so nothing is started: the file is validated against the compose-spec
JSON schema vendored in check-jsonschema (pinned in pyproject.toml, so the schema is pinned), and
each rule below checks one property an operator would otherwise find at `docker compose up`.
"""

import json
import re
import tomllib
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
PROMETHEUS = ROOT / "compose" / "prometheus.yml"
DATASOURCES = ROOT / "monitoring" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
PACKAGES = sorted(p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml"))
HTTP_PORTS = {"gateway": 8000, "auth": 8001}  # every other service is a worker on its metrics port
METRICS_PORT = 9100
SECRET_NAME = re.compile(r"PASSWORD|SECRET|_KEY$|_KEY_ID$|CLUSTER_ID")
INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}")


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _services() -> dict[str, dict[str, Any]]:
    return _compose()["services"]


def _one_shot(service: dict[str, Any]) -> bool:
    return service.get("restart") == "no"


def _lockflow_services() -> dict[str, dict[str, Any]]:
    return {
        name: s
        for name, s in _services().items()
        if str(s.get("image", "")).startswith("lockflow/") and not _one_shot(s)
    }


def test_the_compose_file_validates_against_the_compose_specification() -> None:
    schema = json.loads(
        files("check_jsonschema").joinpath("builtin_schemas/vendor/compose-spec.json").read_text()
    )
    validator = jsonschema.validators.validator_for(schema)(schema)
    found = validator.iter_errors(_compose())
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in found]
    assert not errors, "\n".join(errors)


def test_every_depends_on_names_a_service_and_a_condition_it_can_meet() -> None:
    services = _services()
    for name, service in services.items():
        for target, rule in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on {target}, which is not a service"
            condition = rule["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target}'s health, it has none"
            elif condition == "service_completed_successfully":
                assert _one_shot(services[target]), f"{name} waits for {target} to finish; it never does"


def test_every_long_running_service_has_a_healthcheck_and_one_shots_do_not_restart() -> None:
    for name, service in _services().items():
        if _one_shot(service):
            continue
        check = service.get("healthcheck")
        assert check and not check.get("disable") and check.get("test"), f"{name} has no healthcheck"
        assert service.get("restart") == "unless-stopped", f"{name} is not restarted"


def test_host_ports_are_unique_and_bound_to_loopback() -> None:
    seen: dict[str, str] = {}
    for name, service in _services().items():
        for port in service.get("ports", []):
            host_ip, host_port, _container = str(port).split(":")
            assert host_ip == "127.0.0.1", f"{name} publishes {port} beyond this machine"
            assert host_port not in seen, f"{name} and {seen.get(host_port)} both publish {host_port}"
            seen[host_port] = name


def test_no_container_runs_as_root() -> None:
    for name, service in _services().items():
        user = str(service.get("user", ""))
        assert user, f"{name} names no user (the image's default may be root)"
        assert user.split(":")[0] not in ("0", "root"), f"{name} runs as root"


def test_every_image_is_pinned() -> None:
    for name, service in _services().items():
        image = str(service["image"])
        tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
        assert tag and tag != "latest", f"{name}'s image {image} is not pinned to a version"


def test_no_secret_is_written_in_the_file_and_every_variable_is_in_the_env_example() -> None:
    example = {
        line.split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    for name, service in _services().items():
        for key, value in (service.get("environment") or {}).items():
            value = str(value)
            if SECRET_NAME.search(key) and not key.endswith("_FILE"):
                assert INTERPOLATION.fullmatch(value), f"{name}: {key} is written in the file"
            if "://" in value and "@" in value:  # a URL with credentials: the password must be a variable
                userinfo = value.split("://", 1)[1].split("@", 1)[0]
                hidden = ":" not in userinfo or INTERPOLATION.search(userinfo)
                assert hidden, f"{name}: {key} holds a password"
    used = set(INTERPOLATION.findall(COMPOSE.read_text()))
    assert used <= example, f"not in .env.example: {sorted(used - example)}"
    assert ".env" in (ROOT / ".gitignore").read_text().split(), ".env must never be committed"


def test_every_service_package_has_its_compose_service_built_from_its_own_dockerfile() -> None:
    lockflow = _lockflow_services()
    assert sorted(lockflow) == PACKAGES
    for name, service in lockflow.items():
        assert service["image"].split(":")[0] == f"lockflow/{name}"
        assert service["build"] == {"context": ".", "dockerfile": f"services/{name}/Dockerfile"}


@pytest.mark.parametrize("name", PACKAGES)
def test_each_dockerfile_installs_its_own_package_and_runs_its_entrypoint_as_non_root(name: str) -> None:
    dockerfile = (ROOT / "services" / name / "Dockerfile").read_text()
    package = tomllib.loads((ROOT / "services" / name / "pyproject.toml").read_text())["project"]["name"]
    assert package == f"lockflow-{name}"
    stages = re.findall(r"^FROM (\S+)", dockerfile, re.M)
    assert len(stages) >= 2, "not multi-stage"
    (sync,) = re.findall(r"^RUN uv sync (.*)$", dockerfile, re.M)
    assert f"--package {package}" in sync and "--frozen" in sync and "--no-dev" in sync
    assert re.findall(r"--package (\S+)", dockerfile) == [package], "it installs another package too"
    (base,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, re.M)
    assert ":" in base and not base.endswith(":latest")
    users = re.findall(r"^USER (\S+)$", dockerfile, re.M)
    assert users and users[-1].split(":")[0] not in ("0", "root"), "the image runs as root"
    (entry,) = re.findall(r'^ENTRYPOINT \["python", "-m", "([\w.]+)"\]$', dockerfile, re.M)
    module = ROOT / "services" / name / "src" / Path(*entry.split(".")).with_suffix(".py")
    assert entry.startswith(f"lockflow.{name}."), f"{name}'s image runs another service's {entry}"
    assert "def main(" in module.read_text() and '__name__ == "__main__"' in module.read_text()


def test_healthchecks_ask_the_health_model_on_the_port_each_service_listens_on() -> None:
    for name, service in _lockflow_services().items():
        test = " ".join(service["healthcheck"]["test"])
        env = service["environment"]
        if name == "auth":
            assert f"127.0.0.1:{env['LOCKFLOW_AUTH_PORT']}/healthz" in test
        elif name == "gateway":
            assert f"127.0.0.1:{env['LOCKFLOW_PORT']}/readyz" in test
        else:
            assert int(env["LOCKFLOW_METRICS_PORT"]) == METRICS_PORT
            assert f"127.0.0.1:{METRICS_PORT}/readyz" in test, name


def test_prometheus_scrapes_the_gateway_and_every_worker_and_loads_the_alert_rules() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    targets = {
        target: job.get("metrics_path", "/metrics")
        for job in config["scrape_configs"]
        for group in job["static_configs"]
        for target in group["targets"]
    }
    wanted = {f"{n}:{HTTP_PORTS.get(n, METRICS_PORT)}" for n in _lockflow_services() if n != "auth"}
    assert wanted <= set(targets), f"not scraped: {sorted(wanted - set(targets))}"
    assert all(targets[t] == "/metrics" for t in wanted)
    mounts = _services()["prometheus"]["volumes"]
    assert "./monitoring:/etc/lockflow/monitoring:ro" in mounts
    assert any(Path(rule).name.startswith("alerts") for rule in config["rule_files"])


def test_dashboards_use_only_provisioned_datasource_uids() -> None:
    provisioned = {d["uid"] for d in yaml.safe_load(DATASOURCES.read_text())["datasources"]}
    assert {"lockflow-prometheus", "lockflow-jaeger"} <= provisioned

    def uids(node: Any) -> set[str]:
        if isinstance(node, dict):
            found = {str(node["datasource"]["uid"])} if isinstance(node.get("datasource"), dict) else set()
            return found.union(*(uids(v) for v in node.values()))
        if isinstance(node, list):
            return set().union(*(uids(v) for v in node))
        return set()

    for dashboard in (ROOT / "monitoring" / "grafana").rglob("*.json"):
        used = {u for u in uids(json.loads(dashboard.read_text())) if not u.startswith("$")}
        assert used <= provisioned, f"{dashboard.name} uses datasource uids {sorted(used - provisioned)}"
