"""Retrying a failed run on real PostgreSQL: of two concurrent retries exactly one is accepted."""

import threading

import pytest
from sqlalchemy import select

from lockflow.common.db import Database, OutboxRow
from lockflow.common.errors import Conflict
from lockflow.common.events import IngestSource, RetryRequested, StageFailed, StageFailedPayload, parse_event
from lockflow.common.models import Goal, SourceSpec
from lockflow.orchestrator import service
from lockflow.runstore import intake, views

pytestmark = pytest.mark.integration


def _newest_event(db: Database):  # type: ignore[no-untyped-def]
    with db.transaction() as session:
        row = session.scalars(select(OutboxRow).order_by(OutboxRow.id.desc()).limit(1)).one()
        return parse_event(row.event_json)


def test_two_concurrent_retries_one_wins(fresh_postgres: str) -> None:
    db = Database(fresh_postgres)
    run_id = intake.request_run(
        db, name="r", source=SourceSpec(path="/data/x.csv"), goal=Goal(target="y"), requested_by="ana"
    )
    service.handle_event(db, _newest_event(db))
    command = _newest_event(db)
    assert isinstance(command, IngestSource)
    service.handle_event(
        db,
        command.follow(
            StageFailed,
            StageFailedPayload(attempt_id=command.payload.attempt_id, stage="ingest", error="gone"),
            producer="ingest",
        ),
    )
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def retry(who: str) -> None:
        barrier.wait()
        try:
            intake.retry_run(db, run_id=run_id, requested_by=who)
            outcomes.append("accepted")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=retry, args=(who,)) for who in ("ana", "lee")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["accepted", "conflict"]
    retried = _newest_event(db)
    assert isinstance(retried, RetryRequested)
    service.handle_event(db, retried)
    run = views.get_run(db, run_id=run_id)
    assert run["status"] == "running"
    assert [(a["step"], a["status"]) for a in run["attempts"]] == [
        ("ingest", "failed"),
        ("ingest", "requested"),
    ]
    db.dispose()
