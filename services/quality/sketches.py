"""Bounded-memory summaries used by the streaming quality pass.

- `HyperLogLog`: distinct counts (standard error 1.04 / sqrt(2^p), 0.81% at p=14, 16 KiB).
- `RowSample`: a uniform sample of rows without replacement (bottom-k on random keys), the
  source of quantiles; with n rows and k kept, a quantile's rank error is at most
  sqrt(ln(2/0.01) / (2k)) with 99% confidence (Dvoretzky-Kiefer-Wolfowitz). Exact when n <= k.
- `RepeatCounter`: exact repeated-hash counting over 64-bit row or key hashes; in memory up to a
  budget, then spilled to disk in hash partitions so memory stays bounded whatever the rows.
"""

import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

HLL_P = 14
SAMPLE_ROWS = 100_000
SPILL_AFTER = 2_000_000
PARTITIONS = 32


def hash_values(values: np.ndarray) -> np.ndarray:
    """64-bit hashes of a 1-D array (pandas' hash_array: SipHash for objects)."""
    hashed: np.ndarray = pd.util.hash_array(values)
    return hashed.astype(np.uint64, copy=False)


def hash_rows(batch: pa.RecordBatch | pa.Table, columns: list[str]) -> np.ndarray:
    """64-bit hash of each row over `columns` (nulls hash alike, as in pandas' duplicated)."""
    combined = np.zeros(batch.num_rows, dtype=np.uint64)
    for i, name in enumerate(columns):
        column = batch.column(batch.schema.get_field_index(name))
        values = column.to_numpy(zero_copy_only=False)
        if values.dtype.kind == "f":
            values = np.where(np.isnan(values), np.nan, values)  # every NaN payload hashes alike
        h = hash_values(values)
        # Mix position in so (a, b) and (b, a) differ; the multiplier is an odd 64-bit constant.
        combined = (combined * np.uint64(0x9E3779B97F4A7C15)) ^ (h + np.uint64(i))
    return combined


class HyperLogLog:
    """Distinct-count sketch over 64-bit hashes."""

    def __init__(self, p: int = HLL_P) -> None:
        self.p = p
        self.registers = np.zeros(1 << p, dtype=np.uint8)

    def add(self, hashes: np.ndarray) -> None:
        """Fold a batch of hashes into the registers."""
        if len(hashes) == 0:
            return
        index = (hashes >> np.uint64(64 - self.p)).astype(np.int64)
        rest = (hashes << np.uint64(self.p)) | np.uint64(1 << (self.p - 1))
        # rank = leading zeros of the remaining bits + 1
        rank = (64 - np.floor(np.log2(rest.astype(np.float64))).astype(np.int64)).astype(np.uint8)
        np.maximum.at(self.registers, index, rank)

    def estimate(self) -> int:
        """Estimated number of distinct hashes (with the small-range correction)."""
        m = float(len(self.registers))
        alpha = 0.7213 / (1 + 1.079 / m)
        raw = alpha * m * m / float(np.sum(np.power(2.0, -self.registers.astype(np.float64))))
        zeros = int(np.count_nonzero(self.registers == 0))
        if raw <= 2.5 * m and zeros:
            return round(m * math.log(m / zeros))
        return round(raw)

    @property
    def relative_error(self) -> float:
        """The sketch's standard error as a share."""
        return 1.04 / math.sqrt(len(self.registers))


class RowSample:
    """A uniform random sample of rows (bottom-k on seeded random keys)."""

    def __init__(self, k: int = SAMPLE_ROWS, seed: int = 0) -> None:
        self.k = k
        self.rng = np.random.default_rng(seed)
        self.keys = np.empty(0, dtype=np.float64)
        self.rows = np.empty(0, dtype=np.int64)
        self.parts: list[pa.Table] = []
        self.table: pa.Table | None = None
        self.seen = 0
        self._frame: pd.DataFrame | None = None

    def add(self, batch: pa.RecordBatch, offset: int) -> None:
        """Offer a batch whose first row is row number `offset`."""
        n = batch.num_rows
        self.seen += n
        keys = self.rng.random(n)
        if len(self.keys) >= self.k:
            threshold = self.keys.max()
            take = np.flatnonzero(keys < threshold)
        else:
            take = np.arange(n)
        if len(take) == 0:
            return
        table = pa.Table.from_batches([batch]).take(pa.array(take))
        merged_keys = np.concatenate([self.keys, keys[take]])
        merged_rows = np.concatenate([self.rows, take + offset])
        merged = table if self.table is None else pa.concat_tables([self.table, table])
        if len(merged_keys) > self.k:
            keep = np.argpartition(merged_keys, self.k - 1)[: self.k]
            keep.sort()
            merged_keys, merged_rows = merged_keys[keep], merged_rows[keep]
            merged = merged.take(pa.array(keep))
        self.keys, self.rows, self.table = merged_keys, merged_rows, merged.combine_chunks()
        self._frame = None

    @property
    def exact(self) -> bool:
        """True when every row seen is in the sample."""
        return self.seen <= self.k

    def frame(self) -> pd.DataFrame:
        """The sampled rows in row order, indexed by their row numbers."""
        if self.table is None:
            return pd.DataFrame()
        if self._frame is None:
            order = np.argsort(self.rows, kind="stable")
            frame = self.table.take(pa.array(order)).to_pandas()
            frame.index = pd.Index(self.rows[order])
            self._frame = frame
        return self._frame

    def rank_error(self) -> float:
        """DKW bound on a sampled quantile's rank error at 99% confidence (0 when exact)."""
        if self.exact or len(self.keys) == 0:
            return 0.0
        return math.sqrt(math.log(2 / 0.01) / (2 * len(self.keys)))


@dataclass
class RepeatResult:
    """How many entries repeat an earlier one, and the first few such row numbers."""

    repeats: int
    sample_rows: list[int]
    spilled: bool


@dataclass
class RepeatCounter:
    """Exact count of entries whose hash equals an earlier entry's hash."""

    budget: int = SPILL_AFTER
    hashes: list[np.ndarray] = field(default_factory=list)
    rows: list[np.ndarray] = field(default_factory=list)
    held: int = 0
    folder: Path | None = None

    def add(self, hashes: np.ndarray, rows: np.ndarray) -> None:
        """Add hashes with their row numbers (rows ascend across calls)."""
        self.hashes.append(hashes)
        self.rows.append(rows.astype(np.int64))
        self.held += len(hashes)
        if self.held >= self.budget:
            self._spill()

    def _spill(self) -> None:
        if not self.hashes:
            return
        if self.folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix="lockflow-repeats-"))
        hashes, rows = np.concatenate(self.hashes), np.concatenate(self.rows)
        part = (hashes >> np.uint64(64 - 5)).astype(np.int64) % PARTITIONS
        for p in range(PARTITIONS):
            pick = part == p
            if not pick.any():
                continue
            with open(self.folder / f"{p}.bin", "ab") as out:
                np.stack([hashes[pick], rows[pick].astype(np.uint64)], axis=1).tofile(out)
        self.hashes, self.rows, self.held = [], [], 0

    def finish(self, sample_size: int = 5) -> RepeatResult:
        """Count repeats partition by partition (or in memory if nothing was spilled)."""
        if self.folder is None:
            hashes = np.concatenate(self.hashes) if self.hashes else np.empty(0, np.uint64)
            rows = np.concatenate(self.rows) if self.rows else np.empty(0, np.int64)
            count, sample = _repeats(hashes, rows)
            return RepeatResult(count, sorted(sample)[:sample_size], False)
        self._spill()
        total, samples = 0, []
        for path in sorted(self.folder.glob("*.bin")):
            pairs = np.fromfile(path, dtype=np.uint64).reshape(-1, 2)
            count, sample = _repeats(pairs[:, 0], pairs[:, 1].astype(np.int64))
            total += count
            samples.extend(sample)
            os.unlink(path)
        os.rmdir(self.folder)
        self.folder = None
        return RepeatResult(total, sorted(samples)[:sample_size], True)


def _repeats(hashes: np.ndarray, rows: np.ndarray) -> tuple[int, list[int]]:
    """Entries equal to an earlier (lower row number) entry, and up to 5 of the smallest rows."""
    if len(hashes) == 0:
        return 0, []
    order = np.lexsort((rows, hashes))
    h = hashes[order]
    repeat = np.concatenate([[False], h[1:] == h[:-1]])
    flagged = np.sort(rows[order][repeat])
    return int(repeat.sum()), [int(r) for r in flagged[:5]]
