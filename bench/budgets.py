"""Figures for hostile width: `lockflow run --yes` on a generated CSV of W columns x 50 rows each.

Each run is its own process under an address-space cap (RLIMIT_AS, default 4 GB) and a wall-clock
timeout, in a temp --home; prints the outcome line, wall seconds and the process's peak RSS. Before
the budgets a 10,000-column file kept analytics busy for minutes while memory grew past 17 GB; now
it stops at ingest (LOCKFLOW_MAX_COLUMNS), and 900 columns complete with the pairs they used stated.
Prints, asserts nothing. Run: `.venv/bin/python bench/budgets.py [--widths 10000 900] [--rows 50]`.
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd


def write_csv(path: Path, *, columns: int, rows: int) -> None:
    """Small integers, as in the issue's file (10,000 x 50 is about 1 MB)."""
    rng = np.random.default_rng(0)
    values = rng.integers(0, 10, size=(rows, columns))
    pd.DataFrame(values, columns=[f"c{i}" for i in range(columns)]).to_csv(path, index=False)


def run_capped(csv: Path, home: Path, *, cap_bytes: int, timeout: float) -> tuple[str, float, int]:
    """(outcome line, wall seconds, peak RSS MB) of one `lockflow run --yes` under the cap."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap_bytes, cap_bytes))

    command = [sys.executable, "-m", "lockflow.cli", "run", "--yes", "--home", str(home), str(csv)]
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, preexec_fn=cap, text=True)
        killer = threading.Timer(timeout, process.kill)
        killer.start()
        _, status, usage = os.wait4(process.pid, 0)  # this child's own peak RSS, not the max of all
        killer.cancel()
        wall = time.perf_counter() - started
        out.seek(0)
        lines = [line.strip() for line in out.read().splitlines() if line.strip()]
    if os.WIFSIGNALED(status):
        return (
            f"killed by signal {os.WTERMSIG(status)} (timeout {timeout:.0f}s or the cap)",
            wall,
            usage.ru_maxrss // 1024,
        )
    ended = next((line for line in lines if line.startswith(("failed at", "completed"))), "?")
    reason = next((line for line in lines if line.startswith("reason:")), "")
    return f"{ended} {reason}".strip(), wall, usage.ru_maxrss // 1024


def main() -> None:
    """Run each width and print its figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--widths", type=int, nargs="+", default=[10_000, 900])
    parser.add_argument("--rows", type=int, default=50)
    parser.add_argument("--cap-gb", type=float, default=4.0)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for width in args.widths:
            csv = Path(tmp) / f"wide{width}.csv"
            write_csv(csv, columns=width, rows=args.rows)
            outcome, wall, peak = run_capped(
                csv, Path(tmp) / f"home{width}", cap_bytes=int(args.cap_gb * 1e9), timeout=args.timeout
            )
            size = csv.stat().st_size / 1e6
            print(
                f"{width:>6,} columns x {args.rows} rows ({size:.1f} MB): {wall:6.1f}s, peak RSS {peak:,} MB"
            )
            print(f"        {outcome[:300]}")


if __name__ == "__main__":
    main()
