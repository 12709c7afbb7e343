"""The source registry through the gateway (embedded, SQLite): CRUD, secrets, safety, gate 1 and drift."""

import sqlite3
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from lockflow.auth.testing import sign_in
from lockflow.embedded import create_app
from lockflow.gateway.testing import embedded_settings

TOKEN = "tok-very-secret-123"


@pytest.fixture
def client(tmp_path: Path, data_dir: Path) -> Iterator[TestClient]:
    settings = embedded_settings(tmp_path, uploads_per_minute=3)
    with TestClient(create_app(settings)) as test_client:
        test_client.headers.update(sign_in(test_client, "ana", ["analyst"]))
        yield test_client


@pytest.fixture
def recorder() -> Iterator[tuple[int, list[str]]]:
    """A server on 127.0.0.1 that records every request it gets."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_a: Any) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"[]")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port, seen
    server.shutdown()


def wait_open(client: TestClient, run_id: str, gate: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for request in client.get("/decisions", params={"run_id": run_id}).json():
            if request["gate"] == gate and request["status"] == "open":
                return request
        run = client.get(f"/runs/{run_id}").json()
        assert run["status"] not in ("failed", "aborted"), run
        time.sleep(0.05)
    raise AssertionError(f"no {gate} request")


def test_crud_never_returns_secrets_and_stores_them_encrypted(client: TestClient, tmp_path: Path) -> None:
    body = {
        "name": "shop-api",
        "type": "api",
        "config": {"url": "https://api.example.com/v1/orders", "auth": {"type": "bearer", "token": TOKEN}},
    }
    created = client.post("/sources", json=body)
    assert created.status_code == 201, created.text
    source = created.json()
    assert source["config"]["auth"]["token"] == "********" and source["secret_fields"] == ["auth.token"]
    for response in (
        client.get("/sources"),
        client.get(f"/sources/{source['id']}"),
        client.get("/sources/shop-api"),
    ):
        assert response.status_code == 200 and TOKEN not in response.text
    raw = sqlite3.connect(tmp_path / "lockflow.db").execute("SELECT config, secrets FROM sources").fetchone()
    assert TOKEN not in raw[0] and TOKEN not in raw[1] and raw[1].startswith("gAAAA")  # a Fernet token
    assert client.post("/sources", json=body).status_code == 409
    updated = client.patch(
        "/sources/shop-api", json={"config": {"auth": {"token": "********"}, "max_pages": 5}}
    )
    assert updated.status_code == 200 and updated.json()["config"]["max_pages"] == 5
    assert updated.json()["config"]["auth"]["token"] == "********"
    assert client.delete("/sources/shop-api").status_code == 204
    assert client.get("/sources/shop-api").status_code == 404


def test_config_errors_are_field_level(client: TestClient) -> None:
    response = client.post(
        "/sources",
        json={"name": "bad", "type": "api", "config": {"url": "ftp://x", "max_pages": 0, "extra": 1}},
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"url", "max_pages", "extra"} <= fields


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"type": "api", "config": {"url": "http://127.0.0.1:{port}/x"}}, "loopback"),
        ({"type": "api", "config": {"url": "http://2130706433:{port}/x"}}, "loopback"),
        ({"type": "api", "config": {"url": "http://169.254.169.254/latest/meta-data"}}, "metadata"),
        ({"type": "api", "config": {"url": "file:///etc/passwd"}}, "url"),
        ({"type": "database", "config": {"url": "mssql+pyodbc://u:p@h/db", "table": "t"}}, "not allowed"),
        ({"type": "file", "config": {"path": "../../etc/passwd"}}, "outside the folders"),
        ({"type": "file", "config": {"path": "/etc/passwd"}}, "outside the folders"),
    ],
)
def test_hostile_configs_are_refused_before_any_request(
    client: TestClient, recorder: tuple[int, list[str]], config: dict[str, Any], message: str
) -> None:
    port, seen = recorder
    body = {"name": "hostile", **config}
    body["config"] = {
        k: v.replace("{port}", str(port)) if isinstance(v, str) else v for k, v in config["config"].items()
    }
    response = client.post("/sources", json=body)
    assert response.status_code == 422, response.text
    assert message in response.text
    assert seen == []
    assert client.get("/sources").json() == []  # nothing half-written
    assert client.get("/healthz").status_code == 200  # still serving


def test_uploads_are_rate_limited_and_a_known_file_skips_inference(client: TestClient) -> None:
    csv = pd.DataFrame({"a": range(20), "b": range(20)}).to_csv(index=False).encode()
    first = client.post("/sources/upload", files={"file": ("d.csv", csv, "text/csv")}, data={"name": "one"})
    assert first.status_code == 201, first.text
    assert first.json()["schema_cached"] is False and [c["name"] for c in first.json()["columns"]] == [
        "a",
        "b",
    ]
    second = client.post("/sources/upload", files={"file": ("d.csv", csv, "text/csv")}, data={"name": "two"})
    assert (
        second.json()["schema_cached"] is True
        and second.json()["content_hash"] == first.json()["content_hash"]
    )
    client.post(
        "/sources/upload", files={"file": ("e.csv", csv + b"5,5\n", "text/csv")}, data={"name": "three"}
    )
    limited = client.post(
        "/sources/upload", files={"file": ("d.csv", csv, "text/csv")}, data={"name": "four"}
    )
    assert limited.status_code == 429 and "limit 3" in limited.json()["detail"]
    assert int(limited.headers["Retry-After"]) >= 1
    other = client.post(
        "/sources/upload",
        files={"file": ("d.csv", csv, "text/csv")},
        data={"name": "five"},
        headers=sign_in(client, "someone-else", ["analyst"]),
    )
    assert other.status_code == 201


def test_gate_1_shows_the_source_and_later_runs_report_drift(client: TestClient, data_dir: Path) -> None:
    path = data_dir / "sales.csv"
    pd.DataFrame({"region": ["a", "b"] * 50, "revenue": [float(i) for i in range(100)]}).to_csv(
        path, index=False
    )
    source = client.post(
        "/sources", json={"name": "sales", "type": "file", "config": {"path": str(path)}}
    ).json()
    tested = client.post("/sources/sales/test").json()
    assert tested["ok"] and tested["readable"] and tested["seconds"] >= 0
    run = client.post("/sources/sales/runs", json={"goal": {"target": "revenue"}})
    assert run.status_code == 201, run.text
    gate = wait_open(client, run.json()["id"], "source_review")
    context = gate["context"]
    assert context["config"] == {**source["config"]} and context["health"]["ok"] is True
    assert [c["name"] for c in context["schema"]] == ["region", "revenue"] and len(context["sample"]) == 10
    assert context["drift"] is None  # no contract yet
    assert client.post(f"/decisions/{gate['id']}", json={"option": "approve"}).status_code == 200
    contract = None
    deadline = time.monotonic() + 30
    while contract is None and time.monotonic() < deadline:  # the decision is applied asynchronously
        contract = client.get("/sources/sales").json()["contract"]
        time.sleep(0.05)
    assert contract is not None
    assert [c["name"] for c in contract["columns"]] == ["region", "revenue"]
    # The source changes: a column is renamed and another retyped.
    pd.DataFrame({"area": ["a", "b"] * 50, "revenue": ["n/a"] * 100}).to_csv(path, index=False)
    again = client.post("/sources/sales/runs", json={"goal": {}}).json()
    drift = wait_open(client, again["id"], "source_review")["context"]["drift"]
    assert {(d["column"], d["change"]) for d in drift} == {
        ("region", "removed"),
        ("revenue", "type_changed"),
        ("area", "added"),
    }


def test_a_source_run_takes_rules_and_refuses_bad_ones(client: TestClient, data_dir: Path) -> None:
    path = data_dir / "ruled.csv"
    pd.DataFrame({"region": ["a", "b"] * 50, "revenue": [float(i) for i in range(100)]}).to_csv(
        path, index=False
    )
    client.post("/sources", json={"name": "ruled", "type": "file", "config": {"path": str(path)}})
    bad = client.post("/sources/ruled/runs", json={"rules": "rules:\n  - {column: revenue, unique: maybe}\n"})
    assert bad.status_code == 422 and "unique" in bad.json()["detail"], bad.text
    rules = "rules:\n  - {column: revenue, between: [0, 89]}\n"
    run = client.post("/sources/ruled/runs", json={"goal": {"target": "revenue"}, "rules": rules})
    assert run.status_code == 201, run.text
    gate = wait_open(client, run.json()["id"], "source_review")
    assert client.post(f"/decisions/{gate['id']}", json={"option": "approve"}).status_code == 200
    found = {f["id"]: f for f in wait_open(client, run.json()["id"], "quality_review")["context"]["findings"]}
    assert found["rule:revenue between"]["count"] == 10
