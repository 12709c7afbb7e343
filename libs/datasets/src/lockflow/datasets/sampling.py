"""Row sampling for large datasets: the same positions whether the data is in memory or on disk.

Above `AnalyticsParams.sample_rows` rows (200,000 by default) stage 4 works on a uniform random
sample of that many rows drawn with the run's seed (`numpy.random.default_rng(seed).choice`
without replacement, sorted). That draw needs memory for at most 50x the sample size, never for
every row (numpy picks Floyd's algorithm when the sample is under 1/50 of the rows), so 10 or 100
million rows cost no more than 10 million. Reading from Parquet takes one batch of BATCH_ROWS rows
(and only the row groups that hold sampled rows) at a time and keeps only the sampled rows, so
memory stays bounded by one batch plus the sample however large the dataset and its row groups
are. The frame's index holds each row's position in the full data.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

BATCH_ROWS = 131_072


def sample_positions(*, total: int, size: int, seed: int) -> np.ndarray | None:
    """Sorted row positions to keep, or None when every row is used."""
    if total <= size:
        return None
    return np.sort(np.random.default_rng(seed).choice(total, size=size, replace=False))


def sample_frame(frame: pd.DataFrame, *, size: int, seed: int) -> pd.DataFrame:
    """The sampled rows of an in-memory frame (all of it when small enough), indexed by position."""
    positions = sample_positions(total=len(frame), size=size, seed=seed)
    if positions is None:
        return frame.reset_index(drop=True)
    picked = frame.iloc[positions]
    picked.index = pd.Index(positions)
    return picked


def read_sampled(path: Path | pa.NativeFile, *, size: int, seed: int) -> tuple[pd.DataFrame, int]:
    """The sampled rows of a Parquet file and its total row count, reading one batch at a time."""
    parquet = pq.ParquetFile(path)
    total = parquet.metadata.num_rows
    positions = sample_positions(total=total, size=size, seed=seed)
    if positions is None:
        return parquet.read().to_pandas(), total
    pieces: list[pa.Table] = []
    for group, first in _groups_holding(parquet, positions):
        offset = first  # batches never span row groups, so each group starts at its first row
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS, row_groups=[group]):
            lo, hi = np.searchsorted(positions, [offset, offset + batch.num_rows])
            if hi > lo:
                pieces.append(pa.Table.from_batches([batch.take(pa.array(positions[lo:hi] - offset))]))
            offset += batch.num_rows
    frame = pa.concat_tables(pieces).to_pandas()
    frame.index = pd.Index(positions)
    return frame, total


def _groups_holding(parquet: pq.ParquetFile, positions: np.ndarray) -> list[tuple[int, int]]:
    """(row group, its first row) for the groups that hold at least one sampled position."""
    found, start = [], 0
    for group in range(parquet.num_row_groups):
        rows = parquet.metadata.row_group(group).num_rows
        lo, hi = np.searchsorted(positions, [start, start + rows])
        if hi > lo:
            found.append((group, start))
        start += rows
    return found


def sample_note(*, total: int, used: int, seed: int, size: int) -> str:
    """One sentence saying whether all rows or a sample were used."""
    if used >= total:
        return f"All {total:,} rows were used (sampling starts above {size:,} rows)."
    return f"A uniform random sample of {used:,} of {total:,} rows was used (seed {seed})."
