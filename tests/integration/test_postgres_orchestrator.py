"""The orchestrator's persistence on real PostgreSQL: migrations, exactly-once decisions, outbox."""

import asyncio
import threading
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, inspect, select

from lockflow.bootstrap import build_system
from lockflow.common.bus.memory import InMemoryBus
from lockflow.common.cache import RedisCache
from lockflow.common.db import Database, DecisionRow, OutboxRow, RunRow, migrate
from lockflow.common.errors import Conflict
from lockflow.common.models import Goal, SourceSpec
from lockflow.common.settings import CommonSettings
from lockflow.orchestrator import service
from lockflow.runstore import intake, views

pytestmark = pytest.mark.integration


def test_migrations_create_the_schema_and_are_idempotent(fresh_postgres: str) -> None:
    db = Database(fresh_postgres)
    migrate(db.engine)
    tables = set(inspect(db.engine).get_table_names())
    assert {
        "runs",
        "stage_attempts",
        "decision_requests",
        "decisions",
        "outbox",
        "processed_events",
        "run_events",
        "alembic_version",
    } <= tables
    db.dispose()


def test_concurrent_migrations_take_turns(fresh_postgres: str) -> None:
    errors: list[BaseException] = []

    def start() -> None:
        try:
            Database(fresh_postgres).dispose()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


async def _run_to_first_gate(tmp_path: Path, database_url: str, redis_url: str) -> tuple[object, str, str]:
    data = tmp_path / "d.csv"
    pd.DataFrame({"x": range(200), "y": [i * 2.0 for i in range(200)]}).to_csv(data, index=False)
    settings = CommonSettings(database_url=database_url, home=tmp_path, environment="test")
    system = build_system(settings, bus=InMemoryBus(), cache=RedisCache(redis_url))
    await system.start_everything()
    run_id = intake.request_run(
        system.db, name="t", source=SourceSpec(path=str(data)), goal=Goal(target="y"), requested_by="ana"
    )
    await system.relay_outbox()
    for _ in range(400):
        open_requests = views.list_decision_requests(system.db, run_id=run_id)
        if open_requests:
            return system, run_id, open_requests[0]["id"]
        await asyncio.sleep(0.05)
    raise AssertionError("gate 1 never opened")


async def test_a_decision_is_accepted_exactly_once_under_concurrency(
    tmp_path: Path, fresh_postgres: str, redis_url: str
) -> None:
    system, _run_id, request_id = await _run_to_first_gate(tmp_path, fresh_postgres, redis_url)
    try:
        outcomes: list[str] = []
        barrier = threading.Barrier(8)

        def submit(i: int) -> None:
            barrier.wait()
            try:
                intake.record_decision(
                    system.db,
                    request_id=request_id,
                    option="approve",
                    params={},  # type: ignore[attr-defined]
                    rationale=f"t{i}",
                    decided_by=f"user{i}",
                )
                outcomes.append("accepted")
            except Conflict:
                outcomes.append("conflict")

        threads = [threading.Thread(target=submit, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["accepted"] + ["conflict"] * 7
        with system.db.transaction() as session:  # type: ignore[attr-defined]
            assert session.scalar(select(func.count()).select_from(DecisionRow)) == 1
            made = session.scalars(
                select(OutboxRow).where(OutboxRow.event_json.contains('"DecisionMade"'))
            ).all()
            assert len(made) == 1
    finally:
        await system.close()  # type: ignore[attr-defined]


async def test_the_outbox_publishes_each_event_once_and_marks_it(
    tmp_path: Path, fresh_postgres: str, redis_url: str
) -> None:
    system, run_id, _ = await _run_to_first_gate(tmp_path, fresh_postgres, redis_url)
    try:
        await system.relay_outbox()  # type: ignore[attr-defined]
        with system.db.transaction() as session:  # type: ignore[attr-defined]
            pending = session.scalar(
                select(func.count()).select_from(OutboxRow).where(OutboxRow.published_at.is_(None))
            )
            total = session.scalar(select(func.count()).select_from(OutboxRow))
            run = session.get(RunRow, run_id)
            assert run is not None and run.status == "waiting" and run.open_gate == "source_review"
        assert pending == 0
        published = system.bus.records(f"{system.bus.prefix}.events") + system.bus.records(  # type: ignore[attr-defined]
            f"{system.bus.prefix}.commands.ingest"
        )  # type: ignore[attr-defined]
        ids = [r.value for r in published]
        orchestrated = [v for v in ids if b'"producer":"orchestrator"' in v or b'"producer":"gateway"' in v]
        assert len(orchestrated) == total
        assert len(set(orchestrated)) == len(orchestrated)
    finally:
        await system.close()  # type: ignore[attr-defined]


async def test_redelivered_events_change_nothing(tmp_path: Path, fresh_postgres: str, redis_url: str) -> None:
    system, run_id, _ = await _run_to_first_gate(tmp_path, fresh_postgres, redis_url)
    try:
        from lockflow.common.events import parse_event

        before = views.get_run(system.db, run_id=run_id)  # type: ignore[attr-defined]
        for record in system.bus.records(f"{system.bus.prefix}.events"):  # type: ignore[attr-defined]
            service.handle_event(system.db, parse_event(record.value))  # type: ignore[attr-defined]
        after = views.get_run(system.db, run_id=run_id)  # type: ignore[attr-defined]
        assert after["attempts"] == before["attempts"]
        assert len(views.list_decision_requests(system.db, status=None, run_id=run_id)) == 1  # type: ignore[attr-defined]
    finally:
        await system.close()  # type: ignore[attr-defined]
