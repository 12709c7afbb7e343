"""A decision recorded while the orchestrator is down: the run no longer reads as awaiting that gate."""

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select

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


def _outbox(db: Database) -> list[Event]:
    with db.transaction() as session:
        return [parse_event(r.event_json) for r in session.scalars(select(OutboxRow).order_by(OutboxRow.id))]


def _waiting_at_source_review(db: Database, tmp_path: Path) -> str:
    """A run the orchestrator took to gate 1 (its events applied by hand, as its consumer would)."""
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame({"spend": [1.0, 2.0, 3.0, 4.0], "revenue": [3.0, 5.0, 7.0, 9.0]}).to_csv(
        data / "s.csv", index=False
    )
    run_id = intake.request_run(
        db,
        name="r",
        source=SourceSpec(path=str(data / "s.csv")),
        goal=Goal(target="revenue"),
        requested_by="ana",
    )
    service.handle_event(db, _outbox(db)[-1])
    command = _outbox(db)[-1]
    assert isinstance(command, IngestSource)
    settings = SourceSettings(home=tmp_path, allowed_dirs=[data], environment="test", redis_url=None)
    deps = StageDeps(
        artifacts=LocalArtifactStore(tmp_path / "artifacts"), cache=MemoryCache(), db=db, settings=settings
    )
    service.handle_event(db, ingest_source(command, deps))
    return run_id


def test_a_recorded_decision_closes_the_gate_in_the_run_view_before_the_orchestrator_applies_it(
    db: Database, tmp_path: Path
) -> None:
    run_id = _waiting_at_source_review(db, tmp_path)
    run = views.get_run(db, run_id=run_id)
    assert (run["status"], run["open_gate"], run["decided_gate"]) == ("waiting", "source_review", None)
    (request,) = views.list_decision_requests(db, run_id=run_id)

    # The gateway records the decision; the orchestrator (down) has not consumed DecisionMade yet.
    intake.record_decision(
        db, request_id=request["id"], option="approve", params={}, rationale="ok", decided_by="ana"
    )
    run = views.get_run(db, run_id=run_id)
    assert (run["status"], run["open_gate"], run["decided_gate"]) == ("decided", None, "source_review")
    assert [d["gate"] for d in run["decisions"]] == ["source_review"]
    (listed,) = views.list_runs(db)
    assert (listed["status"], listed["open_gate"], listed["decided_gate"]) == (
        "decided",
        None,
        "source_review",
    )

    # The orchestrator comes back and applies it: the run moves on to the next step.
    service.handle_event(db, _outbox(db)[-1])
    run = views.get_run(db, run_id=run_id)
    assert (run["status"], run["current_step"], run["open_gate"], run["decided_gate"]) == (
        "running",
        "assess_quality",
        None,
        None,
    )
