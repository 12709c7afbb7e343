"""Row sampling for large datasets: the same positions whether the data is in memory or on disk.

Above `AnalyticsParams.sample_rows` rows (200,000 by default) stage 4 works on a uniform random
sample of that many rows drawn with the run's seed. Reading from Parquet takes one row group at
a time and keeps only the sampled rows, so memory stays bounded by one row group plus the sample
however large the dataset is. The frame's index holds each row's position in the full data.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def sample_positions(*, total: int, size: int, seed: int) -> np.ndarray | None:
    """Sorted row positions to keep, or None when every row is used."""
    if total <= size:
        return None
    # RandomState.choice picks the same rows as pandas' DataFrame.sample(n=size, random_state=seed).
    return np.sort(np.random.RandomState(seed).choice(total, size=size, replace=False))


def sample_frame(frame: pd.DataFrame, *, size: int, seed: int) -> pd.DataFrame:
    """The sampled rows of an in-memory frame (all of it when small enough), indexed by position."""
    positions = sample_positions(total=len(frame), size=size, seed=seed)
    if positions is None:
        return frame.reset_index(drop=True)
    picked = frame.iloc[positions]
    picked.index = pd.Index(positions)
    return picked


def read_sampled(path: Path, *, size: int, seed: int) -> tuple[pd.DataFrame, int]:
    """The sampled rows of a Parquet file and its total row count, reading one row group at a time."""
    parquet = pq.ParquetFile(path)
    total = parquet.metadata.num_rows
    positions = sample_positions(total=total, size=size, seed=seed)
    if positions is None:
        return parquet.read().to_pandas(), total
    pieces: list[pa.Table] = []
    start = 0
    for group in range(parquet.num_row_groups):
        rows = parquet.metadata.row_group(group).num_rows
        lo, hi = np.searchsorted(positions, [start, start + rows])
        if hi > lo:
            table = parquet.read_row_group(group)
            pieces.append(table.take(pa.array(positions[lo:hi] - start)))
        start += rows
    frame = pa.concat_tables(pieces).to_pandas()
    frame.index = pd.Index(positions)
    return frame, total


def sample_note(*, total: int, used: int, seed: int, size: int) -> str:
    """One sentence saying whether all rows or a sample were used."""
    if used >= total:
        return f"All {total:,} rows were used (sampling starts above {size:,} rows)."
    return f"A uniform random sample of {used:,} of {total:,} rows was used (seed {seed})."
