"""k8s/, offline: every overlay builds, every object validates, and the policies the cluster would not
check hold (probes, limits, non-root, pinned images, one KafkaTopic per topic the code creates).

Kubernetes' own kinds are checked against the JSON schemas kubernetes-validate ships (strict: an
unknown field fails); Strimzi's and KEDA's against their CRDs in ../shared/k8s-crds/ (read-only, found
by walking up from the repository), made strict the same way. Nothing here talks to a cluster.
"""

import asyncio
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from lockflow.common.bus.kafka import KafkaBus
from lockflow.common.pipeline import STAGES
from lockflow.common.runtime import Adapters, ensure_topics
from lockflow.common.worker import StageWorker

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = sorted(p.parent.name for p in (ROOT / "k8s" / "overlays").glob("*/kustomization.yaml"))
K8S_VERSION = "1.34"
PREFIX = "lockflow"
METRICS_PORT = 9100
WORKERS = ("orchestrator", *STAGES)
# Read by the monitoring part (issue 14, parts 1-3): the port and address of each worker's /metrics.
METRICS_SETTINGS = {"LOCKFLOW_METRICS_PORT", "LOCKFLOW_METRICS_HOST"}


# Where the workplace keeps them when the repository is cloned elsewhere (CI clones it to a temporary folder).
WORKPLACE_CRDS = Path("/work/shared/k8s-crds")


def _crd_dir() -> Path:
    named = os.environ.get("LOCKFLOW_K8S_CRDS")
    candidates = [Path(named)] if named else []
    candidates += [parent / "shared" / "k8s-crds" for parent in ROOT.parents] + [WORKPLACE_CRDS]
    for found in candidates:
        if found.is_dir():
            return found
    raise AssertionError(
        f"no shared/k8s-crds/ above {ROOT} nor at {WORKPLACE_CRDS} (or LOCKFLOW_K8S_CRDS): the CRDs to "
        "validate k8s/ against are missing"
    )


def _strict(node: Any) -> Any:
    """The CRD's schema, refusing fields it does not name (as Kubernetes' strict field validation does)."""
    if isinstance(node, dict):
        node = {k: _strict(v) for k, v in node.items()}
        if (
            "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


@cache
def _crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    schemas = {}
    for path in sorted(_crd_dir().rglob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            for version in crd["spec"]["versions"]:
                if version.get("served"):
                    api = f"{crd['spec']['group']}/{version['name']}"
                    kind = crd["spec"]["names"]["kind"]
                    schemas[(api, kind)] = _strict(version["schema"]["openAPIV3Schema"])
    assert ("kafka.strimzi.io/v1", "Kafka") in schemas and ("keda.sh/v1alpha1", "ScaledObject") in schemas
    return schemas


@cache
def _build(overlay: str) -> tuple[dict[str, Any], ...]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (its built-in kustomize) is needed to build k8s/"
    result = subprocess.run(
        [kubectl, "kustomize", str(ROOT / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return tuple(d for d in yaml.safe_load_all(result.stdout) if d)


def _of(overlay: str, kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in _build(overlay) if o["kind"] == kind}


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def _config(overlay: str) -> dict[str, str]:
    (config,) = _of(overlay, "ConfigMap").values()
    return config["data"]


@cache
def _code_topics() -> dict[str, dict[str, str]]:
    """The topics (and DLQs) the code's ensure_topics creates on Kafka, with their settings."""
    created: dict[str, dict[str, str]] = {}

    class Recording(KafkaBus):
        async def ensure_topics(
            self, topics: list[str], *, partitions: int = 3, configs: dict[str, dict[str, str]] | None = None
        ) -> None:
            assert partitions == 3, "the code's partition count changed: update kafka-topics.yaml"
            for name in topics:
                for topic in (name, f"{name}.dlq"):  # the DLQs KafkaBus.ensure_topics makes beside each
                    created[topic] = (configs or {}).get(topic) or {}

    bus = Recording(bootstrap="127.0.0.1:9092", client_id="test", prefix=PREFIX)
    adapters = Adapters.__new__(Adapters)
    adapters.bus = bus
    asyncio.run(ensure_topics(adapters))
    return created


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_against_its_schema(overlay: str) -> None:
    errors = []
    for obj in _build(overlay):
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        schema = _crd_schemas().get((obj["apiVersion"], obj["kind"]))
        try:
            if schema is not None:
                jsonschema.Draft7Validator(schema).validate(obj)
            else:
                kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except jsonschema.ValidationError as exc:
            errors.append(f"{name}: {'.'.join(map(str, exc.absolute_path))}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(f"{name}: no schema for {obj['apiVersion']} {obj['kind']}")
    assert not errors, "\n".join(errors)
    assert {"dev", "prod"} <= set(OVERLAYS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_is_probed_limited_non_root_and_pinned(overlay: str) -> None:
    deployments = _of(overlay, "Deployment")
    assert sorted(deployments) == sorted(
        p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml")
    ), "a Deployment per service"
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        container = _container(deployment)
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
            assert container[kind]["httpGet"]["port"] in ports, f"{name}: {kind} on no port of the pod"
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][bound]), f"{name}: no {bound}"
        security = container["securityContext"]
        assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] != 0
        assert security["runAsNonRoot"] and security["readOnlyRootFilesystem"], name
        assert security["allowPrivilegeEscalation"] is False and security["capabilities"]["drop"] == ["ALL"]
        assert pod["automountServiceAccountToken"] is False
        image = container["image"]
        assert re.fullmatch(r"[\w./-]+/" + name + r":\d+\.\d+\.\d+", image), (
            f"{name}: image {image} not pinned"
        )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_and_scrapes_use_the_health_model_and_metrics_ports(overlay: str) -> None:
    deployments = _of(overlay, "Deployment")
    for name, deployment in deployments.items():
        container = _container(deployment)
        live, ready = container["livenessProbe"]["httpGet"], container["readinessProbe"]["httpGet"]
        port = {p["name"]: p["containerPort"] for p in container["ports"]}[live["port"]]
        annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
        if name == "auth":
            assert (live["path"], ready["path"], port) == ("/healthz", "/healthz", 8001)
            continue
        assert (live["path"], ready["path"]) == ("/healthz", "/readyz"), name
        assert port == (8000 if name == "gateway" else METRICS_PORT), name
        assert annotations["prometheus.io/scrape"] == "true", f"{name} is not scraped"
        assert (
            int(annotations["prometheus.io/port"]) == port and annotations["prometheus.io/path"] == "/metrics"
        )
    assert int(_config(overlay)["LOCKFLOW_METRICS_PORT"]) == METRICS_PORT


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_config_comes_from_the_configmap_and_secrets_from_secrets(overlay: str) -> None:
    from lockflow.auth.settings import AuthSettings
    from lockflow.gateway.settings import GatewaySettings

    known = {f"LOCKFLOW_{f.upper()}" for s in (GatewaySettings, AuthSettings) for f in s.model_fields}
    config = _config(overlay)
    assert set(config) - METRICS_SETTINGS <= known, f"not a setting: {sorted(set(config) - known)}"
    assert not _of(overlay, "Secret"), "no Secret is committed: the operator creates them"
    (config_name,) = _of(overlay, "ConfigMap")
    for name, deployment in _of(overlay, "Deployment").items():
        container = _container(deployment)
        assert container["envFrom"] == [{"configMapRef": {"name": config_name}}], name
        for variable in container.get("env", []):
            assert variable["name"] in known | METRICS_SETTINGS | {"LOCKFLOW_MEMORY_BUDGET_MB"}
            if re.search(r"URL$|KEY$|KEY_ID$|PASSWORD", variable["name"]):
                ref = variable["valueFrom"]["secretKeyRef"]
                assert ref == {"name": "lockflow-secrets", "key": variable["name"]}, f"{name}: {variable}"
        budget = {v["name"]: v.get("value") for v in container.get("env", [])}.get(
            "LOCKFLOW_MEMORY_BUDGET_MB"
        )
        if budget:
            limit = container["resources"]["limits"]["memory"]
            assert limit.endswith("Gi") and int(budget) < int(limit[:-2]) * 1024, f"{name}: budget past limit"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_kafka_topic_for_every_topic_and_dlq_the_code_creates(overlay: str) -> None:
    topics = {t["spec"]["topicName"]: t for t in _of(overlay, "KafkaTopic").values()}
    assert sorted(topics) == sorted(_code_topics()), (
        "k8s/base/kafka-topics.yaml differs from the code's topics"
    )
    replicas = _of(overlay, "KafkaNodePool")["dual-role"]["spec"]["replicas"]
    for name, topic in topics.items():
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == PREFIX
        assert topic["spec"]["partitions"] == 3
        assert topic["spec"].get("config", {}) == _code_topics()[name], (
            f"{name}'s settings differ from the code's"
        )
        assert topic["spec"]["replicas"] <= replicas, f"{name} wants more replicas than there are brokers"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kafka_is_strimzi_kraft_on_kafka_4_1(overlay: str) -> None:
    (kafka,) = _of(overlay, "Kafka").values()
    assert kafka["apiVersion"] == "kafka.strimzi.io/v1"
    assert kafka["spec"]["kafka"]["version"].startswith("4.1.")
    assert kafka["spec"]["kafka"]["metadataVersion"].startswith("4.1-")
    assert "zookeeper" not in kafka["spec"]
    pools = _of(overlay, "KafkaNodePool").values()
    assert {"controller", "broker"} <= {role for pool in pools for role in pool["spec"]["roles"]}
    assert all(
        pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"] for pool in pools
    )
    bootstrap = f"{kafka['metadata']['name']}-kafka-bootstrap:9092"
    assert _config(overlay)["LOCKFLOW_KAFKA_BOOTSTRAP"] == bootstrap


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_stage_worker_scales_on_its_own_lag_up_to_its_partitions(overlay: str) -> None:
    scaled = _of(overlay, "ScaledObject")
    topics = {t["spec"]["topicName"]: t["spec"]["partitions"] for t in _of(overlay, "KafkaTopic").values()}
    deployments = _of(overlay, "Deployment")
    hpa_targets = {
        h["spec"]["scaleTargetRef"]["name"] for h in _of(overlay, "HorizontalPodAutoscaler").values()
    }
    assert sorted(scaled) == sorted(STAGES)
    for stage, obj in scaled.items():
        assert obj["spec"]["scaleTargetRef"]["name"] in deployments and stage not in hpa_targets
        (trigger,) = obj["spec"]["triggers"]
        assert trigger["type"] == "kafka"
        meta = trigger["metadata"]
        worker = StageWorker(stage=stage, handlers={}, deps=None)  # type: ignore[arg-type]
        assert meta["topic"] == worker.commands_topic(PREFIX)
        assert meta["consumerGroup"] == f"{PREFIX}-{stage}"  # StageWorker.start's group
        assert meta["bootstrapServers"] == _config(overlay)["LOCKFLOW_KAFKA_BOOTSTRAP"]
        # Kafka 4 refuses the request versions of clients older than 2.1 (KIP-896); KEDA defaults to 1.0.0.
        version = tuple(int(part) for part in meta["version"].split("."))
        assert (2, 1) <= version[:2] <= (4, 1), f"{stage}: protocol version {meta['version']}"
        assert 1 <= obj["spec"]["minReplicaCount"] <= obj["spec"]["maxReplicaCount"] <= topics[meta["topic"]]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_gateway_is_behind_a_service_an_ingress_and_an_hpa_and_every_service_has_a_pdb(
    overlay: str,
) -> None:
    services = _of(overlay, "Service")
    deployments = _of(overlay, "Deployment")
    for ingress in _of(overlay, "Ingress").values():
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                ports = {p["name"] for p in services[backend["name"]]["spec"]["ports"]}
                assert backend["port"]["name"] in ports
    assert any(
        p["backend"]["service"]["name"] == "gateway"
        for i in _of(overlay, "Ingress").values()
        for r in i["spec"]["rules"]
        for p in r["http"]["paths"]
    )
    (hpa,) = _of(overlay, "HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gateway"}
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    covered = set()
    for pdb in _of(overlay, "PodDisruptionBudget").values():
        selector = pdb["spec"]["selector"]["matchLabels"]
        for name, deployment in deployments.items():
            if selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items():
                covered.add(name)
    assert covered == set(deployments), f"no PodDisruptionBudget: {sorted(set(deployments) - covered)}"


def _selects(policy: dict[str, Any], labels: dict[str, str]) -> bool:
    return policy["spec"]["podSelector"].get("matchLabels", {}).items() <= labels.items()


def _egress_ports(policies: list[dict[str, Any]]) -> set[int]:
    return {
        p["port"] for pol in policies for rule in pol["spec"].get("egress", []) for p in rule.get("ports", [])
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_deny_by_default_and_let_each_service_reach_only_what_it_uses(overlay: str) -> None:
    policies = list(_of(overlay, "NetworkPolicy").values())
    deny = [p for p in policies if "ingress" not in p["spec"] and "egress" not in p["spec"]]
    assert deny and set(deny[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    uses = {
        "gateway": {9092, 5432, 6379, 443, 8001, 4318},
        "auth": {5432, 6379, 4318},
        "orchestrator": {9092, 5432, 6379, 4318},
        **{stage: {9092, 5432, 6379, 443, 4318} for stage in STAGES},
        # The stream worker: like a stage (a stream's own cluster elsewhere needs its own egress rule).
        "streams": {9092, 5432, 6379, 443, 4318},
    }
    for name, deployment in _of(overlay, "Deployment").items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert any(_selects(p, labels) for p in deny), f"{name} is not under the default deny"
        mine = [p for p in policies if _selects(p, labels)]
        reached = _egress_ports(mine) - {53}
        assert uses[name] <= reached, f"{name} cannot reach {sorted(uses[name] - reached)}"
        extra = reached - uses[name] - {4317, 8333} - ({80, 3306} if name == "ingest" else set())
        assert not extra, f"{name} may reach ports it does not use: {sorted(extra)}"
        kafka_client = labels.get("lockflow.io/kafka-client") == "true"
        assert kafka_client == (9092 in uses[name]), f"{name}: the Kafka listener's admission label"
        ingress_ports = {
            p["port"] for pol in mine for rule in pol["spec"].get("ingress", []) for p in rule["ports"]
        }
        container_ports = {p["containerPort"] for p in _container(deployment)["ports"]}
        assert ingress_ports == container_ports, f"{name}: ingress allowed to {sorted(ingress_ports)}"
