"""Monitoring end to end: a real Prometheus scrapes every service of a distributed cluster during runs,
every Grafana panel's query runs through its HTTP API (the core ones return data), and a forced stage
failure raises an alert that reaches a webhook receiver (signed) and GET /alerts and the alert stream.

Prometheus is Debian's package, started here on its own port and data folder; Grafana cannot run here,
so its dashboards are proven by their queries (`$__rate_interval` replaced by 1m, what Grafana would
choose with this 1 s scrape interval and a one-minute panel step).
"""

import hashlib
import hmac
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from lockflow.auth.testing import admin_headers, create_users
from lockflow.common.runtime import WORKER_NAMES
from lockflow.devcluster import DevCluster, free_port

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "monitoring" / "grafana" / "dashboards"
SECRET = "webhook-signing-secret"
TIMEOUT = 120.0
# Panels that must return data after the runs below (a DLQ or retry panel rightly stays empty).
CORE = {
    "lockflow-overview": {"Runs started per second", "Runs ended by outcome", "Runs active by state",
                          "Targets up", "HTTP requests by route and status"},
    "lockflow-stages": {"Commands by stage and outcome", "Commands handled (total)", "Failures by error type",
                        "Time since last success"},
    "lockflow-kafka": {"Consumer lag by group and topic", "Records consumed by topic and outcome",
                       "Seconds since a group last polled"},
    "lockflow-decisions": {"Decisions pending by gate", "Oldest pending decision", "Decisions asked (total)",
                           "Decisions made by option (total)"},
    "lockflow-resources": {"CPU by process", "Resident memory by process", "Open files by process",
                           "Builds running"},
}  # fmt: skip


class Receiver(BaseHTTPRequestHandler):
    """A webhook receiver: keeps every POST (headers and body); answers 500 to the first, as a flaky one."""

    calls: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.calls.append((dict(self.headers), body))
        self.send_response(500 if len(self.calls) == 1 else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def webhook() -> Iterator[str]:
    Receiver.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


@pytest.fixture
def monitored(tmp_path: Path, cluster_env: dict[str, str], webhook: str) -> Iterator[DevCluster]:
    env = {
        **cluster_env,
        "LOCKFLOW_ALERT_WEBHOOK_URL": webhook,
        "LOCKFLOW_ALERT_WEBHOOK_SECRET": SECRET,
        "LOCKFLOW_PUBLIC_URL": "https://lockflow.example",
    }
    running = DevCluster(env=env, logs=tmp_path / "logs", private=tmp_path / "private")
    try:
        # Eight processes importing pandas at once on a shared 2-core machine: give them time.
        running.start(timeout=300)
        yield running
    finally:
        running.stop()


@pytest.fixture
def prometheus(tmp_path: Path, monitored: DevCluster) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail(
            "prometheus is missing: `bash scripts/services.sh up` installs Debian's package", pytrace=False
        )
    workers = [f"127.0.0.1:{monitored.metrics_ports[name]}" for name in WORKER_NAMES]
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ROOT / "monitoring" / "alerts.yml")],
        "scrape_configs": [
            {
                "job_name": "lockflow-gateway",
                "static_configs": [{"targets": [f"127.0.0.1:{monitored.port}"]}],
            },
            {"job_name": "lockflow-workers", "static_configs": [{"targets": workers}]},
        ],
    }
    (tmp_path / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, (tmp_path / "prometheus.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "prometheus did not become ready"
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def _query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", f"{expr}: {answer}"
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def _panels() -> list[tuple[str, str, str]]:
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            assert panel["datasource"] == {"type": "prometheus", "uid": "lockflow-prometheus"}
            for target in panel["targets"]:
                found.append((board["uid"], panel["title"], target["expr"]))
    return found


def _wait_for(predicate: Any, what: str, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _open_request(client: httpx.Client, run_id: str, gate: str) -> dict[str, Any] | None:
    requests = client.get("/decisions", params={"run_id": run_id}).json()
    return next((r for r in requests if r["gate"] == gate), None)


def test_prometheus_scrapes_every_service_panels_answer_and_a_failure_alerts(
    monitored: DevCluster, prometheus: str, sales: pd.DataFrame, s3_server: Any, s3_artifacts: str
) -> None:
    client = httpx.Client(base_url=monitored.url, timeout=60)
    auth = httpx.Client(base_url=monitored.auth_url, timeout=30)
    people = create_users(auth, admin_headers(auth, monitored.home("auth")), {"ana": ["analyst"]})
    client.headers.update(people["ana"])

    # Every worker's own port answers its probes, against the real Kafka, PostgreSQL, Redis and S3.
    for name in WORKER_NAMES:
        assert httpx.get(f"{monitored.metrics_url(name)}/healthz", timeout=5).status_code == 200
        ready = httpx.get(f"{monitored.metrics_url(name)}/readyz", timeout=10)
        assert ready.status_code == 200 and ready.json()["failed"] == [], (name, ready.text)
    assert client.get("/readyz").json()["checks"] == {
        "kafka": "ok", "database": "ok", "redis": "ok", "object_store": "ok"
    }  # fmt: skip

    # The live alert stream, opened before anything fails.
    streamed: list[dict[str, Any]] = []

    def listen() -> None:
        with httpx.stream(
            "GET", f"{monitored.url}/alerts/stream", headers=people["ana"], timeout=TIMEOUT
        ) as r:
            for line in r.iter_lines():
                if line.startswith("data:"):
                    streamed.append(json.loads(line.removeprefix("data:").strip()))
                    return

    threading.Thread(target=listen, daemon=True).start()

    # A good run, decided at gate 1, left waiting at gate 2.
    content = sales.to_csv(index=False).encode()
    created = client.post(
        "/runs/upload", files={"file": ("sales.csv", content, "text/csv")}, data={"target": "revenue"}
    )
    assert created.status_code == 201, created.text
    good = created.json()["id"]
    gate1 = _wait_for(lambda: _open_request(client, good, "source_review"), "gate 1")
    decided = client.post(
        f"/decisions/{gate1['id']}", json={"option": "approve", "params": {}, "rationale": "ok"}
    )
    assert decided.status_code == 200, decided.text
    _wait_for(lambda: _open_request(client, good, "quality_review"), "gate 2")

    # A forced stage failure: an S3 source whose prefix holds no file, so ingest fails the run.
    bucket = s3_artifacts.removeprefix("s3://").split("/", 1)[0]
    config = {
        "bucket": bucket, "prefix": f"{s3_artifacts.split('/', 3)[3]}-empty/", "format": "csv",
        "endpoint_url": s3_server.endpoint, "addressing_style": "path", "region": "us-east-1",
        "access_key_id": s3_server.access_key_id, "secret_access_key": s3_server.secret_access_key,
    }  # fmt: skip
    source = client.post("/sources", json={"name": "empty", "type": "s3", "config": config})
    assert source.status_code == 201, source.text
    failing = client.post(f"/sources/{source.json()['id']}/runs", json={"goal": {"target": "revenue"}})
    assert failing.status_code == 201, failing.text
    bad = failing.json()["id"]
    run = _wait_for(
        lambda: (r := client.get(f"/runs/{bad}").json())["status"] == "failed" and r, "the failure"
    )
    assert run["error"].startswith("ingest:")

    # The alert: in GET /alerts, on the stream, and at the webhook (the first call refused, then retried).
    listed = _wait_for(lambda: client.get("/alerts", params={"run_id": bad}).json(), "GET /alerts")
    assert [(a["kind"], a["severity"], a["subject"]) for a in listed] == [
        ("stage_failed", "critical", "ingest")
    ]
    assert _wait_for(lambda: streamed, "the alert stream")[0]["id"] == listed[0]["id"]
    delivered = _wait_for(
        lambda: len(Receiver.calls) >= 2 and Receiver.calls, "the webhook's retry", timeout=60
    )
    headers, body = delivered[-1]
    stamp = headers["X-Lockflow-Request-Timestamp"]
    expected = hmac.new(SECRET.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    assert headers["X-Lockflow-Signature"] == f"v0={expected}"
    message = json.loads(body)
    assert "Stage ingest failed" in message["text"]
    assert f"https://lockflow.example/runs/{bad}" in message["text"]
    assert message["lockflow"]["id"] == listed[0]["id"]
    _wait_for(
        lambda: client.get("/alerts", params={"run_id": bad}).json()[0]["delivery"] == "delivered",
        "delivered",
    )

    # Prometheus: every target up; then every panel's query succeeds, the core ones with data.
    targets = _wait_for(
        lambda: (
            (t := _query(prometheus, 'up{job=~"lockflow.*"} == 1')) and len(t) == len(WORKER_NAMES) + 1 and t
        ),
        "every target up",
    )
    assert {t["metric"]["job"] for t in targets} == {"lockflow-gateway", "lockflow-workers"}
    _wait_for(lambda: _query(prometheus, "lockflow_kafka_consumer_lag_messages"), "the lag (every 15 s)")
    _wait_for(lambda: _query(prometheus, 'lockflow_runs_completed_total{outcome="failed"}'), "the failed run")
    _wait_for(lambda: _query(prometheus, "lockflow_gates_decided_total"), "the decision")
    time.sleep(3)  # a few more scrapes, so each rate has two points after the last change
    empty = []
    for uid, title, expr in _panels():
        result = _query(prometheus, expr.replace("$__rate_interval", "1m"))
        if title in CORE.get(uid, set()) and not result:
            empty.append(f"{uid}: {title}: {expr}")
    assert not empty, "core panels without data:\n" + "\n".join(empty)
    assert {uid for uid, _, _ in _panels()} == set(CORE)
    decided_by = _query(prometheus, "sum by (gate, option) (lockflow_gates_decided_total)")
    assert {(r["metric"]["gate"], r["metric"]["option"]) for r in decided_by} == {
        ("source_review", "approve")
    }
    failures = _query(prometheus, "sum by (stage, error_type) (lockflow_stage_failures_total)")
    assert {r["metric"]["stage"] for r in failures} == {"ingest"}
    # No series carries a run id: the label values seen are from closed sets.
    series = httpx.get(f"{prometheus}/api/v1/series", params={"match[]": '{__name__=~"lockflow_.*"}'}).json()[
        "data"
    ]
    assert not [s for s in series if good in json.dumps(s) or bad in json.dumps(s)]
