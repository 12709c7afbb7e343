"""Metrics: every metric's name and labels (bounded sets only), the folding of unknown values, the
database gauges, the worker's /metrics, /healthz and /readyz, and a stage worker's counts."""

import asyncio
import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import Counter
from prometheus_client.parser import text_string_to_metric_families

from lockflow.common import metrics
from lockflow.common.artifacts import LocalArtifactStore
from lockflow.common.bus.memory import InMemoryBus
from lockflow.common.cache import MemoryCache
from lockflow.common.db import Database, DecisionRequestRow, RunRow
from lockflow.common.errors import InvalidInput, StageError
from lockflow.common.events import Command, StageFailed
from lockflow.common.health import check_kafka, readiness
from lockflow.common.settings import CommonSettings
from lockflow.common.worker import StageDeps, StageWorker, error_type_of
from lockflow.devcluster import free_port

# Written apart from the metrics module: the label names a lockflow metric may carry, each from a
# closed set. A run id, a user or a key never is one.
ALLOWED_LABELS = {
    "service", "stage", "gate", "option", "outcome", "error_type", "topic", "group",
    "method", "route", "status", "state", "version", "python", "mode", "kind", "reason",
}  # fmt: skip
FORBIDDEN = {"run_id", "run", "user", "username", "key", "event_id", "request_id", "path"}


def _families() -> list[object]:
    return list(metrics.REGISTRY.collect())


def test_every_declared_label_is_a_bounded_one() -> None:
    """Declared label names are checked, not only those of samples other tests happened to emit."""
    collectors = set(metrics.REGISTRY._names_to_collectors.values())
    assert collectors
    for collector in collectors:
        labels = set(getattr(collector, "_labelnames", ()))
        assert labels <= ALLOWED_LABELS, (collector, labels - ALLOWED_LABELS)
        assert not labels & FORBIDDEN


def test_every_metric_is_lockflow_prefixed_in_base_units_with_bounded_labels() -> None:
    names = set()
    for family in _families():
        name = family.name  # type: ignore[attr-defined]
        names.add(name)
        assert name.startswith("lockflow_"), name
        assert not any(unit in name for unit in ("_ms", "_milliseconds", "_kb", "_mb", "_minutes")), name
        for sample in family.samples:  # type: ignore[attr-defined]
            labels = set(sample.labels) - {"le", "quantile"}
            assert labels <= ALLOWED_LABELS, (sample.name, labels - ALLOWED_LABELS)
            assert not labels & FORBIDDEN
    # The counters' exposed names end in _total (prometheus-client adds it); the minimum set is there.
    for required in (
        "lockflow_runs_started", "lockflow_runs_completed", "lockflow_run_duration_seconds",
        "lockflow_stage_messages", "lockflow_stage_processing_seconds", "lockflow_stage_queue_wait_seconds",
        "lockflow_stage_retries", "lockflow_stage_failures", "lockflow_dlq_records",
        "lockflow_stage_last_success_timestamp_seconds", "lockflow_kafka_consumer_lag_messages",
        "lockflow_gates_requested", "lockflow_gates_decided", "lockflow_gate_wait_seconds",
        "lockflow_quality_score_ratio", "lockflow_process_cpu_seconds",
        "lockflow_process_resident_memory_bytes", "lockflow_process_open_fds", "lockflow_build",
        "lockflow_http_requests",
        "lockflow_http_request_duration_seconds", "lockflow_consumer_last_poll_timestamp_seconds",
    ):  # fmt: skip
        assert required in names, required


def test_counters_are_exposed_with_total() -> None:
    text = metrics.exposition()[0].decode()
    for family in text_string_to_metric_families(text):
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples), family.name
    assert all(isinstance(c, Counter) for c in (metrics.RUNS_STARTED, metrics.STAGE_MESSAGES))


def test_values_outside_a_closed_set_fold_into_other() -> None:
    assert metrics.bounded("quality", ("quality",)) == "quality"
    assert metrics.bounded("0192f7a0-run-id", ("quality",)) == "other"
    assert metrics.bounded(None, ("x",)) == "other"
    assert metrics.option_label("source_review", "approve") == "approve"
    assert metrics.option_label("source_review", "free text a person typed") == "other"
    assert metrics.option_label("no_such_gate", "approve") == "other"


def test_error_types_are_a_closed_set() -> None:
    assert error_type_of(StageError("x stopped: ... (LOCKFLOW_STAGE_TIMEOUT_SECONDS)")) == "timeout"
    assert error_type_of(StageError("x stopped: ... (LOCKFLOW_MEMORY_BUDGET_MB)")) == "memory_budget"
    assert error_type_of(InvalidInput("column missing")) == "invalid_input"
    assert {"timeout", "memory_budget", "invalid_input", "unexpected"} <= set(metrics.ERROR_TYPES)


def test_seconds_since_is_never_negative_and_reads_naive_as_utc() -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert metrics.seconds_since(now - timedelta(seconds=90), now) == 90
    assert metrics.seconds_since(now + timedelta(seconds=5), now) == 0
    assert metrics.seconds_since(datetime(2026, 1, 1, 11, 59), now) == 60


def test_database_collector_counts_active_runs_and_pending_gates(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    now = datetime.now(UTC)
    with db.transaction() as session:
        for i, status in enumerate(["running", "running", "waiting", "completed", "failed"]):
            session.add(RunRow(id=f"r{i}", name="n", status=status, requested_by="ana", state={}))
        session.flush()
        for i, (gate, status, age) in enumerate(
            [
                ("source_review", "open", 120),
                ("source_review", "open", 30),
                ("quality_review", "decided", 999),
            ]
        ):
            session.add(
                DecisionRequestRow(
                    id=f"d{i}", run_id="r2", gate=gate, status=status, title="t", options=[], context={},
                    created_at=now - timedelta(seconds=age),
                )
            )  # fmt: skip
    collector = metrics.DatabaseCollector(db, clock=lambda: now)
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in collector.collect()
        for s in family.samples
    }
    assert values[("lockflow_runs_active", (("state", "running"),))] == 2
    assert values[("lockflow_runs_active", (("state", "waiting"),))] == 1
    assert values[("lockflow_gates_pending", (("gate", "source_review"),))] == 2
    assert values[("lockflow_gates_pending", (("gate", "quality_review"),))] == 0
    assert values[
        ("lockflow_gate_oldest_pending_age_seconds", (("gate", "source_review"),))
    ] == pytest.approx(120)
    db.dispose()


def test_a_scrape_still_answers_when_the_database_is_away(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'gone.db'}")
    db.dispose()
    (tmp_path / "gone.db").unlink()
    (tmp_path / "gone.db").mkdir()  # a folder where the file was: every query fails
    assert list(metrics.DatabaseCollector(db).collect()) == []


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_worker_port_serves_metrics_healthz_and_readyz(tmp_path: Path) -> None:
    settings = CommonSettings(home=tmp_path, mode="distributed", kafka_bootstrap=f"127.0.0.1:{free_port()}")
    db = Database(settings.resolved_database_url())
    store = LocalArtifactStore(tmp_path / "artifacts")
    port = free_port()
    server = metrics.serve_metrics(port, readiness(settings, db, store), host="127.0.0.1")
    try:
        status, body = _get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200 and b"lockflow_process_cpu_seconds_total" in body
        assert _get(f"http://127.0.0.1:{port}/healthz")[0] == 200
        # Nothing listens on that Kafka port: not ready, and the answer says which dependency.
        status, body = _get(f"http://127.0.0.1:{port}/readyz")
        answer = json.loads(body)
        assert status == 503 and answer["failed"] == ["kafka"], answer
        assert answer["checks"]["database"] == "ok" and answer["checks"]["object_store"] == "ok"
        assert _get(f"http://127.0.0.1:{port}/nothing")[0] == 404
    finally:
        server.shutdown()
        db.dispose()


def test_kafka_check_names_the_broker_it_could_not_reach() -> None:
    port = free_port()
    assert f"127.0.0.1:{port}" in check_kafka(f"127.0.0.1:{port}", timeout=0.5)


def _sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_stage_worker_counts_outcomes_durations_and_failures(tmp_path: Path) -> None:
    from lockflow.common.events import IngestSource, IngestSourcePayload, SourceIngested
    from lockflow.common.models import SourceSpec

    def fails(command: Command, deps: StageDeps) -> SourceIngested:
        raise InvalidInput("the file has no rows")

    deps = StageDeps(artifacts=LocalArtifactStore(tmp_path), cache=MemoryCache())
    worker = StageWorker(stage="ingest", handlers={"IngestSource": fails}, deps=deps)
    bus = InMemoryBus()
    published: list[object] = []

    async def capture(event: object, *, topic: str | None = None) -> None:
        published.append(event)

    bus.publish = capture  # type: ignore[method-assign]
    command = IngestSource(
        run_id="r1",
        payload=IngestSourcePayload(attempt_id="a1", source=SourceSpec(path="x.csv")),
    )
    before_failed = _sample("lockflow_stage_messages_total", stage="ingest", outcome="failed")
    before_type = _sample("lockflow_stage_failures_total", stage="ingest", error_type="invalid_input")
    before_count = _sample("lockflow_stage_processing_seconds_count", stage="ingest")
    from lockflow.common.bus import DeliveredEvent

    asyncio.run(worker.handle(bus, DeliveredEvent(command, "lockflow.commands.ingest", 0, 0, [])))
    assert isinstance(published[0], StageFailed)
    assert _sample("lockflow_stage_messages_total", stage="ingest", outcome="failed") == before_failed + 1
    assert (
        _sample("lockflow_stage_failures_total", stage="ingest", error_type="invalid_input")
        == before_type + 1
    )
    assert _sample("lockflow_stage_processing_seconds_count", stage="ingest") == before_count + 1
    assert _sample("lockflow_stage_queue_wait_seconds_count", stage="ingest") >= 1
