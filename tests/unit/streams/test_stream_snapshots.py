"""Snapshots of a stream: windows' micro-batches cut into one dataset, and a schedule that starts the same
snapshot again while the stream runs, once per due time however many sweepers, and stops with the stream."""

import io
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select
from streams_support import assessed, outbox, stream_at_gate_1, window

from lockflow.common.artifacts import LocalArtifactStore
from lockflow.common.db import Database, RunRow
from lockflow.common.errors import InvalidInput
from lockflow.common.models import Goal
from lockflow.orchestrator import service
from lockflow.runstore import intake, views
from lockflow.runstore.streams import cut_snapshot, get_stream, run_due_snapshots, schedule_snapshots
from lockflow.runstore.streams import utcnow as now


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / 'o.db'}")


def _batch(artifacts: LocalArtifactStore, rows: list[dict[str, object]]) -> str:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    return artifacts.put_bytes(buffer.getvalue(), suffix=".parquet")[0]


def _streaming(db: Database, tmp_path: Path, artifacts: LocalArtifactStore) -> str:
    run_id = stream_at_gate_1(db, tmp_path)
    (request,) = views.list_decision_requests(db, run_id=run_id)
    intake.record_decision(
        db, request_id=request["id"], option="approve", params={}, rationale="", decided_by="pat"
    )
    service.handle_event(db, outbox(db)[-1])
    batches = [
        _batch(artifacts, [{"order_id": "o1", "amount": 1}, {"order_id": "o2", "amount": 2}]),
        None,  # a window without records has no micro-batch
        _batch(artifacts, [{"order_id": "o3", "amount": 3.5, "note": "late"}]),
    ]
    for i, uri in enumerate(batches):
        service.handle_event(db, assessed(window(run_id, i, records=0 if uri is None else 2, uri=uri)))
    return run_id


def test_a_cut_joins_the_selected_windows_batches_widening_their_types(db: Database, tmp_path: Path) -> None:
    artifacts = LocalArtifactStore(tmp_path / "artifacts")
    run_id = _streaming(db, tmp_path, artifacts)
    snapshot = cut_snapshot(db, artifacts, stream_id=run_id, stream_name="orders live", last=3)
    assert (snapshot.windows, snapshot.rows) == (3, 3)
    table = pq.read_table(artifacts.open_input(snapshot.spec.uri or ""))
    assert table.column("amount").to_pylist() == [1.0, 2.0, 3.5] and table.column("note").to_pylist() == [
        None,
        None,
        "late",
    ]
    assert snapshot.spec.format == "parquet" and snapshot.spec.path == "orders live-snapshot.parquet"
    with pytest.raises(InvalidInput, match="none of the 1 selected windows"):
        cut_snapshot(
            db,
            artifacts,
            stream_id=run_id,
            stream_name="x",
            start=window(run_id, 1).window_start,
            end=window(run_id, 1).window_end,
        )


def test_a_schedule_starts_a_linked_run_once_per_due_time_and_ends_with_the_stream(
    db: Database, tmp_path: Path
) -> None:
    artifacts = LocalArtifactStore(tmp_path / "artifacts")
    run_id = _streaming(db, tmp_path, artifacts)
    schedule_snapshots(db, stream_id=run_id, last_windows=2, every_minutes=60, goal=Goal(), created_by="ana")
    assert get_stream(db, stream_id=run_id)["schedule"]["every_minutes"] == 60
    assert run_due_snapshots(db, artifacts) == []  # not due yet
    later = now() + timedelta(minutes=61)
    (first,) = run_due_snapshots(db, artifacts, now=later)
    assert run_due_snapshots(db, artifacts, now=later) == []  # claimed: a second sweeper starts nothing
    with db.transaction() as session:
        snap = session.get(RunRow, first)
        assert snap is not None and (snap.stream_id, snap.kind, snap.requested_by) == (run_id, "batch", "ana")
    assert [s["id"] for s in get_stream(db, stream_id=run_id)["snapshots"]] == [first]
    (second,) = run_due_snapshots(db, artifacts, now=later + timedelta(minutes=61))
    assert second != first
    with db.transaction() as session:
        stream = session.get(RunRow, run_id)
        assert stream is not None
        stream.status = "aborted"
    assert run_due_snapshots(db, artifacts, now=later + timedelta(days=1)) == []
    assert get_stream(db, stream_id=run_id)["schedule"] is None
    with db.transaction() as session:
        assert len(session.scalars(select(RunRow).where(RunRow.stream_id == run_id)).all()) == 2
