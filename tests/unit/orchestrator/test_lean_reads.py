"""Run lists read only summary columns, in a fixed number of queries however many runs a page holds."""

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import event, inspect, select

from lockflow.common.artifacts import LocalArtifactStore
from lockflow.common.cache import MemoryCache
from lockflow.common.db import Database, OutboxRow
from lockflow.common.events import Event, IngestSource, parse_event
from lockflow.common.models import Goal, SourceSpec
from lockflow.common.worker import StageDeps
from lockflow.ingest.handlers import ingest_source
from lockflow.orchestrator import service
from lockflow.runstore import intake, views
from lockflow.sources.settings import SourceSettings


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / 'o.db'}")


def _last_event(db: Database) -> Event:
    with db.transaction() as session:
        return parse_event(
            session.scalars(select(OutboxRow).order_by(OutboxRow.id.desc())).first().event_json
        )


def _runs_at_gate_1(db: Database, tmp_path: Path, count: int) -> list[str]:
    """Runs the orchestrator took to gate 1 (their events applied by hand, as its consumer would)."""
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    pd.DataFrame({"spend": [1.0, 2.0, 3.0, 4.0], "revenue": [3.0, 5.0, 7.0, 9.0]}).to_csv(
        data / "s.csv", index=False
    )
    settings = SourceSettings(home=tmp_path, allowed_dirs=[data], environment="test", redis_url=None)
    deps = StageDeps(
        artifacts=LocalArtifactStore(tmp_path / "artifacts"), cache=MemoryCache(), db=db, settings=settings
    )
    ids = []
    for number in range(count):
        run_id = intake.request_run(
            db,
            name=f"r{number}",
            source=SourceSpec(path=str(data / "s.csv")),
            goal=Goal(target="revenue"),
            requested_by="ana",
        )
        service.handle_event(db, _last_event(db))
        command = _last_event(db)
        assert isinstance(command, IngestSource)
        service.handle_event(db, ingest_source(command, deps))
        ids.append(run_id)
    return ids


def _statements(db: Database) -> list[str]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    return seen


def _decide(db: Database, run_id: str) -> None:
    (request,) = views.list_decision_requests(db, run_id=run_id)
    intake.record_decision(
        db, request_id=request["id"], option="approve", params={}, rationale="ok", decided_by="ana"
    )


def test_a_page_of_runs_takes_the_same_queries_for_two_runs_as_for_six_and_never_reads_state(
    db: Database, tmp_path: Path
) -> None:
    ids = _runs_at_gate_1(db, tmp_path, 6)
    _decide(db, ids[1])
    reader = views.Reader("ana")

    statements = _statements(db)
    page = views.runs_page(db, reader=reader, limit=2)
    few = len(statements)
    statements.clear()
    page = views.runs_page(db, reader=reader, limit=6)
    assert len(statements) == few
    runs_query = next(s for s in statements if "FROM runs" in s and "count(" not in s)
    assert "state" not in runs_query.split("FROM")[0]

    by_id = {r["id"]: r for r in page.rows}
    assert (by_id[ids[1]]["status"], by_id[ids[1]]["open_gate"], by_id[ids[1]]["decided_gate"]) == (
        "decided",
        None,
        "source_review",
    )
    for run_id in (ids[0], *ids[2:]):
        assert (by_id[run_id]["status"], by_id[run_id]["open_gate"], by_id[run_id]["decided_gate"]) == (
            "waiting",
            "source_review",
            None,
        )
    assert page.total == 6


def test_the_read_indexes_exist_after_migrating(db: Database) -> None:
    found = inspect(db.engine)
    names = {
        table: {index["name"] for index in found.get_indexes(table)}
        for table in ("runs", "object_shares", "decision_requests", "run_events", "stage_attempts")
    }
    assert {"ix_runs_created_at_id", "ix_runs_requested_by_created_at"} <= names["runs"]
    assert "ix_object_shares_type_username" in names["object_shares"]
    assert {"ix_decision_requests_run_id_status", "ix_decision_requests_status_created_at"} <= names[
        "decision_requests"
    ]
    assert "ix_run_events_run_id_id" in names["run_events"]
    assert "ix_stage_attempts_run_id_requested_at" in names["stage_attempts"]
