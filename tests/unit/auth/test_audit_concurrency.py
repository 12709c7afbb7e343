"""The audit chain stays one unbroken chain under hundreds of parallel appends on one SQLite file.

Threads of one process share the engine; separate processes share only the file (as `lockflow up`
and a CLI admin command do), so only the database's own write lock can make them take turns.
"""

import multiprocessing
import threading
from pathlib import Path

from sqlalchemy import func, select

from lockflow.audit import chain as audit
from lockflow.common.auth_tables import AuditRow
from lockflow.common.db import Database

THREADS = 30
PER_THREAD = 10


def _append_many(db: Database, name: str, count: int, start: threading.Barrier | None = None) -> None:
    if start is not None:
        start.wait()
    for i in range(count):
        with db.transaction() as s:
            audit.append(s, action="source_updated", actor=name, subject=f"src-{i}")


def _chain(db: Database) -> tuple[audit.ChainReport, int]:
    with db.transaction() as s:
        return audit.verify_chain(s), s.scalar(select(func.count()).select_from(AuditRow)) or 0


def test_300_appends_from_30_threads_keep_one_chain(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'audit.db'}")
    start = threading.Barrier(THREADS)
    threads = [
        threading.Thread(target=_append_many, args=(db, f"t{n}", PER_THREAD, start)) for n in range(THREADS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report, count = _chain(db)
    db.dispose()
    assert report.ok, report
    assert report.rows == count == THREADS * PER_THREAD


def test_two_rows_in_one_transaction_chain_to_each_other(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'audit.db'}")
    with db.transaction() as s:
        first = audit.append(s, action="login_failed", actor="ana")
        second = audit.append(s, action="lockout", actor="ana")
    assert second.prev_hash == first.hash and first.prev_hash == audit.GENESIS
    assert _chain(db) == (audit.ChainReport(ok=True, rows=2), 2)
    db.dispose()


def _process_appends(url: str, name: str, count: int, start: "threading.Barrier") -> None:
    db = Database(url, run_migrations=False)
    start.wait()
    threads = [threading.Thread(target=_append_many, args=(db, f"{name}-{n}", count)) for n in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    db.dispose()


def test_appends_from_three_processes_on_one_file_keep_one_chain(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    Database(url).dispose()  # migrated once, before the writers start
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(3)
    workers = [context.Process(target=_process_appends, args=(url, f"p{n}", 20, start)) for n in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    db = Database(url)
    report, count = _chain(db)
    db.dispose()
    assert report.ok, report
    assert report.rows == count == 3 * 5 * 20
