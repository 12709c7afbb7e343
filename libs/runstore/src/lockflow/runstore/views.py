"""Read side for the gateway and the CLI: runs, decision requests, timeline, report locations."""

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from lockflow.common.db import Database, DecisionRequestRow, DecisionRow, RunEventRow, RunRow, StageAttemptRow
from lockflow.common.errors import Conflict, InvalidInput, NotFound
from lockflow.common.models import PlannedAction
from lockflow.common.pipeline import DecisionContext
from lockflow.runstore.state import RunState

# The hot reads (run lists, one run) are Core selects on the tables, executed on the session's
# connection: rows, not ORM objects (no identity map, instance state or loader options per row), which
# was most of their cost under load. They only read, so nothing of the ORM's unit of work is missed.
RUNS = RunRow.__table__.c
REQUESTS = DecisionRequestRow.__table__.c
ATTEMPTS = StageAttemptRow.__table__.c
DECISIONS = DecisionRow.__table__.c

# The columns a run list shows: never `state`, whose JSON (every stage's results) is most of a row.
SUMMARY_COLUMNS = (
    RUNS.id,
    RUNS.name,
    RUNS.status,
    RUNS.current_step,
    RUNS.open_gate,
    RUNS.requested_by,
    RUNS.error,
    RUNS.open_findings,
    RUNS.created_at,
    RUNS.updated_at,
)


def run_summary(run: Any, *, decided: bool = False) -> dict[str, Any]:
    """The fields of a run (a row or a RunRow) shown in lists; `decided` when its open gate's request is
    already decided."""
    decided_gate = run.open_gate if decided else None
    return {
        "id": run.id,
        "name": run.name,
        "status": "decided" if decided_gate else run.status,
        "current_step": run.current_step,
        "open_gate": None if decided_gate else run.open_gate,
        # The gate whose decision is recorded but not yet applied by the orchestrator (e.g. it is down).
        "decided_gate": decided_gate,
        "requested_by": run.requested_by,
        "error": run.error,
        # Quality findings still open after gate 2 (None before quality assessed the run).
        "open_findings": run.open_findings,
        "created_at": run.created_at.isoformat(),
        "updated_at": run.updated_at.isoformat(),
    }


def _summaries(session: Session, runs: Sequence[Any]) -> list[dict[str, Any]]:
    """The runs' summaries, with whether each open gate was already decided found in one query.

    The gateway records a decision (its request becomes `decided`) and the orchestrator applies it
    later, clearing `open_gate`; in between the gate must not read as awaiting a decision.
    """
    gated = [r.id for r in runs if r.open_gate is not None]
    still_open: set[tuple[str, str]] = set()
    if gated:
        found = session.connection().execute(
            select(REQUESTS.run_id, REQUESTS.gate).where(
                REQUESTS.run_id.in_(gated), REQUESTS.status == "open"
            )
        )
        still_open = {(run_id, gate) for run_id, gate in found}
    return [
        run_summary(r, decided=r.open_gate is not None and (r.id, r.open_gate) not in still_open)
        for r in runs
    ]


def _summary_rows(session: Session, query: Select[Any]) -> list[dict[str, Any]]:
    """The summaries of the runs a query of SUMMARY_COLUMNS selects."""
    return _summaries(session, session.connection().execute(query).all())


def list_runs(db: Database, *, limit: int = 100) -> list[dict[str, Any]]:
    """Newest runs first."""
    with db.transaction() as session:
        return _summary_rows(session, select(*SUMMARY_COLUMNS).order_by(RUNS.created_at.desc()).limit(limit))


@dataclass(frozen=True)
class Reader:
    """Whose objects a list shows: the user's own (started by them) and those shared with them."""

    username: str
    shared_runs: Collection[str] = ()


@dataclass(frozen=True)
class Page:
    """One page of a list, and how many rows the whole (already filtered) list has."""

    rows: list[dict[str, Any]]
    total: int


def _runs_of(reader: Reader | None) -> ColumnElement[bool] | None:
    """The SQL condition for the runs a reader may see; None for every run (an admin)."""
    if reader is None:
        return None
    own = RUNS.requested_by == reader.username
    return or_(own, RUNS.id.in_(list(reader.shared_runs))) if reader.shared_runs else own


def runs_visible_to(reader: Reader | None) -> ColumnElement[bool] | None:
    """The SQL condition for the runs a reader may see (None: every run), for other lists to filter by."""
    return _runs_of(reader)


# What a run list can be narrowed to, as a person names it; "completed" means without open findings.
RunFilter = Literal["running", "waiting", "completed", "completed_with_findings", "failed", "aborted"]
RUN_FILTERS: tuple[str, ...] = get_args(RunFilter)


def _run_filter(status: str) -> ColumnElement[bool]:
    """The SQL condition for one of RUN_FILTERS."""
    if status == "completed":
        return and_(RUNS.status == "completed", or_(RUNS.open_findings.is_(None), RUNS.open_findings == 0))
    if status == "completed_with_findings":
        return and_(RUNS.status == "completed", RUNS.open_findings > 0)
    if status not in RUN_FILTERS:
        raise InvalidInput(f"unknown run status filter {status!r}: use one of {', '.join(RUN_FILTERS)}")
    return RUNS.status == status


def _run_search(text: str) -> ColumnElement[bool]:
    """Runs whose name or starter contains the text (any case), or whose id starts with it."""
    return or_(
        func.lower(RUNS.name).contains(text.lower(), autoescape=True),
        func.lower(RUNS.requested_by).contains(text.lower(), autoescape=True),
        RUNS.id.startswith(text.lower(), autoescape=True),
    )


def runs_page(
    db: Database,
    *,
    reader: Reader | None,
    limit: int = 100,
    offset: int = 0,
    status: str | None = None,
    search: str | None = None,
) -> Page:
    """Newest runs first, only the reader's (and, when asked, of one status or matching a search;
    filtered in the query), then the page, with the total."""
    query, count = select(*SUMMARY_COLUMNS), select(func.count()).select_from(RunRow.__table__)
    wanted = (
        _runs_of(reader),
        _run_filter(status) if status else None,
        _run_search(search) if search else None,
    )
    conditions = [c for c in wanted if c is not None]
    for condition in conditions:
        query, count = query.where(condition), count.where(condition)
    query = query.order_by(RUNS.created_at.desc(), RUNS.id.desc()).limit(limit).offset(offset)
    with db.transaction() as session:
        rows = _summary_rows(session, query)
        return Page(rows=rows, total=session.connection().execute(count).scalar() or 0)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def get_run(db: Database, *, run_id: str) -> dict[str, Any]:
    """A run with its latest stage results, attempts and decisions."""
    with db.transaction() as session:
        connection = session.connection()
        run = connection.execute(select(*SUMMARY_COLUMNS, RUNS.state).where(RUNS.id == run_id)).first()
        if run is None:
            raise NotFound(f"no run {run_id}")
        attempts = connection.execute(
            select(
                ATTEMPTS.id,
                ATTEMPTS.step,
                ATTEMPTS.status,
                ATTEMPTS.error,
                ATTEMPTS.dispatches,
                ATTEMPTS.requested_at,
                ATTEMPTS.finished_at,
            )
            .where(ATTEMPTS.run_id == run_id)
            .order_by(ATTEMPTS.requested_at)
        ).all()
        decisions = connection.execute(
            select(
                DECISIONS.request_id,
                DECISIONS.gate,
                DECISIONS.option,
                DECISIONS.params,
                DECISIONS.decided_by,
                DECISIONS.rationale,
                DECISIONS.decided_at,
            )
            .where(DECISIONS.run_id == run_id)
            .order_by(DECISIONS.decided_at)
        ).all()
        summary = _summaries(session, [run])[0]
    return {
        **summary,
        "results": RunState.model_validate(run.state or {}).model_dump(mode="json"),
        "attempts": [
            {**a._asdict(), "requested_at": a.requested_at.isoformat(), "finished_at": _iso(a.finished_at)}
            for a in attempts
        ],
        "decisions": [{**d._asdict(), "decided_at": d.decided_at.isoformat()} for d in decisions],
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


def decision_requests_page(
    db: Database,
    *,
    reader: Reader | None,
    status: str | None = "open",
    run_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Page:
    """Decision requests of the reader's runs, oldest first, filtered in the query, then paged."""
    conditions: list[ColumnElement[bool]] = []
    if status:
        conditions.append(DecisionRequestRow.status == status)
    if run_id:
        conditions.append(DecisionRequestRow.run_id == run_id)
    visible = _runs_of(reader)
    if visible is not None:
        conditions.append(DecisionRequestRow.run_id.in_(select(RunRow.id).where(visible)))
    query = select(DecisionRequestRow).where(*conditions)
    query = query.order_by(DecisionRequestRow.created_at, DecisionRequestRow.id).limit(limit).offset(offset)
    count = select(func.count()).select_from(DecisionRequestRow).where(*conditions)
    with db.transaction() as session:
        return Page(
            rows=[request_view(r) for r in session.scalars(query).all()], total=session.scalar(count) or 0
        )


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


def run_state(db: Database, *, run_id: str) -> tuple[RunState, str]:
    """A run's stored results and who started it (NotFound for no such run)."""
    with db.transaction() as session:
        row = session.execute(select(RunRow.state, RunRow.requested_by).where(RunRow.id == run_id)).first()
        if row is None:
            raise NotFound(f"no run {run_id}")
        return RunState.model_validate(row.state or {}), row.requested_by


def run_status(db: Database, *, run_id: str) -> str:
    """A run's status alone (NotFound for no such run)."""
    with db.transaction() as session:
        status = session.scalar(select(RunRow.status).where(RunRow.id == run_id))
        if status is None:
            raise NotFound(f"no run {run_id}")
        return status


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
        uris = {"markdown": report.markdown_uri, "json": report.json_uri, "html": report.html_uri}
        if report.pdf_uri:  # reports compiled before the PDF export have none
            uris["pdf"] = report.pdf_uri
        return uris
