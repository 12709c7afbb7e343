"""Figures for stages 4-6 (analytics, insights, recommendations); prints them, asserts nothing.

For each size (100,000 and 2,000,000 rows by default) a fresh process builds a dataset with planted
signals, stores it as Parquet, and runs the three stage handlers in-process (embedded adapters):
- wall time of each stage and the process's peak RSS;
- the cache-hit time of a repeated stage 4 run (same data and parameters);
- planted-signal scores: rank of the two true drivers among ten candidates, the segment planted
  30% below the rest, the trend break's distance to the planted date, k recovered on 3 blobs, and
  precision/recall of the 1% injected anomalies on the rows stage 4 used (on every numeric column,
  where the blobs and the segment also look unusual, and on the ten x columns alone).
The segment `region` and the blobs `c1`/`c2` are real signals too, so the drivers are also ranked
among x1..x10 alone.
Run: `.venv/bin/python bench/insights.py [--rows 100000 2000000]`.
"""

import argparse
import datetime as dt
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

BREAK = dt.date(2024, 7, 1)


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


def one_size(rows: int) -> dict[str, object]:
    """Run stages 4-6 on one planted dataset; return the figures."""
    from lockflow.analytics.anomalies import detect
    from lockflow.analytics.handlers import run_analytics
    from lockflow.analytics.sampling import read_sampled
    from lockflow.common.artifacts import ArtifactStore
    from lockflow.common.cache import MemoryCache
    from lockflow.common.events import (
        GenerateInsights,
        GenerateInsightsPayload,
        RecommendActions,
        RecommendActionsPayload,
        RunAnalytics,
        RunAnalyticsPayload,
    )
    from lockflow.common.models import AnalyticsParams, Goal, InsightParams
    from lockflow.common.worker import StageDeps
    from lockflow.ingest.read import infer_schema
    from lockflow.insights.handlers import generate_insights
    from lockflow.recommendations.handlers import recommend_actions

    frame, anomalous = planted(rows)
    with tempfile.TemporaryDirectory() as root:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        store = ArtifactStore(Path(root))
        ref = store.put_table(table, columns=infer_schema(table))
        del table, frame
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
        clusters = analytics_run(AnalyticsParams(features=["c1", "c2"], steps=["clustering"]))
        used, _ = read_sampled(store.path_of(ref.uri), size=params.sample_rows, seed=params.random_state)
        _, mask = detect(frame=used, features=None, contamination=0.01, seed=0)
        x_only = [f"x{i}" for i in range(1, 11)]
        _, mask_x = detect(frame=used, features=x_only, contamination=0.01, seed=0)
    truth = pd.Series(np.isin(used.index, anomalous), index=used.index)
    tp, tp_x = int((mask & truth).sum()), int((mask_x & truth).sum())
    drivers = [d.column for d in result.drivers.drivers] if result.drivers else []
    xs = [c for c in drivers if c.startswith("x")]
    south = next(
        (g for s in result.segments if s.column == "region" for g in s.groups if g.value == "south"), None
    )
    breaks = result.time_series.change_points if result.time_series else []
    return {
        "rows": rows,
        "rows_used": result.rows_used,
        "sample_note": result.sample_note,
        **{k: round(v, 2) for k, v in timed.items()},
        "cache_hit_served_from_cache": again.payload.cached,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "driver_ranking_top4": drivers[:4],
        "driver_ranks_x1_x2_among_x1_x10": [xs.index("x1") + 1, xs.index("x2") + 1] if xs else None,
        "top_insight": insights[0].id if insights else None,
        "south_diff_pct": round(south.diff_pct, 1) if south and south.diff_pct is not None else None,
        "break_found_days_off": (breaks[0].at - BREAK).days if breaks else None,
        "k_on_3_blobs": clusters.payload.result.clustering.k if clusters.payload.result.clustering else None,
        "anomaly_precision_all_numeric": round(tp / max(1, int(mask.sum())), 3),
        "anomaly_recall_all_numeric": round(tp / max(1, int(truth.sum())), 3),
        "anomaly_precision_x_features": round(tp_x / max(1, int(mask_x.sum())), 3),
        "anomaly_recall_x_features": round(tp_x / max(1, int(truth.sum())), 3),
    }


def main() -> None:
    """Each size in its own process, so peak RSS is that size's alone."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 2_000_000])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_size(args.one)))
        return
    for rows in args.rows:
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(rows)], capture_output=True, text=True, check=False
        )
        if out.returncode != 0:
            print(f"{rows} rows: failed\n{out.stderr[-2000:]}")
            continue
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"--- {rows:,} rows")
        for key, value in figures.items():
            print(f"  {key}: {value}")


if __name__ == "__main__":
    main()
