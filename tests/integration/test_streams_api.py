"""A stream through the API, on the real Kafka: a librdkafka producer writes the topic, a person registers
it as a stream source, gate 1 shows the sample and the inferred contract and approves it edited; then
windows arrive as the stream worker would send them (WindowAssessed on the events topic: the worker is
another service), and the routes show them paged and live (SSE), gate 2 records a policy, a snapshot of
windows becomes a batch run linked to the stream, and stopping the stream ends the live view."""

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from fastapi import FastAPI
from streamkit import make_topic
from streams_support import assessed, window

from lockflow.auth.testing import add_user, login
from lockflow.common.ids import new_id
from lockflow.common.outbox import add_to_outbox
from lockflow.embedded import create_app
from lockflow.gateway.testing import embedded_settings
from lockflow.gateway.testing import served as serve_app

pytestmark = pytest.mark.integration
READ_TIMEOUT = 10.0


@pytest.fixture
def topic(kafka_bootstrap: str) -> Iterator[str]:
    name = f"lockflow-test-api-{new_id()[-12:]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    make_topic(kafka_bootstrap, name, partitions=2)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(80):
        record = {"order_id": f"o{i}", "ts": f"2026-12-02T04:00:{i % 60:02d}Z", "amount": 5 + i, "shop": "a"}
        producer.produce(name, value=json.dumps(record).encode(), key=f"o{i}".encode())
    assert producer.flush(30) == 0
    yield name
    admin.delete_topics([name])[name].result(30)


@pytest.fixture
def app(tmp_path: Path, kafka_bootstrap: str) -> FastAPI:
    host = kafka_bootstrap.rpartition(":")[0]
    return create_app(embedded_settings(tmp_path, allow_hosts=[host]))


def _wait(what: str, probe: Any, seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {seconds} s")


def _open_request(client: httpx.Client, headers: dict[str, str], run_id: str, gate: str) -> dict[str, Any]:
    def probe() -> Any:
        found = [r for r in client.get("/decisions", params={"run_id": run_id}, headers=headers).json()]
        return next((r for r in found if r["gate"] == gate), None)

    return dict(_wait(f"gate {gate}", probe))


def _send_window(app: FastAPI, result: Any) -> None:
    """What the stream worker does: publish WindowAssessed (here through the outbox the relay publishes)."""
    with app.state.system.db.transaction() as session:
        add_to_outbox(session, assessed(result))


def _sse(
    client: httpx.Client, url: str, headers: dict[str, str], *, limit: int | None = None
) -> list[tuple[str, str | None, str]]:
    found: list[tuple[str, str | None, str]] = []
    fields: dict[str, str] = {}
    with client.stream("GET", url, headers=headers) as stream:
        assert stream.status_code == 200, stream.read()
        for line in stream.iter_lines():
            if line == "":
                if "data" in fields:
                    found.append((fields.get("event", "message"), fields.get("id"), fields["data"]))
                fields = {}
                if limit is not None and len(found) >= limit:
                    break
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
    return found


def _micro_batch(app: FastAPI, rows: list[dict[str, Any]]) -> str:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    uri, _ = app.state.system.artifacts.put_bytes(buffer.getvalue(), suffix=".parquet")
    return str(uri)


def test_a_stream_from_source_to_policy_to_snapshot(app: FastAPI, topic: str, kafka_bootstrap: str) -> None:
    with serve_app(app) as (base, _), httpx.Client(base_url=base, timeout=READ_TIMEOUT) as client:
        add_user(app.state.auth, "ana", ["analyst"])
        add_user(app.state.auth, "bob", ["analyst"])
        ana, bob = login(client, "ana"), login(client, "bob")
        config = {
            "bootstrap_servers": kafka_bootstrap,
            "topic": topic,
            "event_time_field": "ts",
            "key_field": "order_id",
            "window_seconds": 60,
            "grace_seconds": 5,
        }
        created = client.post(
            "/sources", json={"name": "orders", "type": "stream", "config": config}, headers=ana
        )
        assert created.status_code == 201, created.text
        tested = client.post("/sources/orders/test", headers=ana)
        assert tested.status_code == 200 and tested.json()["ok"], tested.text
        started = client.post("/sources/orders/runs", json={"name": "orders live"}, headers=ana)
        assert started.status_code == 201, started.text
        stream_id = started.json()["id"]

        # Gate 1: the sample, its schema, and the contract inferred from it.
        gate_1 = _open_request(client, ana, stream_id, "source_review")
        assert [o["name"] for o in gate_1["options"]] == ["approve", "resample", "abort"]
        context = gate_1["context"]
        assert context["rows"] == 80 and len(context["sample"]) == 10
        contract = context["contract"]
        assert contract["properties"]["amount"] == {"type": "integer", "minimum": 0}
        assert contract["required"] == ["order_id", "ts", "amount", "shop"]
        contract["properties"]["amount"]["maximum"] = 1000
        bad = client.post(
            f"/decisions/{gate_1['id']}",
            json={"option": "approve", "params": {"contract": {"type": "array"}}},
            headers=ana,
        )
        assert bad.status_code == 422 and "must describe an object" in bad.json()["detail"], bad.text
        approved = client.post(
            f"/decisions/{gate_1['id']}",
            json={"option": "approve", "params": {"contract": contract}},
            headers=ana,
        )
        assert approved.status_code == 200, approved.text

        def started_stream() -> Any:
            shown = client.get(f"/streams/{stream_id}", headers=ana).json()
            return shown if shown.get("started") else None

        shown = _wait("the stream's start", started_stream)
        assert shown["topic"] == topic and shown["contract"]["properties"]["amount"]["maximum"] == 1000
        assert shown["unapproved_mode"] == "hold" and shown["policy_version"] is None

        # The caller's streams only: bob sees none, and not this one.
        listed = client.get("/streams", headers=ana)
        assert [s["id"] for s in listed.json()] == [stream_id] and listed.headers["X-Total-Count"] == "1"
        assert client.get("/streams", headers=bob).json() == []
        assert client.get(f"/streams/{stream_id}", headers=bob).status_code == 404
        assert client.get(f"/streams/{stream_id}/windows", headers=bob).status_code == 404

        # Windows as the worker sends them; the first opens gate 2.
        uri_0 = _micro_batch(app, [{"order_id": "o1", "amount": 5}, {"order_id": "o2", "amount": 7}])
        uri_1 = _micro_batch(app, [{"order_id": "o3", "amount": 9, "shop": "b"}])
        _send_window(app, window(stream_id, 0, records=2, findings={"null_value": 1}, score=90.0, uri=uri_0))
        gate_2 = _open_request(client, ana, stream_id, "quality_review")
        kinds = {k["kind"]: k for k in gate_2["context"]["kinds"]}
        assert kinds["null_value"]["seen"] and kinds["null_value"]["records"] == 1
        rules = [{"kind": "null_value", "action": "repair_last_median", "field": "amount"}]
        decided = client.post(
            f"/decisions/{gate_2['id']}",
            json={"option": "apply_policy", "params": {"rules": rules}},
            headers=ana,
        )
        assert decided.status_code == 200, decided.text
        policies = _wait(
            "the policy", lambda: client.get(f"/streams/{stream_id}/policies", headers=ana).json()
        )
        assert [(p["version"], p["approved_by"], p["rules"][0]["action"]) for p in policies] == [
            (1, "ana", "repair_last_median")
        ]
        _send_window(app, window(stream_id, 1, records=1, score=96.0, policy_version=1, uri=uri_1))
        for i in range(2, 5):
            _send_window(app, window(stream_id, i, records=0, score=100.0, policy_version=1))

        # Paged, newest first, with the total; and live over SSE from any cursor.
        def all_windows() -> Any:
            page = client.get(f"/streams/{stream_id}/windows", params={"limit": 2}, headers=ana)
            return page if page.headers["X-Total-Count"] == "5" else None

        page = _wait("five windows", all_windows)
        assert [w["window_start"][11:16] for w in page.json()] == ["04:04", "04:03"]
        second = client.get(
            f"/streams/{stream_id}/windows", params={"limit": 2, "offset": 2}, headers=ana
        ).json()
        assert [w["window_start"][11:16] for w in second] == ["04:02", "04:01"]
        live = _sse(client, f"/streams/{stream_id}/windows/stream", ana, limit=5)
        assert [json.loads(d)["window_start"][11:16] for _, _, d in live] == [
            "04:00",
            "04:01",
            "04:02",
            "04:03",
            "04:04",
        ]
        resumed = _sse(
            client, f"/streams/{stream_id}/windows/stream", {**ana, "Last-Event-ID": str(live[2][1])}, limit=2
        )
        assert [e[1] for e in resumed] == [live[3][1], live[4][1]]
        shown = client.get(f"/streams/{stream_id}", headers=ana).json()
        assert (shown["windows"], shown["records"], shown["policy_version"]) == (5, 3, 1)

        # A snapshot of the first two windows: their micro-batches as one dataset, a batch run of its own.
        refused = client.post(f"/streams/{stream_id}/snapshots", json={}, headers=ana)
        assert refused.status_code == 422
        ranged = client.post(
            f"/streams/{stream_id}/snapshots",
            json={"start": "2026-12-02T04:00:00Z", "every_minutes": 60},
            headers=ana,
        )
        assert ranged.status_code == 422 and "takes the last N windows" in ranged.text, ranged.text
        empty = client.post(
            f"/streams/{stream_id}/snapshots", json={"last": 2, "every_minutes": 60}, headers=ana
        )
        assert empty.status_code == 422 and "none of the 2 selected windows" in empty.json()["detail"]
        snap = client.post(
            f"/streams/{stream_id}/snapshots",
            json={
                "start": "2026-12-02T04:00:00Z",
                "end": "2026-12-02T04:02:00Z",
                "goal": {"target": "amount"},
            },
            headers=ana,
        )
        assert snap.status_code == 201, snap.text
        assert (snap.json()["windows"], snap.json()["rows"]) == (2, 3)
        run_id = snap.json()["id"]
        snap_gate = _open_request(client, ana, run_id, "source_review")
        assert snap_gate["context"]["rows"] == 3 and {c["name"] for c in snap_gate["context"]["schema"]} == {
            "order_id",
            "amount",
            "shop",
        }
        assert [s["id"] for s in client.get(f"/streams/{stream_id}", headers=ana).json()["snapshots"]] == [
            run_id
        ]
        assert (
            client.get(f"/streams/{stream_id}", headers=ana).json()["schedule"] is None
        )  # refused: none set
        hourly = client.post(
            f"/streams/{stream_id}/snapshots", json={"last": 5, "every_minutes": 60}, headers=ana
        )
        assert hourly.status_code == 201 and hourly.json()["windows"] == 5, hourly.text
        schedule = client.get(f"/streams/{stream_id}", headers=ana).json()["schedule"]
        assert (schedule["last_windows"], schedule["every_minutes"], schedule["created_by"]) == (5, 60, "ana")
        assert client.get("/streams", headers=ana).headers["X-Total-Count"] == "1"  # a snapshot is no stream

        # A new kind of finding reopens gate 2 (with an alert); stopping there ends the live view.
        _send_window(app, window(stream_id, 5, records=10, findings={"duplicate_key": 2}, policy_version=1))
        reopened = _open_request(client, ana, stream_id, "quality_review")
        assert reopened["id"] != gate_2["id"] and "2 repeated keys" in reopened["context"]["reasons"][0]
        alerts = _wait(
            "the alert",
            lambda: [
                a for a in client.get("/alerts", headers=ana).json() if a["kind"] == "stream_gate_reopened"
            ],
        )
        assert alerts[0]["run_id"] == stream_id
        assert (
            client.post(
                f"/decisions/{reopened['id']}", json={"option": "stop", "rationale": "done"}, headers=ana
            ).status_code
            == 200
        )
        _wait(
            "the stop", lambda: client.get(f"/streams/{stream_id}", headers=ana).json()["status"] == "aborted"
        )
        ended = _sse(
            client, f"/streams/{stream_id}/windows/stream", {**ana, "Last-Event-ID": str(live[4][1])}
        )
        assert [e[0] for e in ended] == ["window", "ended"]
        assert json.loads(ended[-1][2]) == {"status": "aborted"}
