"""Gate 2's fixes applied batch by batch: the same result as lockflow.quality.resolve in memory.

`stream_apply` reads the Parquet dataset batch by batch, never all of it at once:
1. what the steps need from every row, one column (or one finding's columns) at a time: the rows
   with each row-level finding's problem in the data as found (one bit per row), and each
   whole-column statistic on the column as the earlier steps leave it. A median is selected
   exactly in a few passes over the column (the earlier steps on it replayed on each batch): a
   histogram of the values' top bits narrows the middle rank to one bucket, whose values are then
   collected and sorted once they fit in `memory_rows`. A mean (whose rounding depends on numpy
   summing the whole column at once), a mode, winsorize's quantiles and the interpolated column are
   still taken on the whole column in memory;
2. for duplicate rows and keys (as found, or which rows a removal keeps after the earlier steps):
   each row's 128-bit key hash, reduced per batch to the first row of each key, spilled to disk in
   partitions by hash (a key's rows all land in one partition) when there are more than
   `memory_rows` rows; each partition is then sorted alone and its first rows set in a bitmap;
3. every step on each batch with those fixed, written to the new artifact batch by batch under
   the schema the whole result has (a batch whose column is all missing is widened to it).

Memory is one batch, one duplicate partition (about `memory_rows` keys) and one bit per row per
fix that acts on found rows, where the in-memory apply held the whole table two or three times.
"""

import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lockflow.common.models import AppliedResolution, ColumnSchema, Finding, ResolutionChoice
from lockflow.datasets.canonical import ColumnTally
from lockflow.quality.preview import columns_with_nulls, whole_frame_dtypes
from lockflow.quality.resolve import (
    PHASES,
    ROW_STRATEGIES,
    WHOLE_COLUMN,
    Recorded,
    _missing,
    _numeric_or_fail,
    _rows_found,
    _Step,
    apply_resolutions,
    changed_cells,
    column_stat,
    plan_steps,
    run_steps,
)
from lockflow.qualityrules.rules import Rule

BATCH_ROWS = 65_536
DUPLICATES = frozenset(
    {"drop_duplicates_keep_first", "drop_duplicates_keep_last", "drop_duplicates_most_complete"}
)
HASH_KEYS = ("lockflow-dupes-1", "lockflow-dupes-2")  # two 64-bit hashes: a 128-bit key per row
LAST_PHASE_BEFORE_DUPLICATES = PHASES["drop_rows"]
# Rows whose duplicate keys (32 bytes each) or a median's candidate values are held at once.
MEMORY_ROWS = 1 << 20
KEYS = np.dtype([("hi", "u8"), ("lo", "u8"), ("first", "i8"), ("row", "i8")])  # sorted in this order


Pause = Callable[[], None] | None  # called before each batch (a background job yields to requests)


class Sink(Protocol):
    """Where the fixed batches go (lockflow.common.artifacts.DatasetWriter is one)."""

    schema: pa.Schema | None

    def write(self, data: pa.Table) -> None: ...

    def rewrite(self, schema: pa.Schema, convert: Any) -> None: ...


@dataclass
class Streamed:
    """What the streamed apply did: its records, the result's schema and column summaries."""

    applied: list[AppliedResolution]
    schema: pa.Schema
    columns: list[ColumnSchema]
    rows: int


@dataclass
class Counts:
    """A preview's counts over every row (streamed), and the steps' records."""

    rows_removed: int = 0
    rows_changed: int = 0
    cells_changed_by_column: dict[str, int] = field(default_factory=dict)
    applied: list[AppliedResolution] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The counts as preview.whole_data_counts takes them."""
        return {
            "rows_removed": self.rows_removed,
            "rows_changed": self.rows_changed,
            "cells_changed_by_column": dict(self.cells_changed_by_column),
        }


def prepared_steps(
    *,
    path: Path | pa.NativeFile,
    findings: list[Finding],
    choices: list[ResolutionChoice],
    pause: Pause = None,
    batch_rows: int = BATCH_ROWS,
    memory_rows: int = MEMORY_ROWS,
) -> tuple[pq.ParquetFile, list[_Step]]:
    """The steps with what they need from every row fixed beforehand (passes 1 and 2)."""
    # pyarrow's default pre_buffer keeps every row group's column chunks it has read until the
    # handle is dropped: ~34 bytes per row held across all passes on bench/preview.py's file.
    handle = pq.ParquetFile(path, pre_buffer=False)
    passes = _Passes(handle, batch_rows, memory_rows, pause)
    steps = plan_steps(columns=handle.schema_arrow.names, findings=findings, choices=choices)
    steps = [replace(s, frozen=_found(passes, s)) if s.strategy in ROW_STRATEGIES else s for s in steps]
    steps = _freeze_column_stats(passes, steps)
    for i, step in enumerate(steps):
        if step.strategy in DUPLICATES:
            steps[i] = replace(step, frozen={"keep": _kept_rows(passes, steps[:i], step)})
    return handle, steps


def stream_apply(
    *,
    path: Path | pa.NativeFile,
    findings: list[Finding],
    choices: list[ResolutionChoice],
    sink: Sink,
    batch_rows: int = BATCH_ROWS,
    memory_rows: int = MEMORY_ROWS,
) -> Streamed:
    """Apply `choices` batch by batch into `sink`; the rows and records equal apply_resolutions'."""
    handle, steps = prepared_steps(
        path=path, findings=findings, choices=choices, batch_rows=batch_rows, memory_rows=memory_rows
    )
    records: list[Recorded] | None = None
    tally = ColumnTally()
    if handle.metadata.num_rows == 0:  # no batch to carry the schema: the empty table in memory
        empty = apply_resolutions(frame=handle.read().to_pandas(), findings=findings, choices=choices)
        table = pa.Table.from_pandas(empty.frame, preserve_index=False)
        sink.write(table)
        return Streamed(
            applied=empty.applied, schema=table.schema, columns=tally.columns(table.schema), rows=0
        )
    for frame in _frames(handle, batch_rows):
        fixed, batch_records = run_steps(frame, _for_batch(steps, frame))
        records = (
            batch_records
            if records is None
            else [a.plus(b) for a, b in zip(records, batch_records, strict=True)]
        )
        table = pa.Table.from_pandas(fixed.reset_index(drop=True), preserve_index=False)
        _write(sink, table)
        tally.add(table)
    assert sink.schema is not None, "a Parquet file has at least one batch"
    return Streamed(
        applied=[r.plain() for r in records or []],
        schema=sink.schema,
        columns=tally.columns(sink.schema),
        rows=tally.rows,
    )


def preview_counts(
    *,
    path: Path | pa.NativeFile,
    findings: list[Finding],
    choices: list[ResolutionChoice],
    batch_rows: int = BATCH_ROWS,
    pause: Pause = None,
    memory_rows: int = MEMORY_ROWS,
) -> Counts:
    """The preview's counts over every row, batch by batch (nothing is written); `pause` is called
    before each batch."""
    handle, steps = prepared_steps(
        path=path,
        findings=findings,
        choices=choices,
        pause=pause,
        batch_rows=batch_rows,
        memory_rows=memory_rows,
    )
    counts = Counts()
    records: list[Recorded] | None = None
    for frame in _frames(handle, batch_rows, pause=pause):
        before = frame.copy(deep=True)
        after, batch_records = run_steps(frame, _for_batch(steps, frame))
        records = (
            batch_records
            if records is None
            else [a.plus(b) for a, b in zip(records, batch_records, strict=True)]
        )
        kept = before.index.intersection(after.index)
        counts.rows_removed += len(before) - len(kept)
        touched = np.zeros(len(kept), dtype=bool)
        for column in before.columns:
            if column in after.columns:
                mask = changed_cells(before.loc[kept, column], after.loc[kept, column]).to_numpy()
                if mask.any():
                    by = counts.cells_changed_by_column
                    by[column] = by.get(column, 0) + int(mask.sum())
                touched |= mask
        counts.rows_changed += int(touched.sum())
    counts.applied = [r.plain() for r in records or []]
    return counts


def _frames(
    handle: pq.ParquetFile, batch_rows: int, columns: list[str] | None = None, pause: Pause = None
) -> Iterator[pd.DataFrame]:
    """The rows as frames of up to `batch_rows` rows, indexed by row number, with the whole file's dtypes."""
    nullable = columns_with_nulls(handle)
    start = 0
    for batch in handle.iter_batches(batch_size=batch_rows, columns=columns):
        if pause is not None:
            pause()
        frame = batch.to_pandas()
        frame.index = pd.RangeIndex(start, start + len(frame))
        start += len(frame)
        yield whole_frame_dtypes(frame, handle, nullable)


@dataclass(frozen=True)
class _Passes:
    """How the first passes read the file: batch size, what may be held at once, the pause."""

    handle: pq.ParquetFile
    batch_rows: int
    memory_rows: int
    pause: Pause

    def frames(self, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
        """The file's rows (or some columns of them), batch by batch."""
        return _frames(self.handle, self.batch_rows, columns, self.pause)


class RowBits:
    """One bit per row of the file (packed eight to a byte): the rows found, or the rows kept."""

    def __init__(self, rows: int) -> None:
        self.packed = np.zeros((rows + 7) // 8, dtype=np.uint8)

    def set(self, rows: np.ndarray) -> None:
        """Set the bits of `rows` (row numbers)."""
        rows = rows.astype(np.int64, copy=False)
        np.bitwise_or.at(self.packed, rows >> 3, (1 << (rows & 7)).astype(np.uint8))

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        """The bits of `rows` (row numbers) as booleans."""
        rows = rows.astype(np.int64, copy=False)
        return ((self.packed[rows >> 3] >> (rows & 7).astype(np.uint8)) & 1).astype(bool)

    def inverted(self) -> "RowBits":
        """The other rows."""
        out = RowBits(0)
        out.packed = ~self.packed
        return out


def _for_batch(steps: list[_Step], frame: pd.DataFrame) -> list[_Step]:
    """The steps with their found rows (a RowBits in `frozen`) as a Series over this batch's rows."""
    out = []
    for step in steps:
        if step.strategy in ROW_STRATEGIES:
            bits = step.frozen["found"] if step.frozen else None
            found = None if bits is None else pd.Series(bits[frame.index.to_numpy()], index=frame.index)
            step = replace(step, found=found, frozen=None)
        out.append(step)
    return out


def _columns(handle: pq.ParquetFile, names: list[str]) -> pd.DataFrame:
    """Whole columns of the file (as pandas reads the whole file), indexed by row number."""
    return handle.read(columns=names).to_pandas()


def _found(passes: _Passes, step: _Step) -> dict[str, RowBits | None]:
    """The rows with the step's problem in the data as found, over every row (one bit each)."""
    category = step.finding.category
    total = passes.handle.metadata.num_rows
    if category in ("duplicate_rows", "duplicate_keys"):
        names = passes.handle.schema_arrow.names if category == "duplicate_rows" else step.finding.columns[:1]
        keys = (_keys(frame, names, "drop_duplicates_keep_first") for frame in passes.frames(names))
        return {"found": _first_rows(keys, total, passes.memory_rows).inverted()}
    names = list(dict.fromkeys(step.finding.columns))
    if not _row_local(step.finding):  # a model fitted on every row, a unique rule: the whole columns
        return {"found": _bits(_rows_found(_columns(passes.handle, names), step), total)}
    bits = RowBits(total)
    for frame in passes.frames(names):
        part = _rows_found(frame, step)
        if part is None:
            return {"found": None}
        bits.set(frame.index.to_numpy()[part.to_numpy(dtype=bool)])
    return {"found": bits if total else _bits(_rows_found(_columns(passes.handle, names), step), 0)}


def _bits(found: pd.Series | None, total: int) -> RowBits | None:
    """A found-rows Series over every row as bits."""
    if found is None:
        return None
    bits = RowBits(total)
    bits.set(np.flatnonzero(found.to_numpy(dtype=bool)))
    return bits


# Categories whose problem each row has or not by itself (so it is found batch by batch).
ROW_LOCAL = frozenset(
    {
        "missing_values",
        "type_mismatch",
        "outliers",
        "invalid_format",
        "encoding",
        "personal_data",
        "inconsistent_categories",
        "constant_column",
    }
)


def _row_local(finding: Finding) -> bool:
    """Whether each row has the finding's problem or not by itself (any rule but `unique`)."""
    if finding.category in ROW_LOCAL:
        return True
    if finding.category not in ("out_of_range", "rule_violation", "cross_column"):
        return False
    return "rule" in finding.details and Rule.model_validate(finding.details["rule"]).kind != "unique"


def _freeze_column_stats(passes: _Passes, steps: list[_Step]) -> list[_Step]:
    """Each whole-column step with its statistic taken on its column after the steps before it."""
    out = list(steps)
    targets = {s.finding.columns[0] for s in steps if s.strategy in WHOLE_COLUMN}
    for column in sorted(targets):
        before: list[_Step] = []  # the steps on this column so far, their statistics frozen
        whole: pd.DataFrame | None = None  # the whole column after them, read when a statistic needs it
        for i, step in enumerate(out):
            if PHASES[step.strategy] > PHASES["impute_median"] or step.finding.columns[0] != column:
                continue
            if step.strategy == "flag_only":
                continue  # adds a column; the column itself is not changed
            if step.strategy == "impute_median":
                step = out[i] = replace(step, frozen=_median(passes, column, before, step))
            elif step.strategy in WHOLE_COLUMN:
                if whole is None:
                    whole = _columns(passes.handle, [column])
                    whole, _ = run_steps(whole, _for_batch(before, whole))
                step = out[i] = replace(step, frozen=column_stat(whole, step))
            if whole is not None:
                whole, _ = run_steps(whole, _for_batch([step], whole))
            before.append(step)
    return out


def _median(passes: _Passes, column: str, before: list[_Step], step: _Step) -> dict[str, Any]:
    """impute_median's value, exactly as column_stat takes it, selected in passes over the column."""

    def present() -> Iterator[np.ndarray]:
        for frame in passes.frames([column]):
            fixed, _ = run_steps(frame, _for_batch(before, frame))
            series = _numeric_or_fail(fixed, step)
            yield series[~_missing(series, step).to_numpy()].astype(float).to_numpy(dtype="float64")

    count = sum(len(values) for values in present())
    if count <= passes.memory_rows:  # small enough: the very computation column_stat makes
        values = pd.Series(np.concatenate([np.empty(0), *present()]))
        return {"value": float(values.median())} if count else {"value": None}
    middle = [count // 2] if count % 2 else [count // 2 - 1, count // 2]
    picked = _select(present, middle, passes.memory_rows)
    # numpy's median: the middle value, or the mean of the two middle values (their sum halved).
    return {"value": float(picked[0] if len(picked) == 1 else (picked[0] + picked[1]) / 2)}


SIGN = np.uint64(1 << 63)


def _sort_keys(values: np.ndarray) -> np.ndarray:
    """Unsigned integers in the order of the floats `values` (no NaN): negative ones bit-flipped."""
    bits = values.view(np.uint64)
    return np.where(bits & SIGN, ~bits, bits | SIGN)


def _from_sort_key(key: int) -> np.float64:
    """The float a _sort_keys key stands for."""
    bits = np.uint64(key)
    return np.array([bits & ~SIGN if bits & SIGN else ~bits], dtype=np.uint64).view(np.float64)[0]


def _select(values: Callable[[], Iterator[np.ndarray]], ranks: list[int], bound: int) -> list[np.float64]:
    """The values at `ranks` (0-based, in sorted order) among all `values()` yields, in passes.

    Each pass narrows a rank to the values sharing 16 more top bits of their sort key (a histogram);
    once that bucket holds at most `bound` values they are collected and sorted."""
    found: dict[int, np.float64] = {}
    # rank -> (bits of the key known, those bits, the rank within them, collect now)
    state = {r: (0, 0, r, False) for r in ranks}
    while len(found) < len(ranks):
        pending = {r: v for r, v in state.items() if r not in found}
        counts = {r: np.zeros(1 << 16, dtype=np.int64) for r, v in pending.items() if not v[3]}
        held: dict[int, list[np.ndarray]] = {r: [] for r, v in pending.items() if v[3]}
        for batch in values():
            keys = _sort_keys(batch)
            for r, (known, prefix, _, collect) in pending.items():
                inside = keys if known == 0 else keys[(keys >> np.uint64(64 - known)) == np.uint64(prefix)]
                if collect:
                    held[r].append(inside)
                else:
                    digit = (inside >> np.uint64(48 - known)) & np.uint64(0xFFFF)
                    counts[r] += np.bincount(digit.astype(np.intp), minlength=1 << 16)
        for r, (known, prefix, rank, collect) in pending.items():
            if collect:
                found[r] = _from_sort_key(int(np.sort(np.concatenate(held[r]))[rank]))
                continue
            below = np.cumsum(counts[r])
            digit = int(np.searchsorted(below, rank, side="right"))
            rank -= int(below[digit - 1]) if digit else 0
            known, prefix = known + 16, (prefix << 16) | digit
            if known == 64:  # every bit known: the value itself
                found[r] = _from_sort_key(prefix)
            state[r] = (known, prefix, rank, int(counts[r][digit]) <= bound)
    return [found[r] for r in ranks]


def _kept_rows(passes: _Passes, before: list[_Step], step: _Step) -> RowBits:
    """Which rows (by row number) a duplicate removal keeps, after the steps before it."""

    def keys() -> Iterator[np.ndarray]:
        for frame in passes.frames():
            fixed, _ = run_steps(frame, _for_batch(before, frame))
            yield _keys(fixed, [c for c in step.finding.columns if c in fixed.columns], step.strategy)

    return _first_rows(keys(), passes.handle.metadata.num_rows, passes.memory_rows)


def _keys(frame: pd.DataFrame, subset: list[str], strategy: str) -> np.ndarray:
    """Each row's key hash, row number and what decides which of a key's rows is kept (KEYS)."""
    keys = np.empty(len(frame), dtype=KEYS)
    keys["hi"], keys["lo"] = _row_keys(frame, subset)
    keys["row"] = frame.index.to_numpy(dtype=np.int64)
    if strategy == "drop_duplicates_most_complete":
        # pandas: sort by present values (most first, stable), keep the first of each key.
        keys["first"] = -frame.notna().sum(axis=1).to_numpy(dtype=np.int64)
    elif strategy == "drop_duplicates_keep_last":
        keys["first"] = -keys["row"]
    else:
        keys["first"] = keys["row"]
    return keys


def _first_rows(batches: Iterable[np.ndarray], total: int, bound: int) -> RowBits:
    """The rows that come first for their key (KEYS order) over all batches, as bits.

    Each batch is cut to its first row per key (the others can never come first); above `bound`
    rows those are spilled to disk in partitions by key hash, each then sorted alone."""
    kept = RowBits(total)
    parts = max(1, -(-total // bound))
    with tempfile.TemporaryDirectory(prefix="lockflow-dupes-") as folder, ExitStack() as files:
        spills = [files.enter_context(open(Path(folder) / f"{p}.keys", "wb")) for p in range(parts)]
        held: list[np.ndarray] = []
        for batch in batches:
            firsts = _first_of_each(batch)
            if parts == 1:
                held.append(firsts)
                continue
            which = firsts["hi"] % np.uint64(parts)
            for p in np.unique(which):
                firsts[which == p].tofile(spills[p])
        for spill in spills:
            spill.close()
            keys = np.concatenate(held) if parts == 1 else np.fromfile(spill.name, dtype=KEYS)
            held = []
            kept.set(_first_of_each(keys)["row"])
    return kept


def _first_of_each(keys: np.ndarray) -> np.ndarray:
    """The first of each key's rows in KEYS order."""
    if not len(keys):
        return keys
    ordered = keys[np.lexsort((keys["row"], keys["first"], keys["lo"], keys["hi"]))]
    first = np.ones(len(ordered), dtype=bool)
    first[1:] = (ordered["hi"][1:] != ordered["hi"][:-1]) | (ordered["lo"][1:] != ordered["lo"][:-1])
    return ordered[first]


def _row_keys(frame: pd.DataFrame, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """A 128-bit hash of each row's values in `names` (missing equals missing; 0.0 equals -0.0).

    Numbers are hashed as floats whatever their dtype: a cap leaves a batch's integer column integers
    when nothing in that batch was clipped and makes it floats otherwise (the whole column in memory
    is then floats), and 5 must meet 5.0 across batches."""
    part = frame[names].copy()
    for name in names:
        if pd.api.types.is_numeric_dtype(part[name]) and not pd.api.types.is_bool_dtype(part[name]):
            values = part[name].to_numpy(dtype="float64", na_value=np.nan)
            part[name] = np.where(np.isnan(values), np.nan, values + 0.0)
    return tuple(  # type: ignore[return-value]
        pd.util.hash_pandas_object(part, index=False, hash_key=key).to_numpy() for key in HASH_KEYS
    )


def _write(sink: Sink, table: pa.Table) -> None:
    """Write a batch under the result's schema, widening what was written when a batch needs it."""
    if sink.schema is not None and not table.schema.equals(sink.schema, check_metadata=False):
        wider = pa.unify_schemas([sink.schema, table.schema], promote_options="permissive")
        if not wider.equals(sink.schema, check_metadata=False):
            wider = wider.with_metadata(sink.schema.metadata)
            sink.rewrite(wider, lambda piece: piece)
        table = table.cast(sink.schema)
    sink.write(table)
