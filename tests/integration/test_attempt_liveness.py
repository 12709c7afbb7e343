"""An attempt whose worker died or never came is sent again at most N times, then the run fails with
a message: no run stays `running` forever. On SQLite and on real PostgreSQL (fails if it is missing)."""

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from lockflow.bootstrap import build_system
from lockflow.common.artifacts import LocalArtifactStore
from lockflow.common.bus.memory import InMemoryBus
from lockflow.common.bus.port import DeliveredEvent
from lockflow.common.cache import MemoryCache
from lockflow.common.db import Database, OutboxRow, StageAttemptRow
from lockflow.common.errors import StageError
from lockflow.common.events import Command, Event, IngestSource, StageFailed, StageFailedPayload, parse_event
from lockflow.common.models import Goal, SourceSpec
from lockflow.common.settings import CommonSettings
from lockflow.common.worker import StageDeps, StageWorker
from lockflow.orchestrator import service
from lockflow.orchestrator.liveness import LivenessPolicy
from lockflow.runstore import intake, views

pytestmark = pytest.mark.integration

POLICY = LivenessPolicy(
    heartbeat_timeout=timedelta(seconds=60), stage_timeout=timedelta(seconds=600), max_dispatches=3
)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database of each kind (PostgreSQL from the fixture that fails when it is missing)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'lockflow.db'}"
    else:
        yield request.getfixturevalue("fresh_postgres")


def _newest_event(db: Database) -> Event:
    with db.transaction() as session:
        row = session.scalars(select(OutboxRow).order_by(OutboxRow.id.desc()).limit(1)).one()
        return parse_event(row.event_json)


def _attempts(db: Database, run_id: str) -> list[StageAttemptRow]:
    with db.transaction() as session:
        query = select(StageAttemptRow).where(StageAttemptRow.run_id == run_id)
        return list(session.scalars(query.order_by(StageAttemptRow.dispatches)).all())


def _start_run(db: Database) -> tuple[str, IngestSource]:
    run_id = intake.request_run(
        db, name="r", source=SourceSpec(path="/data/x.csv"), goal=Goal(target="y"), requested_by="ana"
    )
    service.handle_event(db, _newest_event(db))
    command = _newest_event(db)
    assert isinstance(command, IngestSource)
    return run_id, command


def test_sweep_resends_then_fails_and_ignores_superseded_attempts(database_url: str, tmp_path: Path) -> None:
    db = Database(database_url)
    run_id, first = _start_run(db)
    requested = _attempts(db, run_id)[0].requested_at.replace(tzinfo=UTC)
    assert service.sweep_attempts(db, POLICY, now=requested + timedelta(seconds=599)) == []

    # Nobody picked the command up before its deadline: the same command goes out under a new attempt.
    (resent,) = service.sweep_attempts(db, POLICY, now=requested + timedelta(seconds=601))
    assert resent.action == "redispatch" and "no worker picked the attempt up" in resent.reason
    second = _newest_event(db)
    assert isinstance(second, IngestSource)
    assert second.payload.attempt_id != first.payload.attempt_id
    assert second.payload.source == first.payload.source
    assert [(a.status, a.dispatches) for a in _attempts(db, run_id)] == [("abandoned", 1), ("requested", 2)]

    # A late outcome of the superseded attempt changes nothing.
    late = first.follow(
        StageFailed,
        StageFailedPayload(attempt_id=first.payload.attempt_id, stage="ingest", error="late"),
        producer="ingest",
    )
    service.handle_event(db, late)
    assert views.get_run(db, run_id=run_id)["status"] == "running"

    # A worker handed the superseded command skips it: no work, no outcome.
    calls: list[str] = []

    def handler(command: Command, deps: StageDeps) -> Event:
        calls.append(command.event_id)
        raise AssertionError("a superseded attempt must not run")

    bus = InMemoryBus()
    deps = StageDeps(artifacts=LocalArtifactStore(tmp_path / "a"), cache=MemoryCache(), db=db)
    worker = StageWorker(stage="ingest", handlers={"IngestSource": handler}, deps=deps)
    asyncio.run(worker.handle(bus, DeliveredEvent(first, "t", 0, 0, [])))
    assert calls == [] and bus.records("lockflow.events") == []

    # The second attempt was started by a worker that then died: its heartbeat goes silent.
    beat = datetime.now(UTC)
    with db.transaction() as session:
        session.execute(
            update(StageAttemptRow)
            .where(StageAttemptRow.id == second.payload.attempt_id)
            .values(heartbeat_at=beat, deadline_at=beat + timedelta(seconds=3600))
        )
    assert service.sweep_attempts(db, POLICY, now=beat + timedelta(seconds=30)) == []
    (again,) = service.sweep_attempts(db, POLICY, now=beat + timedelta(seconds=61))
    assert again.action == "redispatch" and "stopped responding" in again.reason

    # The third dispatch goes unanswered too: the run fails, saying why and how to go on.
    (failed,) = service.sweep_attempts(db, POLICY, now=beat + timedelta(seconds=700))
    assert failed.action == "fail"
    run = views.get_run(db, run_id=run_id)
    assert run["status"] == "failed"
    assert "ingest: no worker picked the attempt up within 600s" in run["error"]
    assert "sent 3 times (LOCKFLOW_MAX_DISPATCHES=3)" in run["error"]
    assert f"lockflow resume {run_id}" in run["error"]
    assert [a.status for a in _attempts(db, run_id)] == ["abandoned", "abandoned", "failed"]
    assert _newest_event(db).type == "RunFailed"
    assert service.sweep_attempts(db, POLICY, now=beat + timedelta(seconds=9999)) == []

    # `lockflow resume` (retry_run) starts the step again from one dispatch.
    intake.retry_run(db, run_id=run_id, requested_by="ana")
    service.handle_event(db, _newest_event(db))
    assert (
        _attempts(db, run_id)[0].dispatches == 1 and views.get_run(db, run_id=run_id)["status"] == "running"
    )
    db.dispose()


def test_a_running_system_fails_a_run_whose_stage_has_no_worker(database_url: str, tmp_path: Path) -> None:
    settings = CommonSettings(
        mode="embedded",
        home=tmp_path,
        database_url=database_url,
        heartbeat_seconds=0.1,
        heartbeat_timeout_seconds=0.5,
        stage_timeout_seconds=0.5,
        max_dispatches=3,
    )

    async def scenario() -> dict[str, object]:
        system = build_system(settings, bus=InMemoryBus())
        await system.bus.start()
        await system.start_orchestrator()  # every stage's worker is gone: nobody takes the ingest command
        system.start_relay_loop(interval=0.05)
        try:
            run_id = intake.request_run(
                system.db,
                name="r",
                source=SourceSpec(path="/data/x.csv"),
                goal=Goal(target="y"),
                requested_by="ana",
            )
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                run = views.get_run(system.db, run_id=run_id)
                if run["status"] != "running":
                    return run
                await asyncio.sleep(0.1)
            return views.get_run(system.db, run_id=run_id)
        finally:
            await system.close()

    run = asyncio.run(scenario())
    assert run["status"] == "failed"
    assert "no worker picked the attempt up" in str(run["error"])
    assert "sent 3 times" in str(run["error"])
    assert [a["status"] for a in run["attempts"]] == ["abandoned", "abandoned", "failed"]  # type: ignore[union-attr]


def test_a_worker_that_dies_mid_attempt_is_noticed_by_its_silent_heartbeat(
    database_url: str, tmp_path: Path
) -> None:
    settings = CommonSettings(
        mode="embedded",
        home=tmp_path,
        database_url=database_url,
        heartbeat_seconds=0.1,
        heartbeat_timeout_seconds=1.0,
        stage_timeout_seconds=60,
        max_dispatches=1,
    )
    release = threading.Event()

    def stuck(command: Command, deps: StageDeps) -> Event:
        release.wait(timeout=60)  # bounded: the test releases it at the end
        raise StageError("released")

    async def scenario() -> tuple[list[datetime], dict[str, object]]:
        system = build_system(settings, bus=InMemoryBus(), handlers={"ingest": {"IngestSource": stuck}})
        await system.bus.start()
        await system.start_orchestrator()
        await system.start_worker("ingest")
        ingest_worker = system.subscriptions[-1]
        system.start_relay_loop(interval=0.05)
        try:
            run_id = intake.request_run(
                system.db,
                name="r",
                source=SourceSpec(path="/x.csv"),
                goal=Goal(target="y"),
                requested_by="ana",
            )
            beats: list[datetime] = []
            deadline = time.monotonic() + 20
            while len(set(beats)) < 3 and time.monotonic() < deadline:
                attempts = _attempts(system.db, run_id)
                if attempts and attempts[0].heartbeat_at is not None:
                    beats.append(attempts[0].heartbeat_at)
                await asyncio.sleep(0.1)
            await ingest_worker.stop()  # the worker dies: its heartbeat stops, its attempt stays requested
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if views.get_run(system.db, run_id=run_id)["status"] != "running":
                    break
                await asyncio.sleep(0.1)
            return beats, views.get_run(system.db, run_id=run_id)
        finally:
            release.set()
            await system.close()

    beats, run = asyncio.run(scenario())
    assert len(set(beats)) >= 3, "the worker's heartbeat did not advance while the handler ran"
    assert run["status"] == "failed"
    assert "the worker stopped responding (no heartbeat for 1s)" in str(run["error"])
    assert "sent once (LOCKFLOW_MAX_DISPATCHES=1)" in str(run["error"])
