"""Gate 2 at any size: preview latency through the quality service's handler, and the apply's memory.

    python bench/preview.py [--sizes 50000,2000000,10000000] [--sets 12] [--exact-sets 3,3,1]
                            [--apply-sizes 2000000,10000000]

The data is bench/quality.py's generated file (planted nulls, sentinels, repeats, bad dates ...),
converted to Parquet once per size and stored in a LocalArtifactStore under /tmp (cached: 10M
rows take a few minutes to generate). Per size, in one process:
  1. the assessment (once, its findings cached beside the file) gives the findings gate 2 shows;
  2. "gate opens": the preview sample is read once and prepared (the quality service does this
     in the background when it makes the assessment); its time is printed as the cold cost;
  3. --sets different choice sets (each finding's k-th resolution, single findings, ...), each
     asked through `handlers.preview_resolutions` (the request/reply handler, a real
     PreviewResolutions request): the first answer's latency, then for the first --exact-sets the
     time until a repeated request answers `exact: true` (polled as the UI does, every 0.1 s
     here), then the same choices again (answered from the cache). p50/p95 over the sets.
Then the apply, each run its own process (so peak RSS is that run's): the streamed apply
(`stream_apply` into the store's DatasetWriter, what the handler does) against the old in-memory
path (`read_frame` -> `apply_resolutions` -> `put_table`), with every finding's first resolution.
The machine's load average is printed at the start and the end.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("LOCKFLOW_PREVIEW_BENCH_CACHE", "/tmp/lockflow-bench-preview"))


def load() -> str:
    """The 1/5/15-minute load averages and the core count."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def dataset(rows: int) -> tuple[Path, dict]:
    """The cached store root and the dataset ref (and findings) of the `rows`-row file."""
    import pyarrow.csv as pacsv

    from lockflow.common.artifacts import LocalArtifactStore
    from lockflow.quality.detect import assess_parquet

    sys.path.insert(0, str(ROOT))
    from quality import generate

    folder = CACHE / str(rows)
    meta = folder / "dataset.json"
    if meta.exists():
        return folder / "store", json.loads(meta.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / "data.csv"
    started = time.perf_counter()
    generate(csv, rows)
    store = LocalArtifactStore(folder / "store")
    reader = pacsv.open_csv(csv, read_options=pacsv.ReadOptions(block_size=16 << 20))
    with store.open_dataset() as writer:
        for batch in reader:
            writer.write(batch)
        ref = writer.commit(columns=[])
    csv.unlink()
    with store.open_input(ref.uri) as source:
        findings = assess_parquet(path=source).findings
    info = {"ref": ref.model_dump(mode="json"), "findings": [f.model_dump(mode="json") for f in findings]}
    meta.write_text(json.dumps(info))
    print(f"  generated {rows:,} rows in {time.perf_counter() - started:.0f} s", flush=True)
    return folder / "store", info


def choice_sets(findings: list, count: int) -> list[list]:
    """`count` different choice sets: every finding's k-th resolution, then each finding alone."""
    from lockflow.common.models import ResolutionChoice

    offered = [f for f in findings if f.resolutions]
    sets = []
    for k in range(max(len(f.resolutions) for f in offered)):
        sets.append(
            [
                ResolutionChoice(finding_id=f.id, strategy=f.resolutions[k % len(f.resolutions)].strategy)
                for f in offered
            ]
        )
    for f in offered:
        for r in f.resolutions:
            sets.append([ResolutionChoice(finding_id=f.id, strategy=r.strategy)])
    return sets[:count]


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1), linear between the nearest ranks."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[round(q * 100) - 1]


def latency(rows: int, sets: int, exact_sets: int) -> None:
    """Preview latency at one size through the handler."""
    from lockflow.common.artifacts import LocalArtifactStore
    from lockflow.common.cache import MemoryCache
    from lockflow.common.events import PreviewResolutions, PreviewResolutionsPayload
    from lockflow.common.models import DatasetRef, Finding
    from lockflow.common.worker import StageDeps
    from lockflow.quality import handlers

    root, info = dataset(rows)
    ref = DatasetRef.model_validate(info["ref"])
    findings = [Finding.model_validate(f) for f in info["findings"]]
    deps = StageDeps(artifacts=LocalArtifactStore(root), cache=MemoryCache())
    store = handlers.preview_store(deps)
    started = time.perf_counter()
    sample = store.prepare(ref.uri, lambda: deps.artifacts.open_input(ref.uri), findings)
    cold = time.perf_counter() - started

    def ask(choices: list) -> tuple[dict, float]:
        request = PreviewResolutions(
            run_id="bench",
            reply_to="bench",
            expires_at=datetime.now(UTC) + timedelta(minutes=5),
            payload=PreviewResolutionsPayload(
                request_id="d", dataset=ref, findings=findings, choices=choices
            ),
        )
        t = time.perf_counter()
        answer = handlers.preview_resolutions(request, deps).payload.preview
        return answer, time.perf_counter() - t

    firsts, exacts, cached, exact_share = [], [], [], []
    for i, choices in enumerate(choice_sets(findings, sets)):
        t0 = time.perf_counter()
        answer, took = ask(choices)
        firsts.append(took)
        if i < exact_sets:
            while answer.get("exact_pending"):
                time.sleep(0.1)
                answer, _ = ask(choices)
            exacts.append(time.perf_counter() - t0)
            exact_share.append(bool(answer["exact"]))
            answer, took = ask(choices)
            cached.append(took)
    print(
        f"  {rows:>10,} rows  sample {len(sample.frame):,} read once in {cold:.2f} s (cold, at gate open)  "
        f"first answer p50 {pct(firsts, 0.5):.3f} s p95 {pct(firsts, 0.95):.3f} s max {max(firsts):.3f} s "
        f"({len(firsts)} choice sets)",
        flush=True,
    )
    if exacts:
        print(
            f"  {'':>10}       time to exact p50 {pct(exacts, 0.5):.2f} s p95 {pct(exacts, 0.95):.2f} s "
            f"({len(exacts)} sets, exact reached: {sum(exact_share)}/{len(exacts)}); same choices again "
            f"p50 {pct(cached, 0.5) * 1000:.1f} ms; cache {store.cache.used / 2**20:.0f} of "
            f"{store.cache.max_bytes / 2**20:.0f} MiB",
            flush=True,
        )
    store.close()


APPLY = """
import json, sys, time
from pathlib import Path
import pyarrow as pa
from lockflow.common.artifacts import LocalArtifactStore
from lockflow.common.models import DatasetRef, Finding, ResolutionChoice
from lockflow.datasets.canonical import infer_schema
root, mode = Path(sys.argv[1]), sys.argv[2]
info = json.loads((root.parent / "dataset.json").read_text())
ref = DatasetRef.model_validate(info["ref"])
findings = [Finding.model_validate(f) for f in info["findings"]]
offered = [f for f in findings if f.resolutions]
choices = [ResolutionChoice(finding_id=f.id, strategy=f.resolutions[0].strategy) for f in offered]
store = LocalArtifactStore(root)
t = time.perf_counter()
if mode == "streamed":
    from lockflow.quality.stream import stream_apply
    with store.open_dataset() as writer:
        with store.open_input(ref.uri) as source:
            done = stream_apply(path=source, findings=findings, choices=choices, sink=writer)
        out = writer.commit(columns=done.columns)
else:
    from lockflow.quality.resolve import apply_resolutions
    frame = store.read_frame(ref)
    applied = apply_resolutions(frame=frame, findings=findings, choices=choices)
    table = pa.Table.from_pandas(applied.frame, preserve_index=False)
    del frame, applied
    out = store.put_table(table, columns=infer_schema(table))
print(f"{time.perf_counter() - t:.2f} {out.rows} {out.fingerprint}")
import resource
print("MAXRSS", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def apply_run(rows: int, mode: str) -> tuple[float, int, float]:
    """One apply in its own process: (seconds, rows out, peak RSS MiB)."""
    root, _ = dataset(rows)
    done = subprocess.run(
        [sys.executable, "-c", APPLY, str(root), mode], capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise SystemExit(f"apply {mode} at {rows} failed:\n{done.stderr[-3000:]}")
    seconds, out_rows, _ = done.stdout.split()
    rss = next(int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("MAXRSS"))
    return float(seconds), int(out_rows), rss / 1024


def main() -> None:
    """Parse the sizes, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50000,2000000,10000000")
    parser.add_argument("--sets", type=int, default=12, help="choice sets per size")
    parser.add_argument(
        "--exact-sets",
        default="3,3,1",
        help="per size, how many sets are waited for exact (the last repeats)",
    )
    parser.add_argument("--apply-sizes", default="2000000,10000000", help="'' skips the apply")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    print(f"start: {load()}", flush=True)
    exact = [int(n) for n in args.exact_sets.split(",")]
    for i, rows in enumerate(sizes):  # each size in its own process: one store, one cache, as a service has
        waited = exact[min(i, len(exact) - 1)]
        subprocess.run(
            [sys.executable, __file__, "--latency", str(rows), str(args.sets), str(waited)], check=True
        )
    print(f"after previews: {load()}", flush=True)
    for rows in [int(s) for s in args.apply_sizes.split(",") if s]:
        streamed = apply_run(rows, "streamed")
        memory = apply_run(rows, "memory")
        same = "same rows" if streamed[1] == memory[1] else f"ROWS DIFFER {streamed[1]} vs {memory[1]}"
        print(
            f"  apply {rows:>10,} rows  streamed {streamed[0]:.1f} s peak {streamed[2]:,.0f} MiB   "
            f"in memory (old) {memory[0]:.1f} s peak {memory[2]:,.0f} MiB   ({same}, {streamed[1]:,} out)",
            flush=True,
        )
    print(f"end: {load()}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--latency":
        latency(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
        sys.stdout.flush()
        os._exit(0)  # an exact answer still under way in the background is not waited for
    main()
