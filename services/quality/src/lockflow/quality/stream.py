"""Gate 2's fixes applied batch by batch: the same result as lockflow.quality.resolve in memory.

`stream_apply` reads the Parquet dataset three times, never all of it at once:
1. what the steps need from every row, one column (or one finding's columns) at a time: the rows
   with each row-level finding's problem in the data as found (for duplicate rows and keys a
   128-bit hash per row and its first occurrence), and each whole-column statistic (a median, a
   mean, a mode, winsorize's quantiles, the interpolated column) on the column as the earlier
   steps leave it. The column is kept in memory while its statistics are taken: an exact median
   needs every value, and one column at a time is bounded by the column, not the table (a
   two-pass selection would read the file once more per statistic, and a statistic after another
   step on the same column would need that step replayed on every pass);
2. only when a duplicate removal is chosen: which rows it keeps, from each row's key hash (and,
   for "most complete", its count of present values) after the earlier steps, batch by batch;
3. every step on each batch with those fixed, written to the new artifact batch by batch under
   the schema the whole result has (a batch whose column is all missing is widened to it).

Memory is one batch plus one column plus a few bytes per row (the found rows, and 24 bytes per
row for a duplicate removal), where the in-memory apply held the whole table two or three times.
"""

from collections.abc import Callable, Iterator
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
) -> tuple[pq.ParquetFile, list[_Step]]:
    """The steps with what they need from every row fixed beforehand (passes 1 and 2)."""
    handle = pq.ParquetFile(path)
    steps = plan_steps(columns=handle.schema_arrow.names, findings=findings, choices=choices)
    steps = [replace(s, found=_found(handle, s, pause)) if s.strategy in ROW_STRATEGIES else s for s in steps]
    steps = _freeze_column_stats(handle, steps)
    for i, step in enumerate(steps):
        if step.strategy in DUPLICATES:
            steps[i] = replace(step, frozen={"keep": _kept_rows(handle, steps[:i], step, pause)})
    return handle, steps


def stream_apply(
    *,
    path: Path | pa.NativeFile,
    findings: list[Finding],
    choices: list[ResolutionChoice],
    sink: Sink,
    batch_rows: int = BATCH_ROWS,
) -> Streamed:
    """Apply `choices` batch by batch into `sink`; the rows and records equal apply_resolutions'."""
    handle, steps = prepared_steps(path=path, findings=findings, choices=choices)
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
) -> Counts:
    """The preview's counts over every row, batch by batch (nothing is written); `pause` is called
    before each batch."""
    handle, steps = prepared_steps(path=path, findings=findings, choices=choices, pause=pause)
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


def _for_batch(steps: list[_Step], frame: pd.DataFrame) -> list[_Step]:
    """The steps with their found rows cut to this batch's rows."""
    start, stop = int(frame.index[0]), int(frame.index[-1]) + 1
    return [replace(s, found=s.found.iloc[start:stop]) if s.found is not None else s for s in steps]


def _columns(handle: pq.ParquetFile, names: list[str]) -> pd.DataFrame:
    """Whole columns of the file (as pandas reads the whole file), indexed by row number."""
    return handle.read(columns=names).to_pandas()


def _found(handle: pq.ParquetFile, step: _Step, pause: Pause = None) -> pd.Series | None:
    """The rows with the step's problem in the data as found, over every row."""
    category = step.finding.category
    if category in ("duplicate_rows", "duplicate_keys"):
        names = handle.schema_arrow.names if category == "duplicate_rows" else [step.finding.columns[0]]
        keys = [_row_keys(frame, names) for frame in _frames(handle, BATCH_ROWS, names, pause)]
        hi, lo = np.concatenate([k[0] for k in keys]), np.concatenate([k[1] for k in keys])
        rows = np.arange(len(hi), dtype=np.int64)
        return pd.Series(
            ~_first_of_each(np.lexsort((rows, lo, hi)), hi, lo, rows), index=pd.RangeIndex(len(hi))
        )
    names = list(dict.fromkeys(step.finding.columns))
    if not _row_local(step.finding):  # a model fitted on every row, a unique rule: the whole columns
        return _rows_found(_columns(handle, names), step)
    parts = [_rows_found(frame, step) for frame in _frames(handle, BATCH_ROWS, names, pause)]
    if any(p is None for p in parts) or not parts:
        return None if parts else _rows_found(_columns(handle, names), step)
    return pd.Series(np.concatenate([p.to_numpy(dtype=bool) for p in parts if p is not None]))


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


def _freeze_column_stats(handle: pq.ParquetFile, steps: list[_Step]) -> list[_Step]:
    """Each whole-column step with its statistic taken on its column after the steps before it."""
    out = list(steps)
    targets = {s.finding.columns[0] for s in steps if s.strategy in WHOLE_COLUMN}
    for column in sorted(targets):
        frame = _columns(handle, [column])
        for i, step in enumerate(out):
            if PHASES[step.strategy] > PHASES["impute_median"] or step.finding.columns[0] != column:
                continue
            if step.strategy == "flag_only":
                continue  # adds a column; the column itself is not changed
            if step.strategy in WHOLE_COLUMN:
                step = out[i] = replace(step, frozen=column_stat(frame, step))
            frame, _ = run_steps(frame, [step])
    return out


def _kept_rows(handle: pq.ParquetFile, before: list[_Step], step: _Step, pause: Pause = None) -> np.ndarray:
    """Which rows (by row number) a duplicate removal keeps, after the steps before it."""
    total = handle.metadata.num_rows
    keys_hi, keys_lo, rows, present = [], [], [], []
    for frame in _frames(handle, BATCH_ROWS, pause=pause):
        fixed, _ = run_steps(frame, _for_batch(before, frame))
        subset = [c for c in step.finding.columns if c in fixed.columns]
        hi, lo = _row_keys(fixed, subset)
        keys_hi.append(hi)
        keys_lo.append(lo)
        rows.append(fixed.index.to_numpy(dtype=np.int64))
        if step.strategy == "drop_duplicates_most_complete":
            present.append(fixed.notna().sum(axis=1).to_numpy(dtype=np.int64))
    hi, lo, row = np.concatenate(keys_hi), np.concatenate(keys_lo), np.concatenate(rows)
    keep = np.zeros(total, dtype=bool)
    if not len(row):
        return keep
    if step.strategy == "drop_duplicates_most_complete":
        # pandas: sort by present values (most first, stable), keep the first of each key.
        order = np.lexsort((row, -np.concatenate(present), lo, hi))
    elif step.strategy == "drop_duplicates_keep_first":
        order = np.lexsort((row, lo, hi))
    else:
        order = np.lexsort((-row, lo, hi))
    keep[row[_first_of_each(order, hi, lo, row)]] = True
    return keep


def _first_of_each(order: np.ndarray, hi: np.ndarray, lo: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """True for the rows (by position) that come first for their key in `order` (sorted by key)."""
    hi, lo = hi[order], lo[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])
    flags = np.zeros(len(order), dtype=bool)
    flags[order[first]] = True
    return flags


def _row_keys(frame: pd.DataFrame, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """A 128-bit hash of each row's values in `names` (missing equals missing; 0.0 equals -0.0)."""
    part = frame[names].copy()
    for name in names:
        if pd.api.types.is_float_dtype(part[name]):
            values = part[name].to_numpy(dtype="float64")
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
