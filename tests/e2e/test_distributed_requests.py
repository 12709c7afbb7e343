"""The gate-2 preview in distributed mode is answered by the quality worker process, over Kafka.

The gateway has no quality code to run: with the quality worker stopped the preview is a 504 that
says so, and once the worker is back it answers again, the same answer as before. Every request and
reply on the request/reply topics validates against schemas/.
"""

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pandas as pd
import pytest
from test_distributed_run import SCHEMAS, decide, read_all, wait_for_request

from lockflow.auth.testing import admin_headers, create_users
from lockflow.common.runtime import request_topics
from lockflow.devcluster import DevCluster

pytestmark = pytest.mark.e2e
TIMEOUT_SECONDS = 5


@pytest.fixture
def quick_cluster(tmp_path: Path, cluster_env: dict[str, str]) -> Iterator[DevCluster]:
    """Every service its own process, with questions between services waited for 5 s."""
    # The run reads a file by its path, so ingest (on this machine) may read the test's data folder.
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    env = {
        **cluster_env,
        "LOCKFLOW_REQUEST_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
        "LOCKFLOW_ALLOWED_DIRS": json.dumps([str(data)]),
    }
    running = DevCluster(env=env, logs=tmp_path / "logs", private=tmp_path / "private")
    try:
        running.start(timeout=300)  # eight processes start at once on a shared machine
        yield running
    finally:
        running.stop()


def answered(cluster: DevCluster, name: str) -> list[dict[str, Any]]:
    """The request_answered lines in one process's log."""
    text = (cluster.logs / f"{name}.log").read_text(errors="replace")
    return [json.loads(line) for line in text.splitlines() if '"request_answered"' in line]


def test_the_quality_worker_answers_the_preview(
    quick_cluster: DevCluster, tmp_path: Path, sales: pd.DataFrame, kafka_bootstrap: str, topic_prefix: str
) -> None:
    cluster = quick_cluster
    source = tmp_path / "data" / "sales.csv"
    sales.to_csv(source, index=False)
    client = httpx.Client(base_url=cluster.url, timeout=30)
    auth = httpx.Client(base_url=cluster.auth_url, timeout=30)  # the auth service's own process
    people = create_users(auth, admin_headers(auth, cluster.home("auth")), {"ana": ["analyst"]})
    client.headers.update(people["ana"])

    created = client.post("/runs", json={"path": str(source), "goal": {"target": "revenue"}})
    assert created.status_code == 201, created.text
    run_id = created.json()["id"]
    gate1 = wait_for_request(client, run_id, "source_review")
    assert decide(client, gate1, "approve").status_code == 200
    gate2 = wait_for_request(client, run_id, "quality_review")

    choices = [
        {"finding_id": "missing_values:satisfaction", "strategy": "impute_median"},
        {"finding_id": "duplicate_rows", "strategy": "drop_duplicates_keep_first"},
    ]
    url = f"/decisions/{gate2['id']}/preview"
    answer = client.post(url, json={"choices": choices})
    assert answer.status_code == 200, answer.text
    preview = answer.json()
    kept = sales.drop_duplicates()
    assert preview["rows_previewed"] == len(sales) and preview["sampled"] is False
    assert preview["rows_removed"] == int(sales.duplicated().sum())
    assert preview["cells_changed_by_column"] == {"satisfaction": int(kept["satisfaction"].isna().sum())}
    assert preview["columns"]["satisfaction"]["after"]["missing"] == 0
    # Checked in the gateway against the gate's context, as a decision is: the same 422.
    bad = client.post(url, json={"choices": [{"finding_id": "duplicate_rows", "strategy": "magic"}]})
    assert bad.status_code == 422 and "does not apply" in bad.json()["detail"]

    # The quality worker process did the work; the gateway only asked (the CheckFile went to ingest).
    assert [line["request_type"] for line in answered(cluster, "quality")] == ["PreviewResolutions"]
    assert [line["request_type"] for line in answered(cluster, "ingest")] == ["CheckFile"]
    assert answered(cluster, "gateway") == []

    cluster.stop_worker("quality")
    started = time.monotonic()
    unanswered = client.post(url, json={"choices": choices})
    assert unanswered.status_code == 504, unanswered.text
    assert TIMEOUT_SECONDS - 0.5 < time.monotonic() - started < TIMEOUT_SECONDS + 10
    assert unanswered.json()["detail"].startswith(
        f"the quality service did not answer the preview of gate 2's fixes within {TIMEOUT_SECONDS}s"
    )

    cluster.start_worker("quality")
    again = client.post(url, json={"choices": choices})
    assert again.status_code == 200, again.text
    assert again.json() == preview
    assert client.get(f"/runs/{run_id}").json()["status"] == "waiting"  # a preview applies nothing

    records = asyncio.run(read_all(kafka_bootstrap, request_topics(topic_prefix)))
    schemas = {p.name.split(".")[0]: json.loads(p.read_text()) for p in SCHEMAS.glob("*.json")}
    types = []
    for record in records:
        message = json.loads(record.value)
        jsonschema.validate(message, schemas[message["type"]])
        types.append(message["type"])
    assert types.count("PreviewResolutions") == 3  # the 422 was refused before anything was asked
    assert types.count("ResolutionsPreviewed") == 2  # the one sent while no worker ran expired unanswered
    assert {"CheckFile", "FileChecked"} <= set(types)
