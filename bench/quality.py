"""Quality assessment figures: lockflow's full catalogue vs ydata-profiling minimal vs the raw parse.

    python bench/quality.py [--rows 2000000] [--big-rows 10000000] [--skip-ydata] [--skip-gx] [--repeat 3]

Generates (once, cached) a 12-column CSV with planted problems, then runs, each in its own
process so peak memory (max RSS) is measured per tool:
  1. the raw pyarrow CSV parse of the whole file (the floor);
  2. lockflow: one streaming pass over CSV blocks + every detector (`assess_csv`);
     1 and 2 alternate --repeat times and the medians are reported;
  3. ydata-profiling `minimal=True` on pandas, in its own virtualenv (it pins pandas < 3),
     created on first use under ~/.cache/lockflow/bench-venv;
  4. Great Expectations (pinned in the dev group, run in this environment, pandas engine, an
     ephemeral context, analytics off) validating the checks both tools have, as expectations
     (CHECKS: not null on every column, unique key and unique rows, in set, between, regex match,
     type), beside lockflow given the same checks as its user rules on top of its whole catalogue;
  5. lockflow again on a --big-rows file (lockflow only), to show that peak memory does not grow
     with the rows (--big-rows 0 skips it).
Each timer starts after the tool's imports (lockflow's detectors load scikit-learn, ydata-profiling
its own stack); the import times are printed beside. The machine's load average is printed before
and after: on a shared machine it moves the times.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

CACHE = Path(os.environ.get("LOCKFLOW_BENCH_CACHE", Path.home() / ".cache" / "lockflow"))
# The generated file's columns and the pandas dtype each reads as (GX's type expectation).
_DTYPES = {
    "customer_id": "int64",
    "age": "int64",
    "income": "float64",
    "net": "float64",
    "tax": "float64",
    "total": "float64",
    "city": "str",
    "signup": "str",
    "email": "str",
    "code": "str",
    "x": "float64",
    "y": "float64",
}
_COLUMNS = list(_DTYPES)
VENV = CACHE / "bench-venv"


def generate(path: Path, rows: int, seed: int = 0) -> None:
    """Write the CSV in 500k-row chunks (planted: nulls, tokens, sentinels, dups, bad dates, ...)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    chunk = 500_000
    with pacsv.CSVWriter(path, _schema()) as writer:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            ids = np.arange(start, start + n)
            ids[rng.random(n) < 0.001] = start  # repeated keys
            age = rng.integers(18, 90, n).astype(float)
            age[rng.random(n) < 0.002] = 150.0  # out of range
            income = rng.lognormal(8, 0.5, n)
            income[rng.random(n) < 0.02] = np.nan
            income[rng.random(n) < 0.005] = -999.0  # sentinel
            net = rng.uniform(10, 100, n).round(2)
            tax = rng.uniform(1, 10, n).round(2)
            total = net + tax
            total[rng.random(n) < 0.003] += 5  # total != net + tax
            city = rng.choice(
                ["Oslo", "Lima", "Pune", "oslo", "Oslo ", "N/A", ""],
                n,
                p=[0.4, 0.3, 0.2, 0.03, 0.03, 0.02, 0.02],
            )
            day = np.datetime64("2023-01-01") + rng.integers(0, 365, n).astype("timedelta64[D]")
            day_text = day.astype(str).astype(object)
            day_text[rng.random(n) < 0.001] = "2023-02-30"
            email = np.char.add(np.char.add("u", ids.astype(str)), "@example.com").astype(object)
            email[rng.random(n) < 0.002] = "not-an-email"
            code = rng.integers(100, 999, n).astype(str).astype(object)
            code[rng.random(n) < 0.001] = "x1"
            x = rng.normal(0, 1, n)
            y = 2 * x + rng.normal(0, 0.1, n)
            table = pa.table(
                {
                    "customer_id": ids,
                    "age": age,
                    "income": income,
                    "net": net,
                    "tax": tax,
                    "total": total,
                    "city": city,
                    "signup": day_text.astype(str),
                    "email": email.astype(str),
                    "code": code.astype(str),
                    "x": x,
                    "y": y,
                },
                schema=_schema(),
            )
            if start == 0:  # the last 1000 rows of the first chunk repeat its first 1000 exactly
                table = pa.concat_tables([table.slice(0, n - 1000), table.slice(0, 1000)])
            writer.write_table(table)


def _schema():  # type: ignore[no-untyped-def]
    import pyarrow as pa

    return pa.schema(
        [
            ("customer_id", pa.int64()),
            ("age", pa.float64()),
            ("income", pa.float64()),
            ("net", pa.float64()),
            ("tax", pa.float64()),
            ("total", pa.float64()),
            ("city", pa.string()),
            ("signup", pa.string()),
            ("email", pa.string()),
            ("code", pa.string()),
            ("x", pa.float64()),
            ("y", pa.float64()),
        ]
    )


PARSE = """
import sys, time, pyarrow.csv as c
t = time.perf_counter(); table = c.read_csv(sys.argv[1])
print(f"{time.perf_counter() - t:.3f} {table.num_rows}")
"""
# The checks lockflow and Great Expectations both have, on the bench's columns: (kind, column, argument).
# Each is a lockflow user rule and a GX expectation; lockflow's catalogue finds these problems by
# itself too (nulls, repeated keys and rows, implied ranges, formats, numbers stored as text).
CHECKS = [
    *(("not_null", c, None) for c in _COLUMNS),
    ("unique", "customer_id", None),
    ("unique_rows", None, None),
    ("in_set", "city", ["Oslo", "Lima", "Pune"]),
    ("between", "age", [0, 120]),
    ("between", "income", [0, None]),
    ("between", "x", [-10, 10]),
    ("matches", "email", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
    ("matches", "signup", r"\d{4}-\d{2}-\d{2}"),
    ("matches", "code", r"\d+"),
    *(("type", c, t) for c, t in _DTYPES.items()),
]
LOCKFLOW = """
import json, sys, time
t0 = time.perf_counter()
from pathlib import Path
from lockflow.quality.detect import assess_csv
from lockflow.qualityrules.rules import parse_rules
print(f"IMPORTS {time.perf_counter() - t0:.2f}", file=sys.stderr)
rules = parse_rules(json.loads(sys.argv[2])) if len(sys.argv) > 2 else None
t = time.perf_counter(); a = assess_csv(path=Path(sys.argv[1]), rules=rules)
print(f"{time.perf_counter() - t:.3f} {a.summary['rows']} {len(a.findings)} {a.score}")
for f in a.findings:
    print("#", f.id, f.count, "exact" if f.exact else "estimated", file=sys.stderr)
"""
YDATA = """
import sys, time
t0 = time.perf_counter()
import pandas as pd
from ydata_profiling import ProfileReport
print(f"IMPORTS {time.perf_counter() - t0:.2f}", file=sys.stderr)
t = time.perf_counter(); frame = pd.read_csv(sys.argv[1])
report = ProfileReport(frame, minimal=True, progress_bar=False); report.get_description()
print(f"{time.perf_counter() - t:.3f} {len(frame)} {len(report.get_description().alerts)} -")
"""


GX = """
import json, os, sys, time
os.environ["GX_ANALYTICS_ENABLED"] = "false"
t0 = time.perf_counter()
import pandas as pd
import great_expectations as gx
import great_expectations.expectations as gxe
print(f"IMPORTS {time.perf_counter() - t0:.2f}", file=sys.stderr)
checks = json.loads(sys.argv[2])
t = time.perf_counter(); frame = pd.read_csv(sys.argv[1])
context = gx.get_context(mode="ephemeral")
batch = (
    context.data_sources.add_pandas("bench").add_dataframe_asset("frame")
    .add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": frame})
)
suite = gx.ExpectationSuite(name="bench")
for kind, column, arg in checks:
    if kind == "not_null":
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=column))
    elif kind == "unique":
        suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column=column))
    elif kind == "unique_rows":
        suite.add_expectation(gxe.ExpectCompoundColumnsToBeUnique(column_list=list(frame.columns)))
    elif kind == "in_set":
        suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column=column, value_set=arg))
    elif kind == "between":
        low, high = arg
        suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high))
    elif kind == "matches":
        suite.add_expectation(gxe.ExpectColumnValuesToMatchRegex(column=column, regex=f"^(?:{arg})$"))
    elif kind == "type":
        suite.add_expectation(gxe.ExpectColumnValuesToBeOfType(column=column, type_=arg))
result = batch.validate(suite)
failed = sum(1 for r in result.results if not r.success)
print(f"{time.perf_counter() - t:.3f} {len(frame)} {failed} {len(result.results)}")
for r in result.results:
    if not r.success:
        print("#", r.expectation_config.type, r.expectation_config.kwargs.get("column", "(rows)"),
              r.result.get("unexpected_count"), file=sys.stderr)
"""


def lockflow_rules() -> dict[str, list[dict[str, object]]]:
    """CHECKS as lockflow user rules (the type checks are the catalogue's own: no rule for them)."""
    rules: list[dict[str, object]] = []
    for kind, column, arg in CHECKS:
        if kind == "not_null":
            rules.append({"column": column, "not_null": True})
        elif kind == "unique":
            rules.append({"column": column, "unique": True})
        elif kind == "in_set":
            rules.append({"column": column, "in_set": arg})
        elif kind == "between":
            rules.append({"column": column, "between": arg})
        elif kind == "matches":
            rules.append({"column": column, "matches": arg})
    return {"rules": rules}


def measure(
    python: str, code: str, path: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[list[str], float, str]:
    """Run code in a fresh process; (its first output line split, its peak RSS in MiB, stderr)."""
    tail = (
        "\nimport resource, sys\n"
        "print('MAXRSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [python, "-c", textwrap.dedent(code) + tail, str(path), *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )
    if done.returncode:
        raise SystemExit(f"{python} failed:\n{done.stderr[-2000:]}")
    rss = next(int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("MAXRSS"))
    return done.stdout.split("\n")[0].split(), rss / 1024, done.stderr


def imports_of(stderr: str) -> str:
    """The import time a measured snippet printed."""
    return next((line.split()[1] for line in stderr.splitlines() if line.startswith("IMPORTS")), "?")


def ydata_python() -> str:
    """The bench virtualenv's python, with ydata-profiling installed (created on first use)."""
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    probe = subprocess.run([str(python), "-c", "import ydata_profiling"], capture_output=True)
    if probe.returncode:
        subprocess.run([str(python), "-m", "pip", "install", "-q", "ydata-profiling"], check=True)
    return str(python)


def data_file(rows: int) -> Path:
    """The cached CSV with `rows` rows (generated on first use)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"quality-bench-{rows}.csv"
    if not path.exists():
        started = time.perf_counter()
        partial = path.with_suffix(".partial")
        generate(partial, rows)
        partial.rename(path)
        print(f"generated {path} in {time.perf_counter() - started:.1f}s")
    return path


def load() -> str:
    """The 1/5/15-minute load averages and the core count."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--big-rows", type=int, default=10_000_000)
    parser.add_argument("--skip-ydata", action="store_true")
    parser.add_argument("--skip-gx", action="store_true", help="not Great Expectations")
    parser.add_argument(
        "--repeat", type=int, default=3, help="paired parse + lockflow runs (median reported)"
    )
    args = parser.parse_args()
    path = data_file(args.rows)
    big = data_file(args.big_rows) if args.big_rows else None
    print(f"start: {load()}")
    size = path.stat().st_size / 2**20
    print(f"data: {args.rows} rows x 12 columns, {size:.0f} MiB CSV")

    # Parse and assessment alternate, --repeat times, so each ratio compares runs made under the
    # same conditions (a shared machine's speed drifts); the medians are the figures.
    parse_times, lf_times, lf_mems, parse_mems = [], [], [], []
    for i in range(args.repeat):
        (parse_s, _rows), parse_mem, _ = measure(sys.executable, PARSE, path)
        (lf_s, lf_rows, n_findings, score), lf_mem, lf_err = measure(sys.executable, LOCKFLOW, path)
        parse_times.append(float(parse_s))
        lf_times.append(float(lf_s))
        parse_mems.append(parse_mem)
        lf_mems.append(lf_mem)
        print(
            f"  run {i + 1}: pyarrow parse {float(parse_s):5.2f} s, lockflow {float(lf_s):5.2f} s "
            f"({float(lf_s) / float(parse_s):.1f}x)"
        )
    parse_s, lf_s = statistics.median(parse_times), statistics.median(lf_times)
    ratio = statistics.median(lf / parse for lf, parse in zip(lf_times, parse_times, strict=True))
    print(
        f"pyarrow read_csv (floor):   {parse_s:7.2f} s   peak {max(parse_mems):7.0f} MiB   "
        f"(median of {args.repeat})"
    )
    lf_mem = max(lf_mems)
    rate = int(lf_rows) / lf_s
    print(
        f"lockflow full assessment:   {lf_s:7.2f} s   peak {lf_mem:7.0f} MiB   {rate:,.0f} rows/s   "
        f"{n_findings} findings, score {score}   "
        f"(median {ratio:.1f}x the parse, of {args.repeat} paired runs)"
    )
    print(f"    (imports before the timer: {imports_of(lf_err)} s)")
    for line in lf_err.splitlines():
        if line.startswith("#"):
            print("   ", line[2:])
    if not args.skip_ydata:
        (yd_s, _, alerts, _), yd_mem, yd_err = measure(ydata_python(), YDATA, path)
        print(
            f"ydata-profiling minimal:    {float(yd_s):7.2f} s   peak {yd_mem:7.0f} MiB   {alerts} alerts   "
            f"(lockflow is {float(yd_s) / lf_s:.1f}x faster)"
        )
        print(f"    (imports before the timer: {imports_of(yd_err)} s)")
    if not args.skip_gx:
        checks = json.dumps(CHECKS)
        (gx_s, _, gx_failed, gx_total), gx_mem, gx_err = measure(sys.executable, GX, path, checks)
        rules = json.dumps(lockflow_rules())
        (lr_s, _, lr_findings, _), lr_mem, _ = measure(sys.executable, LOCKFLOW, path, rules)
        print(
            f"Great Expectations 1.24.1:  {float(gx_s):7.2f} s   peak {gx_mem:7.0f} MiB   "
            f"{gx_failed} of {gx_total} expectations failed (pandas, read_csv included)"
        )
        print(f"    (imports before the timer: {imports_of(gx_err)} s)")
        for line in gx_err.splitlines():
            if line.startswith("#"):
                print("   ", line[2:])
        print(
            f"lockflow + the same checks:  {float(lr_s):7.2f} s   peak {lr_mem:7.0f} MiB   "
            f"{lr_findings} findings (the catalogue + {len(lockflow_rules()['rules'])} rules)   "
            f"(lockflow is {float(gx_s) / float(lr_s):.1f}x faster than Great Expectations)"
        )
    if big is not None:
        (big_s, big_rows, big_findings, big_score), big_mem, _ = measure(sys.executable, LOCKFLOW, big)
        big_rate = int(big_rows) / float(big_s)
        print(
            f"lockflow on {int(big_rows):,} rows ({big.stat().st_size / 2**20:.0f} MiB CSV): "
            f"{float(big_s):7.2f} s   peak {big_mem:7.0f} MiB   {big_rate:,.0f} rows/s   "
            f"{big_findings} findings, score {big_score}   "
            f"(peak memory {big_mem / lf_mem:.2f}x the {args.rows:,}-row run)"
        )
    print(f"end: {load()}")


if __name__ == "__main__":
    main()
