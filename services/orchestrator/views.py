"""Read side for the gateway and the CLI: runs, decision requests, timeline, report locations."""

from typing import Any

from sqlalchemy import select

from lockflow.common.db import Database, DecisionRequestRow, DecisionRow, RunEventRow, RunRow, StageAttemptRow
from lockflow.common.errors import Conflict, InvalidInput, NotFound
from lockflow.common.models import PlannedAction
from lockflow.common.pipeline import DecisionContext
from lockflow.orchestrator.state import RunState


def run_summary(run: RunRow) -> dict[str, Any]:
    """The fields of a run shown in lists."""
    return {
        "id": run.id,
        "name": run.name,
        "status": run.status,
        "current_step": run.current_step,
        "open_gate": run.open_gate,
        "requested_by": run.requested_by,
        "error": run.error,
        "created_at": run.created_at.isoformat(),
        "updated_at": run.updated_at.isoformat(),
    }


def list_runs(db: Database, *, limit: int = 100) -> list[dict[str, Any]]:
    """Newest runs first."""
    with db.transaction() as session:
        rows = session.scalars(select(RunRow).order_by(RunRow.created_at.desc()).limit(limit)).all()
        return [run_summary(r) for r in rows]


def get_run(db: Database, *, run_id: str) -> dict[str, Any]:
    """A run with its latest stage results, attempts and decisions."""
    with db.transaction() as session:
        run = session.get(RunRow, run_id)
        if run is None:
            raise NotFound(f"no run {run_id}")
        attempts = session.scalars(
            select(StageAttemptRow)
            .where(StageAttemptRow.run_id == run_id)
            .order_by(StageAttemptRow.requested_at)
        ).all()
        decisions = session.scalars(
            select(DecisionRow).where(DecisionRow.run_id == run_id).order_by(DecisionRow.decided_at)
        ).all()
        return {
            **run_summary(run),
            "results": RunState.model_validate(run.state).model_dump(mode="json"),
            "attempts": [
                {
                    "id": a.id,
                    "step": a.step,
                    "status": a.status,
                    "error": a.error,
                    "dispatches": a.dispatches,
                    "requested_at": a.requested_at.isoformat(),
                    "finished_at": a.finished_at.isoformat() if a.finished_at else None,
                }
                for a in attempts
            ],
            "decisions": [
                {
                    "request_id": d.request_id,
                    "gate": d.gate,
                    "option": d.option,
                    "params": d.params,
                    "decided_by": d.decided_by,
                    "rationale": d.rationale,
                    "decided_at": d.decided_at.isoformat(),
                }
                for d in decisions
            ],
        }


def request_view(row: DecisionRequestRow) -> dict[str, Any]:
    """A decision request as shown to a person."""
    return {
        "id": row.id,
        "run_id": row.run_id,
        "gate": row.gate,
        "title": row.title,
        "status": row.status,
        "options": row.options,
        "context": row.context,
        "created_at": row.created_at.isoformat(),
        "decided_at": row.decided_at.isoformat() if row.decided_at else None,
    }


def list_decision_requests(
    db: Database, *, status: str | None = "open", run_id: str | None = None
) -> list[dict[str, Any]]:
    """Decision requests, oldest first, filtered by status and run."""
    query = select(DecisionRequestRow).order_by(DecisionRequestRow.created_at)
    if status:
        query = query.where(DecisionRequestRow.status == status)
    if run_id:
        query = query.where(DecisionRequestRow.run_id == run_id)
    with db.transaction() as session:
        return [request_view(r) for r in session.scalars(query).all()]


def get_decision_request(db: Database, *, request_id: str) -> dict[str, Any]:
    """One decision request."""
    with db.transaction() as session:
        row = session.get(DecisionRequestRow, request_id)
        if row is None:
            raise NotFound(f"no decision request {request_id}")
        return request_view(row)


def quality_gate_inputs(db: Database, *, request_id: str) -> tuple[RunState, DecisionContext]:
    """The run state behind an open gate 2 request, and what its choices are checked against."""
    with db.transaction() as session:
        row = session.get(DecisionRequestRow, request_id)
        if row is None:
            raise NotFound(f"no decision request {request_id}")
        if row.gate != "quality_review":
            raise InvalidInput(
                f"decision request {request_id} is for gate {row.gate}; previews are for quality_review"
            )
        if row.status != "open":
            raise Conflict(f"decision request {request_id} was already decided")
        run = session.get(RunRow, row.run_id)
        assert run is not None
        state = RunState.model_validate(run.state)
        return state, state.decision_context()


def timeline(db: Database, *, run_id: str, after: int = 0) -> list[dict[str, Any]]:
    """The run's events after a cursor, in order."""
    with db.transaction() as session:
        if session.get(RunRow, run_id) is None:
            raise NotFound(f"no run {run_id}")
        rows = session.scalars(
            select(RunEventRow)
            .where(RunEventRow.run_id == run_id, RunEventRow.id > after)
            .order_by(RunEventRow.id)
        ).all()
        return [
            {
                "seq": r.id,
                "event_id": r.event_id,
                "type": r.type,
                "occurred_at": r.occurred_at.isoformat(),
                **r.summary,
            }
            for r in rows
        ]


def plan_of(db: Database, *, run_id: str) -> list[PlannedAction]:
    """The final action plan chosen at gate 5; NotFound until the gate was decided."""
    with db.transaction() as session:
        run = session.get(RunRow, run_id)
        if run is None:
            raise NotFound(f"no run {run_id}")
        state = RunState.model_validate(run.state)
        if not state.plan:
            raise NotFound(f"run {run_id} has no action plan yet (status: {run.status})")
        return state.plan


def report_uris(db: Database, *, run_id: str) -> dict[str, str]:
    """Where the run's report is stored, per format; NotFound until the run completed."""
    with db.transaction() as session:
        run = session.get(RunRow, run_id)
        if run is None:
            raise NotFound(f"no run {run_id}")
        report = RunState.model_validate(run.state).report
        if report is None:
            raise NotFound(f"run {run_id} has no report yet (status: {run.status})")
        return {"markdown": report.markdown_uri, "json": report.json_uri, "html": report.html_uri}
