"""Retrying a failed run: only a run that failed at a step, once, the same step again, decisions kept."""

from pathlib import Path

import pytest
from sqlalchemy import select

from lockflow.common.db import Database, OutboxRow, StageAttemptRow
from lockflow.common.errors import Conflict, NotFound
from lockflow.common.events import (
    Event,
    IngestSource,
    RetryRequested,
    StageFailed,
    StageFailedPayload,
    parse_event,
)
from lockflow.common.models import Goal, SourceSpec
from lockflow.orchestrator import service
from lockflow.runstore import intake, views


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / 'o.db'}")


def _outbox(db: Database) -> list[Event]:
    with db.transaction() as session:
        return [parse_event(r.event_json) for r in session.scalars(select(OutboxRow).order_by(OutboxRow.id))]


def _attempts(db: Database, run_id: str) -> list[tuple[str, str]]:
    with db.transaction() as session:
        rows = session.scalars(
            select(StageAttemptRow)
            .where(StageAttemptRow.run_id == run_id)
            .order_by(StageAttemptRow.requested_at)
        )
        return [(r.step, r.status) for r in rows]


def _failed_at_ingest(db: Database) -> tuple[str, IngestSource]:
    """A run whose ingest attempt failed, as the orchestrator records it from the events."""
    run_id = intake.request_run(
        db, name="r", source=SourceSpec(path="/data/x.csv"), goal=Goal(target="y"), requested_by="ana"
    )
    (requested,) = _outbox(db)
    service.handle_event(db, requested)
    command = _outbox(db)[-1]
    assert isinstance(command, IngestSource)
    failed = command.follow(
        StageFailed,
        StageFailedPayload(attempt_id=command.payload.attempt_id, stage="ingest", error="disk on fire"),
        producer="ingest",
    )
    service.handle_event(db, failed)
    return run_id, command


def test_a_failed_run_is_retried_at_its_failed_step_with_the_same_inputs(db: Database) -> None:
    run_id, first = _failed_at_ingest(db)
    run = views.get_run(db, run_id=run_id)
    assert (run["status"], run["current_step"], run["error"]) == ("failed", "ingest", "ingest: disk on fire")

    intake.retry_run(db, run_id=run_id, requested_by="ana")
    run = views.get_run(db, run_id=run_id)
    assert (run["status"], run["current_step"], run["error"]) == ("running", "ingest", None)
    retry = _outbox(db)[-1]
    assert isinstance(retry, RetryRequested)
    assert retry.payload.step == "ingest" and retry.payload.error == "ingest: disk on fire"
    assert retry.payload.failed_attempt_id == first.payload.attempt_id
    assert retry.payload.requested_by == "ana"

    service.handle_event(db, retry)
    again = _outbox(db)[-1]
    assert isinstance(again, IngestSource)
    assert again.payload.attempt_id != first.payload.attempt_id
    assert again.payload.source == first.payload.source
    assert _attempts(db, run_id) == [("ingest", "failed"), ("ingest", "requested")]
    kinds = [e["type"] for e in views.timeline(db, run_id=run_id)]
    assert kinds[-3:] == ["RunFailed", "RetryRequested", "IngestSource"]
    assert views.timeline(db, run_id=run_id)[-2]["requested_by"] == "ana"


def test_a_retry_is_accepted_once(db: Database) -> None:
    run_id, _ = _failed_at_ingest(db)
    intake.retry_run(db, run_id=run_id, requested_by="ana")
    with pytest.raises(Conflict, match="running"):
        intake.retry_run(db, run_id=run_id, requested_by="lee")


def test_a_redelivered_retry_changes_nothing(db: Database) -> None:
    run_id, _ = _failed_at_ingest(db)
    intake.retry_run(db, run_id=run_id, requested_by="ana")
    retry = _outbox(db)[-1]
    service.handle_event(db, retry)
    service.handle_event(db, retry)
    assert _attempts(db, run_id) == [("ingest", "failed"), ("ingest", "requested")]


def test_only_a_failed_run_can_be_retried(db: Database) -> None:
    run_id = intake.request_run(
        db, name="r", source=SourceSpec(path="/data/x.csv"), goal=Goal(target="y"), requested_by="ana"
    )
    with pytest.raises(Conflict, match="only a run that failed at a step"):
        intake.retry_run(db, run_id=run_id, requested_by="ana")
    with pytest.raises(NotFound):
        intake.retry_run(db, run_id="no-such-run", requested_by="ana")


def test_the_retried_attempt_can_fail_again_and_be_retried_again(db: Database) -> None:
    run_id, _ = _failed_at_ingest(db)
    intake.retry_run(db, run_id=run_id, requested_by="ana")
    service.handle_event(db, _outbox(db)[-1])
    command = _outbox(db)[-1]
    assert isinstance(command, IngestSource)
    service.handle_event(
        db,
        command.follow(
            StageFailed,
            StageFailedPayload(attempt_id=command.payload.attempt_id, stage="ingest", error="still on fire"),
            producer="ingest",
        ),
    )
    assert views.get_run(db, run_id=run_id)["status"] == "failed"
    intake.retry_run(db, run_id=run_id, requested_by="ana")
    assert views.get_run(db, run_id=run_id)["status"] == "running"
