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
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

HLL_P = 14
SAMPLE_ROWS = 100_000
# Entries a RepeatCounter holds before spilling: 16 bytes each (hash, row), 64 MiB at most per counter.
# At 1M a 2M-row pass spilled both its row and key counters, costing more CPU than the sort it spares.
SPILL_AFTER = 4_000_000
PARTITIONS = 32


def hash_values(values: np.ndarray) -> np.ndarray:
    """64-bit hashes of a 1-D array (pandas' hash_array: SipHash for objects)."""
    hashed: np.ndarray = pd.util.hash_array(values)
    return hashed.astype(np.uint64, copy=False)


def hash_array(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """64-bit hash of each value of an Arrow array, vectorised.

    Nulls hash alike, every NaN hashes alike and -0.0 hashes as 0.0, as equality does in pandas'
    duplicated. Numbers, booleans and times are hashed from their bits (splitmix64's mixer);
    text by polars (fixed seed), a dictionary-encoded array once per dictionary value. The hash
    is stable within a process for a given type, which is all one pass needs.
    """
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        return _hash_dictionary(array)
    if _fixed_width(array.type):
        return _hash_bits(array)
    try:
        series = pl.from_arrow(array)
    except (TypeError, ValueError, pl.exceptions.PolarsError):  # a type polars cannot take
        return hash_values(array.to_numpy(zero_copy_only=False))
    assert isinstance(series, pl.Series)
    return series.hash(seed=0).to_numpy()


def _fixed_width(t: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_timestamp(t)
        or pa.types.is_date(t)
        or pa.types.is_time(t)
        or pa.types.is_duration(t)
    )


_NULL_BITS = np.uint64(0x6C6F636B666C6F77)  # stands in for a null's bits (b"lockflow")
_NAN_BITS = np.float64("nan").view(np.uint64)


def _hash_bits(array: pa.Array) -> np.ndarray:
    """Hash fixed-width values from their 64-bit patterns (floats normalised: -0.0, NaN)."""
    t = array.type
    if pa.types.is_floating(t):
        values = array.to_numpy(zero_copy_only=False)  # nulls become NaN; set apart below
        bits = (values.astype(np.float64, copy=False) + 0.0).view(np.uint64)  # -0.0 + 0.0 is 0.0
        nan = np.isnan(values)
        if nan.any():
            bits[nan] = _NAN_BITS
    elif pa.types.is_boolean(t):
        bits = np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=np.uint64)
    else:
        as_int = array if pa.types.is_integer(t) else array.view(_int_of_width(t))
        ints = np.asarray(pc.fill_null(as_int, 0).to_numpy(zero_copy_only=False))
        bits = ints.astype(np.int64).view(np.uint64)  # a copy: mixed in place below
    if array.null_count:
        bits[np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)] = _NULL_BITS
    return _mix(bits)


def _int_of_width(t: pa.DataType) -> pa.DataType:
    return pa.int32() if t.bit_width == 32 else pa.int64()


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's step: every input bit affects every output bit (in place)."""
    x += np.uint64(0x9E3779B97F4A7C15)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def _hash_dictionary(array: pa.DictionaryArray) -> np.ndarray:
    """Hash each dictionary value once; rows take their value's hash (nulls the null hash)."""
    per_value = hash_array(array.dictionary)
    null_hash = hash_array(pa.array([None], type=array.dictionary.type))
    table = np.concatenate([per_value, null_hash])
    indices = pc.fill_null(array.indices, len(per_value)).to_numpy(zero_copy_only=False)
    return table[np.asarray(indices, dtype=np.int64)]


def combine_hashes(hashes: list[np.ndarray]) -> np.ndarray:
    """One 64-bit hash per row from per-column hashes (order matters: (a, b) != (b, a))."""
    combined = np.zeros(len(hashes[0]) if hashes else 0, dtype=np.uint64)
    for i, h in enumerate(hashes):
        # The multiplier is an odd 64-bit constant; adding the position mixes it in. In place: no copies.
        combined *= np.uint64(0x9E3779B97F4A7C15)
        combined ^= h
        combined += np.uint64(i + 1)
    return combined


def hash_rows(batch: pa.RecordBatch | pa.Table, columns: list[str]) -> np.ndarray:
    """64-bit hash of each row over `columns` (nulls hash alike, as in pandas' duplicated)."""
    if not columns:
        return np.zeros(batch.num_rows, dtype=np.uint64)
    return combine_hashes([hash_array(batch.column(batch.schema.get_field_index(n))) for n in columns])


class HyperLogLog:
    """Distinct-count sketch over 64-bit hashes."""

    def __init__(self, p: int = HLL_P) -> None:
        self.p = p
        self.registers = np.zeros(1 << p, dtype=np.uint8)

    def add(self, hashes: np.ndarray) -> None:
        """Fold a batch of hashes into the registers."""
        if len(hashes) == 0:
            return
        index = hashes >> np.uint64(64 - self.p)
        rest = hashes << np.uint64(self.p)
        rest |= np.uint64(1 << (self.p - 1))
        # rank = leading zeros of the remaining bits + 1 = 64 - floor(log2(rest)); floor(log2) is
        # read from the exponent of rest as a float64 (as exact as np.log2 of the same float), whose
        # biased form is 1023 + floor(log2): so rank = 1087 - biased, worked out in place.
        biased = rest.astype(np.float64).view(np.uint64)
        biased >>= np.uint64(52)
        np.subtract(np.uint64(1023 + 64), biased, out=biased)
        np.maximum.at(self.registers, index, biased.astype(np.uint8))

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
    """A uniform random sample of rows (bottom-k on seeded random keys).

    Rows whose key is below the current k-th smallest key are kept aside as they come and only
    merged (keeping the k smallest) when 2k rows are held, so a batch costs one filter, not a
    re-merge of the whole sample. The sample is the same as merging on every batch would give.
    """

    def __init__(self, k: int = SAMPLE_ROWS, seed: int = 0) -> None:
        self.k = k
        self.rng = np.random.default_rng(seed)
        self._keys: list[np.ndarray] = []
        self._rows: list[np.ndarray] = []
        self._parts: list[pa.Table] = []
        self._held = 0
        self._threshold = np.inf
        self._table: pa.Table | None = None
        self.seen = 0
        self._frame: pd.DataFrame | None = None

    def add(self, batch: pa.RecordBatch, offset: int) -> None:
        """Offer a batch whose first row is row number `offset`."""
        n = batch.num_rows
        self.seen += n
        keys = self.rng.random(n)
        take = np.flatnonzero(keys < self._threshold) if np.isfinite(self._threshold) else np.arange(n)
        if len(take) == 0:
            return
        table = pa.Table.from_batches([batch])
        self._parts.append(table if len(take) == n else table.take(pa.array(take)))
        self._keys.append(keys[take])
        self._rows.append(take.astype(np.int64) + offset)
        self._held += len(take)
        self._frame = None
        if self._held >= 2 * self.k:
            self._compact()

    def _compact(self) -> None:
        """Keep the k smallest keys of everything held; their largest becomes the threshold."""
        if len(self._parts) <= 1 and self._held <= self.k:
            return
        keys, rows = np.concatenate(self._keys), np.concatenate(self._rows)
        table = pa.concat_tables(self._parts)
        if len(keys) > self.k:
            keep = np.argpartition(keys, self.k - 1)[: self.k]
            keep.sort()
            keys, rows, table = keys[keep], rows[keep], table.take(pa.array(keep))
            self._threshold = float(keys.max())
        table = table.combine_chunks()
        self._keys, self._rows, self._parts, self._held = [keys], [rows], [table], len(keys)

    @property
    def keys(self) -> np.ndarray:
        """The random keys of the sampled rows."""
        self._compact()
        return self._keys[0] if self._keys else np.empty(0, dtype=np.float64)

    @property
    def rows(self) -> np.ndarray:
        """The row numbers of the sampled rows."""
        self._compact()
        return self._rows[0] if self._rows else np.empty(0, dtype=np.int64)

    @property
    def table(self) -> pa.Table | None:
        """The sampled rows (in the order of `keys`)."""
        self._compact()
        return self._parts[0] if self._parts else None

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
        rows = rows.astype(np.int64, copy=False)
        if self.folder is not None:  # spilling already: this batch goes to the partitions at once
            self._write(hashes, rows)
            return
        self.hashes.append(hashes)
        self.rows.append(rows)
        self.held += len(hashes)
        if self.held >= self.budget:
            self._spill()

    def _spill(self) -> None:
        """Write what is held to the partitions, one added batch at a time (no whole-budget copies)."""
        if self.folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix="lockflow-repeats-"))
        for hashes, rows in zip(self.hashes, self.rows, strict=True):
            self._write(hashes, rows)
        self.hashes, self.rows, self.held = [], [], 0

    def _write(self, hashes: np.ndarray, rows: np.ndarray) -> None:
        assert self.folder is not None
        part = ((hashes >> np.uint64(64 - 5)) % np.uint64(PARTITIONS)).astype(np.uint8)
        # One stable (radix, 8-bit keys) sort by partition keeps row order inside each partition.
        order = np.argsort(part, kind="stable")
        bounds = np.searchsorted(part[order], np.arange(PARTITIONS + 1))
        pairs = np.stack([hashes[order], rows[order].astype(np.uint64)], axis=1)
        for p in range(PARTITIONS):
            if bounds[p] == bounds[p + 1]:
                continue
            with open(self.folder / f"{p}.bin", "ab") as out:
                pairs[bounds[p] : bounds[p + 1]].tofile(out)

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
    """Entries equal to an earlier (lower row number) entry, and up to 5 of the smallest rows.

    The count needs only the sorted hashes (an unstable sort: no permutation to carry). `rows`
    ascend (entries arrive in row order and spills keep it), so the first repeats are found among
    the entries whose hash repeats at all, in row order: a prefix of them one longer per repeated
    hash than the rows wanted holds that many repeats.
    """
    if len(hashes) == 0:
        return 0, []
    ordered = np.sort(hashes)
    same = ordered[1:] == ordered[:-1]
    count = int(np.count_nonzero(same))
    if count == 0:
        return 0, []
    repeated = ordered[1:][same]
    repeated = repeated[np.concatenate([[True], repeated[1:] != repeated[:-1]])]
    # A hash-set look-up (pyarrow) of every entry: a binary search per entry costs ~4x as much.
    holds = pc.is_in(pa.array(hashes, type=pa.uint64()), value_set=pa.array(repeated, type=pa.uint64()))
    candidates = np.flatnonzero(np.asarray(holds.to_numpy(zero_copy_only=False)))[: 5 + len(repeated)]
    _, first = np.unique(hashes[candidates], return_index=True)
    later = np.ones(len(candidates), dtype=bool)
    later[first] = False
    return count, [int(r) for r in rows[candidates[later]][:5]]
