"""The monitoring page's read: runs by state, stage durations, failures, open decisions with their age and
deadline, quality scores over runs; only what a reader may see, filtered in each query.

Every part is bounded: counts are aggregates in SQL; durations are taken over the latest attempts, the
lists are the newest (or, for decisions, the oldest waiting) rows up to a limit, each with its total.
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select

from lockflow.common.db import (
    Database,
    DecisionRequestRow,
    QualityScoreRow,
    RunRow,
    SourceRow,
    StageAttemptRow,
)
from lockflow.runstore.views import Reader, runs_visible_to

RUNS = RunRow.__table__.c
ATTEMPTS = StageAttemptRow.__table__.c
REQUESTS = DecisionRequestRow.__table__.c
SCORES = QualityScoreRow.__table__.c
SOURCES = SourceRow.__table__.c

ACTIVE = ("running", "waiting")
ATTEMPT_WINDOW = 2000  # durations over the latest this many attempts
LIST_LIMIT = 50


def _utc(moment: datetime | None) -> datetime | None:
    """A stored time as aware UTC (SQLite hands back naive times, written as UTC)."""
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(moment: datetime | None) -> str | None:
    aware = _utc(moment)
    return aware.isoformat() if aware else None


def _quantile(values: Sequence[float], share: float) -> float:
    """The nearest-rank quantile of sorted values."""
    rank = max(0, min(len(values) - 1, round(share * (len(values) - 1))))
    return values[rank]


def stage_stats(
    attempts: Sequence[tuple[str, str, datetime | None, datetime | None]],
) -> list[dict[str, Any]]:
    """Per stage: attempts by status and the durations (seconds) of those that finished."""
    by_step: dict[str, dict[str, Any]] = {}
    for step, status, requested, finished in attempts:
        entry = by_step.setdefault(
            step, {"step": step, "attempts": 0, "succeeded": 0, "failed": 0, "durations": []}
        )
        entry["attempts"] += 1
        if status in ("succeeded", "failed"):
            entry[status] += 1
        start, end = _utc(requested), _utc(finished)
        if status == "succeeded" and start and end:
            entry["durations"].append(max(0.0, (end - start).total_seconds()))
    rows = []
    for entry in by_step.values():
        durations = sorted(entry.pop("durations"))
        entry["finished"] = len(durations)
        entry["mean_seconds"] = sum(durations) / len(durations) if durations else None
        entry["median_seconds"] = _quantile(durations, 0.5) if durations else None
        entry["p95_seconds"] = _quantile(durations, 0.95) if durations else None
        entry["max_seconds"] = durations[-1] if durations else None
        rows.append(entry)
    return rows


def monitoring_overview(
    db: Database,
    *,
    reader: Reader | None,
    now: datetime,
    gate_deadline: timedelta,
    stages: Sequence[str] = (),
) -> dict[str, Any]:
    """What the monitoring page shows, for the runs the reader may see (None: every run)."""
    visible = runs_visible_to(reader)
    seen = [visible] if visible is not None else []
    visible_ids = select(RUNS.id).where(*seen)
    with db.transaction() as session:
        sql = session.connection()
        by_state = {
            status: count
            for status, count in sql.execute(
                select(RUNS.status, func.count()).where(*seen).group_by(RUNS.status)
            )
        }
        with_findings = (
            sql.execute(
                select(func.count()).where(RUNS.status == "completed", RUNS.open_findings > 0, *seen)
            ).scalar()
            or 0
        )
        active_condition = and_(RUNS.status.in_(ACTIVE), *seen)
        active = sql.execute(
            select(
                RUNS.id,
                RUNS.name,
                RUNS.status,
                RUNS.current_step,
                RUNS.open_gate,
                RUNS.requested_by,
                RUNS.updated_at,
            )
            .where(active_condition)
            .order_by(RUNS.updated_at.desc(), RUNS.id)
            .limit(LIST_LIMIT)
        ).all()
        attempts = sql.execute(
            select(ATTEMPTS.step, ATTEMPTS.status, ATTEMPTS.requested_at, ATTEMPTS.finished_at)
            .where(ATTEMPTS.run_id.in_(visible_ids))
            .order_by(ATTEMPTS.requested_at.desc())
            .limit(ATTEMPT_WINDOW)
        ).all()
        failed_condition = and_(ATTEMPTS.status == "failed", ATTEMPTS.run_id.in_(visible_ids))
        failures = sql.execute(
            select(
                ATTEMPTS.run_id, RUNS.name, ATTEMPTS.step, ATTEMPTS.error, ATTEMPTS.finished_at, RUNS.status
            )
            .join(RunRow.__table__, RUNS.id == ATTEMPTS.run_id)
            .where(failed_condition)
            .order_by(ATTEMPTS.finished_at.desc())
            .limit(LIST_LIMIT)
        ).all()
        failures_total = (
            sql.execute(
                select(func.count()).select_from(StageAttemptRow.__table__).where(failed_condition)
            ).scalar()
            or 0
        )
        open_condition = and_(REQUESTS.status == "open", REQUESTS.run_id.in_(visible_ids))
        waiting = sql.execute(
            select(
                REQUESTS.id, REQUESTS.run_id, RUNS.name, REQUESTS.gate, REQUESTS.title, REQUESTS.created_at
            )
            .join(RunRow.__table__, RUNS.id == REQUESTS.run_id)
            .where(open_condition)
            .order_by(REQUESTS.created_at, REQUESTS.id)
            .limit(LIST_LIMIT)
        ).all()
        waiting_total = (
            sql.execute(
                select(func.count()).select_from(DecisionRequestRow.__table__).where(open_condition)
            ).scalar()
            or 0
        )
        scores = sql.execute(
            select(
                SCORES.run_id,
                RUNS.name,
                # A registered source is keyed by its id: shown by its name (while it is registered).
                func.coalesce(SOURCES.name, SCORES.source_key).label("source"),
                SCORES.score,
                SCORES.recorded_at,
            )
            .join(RunRow.__table__, RUNS.id == SCORES.run_id)
            .outerjoin(SourceRow.__table__, SOURCES.id == SCORES.source_key)
            .where(*seen)
            .order_by(SCORES.recorded_at.desc())
            .limit(LIST_LIMIT * 2)
        ).all()
    order = {step: i for i, step in enumerate(stages)}
    decisions = []
    for row in waiting:
        asked = _utc(row.created_at) or now
        deadline = asked + gate_deadline
        decisions.append(
            {
                "id": row.id,
                "run_id": row.run_id,
                "run_name": row.name,
                "gate": row.gate,
                "title": row.title,
                "created_at": asked.isoformat(),
                "age_seconds": max(0.0, (now - asked).total_seconds()),
                "deadline_at": deadline.isoformat(),
                "overdue": now > deadline,
            }
        )
    return {
        "generated_at": now.isoformat(),
        "runs_by_state": dict(sorted(by_state.items())),
        "completed_with_findings": with_findings,
        "active_runs": [
            {
                "id": r.id,
                "name": r.name,
                "status": r.status,
                "current_step": r.current_step,
                "open_gate": r.open_gate,
                "requested_by": r.requested_by,
                "updated_at": _iso(r.updated_at),
            }
            for r in active
        ],
        "stages": sorted(stage_stats(attempts), key=lambda s: (order.get(s["step"], len(order)), s["step"])),
        "failures": [
            {
                "run_id": f.run_id,
                "run_name": f.name,
                "run_status": f.status,
                "step": f.step,
                "error": f.error,
                "finished_at": _iso(f.finished_at),
            }
            for f in failures
        ],
        "failures_total": failures_total,
        "open_decisions": decisions,
        "open_decisions_total": waiting_total,
        "gate_deadline_seconds": gate_deadline.total_seconds(),
        # Oldest first, so a chart reads left to right.
        "quality": [
            {
                "run_id": s.run_id,
                "run_name": s.name,
                "source": s.source,
                "score": s.score,
                "recorded_at": _iso(s.recorded_at),
            }
            for s in reversed(scores)
        ],
    }
