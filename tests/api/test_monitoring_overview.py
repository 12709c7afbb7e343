"""GET /monitoring/overview (the UI's monitoring page) and the decisions' deadline: only the caller's runs
(own, shared; an admin all), counted and listed in the query, with the stage durations, failures, open
decisions with their age and deadline, and quality scores over runs."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lockflow.auth.testing import share_run, sign_in
from lockflow.common.db import (
    Database,
    DecisionRequestRow,
    QualityScoreRow,
    RunRow,
    SourceRow,
    StageAttemptRow,
)
from lockflow.embedded import create_app
from lockflow.gateway.testing import embedded_settings

DEADLINE = 3600.0
NOW = datetime.now(UTC)


@pytest.fixture(autouse=True)
def _now() -> None:
    """The history is dated from the test's own start, not from when the module was collected (in the
    whole suite that is many minutes earlier, and the ages asserted below would be off by as much)."""
    global NOW
    NOW = datetime.now(UTC)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = embedded_settings(tmp_path, alert_gate_deadline_seconds=DEADLINE)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _attempt(
    run_id: str, n: int, step: str, status: str, seconds: float, error: str | None = None
) -> StageAttemptRow:
    start = NOW - timedelta(hours=3) + timedelta(minutes=n)
    return StageAttemptRow(
        id=f"{run_id}-{n}",
        run_id=run_id,
        step=step,
        status=status,
        command_event_id=f"e-{run_id}-{n}",
        error=error,
        requested_at=start,
        finished_at=start + timedelta(seconds=seconds),
    )


def _history(db: Database) -> None:
    """ana: a run waiting at gate 2 for 2 h (past the 1 h deadline), a failed one, a completed one with
    findings; bob: a running one waiting 10 min at gate 1."""
    with db.transaction() as s:
        s.add_all(
            [
                RunRow(
                    id="r1",
                    name="waits",
                    status="waiting",
                    open_gate="quality_review",
                    requested_by="ana",
                    state={},
                ),
                RunRow(
                    id="r2",
                    name="broke",
                    status="failed",
                    requested_by="ana",
                    state={},
                    error="quality: boom",
                ),
                RunRow(
                    id="r3", name="done", status="completed", requested_by="ana", state={}, open_findings=2
                ),
                RunRow(
                    id="r4",
                    name="bobs",
                    status="running",
                    open_gate="source_review",
                    requested_by="bob",
                    state={},
                ),
            ]
        )
        s.flush()
        s.add_all(
            [
                _attempt("r1", 1, "ingest", "succeeded", 2.0),
                _attempt("r2", 2, "ingest", "succeeded", 4.0),
                _attempt("r2", 3, "quality", "failed", 1.0, error="boom"),
                _attempt("r3", 4, "ingest", "succeeded", 6.0),
                _attempt("r3", 5, "quality", "succeeded", 3.0),
                _attempt("r4", 6, "ingest", "succeeded", 100.0),
                DecisionRequestRow(
                    id="q1",
                    run_id="r1",
                    gate="quality_review",
                    status="open",
                    title="Fix the data?",
                    options=[],
                    context={},
                    created_at=NOW - timedelta(hours=2),
                ),
                DecisionRequestRow(
                    id="q4",
                    run_id="r4",
                    gate="source_review",
                    status="open",
                    title="Use this source?",
                    options=[],
                    context={},
                    created_at=NOW - timedelta(minutes=10),
                ),
                QualityScoreRow(
                    run_id="r3", source_key="sales.csv", score=0.92, recorded_at=NOW - timedelta(hours=2)
                ),
                QualityScoreRow(
                    run_id="r1", source_key="sales.csv", score=0.55, recorded_at=NOW - timedelta(hours=1)
                ),
                SourceRow(id="src-1", name="crm", type="api", config={}, created_by="bob"),
                QualityScoreRow(run_id="r4", source_key="src-1", score=80.0, recorded_at=NOW),
            ]
        )


def test_the_overview_counts_and_lists_only_the_callers_runs(client: TestClient) -> None:
    ana = sign_in(client, "ana", ["analyst"])
    bob = sign_in(client, "bob", ["viewer"])
    admin = sign_in(client, "ada", ["admin"])
    _history(client.app.state.system.db)  # type: ignore[attr-defined]

    answer = client.get("/monitoring/overview", headers=ana)
    assert answer.status_code == 200
    seen = answer.json()
    assert seen["runs_by_state"] == {"completed": 1, "failed": 1, "waiting": 1}
    assert seen["completed_with_findings"] == 1
    assert [r["id"] for r in seen["active_runs"]] == ["r1"]
    stages = {s["step"]: s for s in seen["stages"]}
    assert [s["step"] for s in seen["stages"]] == ["ingest", "quality"]  # in pipeline order
    assert stages["ingest"]["finished"] == 3 and stages["ingest"]["mean_seconds"] == pytest.approx(4.0)
    assert stages["ingest"]["median_seconds"] == pytest.approx(4.0)
    assert stages["ingest"]["max_seconds"] == pytest.approx(6.0)
    assert stages["quality"] == {**stages["quality"], "attempts": 2, "succeeded": 1, "failed": 1}
    assert seen["failures_total"] == 1
    assert seen["failures"][0] == {**seen["failures"][0], "run_id": "r2", "step": "quality", "error": "boom"}
    [waiting] = seen["open_decisions"]
    assert waiting["id"] == "q1" and waiting["run_name"] == "waits" and waiting["overdue"] is True
    assert 7000 < waiting["age_seconds"] < 7400
    asked = datetime.fromisoformat(waiting["created_at"])
    assert datetime.fromisoformat(waiting["deadline_at"]) - asked == timedelta(seconds=DEADLINE)
    assert seen["open_decisions_total"] == 1 and seen["gate_deadline_seconds"] == DEADLINE
    assert [(q["run_id"], q["score"]) for q in seen["quality"]] == [
        ("r3", 0.92),
        ("r1", 0.55),
    ]  # oldest first

    # bob sees only his run; once ana shares r1, it too; the admin sees every run.
    bobs = client.get("/monitoring/overview", headers=bob).json()
    assert bobs["runs_by_state"] == {"running": 1}
    assert [d["id"] for d in bobs["open_decisions"]] == ["q4"] and bobs["open_decisions"][0][
        "overdue"
    ] is False
    assert bobs["failures"] == []
    # A registered source's score is keyed by its id and shown by its name; a file's by its key.
    assert [(q["run_id"], q["source"]) for q in bobs["quality"]] == [("r4", "crm")]
    assert {q["source"] for q in seen["quality"]} == {"sales.csv"}
    share_run(client, ana, "r1", "bob")  # type: ignore[arg-type]
    bobs = client.get("/monitoring/overview", headers=bob).json()
    assert [d["id"] for d in bobs["open_decisions"]] == ["q1", "q4"]  # oldest first
    every = client.get("/monitoring/overview", headers=admin).json()
    assert sum(every["runs_by_state"].values()) == 4 and every["open_decisions_total"] == 2
    assert client.get("/monitoring/overview").status_code == 401


def test_an_open_decision_carries_its_deadline(client: TestClient) -> None:
    ana = sign_in(client, "ana", ["analyst"])
    _history(client.app.state.system.db)  # type: ignore[attr-defined]
    [listed] = client.get("/decisions", headers=ana).json()
    asked = datetime.fromisoformat(listed["created_at"]).replace(tzinfo=UTC)
    assert datetime.fromisoformat(listed["deadline_at"]) - asked == timedelta(seconds=DEADLINE)
    one = client.get(f"/decisions/{listed['id']}", headers=ana).json()
    assert one["deadline_at"] == listed["deadline_at"]
    db: Database = client.app.state.system.db  # type: ignore[attr-defined]
    with db.transaction() as s:
        request = s.get(DecisionRequestRow, "q1")
        assert request is not None
        request.status, request.decided_at = "decided", NOW
    decided = client.get("/decisions", params={"status": "all"}, headers=ana).json()
    assert [d["deadline_at"] for d in decided] == [None]  # decided: no deadline any more
