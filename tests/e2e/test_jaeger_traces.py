"""Every service exports its spans over OTLP to a real Jaeger v2 (scripts/services.sh), and one run is
one trace there: spans from the gateway, the orchestrator and every stage, the five gates included,
each CONSUMER span a child of the span that produced its record, none left without its parent."""

import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from test_distributed_run import decide, wait_for_request, wait_for_status

from lockflow.auth.testing import admin_headers, create_users, share_run
from lockflow.common.pipeline import STAGES
from lockflow.devcluster import DevCluster

pytestmark = pytest.mark.e2e
GATES = ("source_review", "quality_review", "analytics_review", "insight_review", "action_selection")
EXPORT_WAIT = 60.0  # the batch span processors export every few seconds


def _required(name: str) -> str:
    value = os.environ.get(name)
    assert value, f"{name} is not set: start Jaeger with `bash scripts/services.sh up` and eval its env"
    return value


@pytest.fixture
def jaeger_url() -> str:
    """The Jaeger query API that scripts/services.sh started (it must answer)."""
    url = _required("LOCKFLOW_TEST_JAEGER_URL")
    assert httpx.get(f"{url}/api/services", timeout=5).status_code == 200, f"Jaeger at {url} does not answer"
    return url


@pytest.fixture
def cluster_env(cluster_env: dict[str, str], jaeger_url: str) -> dict[str, str]:
    """The cluster's environment, every process exporting its spans to Jaeger."""
    return {**cluster_env, "LOCKFLOW_OTLP_ENDPOINT": _required("LOCKFLOW_TEST_OTLP_ENDPOINT")}


@pytest.fixture
def cluster(tmp_path: Path, cluster_env: dict[str, str]) -> Iterator[DevCluster]:
    """conftest's cluster, given longer to start: nine processes importing pandas, scikit-learn and
    polars at once take past 90 s when the two cores are shared with other test runs."""
    running = DevCluster(env=cluster_env, logs=tmp_path / "logs", private=tmp_path / "private")
    try:
        running.start(timeout=300)
        yield running
    finally:
        running.stop()


def _run_through_every_gate(
    cluster: DevCluster, s3_server: Any, s3_artifacts: str, frame: pd.DataFrame
) -> str:
    bucket, artifact_prefix = s3_artifacts.removeprefix("s3://").split("/", 1)
    source_prefix = f"{artifact_prefix}-source/"
    s3_server.client().put_object(
        Bucket=bucket, Key=f"{source_prefix}sales.csv", Body=frame.to_csv(index=False).encode()
    )
    auth = httpx.Client(base_url=cluster.auth_url, timeout=30)
    people = create_users(
        auth, admin_headers(auth, cluster.home("auth")), {"ana": ["analyst"], "apo": ["approver"]}
    )
    client = httpx.Client(base_url=cluster.url, timeout=30, headers=people["ana"])
    config = {
        "bucket": bucket,
        "prefix": source_prefix,
        "format": "csv",
        "endpoint_url": s3_server.endpoint,
        "addressing_style": "path",
        "region": "us-east-1",
        "access_key_id": s3_server.access_key_id,
        "secret_access_key": s3_server.secret_access_key,
    }
    registered = client.post("/sources", json={"name": "sales", "type": "s3", "config": config})
    assert registered.status_code == 201, registered.text
    created = client.post(f"/sources/{registered.json()['id']}/runs", json={"goal": {"target": "revenue"}})
    assert created.status_code == 201, created.text
    run_id = created.json()["id"]
    share_run(auth, people["ana"], run_id, "apo")
    for gate, option in zip(GATES[:4], ("approve", "accept_as_is", "accept", "accept"), strict=True):
        assert decide(client, wait_for_request(client, run_id, gate), option).status_code == 200
    gate5 = wait_for_request(client, run_id, "action_selection")
    chosen = [item["id"] for item in gate5["context"]["items"][:1]]
    answer = decide(client, gate5, "choose", {"selected": chosen}, headers=people["apo"])
    assert answer.status_code == 200, answer.text
    wait_for_status(client, run_id, "completed")
    return run_id


def _traces_of(jaeger_url: str, service: str, run_id: str) -> list[dict[str, Any]]:
    params: dict[str, str | int] = {
        "service": service,
        "tags": json.dumps({"lockflow.run_id": run_id}),
        "limit": 100,
        "lookback": "1h",
    }
    response = httpx.get(f"{jaeger_url}/api/traces", params=params, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["data"] or []


def _services_in(trace: dict[str, Any]) -> set[str]:
    return {process["serviceName"] for process in trace["processes"].values()}


def _dangling(trace: dict[str, Any]) -> list[str]:
    """Spans whose parent is not (yet) in the trace."""
    ids = {span["spanID"] for span in trace["spans"]}
    return [
        span["operationName"]
        for span in trace["spans"]
        for ref in span.get("references", [])
        if ref["traceID"] != trace["traceID"] or ref["spanID"] not in ids
    ]


def _complete_trace(jaeger_url: str, run_id: str) -> dict[str, Any]:
    """The run's one trace, once every service's spans have arrived in it and none lacks its parent
    (each process exports in batches, so a child may arrive before its parent)."""
    wanted = {"gateway", "orchestrator", *STAGES}
    deadline = time.monotonic() + EXPORT_WAIT
    trace: dict[str, Any] = {"spans": [], "processes": {}, "traceID": None}
    while True:
        ids = {t["traceID"] for t in _traces_of(jaeger_url, "orchestrator", run_id)}
        ids |= {t["traceID"] for t in _traces_of(jaeger_url, "gateway", run_id)}
        assert len(ids) <= 1, f"one run must be one trace; Jaeger holds {len(ids)} for it"
        if ids:
            (trace,) = httpx.get(f"{jaeger_url}/api/traces/{ids.pop()}", timeout=10).json()["data"]
            if wanted <= _services_in(trace) and not _dangling(trace):
                return trace
        if time.monotonic() > deadline:
            missing = sorted(wanted - _services_in(trace))
            raise AssertionError(f"no spans from {missing}; without their parent: {_dangling(trace)}")
        time.sleep(1)


def test_one_run_is_one_trace_in_jaeger_across_every_service_and_gate(
    cluster: DevCluster, jaeger_url: str, s3_server: Any, s3_artifacts: str, sales: pd.DataFrame
) -> None:
    run_id = _run_through_every_gate(cluster, s3_server, s3_artifacts, sales)
    trace = _complete_trace(jaeger_url, run_id)
    spans = {span["spanID"]: span for span in trace["spans"]}
    service_of = {
        span["spanID"]: trace["processes"][span["processID"]]["serviceName"] for span in spans.values()
    }
    kinds = {
        span["spanID"]: {t["key"]: t["value"] for t in span["tags"]}.get("span.kind")
        for span in spans.values()
    }
    # Every span but the run's root hangs from another span of the same trace (_complete_trace).
    roots = [s for s in spans.values() if not s.get("references")]
    assert [r["operationName"] for r in roots] == ["lockflow.run"], [r["operationName"] for r in roots]
    # A CONSUMER span per handled record, in each stage, the child of the PRODUCER span that sent it.
    consumers = Counter(service_of[i] for i, kind in kinds.items() if kind == "consumer")
    for service in ("orchestrator", *STAGES):
        assert consumers[service] >= 1, f"no CONSUMER span in {service}"
    for span_id, kind in kinds.items():
        if kind == "consumer":
            parent = spans[spans[span_id]["references"][0]["spanID"]]
            assert kinds[parent["spanID"]] == "producer", spans[span_id]["operationName"]
    # Each gate: its request published by the orchestrator, its decision taken in the gateway's span.
    names = Counter(span["operationName"] for span in spans.values())
    assert names["publish DecisionRequested"] >= len(GATES)
    assert names["publish DecisionMade"] >= len(GATES)
    assert names["process DecisionMade"] >= len(GATES)
