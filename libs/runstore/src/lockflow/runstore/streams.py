"""A stream's windows and policy versions in the run store: written by the orchestrator, read by the API.

A stream is a run of kind "stream" (its run id is the stream's id); each WindowAssessed becomes one
`stream_windows` row (once: a window re-sent after a worker restart is the same window), each approved
policy one `stream_policies` row. List reads filter in SQL, then page, and say the total.
"""

from __future__ import annotations

import io
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from lockflow.common.artifacts import ArtifactStore
from lockflow.common.db import (
    Database,
    RunRow,
    StreamPolicyRow,
    StreamSnapshotScheduleRow,
    StreamWindowRow,
    utcnow,
)
from lockflow.common.errors import InvalidInput, NotFound
from lockflow.common.logging import get_logger
from lockflow.common.models import Goal, SourceSpec
from lockflow.common.streams import StreamPolicy, WindowResult
from lockflow.runstore import intake

log = get_logger(__name__)
ACTIVE = ("running", "waiting")


def violations_of(window: WindowResult) -> int:
    """Records with any finding in the window (each finding kind counts records, so the sum may overlap)."""
    return sum(window.findings.values())


def record_window(session: Session, *, stream_id: str, window: WindowResult) -> StreamWindowRow | None:
    """Store a closed window; None when that window (same start) is already stored."""
    exists = session.scalar(
        select(StreamWindowRow.id).where(
            StreamWindowRow.stream_id == stream_id, StreamWindowRow.window_start == window.window_start
        )
    )
    if exists is not None:
        return None
    row = StreamWindowRow(
        stream_id=stream_id,
        window_start=window.window_start,
        window_end=window.window_end,
        policy_version=window.policy_version,
        mode=window.mode,
        records=window.records,
        violations=violations_of(window),
        quality_score=window.quality_score,
        freshness_p99_seconds=window.freshness_p99_seconds,
        artifact_uri=window.artifact_uri,
        result=window.model_dump(mode="json"),
        closed_at=window.closed_at,
    )
    session.add(row)
    session.flush()
    return row


def recent_windows(session: Session, *, stream_id: str, limit: int = 20) -> list[WindowResult]:
    """The stream's latest windows, oldest first."""
    rows = session.scalars(
        select(StreamWindowRow.result)
        .where(StreamWindowRow.stream_id == stream_id)
        .order_by(StreamWindowRow.window_start.desc())
        .limit(limit)
    ).all()
    return [WindowResult.model_validate(r) for r in reversed(rows)]


def next_policy_version(session: Session, *, stream_id: str) -> int:
    """1 for the stream's first policy, else one more than its latest."""
    latest = session.scalar(
        select(func.max(StreamPolicyRow.version)).where(StreamPolicyRow.stream_id == stream_id)
    )
    return int(latest or 0) + 1


def add_policy(session: Session, *, policy: StreamPolicy, request_id: str) -> None:
    """Store an approved policy version."""
    session.add(
        StreamPolicyRow(
            stream_id=policy.stream_id,
            version=policy.version,
            policy=policy.model_dump(mode="json"),
            request_id=request_id,
            approved_by=policy.approved_by,
            approved_at=policy.approved_at,
        )
    )


def _window_view(row: StreamWindowRow) -> dict[str, Any]:
    return {"id": row.id, "reopened": row.reopened, **row.result}


def _in_range(query: Any, start: datetime | None, end: datetime | None) -> Any:
    if start is not None:
        query = query.where(StreamWindowRow.window_start >= start)
    if end is not None:
        query = query.where(StreamWindowRow.window_end <= end)
    return query


def windows_page(
    db: Database,
    *,
    stream_id: str,
    limit: int = 100,
    offset: int = 0,
    start: datetime | None = None,
    end: datetime | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """The stream's windows, newest first, in [start, end] if given; with the total."""
    where = StreamWindowRow.stream_id == stream_id
    query = _in_range(select(StreamWindowRow).where(where), start, end)
    count = _in_range(select(func.count()).select_from(StreamWindowRow).where(where), start, end)
    with db.transaction() as session:
        rows = session.scalars(
            query.order_by(StreamWindowRow.window_start.desc()).limit(limit).offset(offset)
        ).all()
        return [_window_view(r) for r in rows], int(session.scalar(count) or 0)


def windows_after(db: Database, *, stream_id: str, after_id: int, limit: int = 200) -> list[dict[str, Any]]:
    """Windows stored after the one with `after_id`, in the order they were stored (the live view)."""
    with db.transaction() as session:
        rows = session.scalars(
            select(StreamWindowRow)
            .where(StreamWindowRow.stream_id == stream_id, StreamWindowRow.id > after_id)
            .order_by(StreamWindowRow.id)
            .limit(limit)
        ).all()
        return [_window_view(r) for r in rows]


def snapshot_windows(
    db: Database,
    *,
    stream_id: str,
    last: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[StreamWindowRow]:
    """The windows a snapshot is cut from: the last `last`, or those in [start, end]; oldest first."""
    query = _in_range(select(StreamWindowRow).where(StreamWindowRow.stream_id == stream_id), start, end)
    with db.transaction() as session:
        rows = session.scalars(
            query.order_by(StreamWindowRow.window_start.desc()).limit(last or 100_000)
        ).all()
        for row in rows:
            session.expunge(row)
    return list(reversed(rows))


def policies_of(db: Database, *, stream_id: str) -> list[dict[str, Any]]:
    """Every approved policy version of the stream, newest first."""
    with db.transaction() as session:
        rows = session.scalars(
            select(StreamPolicyRow)
            .where(StreamPolicyRow.stream_id == stream_id)
            .order_by(StreamPolicyRow.version.desc())
        ).all()
        return [{**r.policy, "request_id": r.request_id} for r in rows]


def _stream_view(run: RunRow, summary: dict[str, Any]) -> dict[str, Any]:
    state = run.state or {}
    stream = state.get("stream") or {}
    spec = stream.get("spec") or {}
    policy = stream.get("policy") or {}
    return {
        "id": run.id,
        "name": run.name,
        "status": run.status,
        "open_gate": run.open_gate,
        "requested_by": run.requested_by,
        "created_at": run.created_at.isoformat(),
        "source": state.get("source"),
        "topic": spec.get("topic"),
        "window_seconds": spec.get("window_seconds"),
        "grace_seconds": spec.get("grace_seconds"),
        "unapproved_mode": spec.get("unapproved_mode"),
        "started": bool(spec),
        "contract": spec.get("contract") or stream.get("contract"),
        "policy_version": policy.get("version"),
        "error": run.error,
        **summary,
    }


def _summary(session: Session, stream_id: str) -> dict[str, Any]:
    windows, records, violations, last_end = session.execute(
        select(
            func.count(StreamWindowRow.id),
            func.coalesce(func.sum(StreamWindowRow.records), 0),
            func.coalesce(func.sum(StreamWindowRow.violations), 0),
            func.max(StreamWindowRow.window_end),
        ).where(StreamWindowRow.stream_id == stream_id)
    ).one()
    latest = session.scalars(
        select(StreamWindowRow)
        .where(StreamWindowRow.stream_id == stream_id)
        .order_by(StreamWindowRow.window_start.desc())
        .limit(1)
    ).first()
    return {
        "windows": int(windows),
        "records": int(records),
        "violations": int(violations),
        "last_window_end": last_end.isoformat() if last_end else None,
        "last_quality_score": latest.quality_score if latest else None,
        "last_freshness_p99_seconds": latest.freshness_p99_seconds if latest else None,
    }


def streams_page(
    db: Database,
    *,
    owner: str | None,
    shared: Collection[str] = (),
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Streams, newest first: `owner`'s and those shared with them (every stream when owner is None)."""
    where = [RunRow.kind == "stream"]
    if owner is not None:
        where.append(
            or_(RunRow.requested_by == owner, RunRow.id.in_(list(shared)))
            if shared
            else RunRow.requested_by == owner
        )
    if status is not None:
        where.append(RunRow.status == status)
    with db.transaction() as session:
        rows = session.scalars(
            select(RunRow)
            .where(*where)
            .order_by(RunRow.created_at.desc(), RunRow.id)
            .limit(limit)
            .offset(offset)
        ).all()
        total = session.scalar(select(func.count()).select_from(RunRow).where(*where)) or 0
        return [_stream_view(r, _summary(session, r.id)) for r in rows], int(total)


def get_stream(db: Database, *, stream_id: str) -> dict[str, Any]:
    """One stream with its summary; NotFound if no stream has that id."""
    with db.transaction() as session:
        run = session.get(RunRow, stream_id)
        if run is None or run.kind != "stream":
            raise NotFound(f"no stream {stream_id}")
        view = _stream_view(run, _summary(session, run.id))
        schedule = session.get(StreamSnapshotScheduleRow, stream_id)
        view["schedule"] = (
            None
            if schedule is None
            else {
                "last_windows": schedule.last_windows,
                "every_minutes": schedule.every_seconds // 60,
                "next_at": schedule.next_at.isoformat(),
                "created_by": schedule.created_by,
            }
        )
        view["snapshots"] = [
            {"id": r.id, "name": r.name, "status": r.status, "created_at": r.created_at.isoformat()}
            for r in session.scalars(
                select(RunRow)
                .where(RunRow.stream_id == stream_id)
                .order_by(RunRow.created_at.desc())
                .limit(50)
            )
        ]
        return view


# ---- snapshots: windows as a dataset, run through the batch stages ---------------------------------


def snapshot_artifact(artifacts: ArtifactStore, rows: list[StreamWindowRow]) -> tuple[str, int]:
    """The windows' Parquet micro-batches as one Parquet artifact (its uri) and its row count."""
    tables = [pq.read_table(artifacts.open_input(r.artifact_uri)) for r in rows if r.artifact_uri]
    tables = [t for t in tables if t.num_rows]
    if not tables:
        raise InvalidInput(
            f"none of the {len(rows)} selected windows has records stored (a micro-batch); "
            "choose other windows"
        )
    table = pa.concat_tables(tables, promote_options="permissive")
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    uri, _digest = artifacts.put_bytes(buffer.getvalue(), suffix=".parquet")
    return uri, table.num_rows


@dataclass(frozen=True)
class Snapshot:
    """A snapshot's dataset: what a batch run reads, and what it was cut from."""

    spec: SourceSpec
    windows: int
    rows: int


def cut_snapshot(
    db: Database,
    artifacts: ArtifactStore,
    *,
    stream_id: str,
    stream_name: str,
    last: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Snapshot:
    """The selected windows as one Parquet artifact and the SourceSpec of a run on it."""
    rows = snapshot_windows(db, stream_id=stream_id, last=last, start=start, end=end)
    uri, count = snapshot_artifact(artifacts, rows)
    spec = SourceSpec(path=f"{stream_name[:150]}-snapshot.parquet", format="parquet", uri=uri)
    return Snapshot(spec, len(rows), count)


def schedule_snapshots(
    db: Database, *, stream_id: str, last_windows: int, every_minutes: int, goal: Goal, created_by: str
) -> None:
    """Snapshot the stream's last windows every `every_minutes` (replacing its schedule, if any)."""
    with db.transaction() as session:
        row = session.get(StreamSnapshotScheduleRow, stream_id)
        if row is None:
            row = StreamSnapshotScheduleRow(stream_id=stream_id)
            session.add(row)
        row.last_windows, row.every_seconds = last_windows, every_minutes * 60
        row.goal, row.created_by = goal.model_dump(mode="json"), created_by
        row.next_at = utcnow() + timedelta(minutes=every_minutes)


def run_due_snapshots(db: Database, artifacts: ArtifactStore, *, now: datetime | None = None) -> list[str]:
    """Start each scheduled snapshot that is due (once, however many processes sweep); the run ids.

    A schedule is claimed by moving its next time on in one UPDATE, so two sweepers start it once; a
    stream that ended loses its schedule; a selection without records is skipped until next time.
    """
    at = now or utcnow()
    with db.transaction() as session:
        due = [
            (r.stream_id, r.next_at)
            for r in session.scalars(
                select(StreamSnapshotScheduleRow).where(StreamSnapshotScheduleRow.next_at <= at)
            )
        ]
    started = []
    for stream_id, next_at in due:
        with db.transaction() as session:
            schedule = session.get(StreamSnapshotScheduleRow, stream_id)
            run = session.get(RunRow, stream_id)
            if schedule is None or run is None:
                continue
            if run.status not in ACTIVE:
                session.delete(schedule)
                continue
            claimed = session.execute(
                update(StreamSnapshotScheduleRow)
                .where(
                    StreamSnapshotScheduleRow.stream_id == stream_id,
                    StreamSnapshotScheduleRow.next_at == next_at,
                )
                .values(next_at=at + timedelta(seconds=schedule.every_seconds))
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                continue
            last, goal, owner, name = (
                schedule.last_windows,
                Goal.model_validate(schedule.goal),
                schedule.created_by,
                run.name,
            )
        try:
            snapshot = cut_snapshot(db, artifacts, stream_id=stream_id, stream_name=name, last=last)
        except InvalidInput as exc:
            log.info("scheduled_snapshot_skipped", stream_id=stream_id, why=str(exc))
            continue
        run_id = intake.request_run(
            db,
            name=f"{name[:150]} snapshot",
            source=snapshot.spec,
            goal=goal,
            requested_by=owner,
            stream_id=stream_id,
        )
        with db.transaction() as session:
            row = session.get(StreamSnapshotScheduleRow, stream_id)
            if row is not None:
                row.last_run_id = run_id
        log.info("scheduled_snapshot_started", stream_id=stream_id, run_id=run_id, windows=snapshot.windows)
        started.append(run_id)
    return started
