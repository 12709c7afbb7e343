"""A stream's control plane on the real PostgreSQL: migration 0010's tables and the gate flow (contract,
first window, policy version, a window re-sent, a reopen) and a scheduled snapshot, as on SQLite."""

from datetime import timedelta
from pathlib import Path

import pytest
from streams_support import assessed, outbox, stream_at_gate_1, window

from lockflow.common.artifacts import LocalArtifactStore
from lockflow.common.db import Database
from lockflow.common.events import ApplyStreamPolicy, StartStream
from lockflow.common.models import Goal
from lockflow.orchestrator import service
from lockflow.runstore import intake, views
from lockflow.runstore.streams import (
    policies_of,
    run_due_snapshots,
    schedule_snapshots,
    streams_page,
    utcnow,
    windows_page,
)

pytestmark = pytest.mark.integration


def _decide(db: Database, run_id: str, option: str, params: dict) -> None:  # type: ignore[type-arg]
    (request,) = views.list_decision_requests(db, run_id=run_id)
    intake.record_decision(
        db, request_id=request["id"], option=option, params=params, rationale="", decided_by="pat"
    )
    service.handle_event(db, outbox(db)[-1])


def test_the_stream_flow_on_postgres(fresh_postgres: str, tmp_path: Path) -> None:
    db = Database(fresh_postgres)
    try:
        run_id = stream_at_gate_1(db, tmp_path)
        _decide(db, run_id, "approve", {})
        assert isinstance(outbox(db)[-1], StartStream)
        artifacts = LocalArtifactStore(tmp_path / "artifacts")
        first = window(run_id, 0, findings={"null_value": 2})
        service.handle_event(db, assessed(first))
        service.handle_event(db, assessed(first))  # re-sent after a worker restart: stored once
        _decide(db, run_id, "apply_policy", {"rules": [{"kind": "null_value", "action": "flag"}]})
        assert isinstance(outbox(db)[-1], ApplyStreamPolicy)
        service.handle_event(db, assessed(window(run_id, 1, findings={"late_record": 1}, policy_version=1)))
        (request,) = views.list_decision_requests(db, run_id=run_id)
        assert request["context"]["reasons"] == ["a late record, which policy v1 has no rule for"]
        rows, total = windows_page(db, stream_id=run_id)
        assert total == 2 and rows[0]["reopened"] == request["context"]["reasons"]
        assert [p["version"] for p in policies_of(db, stream_id=run_id)] == [1]
        assert [s["id"] for s in streams_page(db, owner="ana")[0]] == [run_id]
        assert streams_page(db, owner="bob") == ([], 0)
        schedule_snapshots(
            db, stream_id=run_id, last_windows=2, every_minutes=30, goal=Goal(), created_by="ana"
        )
        assert run_due_snapshots(db, artifacts, now=utcnow() + timedelta(hours=1)) == []  # no micro-batches
    finally:
        db.dispose()
