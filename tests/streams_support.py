"""Helpers the stream tests share: a stream source registered, a stream run taken to gate 1 by hand (the
ingest step's result built from records, as the Kafka sampler would), and windows as the worker sends them."""

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from lockflow.common.db import Database, OutboxRow
from lockflow.common.events import (
    Event,
    IngestSource,
    SourceIngested,
    SourceIngestedPayload,
    WindowAssessed,
    WindowAssessedPayload,
    parse_event,
)
from lockflow.common.models import ColumnSchema, DatasetRef, Goal
from lockflow.common.stream_contract import infer_contract
from lockflow.common.streams import WindowResult
from lockflow.orchestrator import service
from lockflow.runstore import intake
from lockflow.sources import registry
from lockflow.sources.settings import SourceSettings

START = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)
RECORDS = [{"order_id": f"o{i}", "ts": f"2026-12-02T04:00:{i:02d}Z", "amount": 10 + i} for i in range(30)]
STREAM_CONFIG = {
    "bootstrap_servers": "127.0.0.1:9092",
    "topic": "orders",
    "event_time_field": "ts",
    "key_field": "order_id",
    "window_seconds": 60,
    "grace_seconds": 5,
    "security": {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_username": "lockflow",
        "sasl_password": "s3cret",
    },
}


def outbox(db: Database) -> list[Event]:
    """Every event written so far, in order."""
    with db.transaction() as session:
        return [parse_event(r.event_json) for r in session.scalars(select(OutboxRow).order_by(OutboxRow.id))]


def settings(tmp_path: Any) -> SourceSettings:
    return SourceSettings(home=tmp_path, allow_hosts=["127.0.0.1"], environment="test", redis_url=None)


def stream_at_gate_1(
    db: Database, tmp_path: Any, *, owner: str = "ana", config: dict[str, Any] | None = None
) -> str:
    """A registered stream source, a run of it, its RunRequested and ingest result applied."""
    source = registry.create_source(
        db,
        name=f"orders-{len(outbox(db))}",
        kind="stream",
        config=config or STREAM_CONFIG,
        actor=owner,
        settings=settings(tmp_path),
    )
    spec = registry.spec_for(db, ref=source["id"], settings=settings(tmp_path))
    run_id = intake.request_run(db, name="orders live", source=spec, goal=Goal(), requested_by=owner)
    service.handle_event(db, outbox(db)[-1])
    command = outbox(db)[-1]
    assert isinstance(command, IngestSource)
    columns = [
        ColumnSchema(name="order_id", dtype="string", nullable=False),
        ColumnSchema(name="ts", dtype="datetime", nullable=False),
        ColumnSchema(name="amount", dtype="integer", nullable=False),
    ]
    payload = SourceIngestedPayload(
        attempt_id=command.payload.attempt_id,
        source=spec,
        dataset=DatasetRef(
            uri="file:///sample.parquet", fingerprint="f" * 16, rows=len(RECORDS), columns=columns
        ),
        sample=RECORDS[:10],
        bytes_read=1234,
        config=registry.get_source(db, ref=source["id"], settings=settings(tmp_path))["config"],
        contract=infer_contract(RECORDS, event_time_field="ts", key_field="order_id"),
    )
    service.handle_event(db, command.follow(SourceIngested, payload, producer="ingest"))
    return run_id


def window(
    stream_id: str,
    index: int,
    *,
    records: int = 100,
    findings: dict[str, int] | None = None,
    score: float = 95.0,
    policy_version: int | None = None,
    uri: str | None = None,
) -> WindowResult:
    start = START + timedelta(minutes=index)
    return WindowResult(
        stream_id=stream_id,
        window_start=start,
        window_end=start + timedelta(minutes=1),
        policy_version=policy_version,
        mode="policy" if policy_version else "hold",
        records=records,
        findings=findings or {},
        quality_score=score,
        artifact_uri=uri,
        freshness_p99_seconds=1.5,
        closed_at=start + timedelta(minutes=1, seconds=5),
    )


def assessed(result: WindowResult) -> WindowAssessed:
    return WindowAssessed(
        run_id=result.stream_id,
        producer="streams",
        correlation_id=result.stream_id,
        payload=WindowAssessedPayload(window=result),
    )
