"""The gateway's HTTP contract, served with every stage in process (embedded mode, SQLite)."""

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from lockflow.auth.testing import share_run, sign_in
from lockflow.embedded import create_app
from lockflow.gateway.testing import embedded_settings


@pytest.fixture
def client(tmp_path: Path, data_dir: Path) -> Iterator[TestClient]:
    settings = embedded_settings(tmp_path, max_upload_bytes=200_000)
    with TestClient(create_app(settings)) as test_client:
        # Every call below is made as the analyst "ana", who starts the runs and decides gates 1-4.
        test_client.headers.update(sign_in(test_client, "ana", ["analyst"]))
        yield test_client


def small_sales(rows: int = 300) -> pd.DataFrame:
    import numpy as np

    rng = np.random.default_rng(3)
    spend = rng.uniform(0, 100, rows)
    return pd.DataFrame(
        {
            "region": rng.choice(["a", "b"], rows),
            "spend": spend,
            "revenue": 10 + 3 * spend + rng.normal(0, 5, rows),
        }
    )


def wait_open(client: TestClient, run_id: str, gate: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for request in client.get("/decisions", params={"run_id": run_id}).json():
            if request["gate"] == gate:
                return request
        run = client.get(f"/runs/{run_id}").json()
        assert run["status"] not in ("failed", "aborted"), run
        time.sleep(0.05)
    raise AssertionError(f"no {gate} request")


def test_upload_then_decide_every_gate_and_stream_the_events(client: TestClient) -> None:
    body = small_sales().to_csv(index=False).encode()
    created = client.post(
        "/runs/upload", files={"file": ("sales.csv", body, "text/csv")}, data={"target": "revenue"}
    )
    assert created.status_code == 201, created.text
    run_id = created.json()["id"]
    for gate, option, params in [
        ("source_review", "approve", {}),
        ("quality_review", "accept_as_is", {}),
        ("analytics_review", "accept", {}),
        ("insight_review", "accept", {}),
    ]:
        request = wait_open(client, run_id, gate)
        assert (
            client.post(f"/decisions/{request['id']}", json={"option": option, "params": params}).status_code
            == 200
        )
    request = wait_open(client, run_id, "action_selection")
    first = request["context"]["items"][0]["id"]
    # Gate 5 needs an approver other than the run's starter (separation of duties).
    lee = sign_in(client, "lee", ["approver"])
    share_run(client, dict(client.headers), run_id, "lee")
    decided = client.post(
        f"/decisions/{request['id']}", json={"option": "choose", "params": {"selected": [first]}}, headers=lee
    )
    assert decided.status_code == 200 and decided.json()["decided_by"] == "lee"
    with client.stream("GET", f"/runs/{run_id}/events") as stream:
        kinds = [json.loads(line[5:])["type"] for line in stream.iter_lines() if line.startswith("data:")]
    assert kinds[0] == "RunRequested" and kinds[-1] == "RunCompleted"
    assert kinds.count("DecisionMade") == 5
    html = client.get(f"/runs/{run_id}/report", params={"format": "html"})
    assert html.status_code == 200 and "<html" in html.text.lower()


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"", "empty.csv", "empty"),
        (b"\x00\x01\x02\x03binary\xff\xfe", "blob.csv", "binary content"),
        (b"a,b\n1,2\n3,4,5\n", "ragged.csv", "has 3 fields, expected 2"),
    ],
)
def test_bad_uploads_get_422_and_leave_nothing_behind(
    client: TestClient, tmp_path: Path, content: bytes, name: str, message: str
) -> None:
    answer = client.post("/runs/upload", files={"file": (name, content, "text/csv")})
    assert answer.status_code == 422 and message in answer.json()["detail"]
    assert client.get("/runs").json() == []
    # Uploads go to the artifact store (no upload folder): a refused one leaves no file in either.
    assert not (tmp_path / "home" / "uploads").exists()
    assert _stored_files(client) == []
    assert client.get("/healthz").status_code == 200


def test_an_upload_over_the_limit_is_refused(client: TestClient, tmp_path: Path) -> None:
    answer = client.post("/runs/upload", files={"file": ("big.csv", b"a\n" + b"1\n" * 150_000, "text/csv")})
    assert answer.status_code == 413 and "exceeds" in answer.json()["detail"]
    assert not (tmp_path / "home" / "uploads").exists()
    assert _stored_files(client) == []


def _stored_files(client: TestClient) -> list[Path]:
    """Every file in the embedded artifact store (artifacts, and temp files left behind)."""
    root: Path = client.app.state.settings.resolved_artifact_dir()  # type: ignore[attr-defined]
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_paths_must_exist_and_stay_inside_the_allowed_folders(
    client: TestClient, data_dir: Path, tmp_path: Path
) -> None:
    missing = client.post("/runs", json={"path": str(data_dir / "nope.csv"), "goal": {"target": "revenue"}})
    assert missing.status_code == 422 and "no such file" in missing.json()["detail"]
    outside = tmp_path / "secret.csv"
    small_sales().to_csv(outside, index=False)
    escaped = client.post("/runs", json={"path": str(data_dir / ".." / "secret.csv"), "goal": {}})
    assert escaped.status_code == 422 and "outside the folders" in escaped.json()["detail"]


def test_a_goal_naming_no_column_is_refused(client: TestClient, data_dir: Path) -> None:
    small_sales().to_csv(data_dir / "s.csv", index=False)
    answer = client.post("/runs", json={"path": str(data_dir / "s.csv"), "goal": {"target": "profit"}})
    assert answer.status_code == 422 and "'profit' is not a column" in answer.json()["detail"]


def test_unknown_objects_are_404(client: TestClient) -> None:
    assert client.get("/runs/nope").status_code == 404
    assert client.get("/runs/nope/report").status_code == 404
    assert client.get("/decisions/nope").status_code == 404
    assert client.post("/decisions/nope", json={"option": "approve"}).status_code == 404


def test_decisions_exactly_once_and_validated(client: TestClient, data_dir: Path) -> None:
    small_sales().to_csv(data_dir / "s.csv", index=False)
    run_id = client.post(
        "/runs", json={"path": str(data_dir / "s.csv"), "goal": {"target": "revenue"}}
    ).json()["id"]
    request = wait_open(client, run_id, "source_review")
    wrong_gate = client.post(
        f"/decisions/{request['id']}", json={"option": "approve", "gate": "action_selection"}
    )
    assert wrong_gate.status_code == 422
    assert client.post(f"/decisions/{request['id']}", json={"option": "nope"}).status_code == 422
    assert (
        client.post(f"/decisions/{request['id']}", json={"option": "approve", "params": {"x": 1}}).status_code
        == 422
    )
    assert client.post(f"/decisions/{request['id']}", json={"option": "approve"}).status_code == 200
    again = client.post(f"/decisions/{request['id']}", json={"option": "approve"})
    assert again.status_code == 409 and "already decided" in again.json()["detail"]
    assert client.get(f"/runs/{run_id}/report").status_code == 404


def test_a_ragged_row_past_the_preview_fails_the_run_with_the_row_named(
    client: TestClient, data_dir: Path
) -> None:
    lines = ["a,revenue"] + [f"{i},{i * 2}" for i in range(3_000)] + ["1,2,3"]
    (data_dir / "late.csv").write_text("\n".join(lines) + "\n")
    run_id = client.post(
        "/runs", json={"path": str(data_dir / "late.csv"), "goal": {"target": "revenue"}}
    ).json()["id"]
    deadline = time.monotonic() + 30
    while (run := client.get(f"/runs/{run_id}").json())["status"] != "failed":
        assert time.monotonic() < deadline, run
        time.sleep(0.05)
    assert "has 3 fields, expected 2" in run["error"] and "ingest" in run["error"]
    assert client.get("/healthz").status_code == 200


def test_openapi_documents_the_endpoints(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/runs",
        "/runs/upload",
        "/runs/{run_id}",
        "/decisions",
        "/decisions/{request_id}",
        "/runs/{run_id}/events",
        "/runs/{run_id}/report",
        "/healthz",
    } <= set(paths)
