"""Figures for stages 4-6 (analytics, insights, recommendations); prints them, asserts nothing.

For each size (100,000, 2,000,000 and 10,000,000 rows by default) two fresh processes run:
1. the generator writes a dataset with planted signals as a Parquet artifact, chunk by chunk
   (one row group of CHUNK rows at a time, never the whole dataset in memory);
2. the stage process runs the three stage handlers in-process (embedded adapters) on that
   artifact and reports its own figures, so its peak RSS is the stages' alone (plus imports,
   printed separately as `rss_after_imports_mb`):
- wall time of each stage and the stage process's peak RSS;
- the cache-hit time of a repeated stage 4 run (same data and parameters);
- planted-signal scores: rank of the two true drivers among ten candidates, the segment planted
  30% below the rest, the trend break's distance to the planted date, k recovered on 3 blobs, and
  precision/recall of the 1% injected anomalies on the rows stage 4 used: on every numeric column
  (the harder, mixed case: the blobs, the segment and the target also look unusual) and on the
  ten x columns alone.
Once per run, anomaly precision/recall on a simple dataset too (independent Gaussian columns,
1% of rows shifted on two of them), the peer case for the mixed one.
The segment `region` and the blobs `c1`/`c2` are real signals too, so the drivers are also ranked
among x1..x10 alone.
Run: `.venv/bin/python bench/insights.py [--rows 100000 2000000 10000000]`.
"""

import argparse
import datetime as dt
import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

BREAK = dt.date(2024, 7, 1)
CHUNK = 500_000


def planted(rows: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Ten candidates (x1, x2 drive the target), a weak segment, a break, 3 blobs and 1% anomalies."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=rows) for i in range(1, 11)})
    frame["region"] = rng.choice(["north", "south", "east", "west"], rows)
    frame["day"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, rows), unit="D")
    labels = rng.integers(0, 3, rows)
    centres = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]])
    blobs = centres[labels] + rng.normal(0, 1, (rows, 2))
    frame["c1"], frame["c2"] = blobs[:, 0], blobs[:, 1]
    sales = 100 + 10 * frame["x1"] - 6 * frame["x2"] + rng.normal(0, 5, rows)
    sales = sales - 15 * (frame["day"] >= pd.Timestamp(BREAK))
    frame["sales"] = sales * np.where(frame["region"] == "south", 0.7, 1.0)
    anomalous = rng.choice(rows, size=rows // 100, replace=False)
    frame.loc[anomalous, ["x5", "x6"]] += rng.choice([-8.0, 8.0], size=(len(anomalous), 2))
    return frame, anomalous


def generate(rows: int, root: Path) -> None:
    """Write the planted dataset into an artifact store under `root`, CHUNK rows at a time."""
    from lockflow.common.models import DatasetRef
    from lockflow.datasets.canonical import infer_schema

    partial = root / "partial.parquet"
    anomalous: list[np.ndarray] = []
    writer: pq.ParquetWriter | None = None
    columns = None
    for n, start in enumerate(range(0, rows, CHUNK)):
        frame, bad = planted(min(CHUNK, rows - start), seed=n)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(partial, table.schema, compression="zstd")
            columns = infer_schema(table)  # types and examples from the first chunk
        writer.write_table(table, row_group_size=CHUNK)
        anomalous.append(bad + start)
    assert writer is not None and columns is not None
    writer.close()
    # Content-addressed like LocalArtifactStore.put_bytes, hashed as a stream instead of in memory.
    digest = hashlib.sha256()
    with partial.open("rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    fingerprint = digest.hexdigest()
    target = root / "store" / fingerprint[:2] / f"{fingerprint}.parquet"
    target.parent.mkdir(parents=True)
    partial.replace(target)
    ref = DatasetRef(uri=target.resolve().as_uri(), fingerprint=fingerprint, rows=rows, columns=columns)
    (root / "ref.json").write_text(ref.model_dump_json())
    np.save(root / "anomalous.npy", np.concatenate(anomalous))
    print(
        json.dumps(
            {"generator_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
        )
    )


def stages(root: Path) -> dict[str, object]:
    """Run stages 4-6 on the artifact under `root`; return the figures."""
    from lockflow.analytics.anomalies import detect
    from lockflow.analytics.handlers import run_analytics
    from lockflow.common.artifacts import LocalArtifactStore
    from lockflow.common.cache import MemoryCache
    from lockflow.common.events import (
        GenerateInsights,
        GenerateInsightsPayload,
        RecommendActions,
        RecommendActionsPayload,
        RunAnalytics,
        RunAnalyticsPayload,
    )
    from lockflow.common.models import AnalyticsParams, DatasetRef, Goal, InsightParams
    from lockflow.common.worker import StageDeps
    from lockflow.datasets.sampling import read_sampled
    from lockflow.insights.handlers import generate_insights
    from lockflow.recommendations.handlers import recommend_actions

    rss_after_imports = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ref = DatasetRef.model_validate_json((root / "ref.json").read_text())
    anomalous = np.load(root / "anomalous.npy")
    store = LocalArtifactStore(root / "store")
    deps = StageDeps(artifacts=store, cache=MemoryCache())
    goal = Goal(target="sales", direction="increase")
    params = AnalyticsParams()
    timed: dict[str, float] = {}

    def analytics_run(p: AnalyticsParams):  # type: ignore[no-untyped-def]
        command = RunAnalytics(
            run_id="b", payload=RunAnalyticsPayload(attempt_id="a", dataset=ref, params=p, goal=goal)
        )
        return run_analytics(command, deps)

    started = time.perf_counter()
    done = analytics_run(params)
    timed["stage4_s"] = time.perf_counter() - started
    started = time.perf_counter()
    again = analytics_run(params)
    timed["stage4_cache_hit_s"] = time.perf_counter() - started
    result = done.payload.result
    started = time.perf_counter()
    found = generate_insights(
        GenerateInsights(
            run_id="b",
            payload=GenerateInsightsPayload(
                attempt_id="a", dataset=ref, analytics=result, params=InsightParams(goal=goal)
            ),
        ),
        deps,
    )
    timed["stage5_s"] = time.perf_counter() - started
    insights = found.payload.insights
    started = time.perf_counter()
    recommend_actions(
        RecommendActions(
            run_id="b",
            payload=RecommendActionsPayload(
                attempt_id="a", goal=goal, unresolved_findings=[], insights=insights
            ),
        ),
        deps,
    )
    timed["stage6_s"] = time.perf_counter() - started
    stage_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    clusters = analytics_run(AnalyticsParams(features=["c1", "c2"], steps=["clustering"]))
    used, _ = read_sampled(store.path_of(ref.uri), size=params.sample_rows, seed=params.random_state)
    truth = pd.Series(np.isin(used.index, anomalous), index=used.index)
    _, mask = detect(frame=used, features=None, contamination=0.01, seed=0)
    _, mask_x = detect(frame=used, features=[f"x{i}" for i in range(1, 11)], contamination=0.01, seed=0)
    drivers = [d.column for d in result.drivers.drivers] if result.drivers else []
    xs = [c for c in drivers if c.startswith("x")]
    south = next(
        (g for s in result.segments if s.column == "region" for g in s.groups if g.value == "south"), None
    )
    breaks = result.time_series.change_points if result.time_series else []
    return {
        "rows": ref.rows,
        "rows_used": result.rows_used,
        "sample_note": result.sample_note,
        **{k: round(v, 2) for k, v in timed.items()},
        "stages_4_6_s": round(timed["stage4_s"] + timed["stage5_s"] + timed["stage6_s"], 2),
        "cache_hit_served_from_cache": again.payload.cached,
        "rss_after_imports_mb": round(rss_after_imports),
        "stage_peak_rss_mb": round(stage_peak),
        "driver_ranking_top4": drivers[:4],
        "driver_ranks_x1_x2_among_x1_x10": [xs.index("x1") + 1, xs.index("x2") + 1] if xs else None,
        "top_insight": insights[0].id if insights else None,
        "south_diff_pct": round(south.diff_pct, 1) if south and south.diff_pct is not None else None,
        "break_found_days_off": (breaks[0].at - BREAK).days if breaks else None,
        "k_on_3_blobs": clusters.payload.result.clustering.k if clusters.payload.result.clustering else None,
        **_scores("anomalies_mixed_all_numeric", mask, truth),
        **_scores("anomalies_mixed_x_columns", mask_x, truth),
    }


def simple_anomalies(rows: int = 200_000, seed: int = 21) -> dict[str, float]:
    """Precision/recall on independent Gaussian columns with 1% of rows shifted on two of them."""
    from lockflow.analytics.anomalies import detect

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(0, 1, (rows, 6)), columns=list("abcdef"))
    bad = rng.choice(rows, size=rows // 100, replace=False)
    frame.loc[bad, ["a", "c"]] += rng.choice([-6.0, 6.0], size=(len(bad), 2))
    _, mask = detect(frame=frame, features=None, contamination=0.01, seed=0)
    truth = pd.Series(False, index=frame.index)
    truth[bad] = True
    return _scores("anomalies_simple", mask, truth)


def _scores(name: str, mask: pd.Series, truth: pd.Series) -> dict[str, float]:
    tp = int((mask & truth).sum())
    return {
        f"{name}_precision": round(tp / max(1, int(mask.sum())), 3),
        f"{name}_recall": round(tp / max(1, int(truth.sum())), 3),
    }


def _child(*args: str) -> dict[str, object] | None:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        print(f"{' '.join(args)}: failed\n{out.stderr[-2000:]}")
        return None
    figures: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    """Each size: a generator process, then a stage process whose peak RSS is the stages' alone."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 2_000_000, 10_000_000])
    parser.add_argument("--generate", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--stages", help=argparse.SUPPRESS)
    parser.add_argument("--simple", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        generate(int(args.generate[0]), Path(args.generate[1]))
        return
    if args.stages:
        print(json.dumps(stages(Path(args.stages))))
        return
    if args.simple:
        print(json.dumps(simple_anomalies()))
        return
    print("--- simple dataset (200,000 rows, 6 Gaussian columns, 1% shifted on two)")
    for key, value in (_child("--simple") or {}).items():
        print(f"  {key}: {value}")
    for rows in args.rows:
        with tempfile.TemporaryDirectory() as root:
            started = time.perf_counter()
            made = _child("--generate", str(rows), root)
            if made is None:
                continue
            made["generate_s"] = round(time.perf_counter() - started, 1)
            figures = _child("--stages", root)
        if figures is None:
            continue
        print(f"--- {rows:,} rows")
        for key, value in {**made, **figures}.items():
            print(f"  {key}: {value}")


if __name__ == "__main__":
    main()
