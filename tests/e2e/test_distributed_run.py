"""One run through the gateway's REST API, every service its own process, over real Kafka and PostgreSQL.

No process shares a folder with another: the source is an S3 source and every artifact (datasets,
report) goes to the real S3-compatible server; the test lists the bucket to see them there. All five
gates are decided as a person would, with one loop-back (modify the analytics parameters, then
accept) and a restart of every process while the run waits at a gate. The report's numbers are
checked against pandas computed here, and every event on every topic against schemas/.
"""

import asyncio
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pandas as pd
import pytest
from aiokafka import AIOKafkaConsumer

from lockflow.auth.testing import admin_headers, create_users, share_run
from lockflow.common.pipeline import all_topics
from lockflow.devcluster import DevCluster

pytestmark = pytest.mark.e2e
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "events"
TIMEOUT = 120.0


def wait_for_request(client: httpx.Client, run_id: str, gate: str) -> dict[str, Any]:
    """Poll until the run has an open decision request at this gate."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        run = client.get(f"/runs/{run_id}").json()
        assert run["status"] not in ("failed", "aborted"), f"run ended: {run['status']}: {run['error']}"
        for request in client.get("/decisions", params={"run_id": run_id}).json():
            if request["gate"] == gate:
                return request
        time.sleep(0.2)
    raise AssertionError(f"no open {gate} request within {TIMEOUT}s")


def decide(
    client: httpx.Client,
    request: dict[str, Any],
    option: str,
    params: dict | None = None,
    rationale: str = "",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return client.post(
        f"/decisions/{request['id']}",
        json={"option": option, "params": params or {}, "rationale": rationale},
        headers=headers,
    )


def wait_for_status(client: httpx.Client, run_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        run = client.get(f"/runs/{run_id}").json()
        if run["status"] == status:
            return run
        assert run["status"] not in ("failed", "aborted"), f"run ended: {run['status']}: {run['error']}"
        time.sleep(0.2)
    raise AssertionError(f"run did not reach {status}")


async def read_all(bootstrap: str, topics: list[str]) -> list[Any]:
    """Every record on the topics, from the beginning."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=3000)
            if not batch:
                return records
            for part in batch.values():
                records.extend(part)
    finally:
        await consumer.stop()


def test_a_run_across_all_gates_with_a_loop_back_and_a_restart(
    cluster: DevCluster,
    tmp_path: Path,
    sales: pd.DataFrame,
    kafka_bootstrap: str,
    topic_prefix: str,
    s3_server: Any,
    s3_artifacts: str,
) -> None:
    frame = sales
    # The source: a CSV object on the S3 server, beside (not under) the run's artifact prefix.
    bucket, artifact_prefix = s3_artifacts.removeprefix("s3://").split("/", 1)
    source_prefix = f"{artifact_prefix}-source/"
    s3 = s3_server.client()
    s3.put_object(Bucket=bucket, Key=f"{source_prefix}sales.csv", Body=frame.to_csv(index=False).encode())
    # The analyst "ana" starts the run and decides gates 1-4; the approver "apo" decides gate 5.
    client = httpx.Client(base_url=cluster.url, timeout=30)
    # People log in at the auth service, its own process; the gateway verifies with its JWKS.
    auth = httpx.Client(base_url=cluster.auth_url, timeout=30)
    people = create_users(
        auth, admin_headers(auth, cluster.home("auth")), {"ana": ["analyst"], "apo": ["approver"]}
    )
    client.headers.update(people["ana"])

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
    source_id = registered.json()["id"]
    created = client.post(f"/sources/{source_id}/runs", json={"goal": {"target": "revenue"}})
    assert created.status_code == 201, created.text
    run_id = created.json()["id"]
    share_run(auth, people["ana"], run_id, "apo")

    # Gate 1: the schema and row count are shown; approve once, a second time is a conflict.
    gate1 = wait_for_request(client, run_id, "source_review")
    assert gate1["context"]["rows"] == len(frame)
    assert [c["name"] for c in gate1["context"]["schema"]] == list(frame.columns)
    assert decide(client, gate1, "approve", rationale="schema as expected").status_code == 200
    second = decide(client, gate1, "approve")
    assert second.status_code == 409 and "already decided" in second.json()["detail"]

    # Gate 2: findings match pandas; bad decisions get 422; apply two fixes.
    gate2 = wait_for_request(client, run_id, "quality_review")
    findings = {f["id"]: f for f in gate2["context"]["findings"]}
    assert findings["missing_values:satisfaction"]["count"] == int(frame["satisfaction"].isna().sum())
    assert findings["duplicate_rows"]["count"] == int(frame.duplicated().sum())
    assert decide(client, gate2, "bogus").status_code == 422
    bad = decide(client, gate2, "apply", {"choices": [{"finding_id": "duplicate_rows", "strategy": "magic"}]})
    assert bad.status_code == 422 and "does not apply" in bad.json()["detail"]
    choices = [
        {"finding_id": "missing_values:satisfaction", "strategy": "impute_median"},
        {"finding_id": "duplicate_rows", "strategy": "drop_duplicates_keep_first"},
    ]
    assert decide(client, gate2, "apply", {"choices": choices}).status_code == 200

    # Gate 3, first visit: modify the parameters (loop back to analytics).
    gate3 = wait_for_request(client, run_id, "analytics_review")
    assert decide(client, gate3, "modify", {"n_clusters": "lots"}).status_code == 422
    assert decide(client, gate3, "modify", {"n_clusters": 3}, "three customer groups").status_code == 200
    gate3_again = wait_for_request(client, run_id, "analytics_review")
    assert gate3_again["id"] != gate3["id"]
    analytics = gate3_again["context"]["analytics"]
    assert analytics["params"]["n_clusters"] == 3 and analytics["clustering"]["k"] == 3

    # A waiting run holds no worker and survives a restart of every process.
    cluster.stop()
    cluster.start()
    client = httpx.Client(base_url=cluster.url, timeout=30, headers=people["ana"])
    assert decide(client, gate3_again, "accept").status_code == 200

    gate4 = wait_for_request(client, run_id, "insight_review")
    assert gate4["context"]["insights"], "insights expected on planted signals"
    assert decide(client, gate4, "accept").status_code == 200

    gate5 = wait_for_request(client, run_id, "action_selection")
    items = [item["id"] for item in gate5["context"]["items"]]
    chosen = list(reversed(items[:2]))
    starter = decide(client, gate5, "choose", {"selected": chosen}, "my own plan")
    assert starter.status_code == 403 and "needs the role approver" in starter.json()["detail"]
    answer = decide(
        client,
        gate5,
        "choose",
        {"selected": chosen, "owners": {chosen[0]: "sam"}},
        "do these first",
        headers=people["apo"],
    )
    assert answer.status_code == 200

    wait_for_status(client, run_id, "completed")
    report = client.get(f"/runs/{run_id}/report", params={"format": "json"}).json()
    _check_report_against_pandas(report, frame, chosen)
    assert "# Report" in client.get(f"/runs/{run_id}/report", params={"format": "markdown"}).text

    # Bad input while the system runs: clear 4xx, and the services keep serving.
    assert (
        client.post(
            "/runs", json={"path": str(tmp_path / "data" / "nope.csv"), "goal": {"target": "revenue"}}
        ).status_code
        == 422
    )
    assert client.get("/runs/does-not-exist").status_code == 404
    assert decide(client, gate5, "choose", {"selected": chosen}, headers=people["apo"]).status_code == 409
    assert client.get("/healthz").status_code == 200

    _check_every_event_against_schemas(kafka_bootstrap, topic_prefix, run_id)
    _check_artifacts_went_through_s3(s3, s3_artifacts, report, cluster)


def _check_artifacts_went_through_s3(s3: Any, url: str, report: dict[str, Any], cluster: DevCluster) -> None:
    """Every dataset and report is an object under the run's prefix, named by the SHA-256 of its bytes,
    and no process kept one in its own folders."""
    bucket, prefix = url.removeprefix("s3://").split("/", 1)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/")
    keys = {o["Key"] for page in pages for o in page.get("Contents", [])}
    for key in keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        digest = hashlib.sha256(body).hexdigest()
        assert key.startswith(f"{prefix}/{digest[:2]}/{digest}."), f"{key} is not the address of its bytes"
    datasets = {k for k in keys if k.endswith(".parquet")}
    for stage in ("ingested", "final"):
        uri = report["dataset"][stage]["uri"]
        assert uri.startswith(f"{url}/") and uri.removeprefix(f"s3://{bucket}/") in datasets, uri
    assert (
        report["dataset"]["ingested"]["uri"] != report["dataset"]["final"]["uri"]
    )  # the fixes made a new one
    # The report's charts: a PNG each (linked from the Markdown, beside it), and the report as PDF.
    assert {k.rsplit(".", 1)[1] for k in keys} == {"parquet", "json", "md", "html", "png", "pdf"}
    for chart in report["charts"]:
        assert f"{prefix}/{chart['png'].removeprefix('../')}" in keys, chart
    assert cluster.private is not None
    kept = [
        p
        for p in cluster.private.rglob("*")
        if p.is_file()
        and (p.suffix in (".parquet", ".md", ".html", ".csv", ".png", ".pdf") or p.name.startswith(".tmp-"))
    ]
    assert kept == [], f"a process kept data in its own folders: {kept}"


def _check_report_against_pandas(report: dict[str, Any], frame: pd.DataFrame, chosen: list[str]) -> None:
    median = frame["satisfaction"].median()
    final = frame.fillna({"satisfaction": median}).drop_duplicates(keep="first")
    assert report["dataset"]["ingested"]["rows"] == len(frame)
    assert report["dataset"]["final"]["rows"] == len(final)
    stats = {c["name"]: c for c in report["analytics"]["columns"]}
    for column in ("revenue", "spend", "discount", "satisfaction"):
        assert stats[column]["mean"] == pytest.approx(final[column].mean(), rel=1e-9)
        assert stats[column]["std"] == pytest.approx(final[column].std(), rel=1e-9)
        assert stats[column]["median"] == pytest.approx(final[column].median(), rel=1e-9)
    pairs = {(p["a"], p["b"]): p["pearson"] for p in report["analytics"]["top_correlations"]}
    assert pairs[("spend", "revenue")] == pytest.approx(final["spend"].corr(final["revenue"]), rel=1e-9)
    by_id = {i["id"]: i for i in report["insights"]}
    west = by_id["segment:region=West"]
    in_west = final["region"] == "West"
    expected_diff = (final.loc[in_west, "revenue"].mean() / final.loc[~in_west, "revenue"].mean() - 1) * 100
    assert west["numbers"]["diff_pct"] == pytest.approx(expected_diff, rel=1e-6)
    assert by_id["driver:spend"]["significant"]
    assert [p["id"] for p in report["plan"]] == chosen
    assert report["plan"][0]["owner"] == "sam"
    gates = [(d["gate"], d["option"], d["decided_by"]) for d in report["decisions"]]
    assert gates == [
        ("source_review", "approve", "ana"),
        ("quality_review", "apply", "ana"),
        ("analytics_review", "modify", "ana"),
        ("analytics_review", "accept", "ana"),
        ("insight_review", "accept", "ana"),
        ("action_selection", "choose", "apo"),
    ]


def _check_every_event_against_schemas(bootstrap: str, prefix: str, run_id: str) -> None:
    topics = all_topics(prefix)
    records = asyncio.run(read_all(bootstrap, topics))
    schemas = {p.name.split(".")[0]: json.loads(p.read_text()) for p in SCHEMAS.glob("*.json")}
    trace_ids = set()
    types = []
    for record in records:
        event = json.loads(record.value)
        jsonschema.validate(event, schemas[event["type"]])
        assert event["run_id"] == run_id
        headers = dict(record.headers)
        trace_ids.add(headers["traceparent"].decode().split("-")[1])
        types.append(event["type"])
    assert {
        "RunRequested",
        "IngestSource",
        "SourceIngested",
        "DecisionRequested",
        "DecisionMade",
        "ApplyResolutions",
        "ResolutionsApplied",
        "RunAnalytics",
        "AnalyticsCompleted",
        "CompileReport",
        "ReportCompiled",
        "RunCompleted",
    } <= set(types)
    assert types.count("RunAnalytics") == 2, "the modify loop-back runs analytics twice"
    assert len(trace_ids) == 1, f"one run must be one trace, saw {len(trace_ids)}"
    dead = asyncio.run(read_all(bootstrap, [f"{t}.dlq" for t in topics]))
    assert dead == [], f"unexpected dead letters: {[d.headers for d in dead]}"
