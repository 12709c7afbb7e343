"""Stage 1 read throughput and peak memory: lockflow's connectors beside the plain pyarrow/pandas read.

"lockflow" is the whole stage-1 read: the connector's chunks normalised one at a time and streamed into
the content-addressed Parquet artifact (written, hashed and renamed into the store). "plain" is the
bare read of the same data into memory (pyarrow for CSV and Parquet, pandas.read_sql_table for
PostgreSQL). "plain+write" is that read followed by one pq.write_table (zstd) of the whole table: the
floor for any read that must also store the data as Parquet. Each source is measured at two sizes,
so whether peak memory grows with the row count shows in the figures. Each measurement runs in its
own process (--repeat times: the best time and the highest peak are shown); peak resident memory is
sampled every 5 ms above what the process held before the read. The "parquet" file has canonical
types (int64, float64, large_string), which stage 1 stores as it is (lockflow.ingest.passthrough);
"parquet-n" (--formats parquet-norm) holds the same rows with int32 and dictionary-encoded text, types
normalisation changes, so it measures the decode-and-re-encode path.

    .venv/bin/python bench/sources.py    # CSV, Parquet at 500k and 2M rows; PostgreSQL at 250k and 1M
    .venv/bin/python bench/sources.py --csv-rows 200000 800000 --db-rows 100000 400000
    .venv/bin/python bench/sources.py --only files --formats parquet parquet-norm --csv-rows 2000000 8000000
PostgreSQL comes from LOCKFLOW_DATABASE_URL (scripts/services.sh env); a scratch database is used.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd


def make_frame(rows: int) -> pd.DataFrame:
    """Synthetic sales rows: ints, floats, a category, text and a date."""
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "id": np.arange(rows),
            "amount": rng.normal(100, 20, rows).round(2),
            "qty": rng.integers(1, 20, rows),
            "region": rng.choice(["north", "south", "east", "west"], rows),
            "note": rng.choice(["ok", "late", "returned", "gift"], rows),
        }
    )


def _rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


class RssSampler:
    """Samples this process's resident set every 5 ms; `stop` returns the peak above the start."""

    def __init__(self) -> None:
        import threading

        self.start = self.peak = _rss_mib()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(0.005):
            self.peak = max(self.peak, _rss_mib())

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        return max(self.peak, _rss_mib()) - self.start


def child(kind: str, reader: str, target: str) -> dict[str, float]:
    """One measurement (runs in a fresh process); imports happen before the clock starts."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    from lockflow.common.artifacts import LocalArtifactStore
    from lockflow.common.models import SourceSpec
    from lockflow.ingest.connections import build_connector
    from lockflow.ingest.ingest import read_into_artifact
    from lockflow.sources.configs import parse_config
    from lockflow.sources.settings import SourceSettings

    sampler = RssSampler()
    started = time.perf_counter()
    if reader in ("plain", "plain+write"):
        if kind == "csv":
            data = pacsv.read_csv(target)
        elif kind == "parquet":
            data = pq.read_table(target)
        else:
            url, table = target.rsplit("#", 1)
            engine = create_engine(url)
            data = pa.Table.from_pandas(pd.read_sql_table(table, engine), preserve_index=False)
            engine.dispose()
        rows = data.num_rows
        if reader == "plain+write":
            with tempfile.TemporaryDirectory() as work:
                pq.write_table(data, Path(work) / "out.parquet", compression="zstd")
    else:
        with tempfile.TemporaryDirectory() as work:
            if kind == "database":
                url, table = target.rsplit("#", 1)
                config = parse_config("database", {"url": url, "table": table})
            else:
                config = parse_config("file", {"path": target})
            # The benchmark's database runs on this machine: allow its host like an operator would.
            hosts = [str(make_url(target.rsplit("#", 1)[0]).host)] if kind == "database" else []
            settings = SourceSettings(
                allowed_dirs=[Path(target).parent] if kind != "database" else [],
                allow_hosts=hosts,
                home=Path(work),
            )
            connector = build_connector(config, settings)
            store = LocalArtifactStore(Path(work) / "artifacts")
            dataset, _ = read_into_artifact(connector, spec=SourceSpec(path=target), artifacts=store)
            rows = dataset.rows
    seconds = time.perf_counter() - started
    # Peak resident memory above what the process held before the read (imports excluded).
    return {"rows": rows, "seconds": seconds, "peak_mib": sampler.stop()}


REPEAT = 3


def measure(kind: str, reader: str, target: str) -> dict[str, float]:
    """The best time and the highest peak of REPEAT fresh-process runs (the machine may be shared)."""
    runs = []
    for _ in range(REPEAT):
        out = subprocess.run(
            [sys.executable, __file__, "--child", kind, reader, target],
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {
        "rows": runs[0]["rows"],
        "seconds": min(r["seconds"] for r in runs),
        "peak_mib": max(r["peak_mib"] for r in runs),
    }


def report(kind: str, target: str, rows: int, *, label: str | None = None) -> None:
    plain = measure(kind, "plain", target)
    floor = measure(kind, "plain+write", target)
    ours = measure(kind, "lockflow", target)
    assert int(ours["rows"]) == int(plain["rows"]) == rows, (ours, plain, rows)
    label = label or kind
    for name, m in (("plain", plain), ("plain+write", floor), ("lockflow", ours)):
        print(
            f"{label:10s} {name:11s} rows={int(m['rows']):>9,d}  {m['rows'] / m['seconds']:>11,.0f} rows/s  "
            f"{m['seconds']:6.2f} s  peak {m['peak_mib']:5.0f} MiB"
        )
    print(
        f"{label:10s} ratio       rows={rows:>9,d}  time x{ours['seconds'] / plain['seconds']:.2f} of plain, "
        f"x{ours['seconds'] / floor['seconds']:.2f} of plain+write; "
        f"peak memory x{ours['peak_mib'] / max(plain['peak_mib'], 1.0):.2f} of plain"
    )


def files(rows: int, formats: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        frame = make_frame(rows)
        csv_path, pq_path = Path(folder) / "sales.csv", Path(folder) / "sales.parquet"
        frame.to_csv(csv_path, index=False)
        frame.to_parquet(pq_path)
        del frame
        mib = (csv_path.stat().st_size / 2**20, pq_path.stat().st_size / 2**20)
        print(f"data: {rows:,} rows, CSV {mib[0]:.0f} MiB, Parquet {mib[1]:.0f} MiB")
        if "csv" in formats:
            report("csv", str(csv_path), rows)
        if "parquet" in formats:
            report("parquet", str(pq_path), rows)
        if "parquet-norm" in formats:
            # Category text (dictionary-encoded) and int32: types normalisation changes, so this file is
            # decoded and re-encoded; the canonical file above is stored as it is (passthrough.py).
            frame = make_frame(rows).astype({"qty": "int32", "region": "category", "note": "category"})
            norm_path = Path(folder) / "sales-norm.parquet"
            frame.to_parquet(norm_path)
            del frame
            report("parquet", str(norm_path), rows, label="parquet-n")


def database(url: str, rows: int) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"lockflow_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    scratch = make_url(url).set(database=name).render_as_string(hide_password=False)
    try:
        engine = create_engine(scratch)
        make_frame(rows).to_sql("sales", engine, index=False, chunksize=50_000, method="multi")
        engine.dispose()
        print(f"data: {rows:,} rows in a PostgreSQL table")
        report("database", f"{scratch}#sales", rows)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--csv-rows", type=int, nargs="+", default=[500_000, 2_000_000])
    parser.add_argument("--db-rows", type=int, nargs="+", default=[250_000, 1_000_000])
    parser.add_argument("--only", choices=["files", "database"])
    parser.add_argument(
        "--formats",
        nargs="+",
        choices=["csv", "parquet", "parquet-norm"],
        default=["csv", "parquet"],
        help="file formats; parquet-norm: a Parquet file whose types must be normalised",
    )
    parser.add_argument("--repeat", type=int, default=REPEAT)
    parser.add_argument("--child", nargs=3)
    args = parser.parse_args()
    globals()["REPEAT"] = args.repeat
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    if args.only != "database":
        for rows in args.csv_rows:
            files(rows, args.formats)
    if args.only == "files":
        return
    url = os.environ.get("LOCKFLOW_DATABASE_URL")
    if not url:
        print('database: LOCKFLOW_DATABASE_URL is not set; run `eval "$(bash scripts/services.sh env)"`')
        return
    for rows in args.db_rows:
        database(url, rows)


if __name__ == "__main__":
    main()
