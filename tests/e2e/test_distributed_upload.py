"""An upload through the gateway, run to its report with every service its own process and no shared folder.

Issue 12: the gateway streams the uploaded bytes into the S3-compatible store; the ingest service
(its CheckFile and DescribeFile answers, and stage 1) reads them from there. The test lists the
bucket to find the upload, byte for byte, under the SHA-256 of its bytes, and looks in every
process's private folders to see that none kept the dataset.
"""

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from test_distributed_run import decide, wait_for_request, wait_for_status

from lockflow.auth.testing import admin_headers, create_users, share_run
from lockflow.devcluster import DevCluster

pytestmark = pytest.mark.e2e


def test_an_uploaded_csv_runs_to_its_report_through_the_object_store(
    cluster: DevCluster, sales: pd.DataFrame, s3_server: Any, s3_artifacts: str
) -> None:
    content = sales.to_csv(index=False).encode()
    digest = hashlib.sha256(content).hexdigest()
    client = httpx.Client(base_url=cluster.url, timeout=60)
    auth = httpx.Client(base_url=cluster.auth_url, timeout=30)
    people = create_users(
        auth, admin_headers(auth, cluster.home("auth")), {"ana": ["analyst"], "apo": ["approver"]}
    )
    client.headers.update(people["ana"])

    # A source upload: its head schema comes from the ingest service, which reads the bytes from S3.
    source = client.post("/sources/upload", files={"file": ("shop.csv", content, "text/csv")})
    assert source.status_code == 201, source.text
    assert [c["name"] for c in source.json()["columns"]] == list(sales.columns)
    assert "uri" not in source.json()["config"] and "s3://" not in source.text
    # The uploaded source's health check and a run on it: the ingest service reads it from S3 too.
    tested = client.post(f"/sources/{source.json()['id']}/test")
    assert tested.status_code == 200 and tested.json()["ok"], tested.text
    on_source = client.post(f"/sources/{source.json()['id']}/runs", json={"goal": {"target": "revenue"}})
    assert on_source.status_code == 201, on_source.text
    source_gate1 = wait_for_request(client, on_source.json()["id"], "source_review")
    assert source_gate1["context"]["rows"] == len(sales) and "uri" not in source_gate1["context"]["config"]

    # A run upload, checked by the ingest service (the target settled), then read by stage 1.
    created = client.post(
        "/runs/upload", files={"file": ("sales.csv", content, "text/csv")}, data={"target": "revenue"}
    )
    assert created.status_code == 201, created.text
    run_id = created.json()["id"]
    share_run(auth, people["ana"], run_id, "apo")

    gate1 = wait_for_request(client, run_id, "source_review")
    assert gate1["context"]["rows"] == len(sales)
    assert [c["name"] for c in gate1["context"]["schema"]] == list(sales.columns)
    # The run names the upload by the server's name for it, never a folder of any process.
    shown = client.get(f"/runs/{run_id}").json()["results"]["source"]["path"]
    assert shown.startswith("upload-") and shown.endswith(".csv") and "/" not in shown
    assert decide(client, gate1, "approve").status_code == 200
    for gate, option in [
        ("quality_review", "accept_as_is"),
        ("analytics_review", "accept"),
        ("insight_review", "accept"),
    ]:
        assert decide(client, wait_for_request(client, run_id, gate), option).status_code == 200
    gate5 = wait_for_request(client, run_id, "action_selection")
    chosen = [item["id"] for item in gate5["context"]["items"]][:1]
    answer = decide(client, gate5, "choose", {"selected": chosen}, headers=people["apo"])
    assert answer.status_code == 200, answer.text
    wait_for_status(client, run_id, "completed")
    report = client.get(f"/runs/{run_id}/report", params={"format": "json"}).json()
    assert report["dataset"]["ingested"]["rows"] == len(sales)

    # The upload's bytes are one object (both uploads are the same bytes), at their content address.
    bucket, prefix = s3_artifacts.removeprefix("s3://").split("/", 1)
    s3 = s3_server.client()
    key = f"{prefix}/{digest[:2]}/{digest}.csv"
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == content
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/")
    csvs = [o["Key"] for page in pages for o in page.get("Contents", []) if o["Key"].endswith(".csv")]
    assert csvs == [key]

    # No process kept the dataset (or a spooled copy, or a temp file) in its own folders.
    assert cluster.private is not None
    kept = [
        p for p in cluster.private.rglob("*") if p.is_file() and (_named_as_data(p) or _holds(p, content))
    ]
    assert kept == [], f"a process kept the dataset in its own folders: {kept}"


def _named_as_data(path: Path) -> bool:
    """A dataset, a temp file of the artifact store or the spool, or an upload by its server name."""
    return path.suffix in (".csv", ".parquet") or path.name.startswith((".tmp-", "upload-"))


def _holds(path: Path, content: bytes) -> bool:
    """Whether a file is the upload (same size and bytes), whatever its name."""
    try:
        return path.stat().st_size == len(content) and path.read_bytes() == content
    except OSError:
        return False
