"""Figures for the audit chain under parallel appends; prints them, asserts nothing.

For SQLite (a temp file) and, when LOCKFLOW_DATABASE_URL is set, PostgreSQL (a fresh database):
appends per second and the median/p95 of one append transaction with 1 and with 30 threads, whether
`verify_chain` stays ok and the row count exact, and how long verifying the chain takes.
Run: `.venv/bin/python bench/audit.py [--appends 600] [--threads 30]`.
"""

import argparse
import os
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, func, select, text

from lockflow.audit import chain as audit
from lockflow.common.auth_tables import AuditRow
from lockflow.common.db import Database


def run_appends(db: Database, total: int, threads: int) -> tuple[float, list[float]]:
    """Wall seconds for `total` appends split over `threads`, and each append's latency (ms)."""
    latencies: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(threads + 1)

    def worker(name: str, count: int) -> None:
        mine = []
        start.wait()
        for i in range(count):
            began = time.perf_counter()
            with db.transaction() as s:
                audit.append(s, action="source_updated", actor=name, subject=f"src-{i}")
            mine.append((time.perf_counter() - began) * 1000)
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=worker, args=(f"t{n}", total // threads)) for n in range(threads)]
    for w in workers:
        w.start()
    start.wait()
    began = time.perf_counter()
    for w in workers:
        w.join()
    return time.perf_counter() - began, latencies


def measure(label: str, url: str, appends: int, threads: int) -> None:
    """Print the figures of one database."""
    db = Database(url)
    written = 0
    for n in (1, threads):
        count = appends // n * n
        seconds, latencies = run_appends(db, count, n)
        written += count
        latencies.sort()
        median, p95 = statistics.median(latencies), latencies[int(0.95 * len(latencies))]
        print(
            f"{label:10} threads={n:3} appends={count:5} {count / seconds:8.0f} appends/s  "
            f"median {median:6.2f} ms  p95 {p95:7.2f} ms"
        )
    began = time.perf_counter()
    with db.transaction() as s:
        report = audit.verify_chain(s)
        rows = s.scalar(select(func.count()).select_from(AuditRow))
    verify_ms = (time.perf_counter() - began) * 1000
    print(
        f"{label:10} verify: ok={report.ok} rows={report.rows} counted={rows} expected={written} "
        f"in {verify_ms:.0f} ms"
    )
    db.dispose()


def main() -> None:
    """Measure SQLite, then PostgreSQL if configured."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--appends", type=int, default=600)
    parser.add_argument("--threads", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        measure("sqlite", f"sqlite:///{Path(folder) / 'audit.db'}", args.appends, args.threads)
    postgres = os.environ.get("LOCKFLOW_DATABASE_URL")
    if not postgres:
        print("postgresql: LOCKFLOW_DATABASE_URL not set, skipped")
        return
    name = f"lockflow_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        measure("postgresql", postgres.rsplit("/", 1)[0] + f"/{name}", args.appends, args.threads)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
