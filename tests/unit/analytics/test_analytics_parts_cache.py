"""Stage 4 handler: per-part caching, lazy reading, and sampling that reads Parquet group by group."""

import tracemalloc

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lockflow.analytics.handlers import run_analytics
from lockflow.common.artifacts import LocalArtifactStore
from lockflow.common.cache import MemoryCache
from lockflow.common.events import AnalyticsCompleted, RunAnalytics, RunAnalyticsPayload
from lockflow.common.models import AnalyticsParams, Goal
from lockflow.common.worker import StageDeps
from lockflow.datasets import sampling
from lockflow.datasets.canonical import infer_schema
from lockflow.datasets.sampling import read_sampled, sample_frame


def _deps(tmp_path, rows: int = 600):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows)})
    frame["region"] = rng.choice(["x", "y"], rows)
    frame["sales"] = 2 * frame["a"] + rng.normal(size=rows)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    store = LocalArtifactStore(tmp_path)
    return StageDeps(artifacts=store, cache=MemoryCache()), store.put_table(
        table, columns=infer_schema(table)
    )


def _run(deps, ref, params: AnalyticsParams) -> AnalyticsCompleted:  # type: ignore[no-untyped-def]
    payload = RunAnalyticsPayload(attempt_id="a", dataset=ref, params=params, goal=Goal(target="sales"))
    event = run_analytics(RunAnalytics(run_id="r", payload=payload), deps)
    assert isinstance(event, AnalyticsCompleted)
    return event


def test_changing_one_parameter_recomputes_only_the_parts_that_use_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    deps, ref = _deps(tmp_path)
    first = _run(deps, ref, AnalyticsParams())
    assert first.payload.cached is False and first.payload.parts_cached == []
    assert first.payload.result.target == "sales" and first.payload.result.drivers is not None
    assert first.payload.result.parts == [
        "describe", "correlations", "associations", "clustering", "anomalies", "drivers", "segments"
    ]  # fmt: skip
    again = _run(deps, ref, AnalyticsParams())
    assert again.payload.cached is True and again.payload.result == first.payload.result
    k3 = _run(deps, ref, AnalyticsParams(n_clusters=3))
    assert k3.payload.cached is False
    assert set(first.payload.result.parts) - set(k3.payload.parts_cached) == {"clustering"}
    assert k3.payload.result.clustering is not None and k3.payload.result.clustering.k == 3
    bins = _run(deps, ref, AnalyticsParams(histogram_bins=5, contamination=0.05))
    assert set(first.payload.result.parts) - set(bins.payload.parts_cached) == {"describe", "anomalies"}
    assert bins.payload.result.anomalies is not None and bins.payload.result.anomalies.count == 30


def test_a_fully_cached_run_never_reads_the_dataset(tmp_path) -> None:  # type: ignore[no-untyped-def]
    deps, ref = _deps(tmp_path)
    first = _run(deps, ref, AnalyticsParams())
    deps.artifacts.path_of(ref.uri).unlink()
    assert _run(deps, ref, AnalyticsParams()).payload.result == first.payload.result


def test_parquet_sampling_reads_the_same_rows_as_in_memory(tmp_path) -> None:  # type: ignore[no-untyped-def]
    frame = pd.DataFrame({"v": np.arange(25_000, dtype="float64"), "k": np.arange(25_000) % 7})
    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=4_000)
    sampled, total = read_sampled(path, size=3_000, seed=9)
    assert total == 25_000 and len(sampled) == 3_000
    expected = sample_frame(frame, size=3_000, seed=9)
    assert sampled["v"].tolist() == expected["v"].tolist() and list(sampled.index) == list(expected.index)
    # Independently: numpy's seeded draw without replacement picks exactly these positions.
    drawn = np.sort(np.random.default_rng(9).choice(25_000, size=3_000, replace=False))
    assert set(sampled["v"]) == set(frame["v"].iloc[drawn])
    whole, _ = read_sampled(path, size=30_000, seed=9)
    assert len(whole) == 25_000


def test_parquet_sampling_takes_batches_inside_row_groups(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    frame = pd.DataFrame({"v": np.arange(25_000, dtype="float64")})
    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=7_000)
    monkeypatch.setattr(sampling, "BATCH_ROWS", 1_000)
    sampled, _ = read_sampled(path, size=2_000, seed=3)
    assert sampled["v"].tolist() == sample_frame(frame, size=2_000, seed=3)["v"].tolist()
    assert sampled["v"].tolist() == [float(i) for i in sampled.index]


def test_drawing_the_sample_costs_memory_for_the_sample_not_for_every_row() -> None:
    tracemalloc.start()
    positions = sampling.sample_positions(total=100_000_000, size=200_000, seed=0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert positions is not None and len(np.unique(positions)) == 200_000
    assert positions.min() >= 0 and positions.max() < 100_000_000
    # A permutation of every row would take 800 MB; the draw needs a few MB for the sample.
    assert peak < 50 * 2**20


def test_sampled_result_states_size_and_seed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    deps, ref = _deps(tmp_path, rows=2_500)
    result = _run(deps, ref, AnalyticsParams(sample_rows=1_000, random_state=4)).payload.result
    assert (result.rows_total, result.rows_used, result.sampled, result.seed) == (2_500, 1_000, True, 4)
    assert "1,000 of 2,500" in result.sample_note and "seed 4" in result.sample_note
