"""The audit chain on the real PostgreSQL under hundreds of parallel appends from threads and processes."""

import multiprocessing
import threading

import pytest
from sqlalchemy import func, select

from lockflow.audit import chain as audit
from lockflow.common.auth_tables import AuditRow
from lockflow.common.db import Database

pytestmark = pytest.mark.integration


def _append_many(db: Database, name: str, count: int, start: threading.Barrier | None = None) -> None:
    if start is not None:
        start.wait()
    for i in range(count):
        with db.transaction() as s:
            audit.append(s, action="source_updated", actor=name, subject=f"src-{i}")


def _chain(db: Database) -> tuple[audit.ChainReport, int]:
    with db.transaction() as s:
        return audit.verify_chain(s), s.scalar(select(func.count()).select_from(AuditRow)) or 0


def test_300_appends_from_30_threads_over_two_engines_keep_one_chain(fresh_postgres: str) -> None:
    replicas = [Database(fresh_postgres), Database(fresh_postgres)]
    start = threading.Barrier(30)
    threads = [
        threading.Thread(target=_append_many, args=(replicas[n % 2], f"t{n}", 10, start)) for n in range(30)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report, count = _chain(replicas[0])
    for db in replicas:
        db.dispose()
    assert report.ok, report
    assert report.rows == count == 300


def _process_appends(url: str, name: str, count: int, start: "threading.Barrier") -> None:
    db = Database(url, run_migrations=False)
    start.wait()
    threads = [threading.Thread(target=_append_many, args=(db, f"{name}-{n}", count)) for n in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    db.dispose()


def test_appends_from_three_processes_keep_one_chain(fresh_postgres: str) -> None:
    Database(fresh_postgres).dispose()  # migrated once, before the writers start
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(3)
    workers = [
        context.Process(target=_process_appends, args=(fresh_postgres, f"p{n}", 20, start)) for n in range(3)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    db = Database(fresh_postgres)
    report, count = _chain(db)
    db.dispose()
    assert report.ok, report
    assert report.rows == count == 3 * 5 * 20
