"""A live stream end to end, every service its own process (the stream worker too), on the real Kafka.

A producer outside lockflow (librdkafka) writes JSON records to a topic; a person registers it as a
stream source, approves the contract inferred at gate 1, and while no policy exists the worker holds
the records. The first closed window opens gate 2; the person approves a standing policy for every kind
of finding seen, the held records are replayed through it, and each produced record comes out exactly
once: in `.clean`, or in `.quarantine` with the reason in its headers, both naming the policy version.
The stream's page in the browser shows the windows, and one closed while it is open arrives live. A
snapshot of the windows then runs through the batch stages to its report.
"""

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer
from streamkit import make_topic, read_all

from lockflow.auth.testing import PASSWORD, admin_headers, create_users, share_run
from lockflow.common.streams import STREAM_FINDINGS
from lockflow.devcluster import DevCluster

pytestmark = pytest.mark.e2e
TIMEOUT = 120.0
WINDOW_SECONDS = 2
START = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)
NEXT_WINDOW = "2026-12-02 04:01:00 UTC"  # as the page shows the window of the records at 60 s
FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
CHROMIUM = Path("/usr/bin/chromium")


def _wait(what: str, probe: Callable[[], Any], seconds: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {seconds:.0f} s")


def _open_request(client: httpx.Client, run_id: str, gate: str) -> dict[str, Any]:
    def probe() -> Any:
        run = client.get(f"/runs/{run_id}").json()
        assert run["status"] not in ("failed", "aborted"), f"run ended: {run['status']}: {run['error']}"
        return next(
            (r for r in client.get("/decisions", params={"run_id": run_id}).json() if r["gate"] == gate), None
        )

    return dict(_wait(f"an open {gate} request of {run_id}", probe))


def _decide(
    client: httpx.Client, request: dict[str, Any], option: str, params: dict[str, Any] | None = None
) -> None:
    answer = client.post(f"/decisions/{request['id']}", json={"option": option, "params": params or {}})
    assert answer.status_code == 200, answer.text


def _watch_in_the_browser(
    cluster: DevCluster, stream_id: str, tmp_path: Path, close_next_window: Callable[[], None]
) -> None:
    """Run frontend/e2e/stream.spec.ts as the analyst; once it shows the page, close one more window."""
    assert CHROMIUM.is_file(), "Debian's chromium is missing: run `make ui-deps` (apt-get install chromium)"
    npx = shutil.which("npx")
    assert npx, "Node (npx) is not installed: run `make ui-deps`"
    ready = tmp_path / "stream-page-ready"
    env = {
        **os.environ,
        "LOCKFLOW_URL": cluster.url,
        "LOCKFLOW_PASSWORD": PASSWORD,
        "CHROMIUM": str(CHROMIUM),
        "LOCKFLOW_STREAM_ID": stream_id,
        "LOCKFLOW_STREAM_READY": str(ready),
        "LOCKFLOW_STREAM_NEXT_WINDOW": NEXT_WINDOW,
    }
    with tempfile.TemporaryFile("w+") as out:
        spec = subprocess.Popen(
            [npx, "--no-install", "playwright", "test", "e2e/stream.spec.ts"],
            cwd=FRONTEND,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            _wait("the stream page showing its windows", lambda: ready.exists() or spec.poll() is not None)
            if ready.exists():
                close_next_window()
            spec.wait(timeout=TIMEOUT)
        finally:
            if spec.poll() is None:
                spec.kill()
        out.seek(0)
        assert spec.returncode == 0, f"the stream page in the browser failed:\n{out.read()}"


def _record(n: int, second: float, **fields: Any) -> bytes:
    at = START + timedelta(seconds=second)
    value = {
        "order_id": f"o{n}",
        "ts": at.isoformat().replace("+00:00", "Z"),
        "amount": 10 + n % 50,
        "shop": "a",
    }
    value.update(fields)
    return json.dumps(value).encode()


def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    """Send the records; each carries its event time as its Kafka timestamp, as producers usually do
    (the worker's event time for a record it cannot read)."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for value in values:
        producer.produce(topic, value=value, timestamp=_timestamp_ms(value))
    assert producer.flush(30) == 0


def _timestamp_ms(value: bytes) -> int:
    try:
        at = datetime.fromisoformat(json.loads(value)["ts"].replace("Z", "+00:00"))
    except ValueError:  # the record that is not JSON: sent at 2.3 s
        at = START + timedelta(seconds=2.3)
    return int(at.timestamp() * 1000)


def test_a_producer_a_person_a_policy_and_every_record_once(
    cluster: DevCluster, kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = f"{cluster.env['LOCKFLOW_TOPIC_PREFIX']}-orders"
    make_topic(kafka_bootstrap, topic, partitions=2)
    # Window 0: clean records only (what gate 1 samples and infers the contract from).
    first = [_record(n, n * 0.05) for n in range(40)]
    _produce(kafka_bootstrap, topic, first)

    client = httpx.Client(base_url=cluster.url, timeout=30)
    auth = httpx.Client(base_url=cluster.auth_url, timeout=30)
    people = create_users(
        auth, admin_headers(auth, cluster.home("auth")), {"ana": ["analyst"], "apo": ["approver"]}
    )
    client.headers.update(people["ana"])
    config = {
        "bootstrap_servers": kafka_bootstrap,
        "topic": topic,
        "event_time_field": "ts",
        "key_field": "order_id",
        "window_seconds": WINDOW_SECONDS,
        "grace_seconds": 1,
        "unapproved_mode": "hold",
    }
    created = client.post("/sources", json={"name": "orders", "type": "stream", "config": config})
    assert created.status_code == 201, created.text
    started = client.post("/sources/orders/runs", json={"name": "orders live"})
    assert started.status_code == 201, started.text
    stream_id = started.json()["id"]

    gate_1 = _open_request(client, stream_id, "source_review")
    contract = gate_1["context"]["contract"]
    assert set(contract["required"]) == {"order_id", "ts", "amount", "shop"}
    contract["properties"]["amount"]["maximum"] = 1000
    _decide(client, gate_1, "approve", {"contract": contract})

    # Window 1: an amount over the contract's maximum, a record that is not JSON and one without a shop;
    # then records at 10 s move event time on, so windows 0 and 1 close (the watermark passes their grace).
    second = [
        _record(100, 2.2, amount=5000),
        b"{not json",
        json.dumps({"order_id": "o101", "ts": "2026-12-02T04:00:02.4Z", "amount": 3}).encode(),
        *[_record(n, 2.5 + n * 0.01) for n in range(102, 120)],
    ]
    later = [_record(n, 10 + n * 0.01) for n in range(120, 130)]
    _produce(kafka_bootstrap, topic, second + later)

    def first_two() -> Any:
        page = client.get(f"/streams/{stream_id}/windows", params={"limit": 100}).json()
        early = [w for w in page if w["window_start"] < "2026-12-02T04:00:04"]
        return early if len(early) == 2 else None

    held = _wait("windows 0 and 1 closed and stored", first_two)
    summary = [(w["window_start"][11:19], w["records"], w["findings"], w["late"]) for w in held]
    assert {w["mode"] for w in held} == {"hold"}, summary
    # The record that is not JSON counts in the window of its Kafka timestamp.
    assert sum(w["records"] for w in held) == len(first) + len(second), summary
    gate_2 = _open_request(client, stream_id, "quality_review")
    seen = {k["kind"] for k in gate_2["context"]["kinds"] if k["seen"]} | {
        kind for w in held for kind, count in w["findings"].items() if count
    }
    assert {"malformed", "null_value", "out_of_range"} <= seen, summary
    rules = [{"kind": kind, "action": "quarantine"} for kind in sorted(seen)]
    _decide(client, gate_2, "apply_policy", {"rules": rules})

    # Records far later close every window with the held ones, which are replayed through policy 1.
    last = [_record(n, 30 + n * 0.01) for n in range(130, 135)]
    # Sent once the browser shows the stream: they close the window at 60 s (NEXT_WINDOW) and the one at 30 s.
    closing = [_record(n, 60 + n * 0.01) for n in range(135, 140)] + [_record(140, 90)]
    _produce(kafka_bootstrap, topic, last)
    closed = first + second + later
    outputs = read_all(
        kafka_bootstrap, [f"{topic}.clean", f"{topic}.quarantine"], until=len(closed), quiet_s=20
    )
    ids = [o.record_id for o in outputs]
    assert len(ids) == len(set(ids)), "a record came out twice"
    quarantined = [o for o in outputs if o.topic.endswith(".quarantine")]
    reasons = {o.headers["lockflow-reason"] for o in quarantined}
    kinds = {r.split(":")[0] for reason in reasons for r in reason.split(",")}
    shown = [(o.topic.rsplit(".", 1)[1], o.value[:40], o.headers.get("lockflow-reason")) for o in quarantined]
    assert {"malformed", "out_of_range", "null_value"} <= kinds, (len(outputs), shown)
    by_value = {o.value: o for o in outputs}
    assert by_value[b"{not json"].topic.endswith(".quarantine")
    assert by_value[_record(100, 2.2, amount=5000)].topic.endswith(".quarantine")
    assert all(o.headers["lockflow-policy-version"] == "1" for o in outputs)  # held, then replayed under 1
    assert len(ids) == len(closed)  # the last records' window is still open: nothing of it yet
    assert len(outputs) - len(quarantined) >= 60

    # The windows as the API shows them: every closed record counted once, each window naming its mode.
    def windows() -> Any:
        page = client.get(f"/streams/{stream_id}/windows", params={"limit": 100}).json()
        counted = sum(w["records"] for w in page if w["window_start"] < "2026-12-02T04:00:12")
        return page if counted == len(closed) else None

    shown = _wait("every closed record counted in the API's windows", windows)
    assert {w["mode"] for w in shown} <= {"hold", "policy"}
    assert client.get(f"/streams/{stream_id}/policies").json()[0]["version"] == 1
    assert set(STREAM_FINDINGS) >= seen

    # In the browser: the stream's page shows the windows so far, and the next one arrives live.
    _watch_in_the_browser(cluster, stream_id, tmp_path, lambda: _produce(kafka_bootstrap, topic, closing))

    # A snapshot of the windows runs through every batch stage to a report.
    snap = client.post(f"/streams/{stream_id}/snapshots", json={"last": 10, "goal": {"target": "amount"}})
    assert snap.status_code == 201, snap.text
    run_id = snap.json()["id"]
    _decide(client, _open_request(client, run_id, "source_review"), "approve")
    _decide(client, _open_request(client, run_id, "quality_review"), "accept_as_is")
    _decide(client, _open_request(client, run_id, "analytics_review"), "accept")
    _decide(client, _open_request(client, run_id, "insight_review"), "accept")
    # Gate 5 is an approver's, and not the one's who started the run (shared with her for that).
    share_run(auth, people["ana"], run_id, "apo")
    gate_5 = _open_request(client, run_id, "action_selection")
    client.headers.update(people["apo"])
    _decide(client, gate_5, "choose", {"selected": [item["id"] for item in gate_5["context"]["items"][:2]]})
    _wait("the snapshot's report", lambda: client.get(f"/runs/{run_id}").json()["status"] == "completed")
    report = client.get(f"/runs/{run_id}/report", params={"format": "json"})
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["run"]["id"] == run_id and body["dataset"]["ingested"]["rows"] == snap.json()["rows"]
