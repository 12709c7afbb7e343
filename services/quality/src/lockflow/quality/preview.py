"""Preview (dry run) of chosen resolutions: what would change, before anything is applied.

A dataset of at most `sample_rows` rows is previewed on every row (`exact: true`). A larger one
is previewed first on a uniform random sample of that many rows (row numbers drawn without
replacement, seed 0, read row group by row group): its counts are scaled to the whole dataset and
labelled as estimates with their margin (`exact: false`, `sample_rows`, `margin`: the half-width of
a 95 % Wilson score interval for the proportion, with the finite population correction, times the
rows). The exact figures come after (lockflow.quality.preview_cache computes them in the background).
"""

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lockflow.common.kinds import category_label, strategy_facts
from lockflow.common.models import AppliedResolution, Finding, ResolutionChoice
from lockflow.quality.resolve import apply_resolutions, changed_cells, prime_found

SAMPLE_ROWS = 20_000
HISTOGRAM_BINS = 20
CHANGED_ROWS_SHOWN = 10
Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile: a two-sided 95 % interval
INTERVAL = (
    "95 % Wilson score interval for each count's proportion of the sampled rows, with the finite "
    "population correction, scaled to the whole dataset; cells_changed's margin is the sum of its "
    "columns' margins (an upper bound)"
)


def whole_frame_dtypes(
    frame: pd.DataFrame, handle: pq.ParquetFile, nullable: set[str] | None = None
) -> pd.DataFrame:
    """`frame` (part of the file's rows) with the dtypes pandas gives the whole file.

    Arrow makes an integer column with nulls float64 and a boolean one with nulls object: a part
    without nulls would come out int64 or bool, and a fix would not act as it does on the whole."""
    nullable = columns_with_nulls(handle) if nullable is None else nullable
    for name in frame.columns:
        if name not in nullable:
            continue
        dtype = frame[name].dtype  # numpy's only: an extension dtype (Int64, boolean) holds nulls itself
        if isinstance(dtype, np.dtype) and dtype.kind in "iu":
            frame[name] = frame[name].astype("float64")
        elif isinstance(dtype, np.dtype) and dtype.kind == "b":
            frame[name] = frame[name].astype(object)
    return frame


def columns_with_nulls(handle: pq.ParquetFile) -> set[str]:
    """The file's integer and boolean columns holding a null anywhere (the others' pandas dtype does
    not depend on it), from the row groups' statistics or, without them, by counting."""
    meta = handle.metadata
    found: set[str] = set()
    unknown: list[str] = []
    names = handle.schema_arrow.names
    for i, name in enumerate(names):
        kind = handle.schema_arrow.field(i).type
        if not (pa.types.is_integer(kind) or pa.types.is_boolean(kind)):
            continue
        for g in range(meta.num_row_groups):
            stats = meta.row_group(g).column(i).statistics if meta.num_columns == len(names) else None
            if stats is None or not stats.has_null_count:
                unknown.append(name)
                break
            if stats.null_count:
                found.add(name)
                break
    for name in unknown:  # no statistics: count the column's nulls (one column at a time)
        if handle.read(columns=[name]).column(0).null_count:
            found.add(name)
    return found


def read_whole(*, path: Path | pa.NativeFile) -> tuple[pd.DataFrame, int]:
    """Every row of the dataset, indexed by row number, and the row count."""
    handle = pq.ParquetFile(path)
    return handle.read().to_pandas(), handle.metadata.num_rows


def read_sample(
    *, path: Path | pa.NativeFile, rows: int = SAMPLE_ROWS, seed: int = 0
) -> tuple[pd.DataFrame, int]:
    """A uniform random sample of `rows` rows (every row if there are not more), indexed by row
    number, with the whole file's dtypes, and the total row count."""
    handle = pq.ParquetFile(path)
    total = handle.metadata.num_rows
    if total <= rows:
        return handle.read().to_pandas(), total
    picked = np.sort(np.random.default_rng(seed).choice(total, size=rows, replace=False))
    parts, start = [], 0
    for group in range(handle.num_row_groups):
        size = handle.metadata.row_group(group).num_rows
        low, high = np.searchsorted(picked, [start, start + size])
        if high > low:
            parts.append(handle.read_row_group(group).take(pa.array(picked[low:high] - start)))
        start += size
    frame = pa.concat_tables(parts).to_pandas()
    frame.index = pd.Index(picked)
    return whole_frame_dtypes(frame, handle), total


def load_for_preview(*, path: Path | pa.NativeFile, max_rows: int = SAMPLE_ROWS) -> tuple[pd.DataFrame, int]:
    """The dataset (or a uniform sample of `max_rows` of its rows) and the total row count."""
    return read_sample(path=path, rows=max_rows)


def wilson_interval(count: int, n: int, *, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of the proportion count/n (0..1 each side)."""
    if n <= 0:
        return 0.0, 1.0
    p = count / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def scale_count(count: int, n: int, total: int, *, z: float = Z95) -> tuple[int, int]:
    """`count` of `n` sampled rows scaled to `total` rows, and its margin (0 when n covers every row).

    The margin is the larger side of the proportion's Wilson interval, narrowed by the finite
    population correction sqrt((N-n)/(N-1)), times N, rounded up."""
    if n >= total or n <= 0:
        return count, 0
    p = count / n
    low, high = wilson_interval(count, n, z=z)
    correction = math.sqrt((total - n) / (total - 1))
    margin = max(high - p, p - low) * correction * total
    return round(p * total), math.ceil(margin)


def preview(
    *,
    frame: pd.DataFrame,
    total_rows: int,
    findings: list[Finding],
    choices: list[ResolutionChoice],
    memo: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Apply `choices` to a copy of `frame` and describe the difference; `frame` is not changed.

    When `frame` is a sample of `total_rows` rows the counts are scaled estimates with a margin.
    `memo` (one per frame) keeps what does not depend on the choices: the columns' statistics
    before, the rows with each finding's problem."""
    memo = {} if memo is None else memo
    applied = apply_resolutions(
        frame=frame,
        findings=findings,
        choices=choices,
        keep_index=True,
        found_memo=memo.setdefault("found", {}),
    )
    before_stats = memo.setdefault("before", {})
    after = applied.frame
    n = len(frame)
    sampled = n < total_rows
    removed = frame.index.difference(after.index)
    kept = frame.index.intersection(after.index)
    common = [c for c in frame.columns if c in after.columns]
    changed = {c: changed_cells(frame.loc[kept, c], after.loc[kept, c]) for c in common}
    per_column = {c: int(m.sum()) for c, m in changed.items() if m.any()}
    touched_rows = (
        pd.concat([m for m in changed.values()], axis=1).any(axis=1)
        if changed
        else pd.Series(False, index=kept)
    )
    added = [c for c in after.columns if c not in frame.columns]
    dropped = [c for c in frame.columns if c not in after.columns]
    named = {c for f in _chosen(findings, choices) if f.category != "duplicate_rows" for c in f.columns}
    affected = sorted(set(per_column) | set(added) | named)
    affected = [c for c in affected if c in frame.columns or c in after.columns]
    counts = {
        "rows_removed": len(removed),
        "rows_changed": int(touched_rows.sum()),
        "cells_changed_by_column": per_column,
    }
    return {
        "rows_total": total_rows,
        "rows_previewed": n,
        "sample_rows": n,
        "sampled": sampled,
        "exact": not sampled,
        "method": (
            f"uniform random sample of {n} of {total_rows} rows (seed 0); "
            "counts are scaled to the whole data: estimates with a 95 % margin"
            if sampled
            else "every row of the dataset"
        ),
        **whole_data_counts(counts, n=n, total=total_rows),
        "sample_counts": {**counts, "cells_changed": int(sum(per_column.values()))},
        "columns_added": added,
        "columns_removed": dropped,
        "steps": describe_steps(applied.applied, findings),
        "columns": {
            c: {
                "before": _stats_once(before_stats, frame, c) if c in frame.columns else None,
                "after": column_stats(after[c]) if c in after.columns else None,
            }
            for c in affected
        },
        "changed_rows": _row_diff(frame, after, changed, touched_rows, removed),
        "histograms": {
            c: pair
            for c in affected
            if c in frame.columns and c in after.columns
            for pair in [histogram_pair(frame[c], after[c])]
            if pair is not None
        },
    }


def prime(frame: pd.DataFrame, findings: list[Finding], memo: dict[str, Any]) -> None:
    """Fill a frame's preview memo before the first preview: every column's statistics, every
    offered row-level fix's rows."""
    before = memo.setdefault("before", {})
    for column in frame.columns:
        _stats_once(before, frame, column)
    prime_found(frame, findings, memo.setdefault("found", {}))


def _stats_once(memo: dict[str, Any], frame: pd.DataFrame, column: str) -> dict[str, Any]:
    if column not in memo:
        memo[column] = column_stats(frame[column])
    return memo[column]


def whole_data_counts(counts: dict[str, Any], *, n: int, total: int) -> dict[str, Any]:
    """The answer's counts for the whole data from counts over `n` of `total` rows, with margins.

    Every count is of rows (a column's changed cells are rows of that column), so each scales as
    a proportion; over every row (n == total) the counts are exact and the margins 0."""
    removed, removed_margin = scale_count(counts["rows_removed"], n, total)
    changed, changed_margin = scale_count(counts["rows_changed"], n, total)
    by_column = {c: scale_count(k, n, total) for c, k in counts["cells_changed_by_column"].items()}
    return {
        "rows_removed": removed,
        "rows_changed": changed,
        "cells_changed": sum(v for v, _ in by_column.values()),
        "cells_changed_by_column": {c: v for c, (v, _) in by_column.items()},
        "estimated_rows_removed_total": removed,
        "margin": {
            "rows_removed": removed_margin,
            "rows_changed": changed_margin,
            "cells_changed": sum(m for _, m in by_column.values()),
            "cells_changed_by_column": {c: m for c, (_, m) in by_column.items()},
        },
        "interval": INTERVAL if n < total else "none: every row was counted",
    }


def _finite(series: pd.Series) -> np.ndarray:
    values = pd.to_numeric(series, errors="coerce").dropna().astype("float64").to_numpy()
    return values[np.isfinite(values)]


def histogram_pair(
    before: pd.Series, after: pd.Series, *, bins: int = HISTOGRAM_BINS
) -> dict[str, Any] | None:
    """A numeric column's histograms before and after the fixes on the same edges (None if not numeric)."""
    numeric = pd.api.types.is_numeric_dtype
    if not (numeric(before) and numeric(after)) or pd.api.types.is_bool_dtype(before):
        return None
    old, new = _finite(before), _finite(after)
    both = np.concatenate([old, new])
    if not len(both):
        return None
    low, high = float(both.min()), float(both.max())
    edges = np.linspace(low, high, bins + 1) if high > low else np.array([low - 0.5, low + 0.5])
    return {
        "before": {"edges": edges.tolist(), "counts": np.histogram(old, bins=edges)[0].tolist()},
        "after": {"edges": edges.tolist(), "counts": np.histogram(new, bins=edges)[0].tolist()},
    }


def describe_steps(steps: list[AppliedResolution], findings: list[Finding]) -> list[dict[str, Any]]:
    """Each step as a person reads it: the finding's category label, what the fix does and its risk."""
    categories = {f.id: str(f.category) for f in findings}
    described = []
    for step in steps:
        facts = strategy_facts(step.strategy)
        category = categories.get(step.finding_id)
        described.append(
            {
                **step.model_dump(mode="json"),
                "category": category_label(category) if category is not None else "-",
                "description": facts.description,
                "risk": facts.risk,
            }
        )
    return described


def _chosen(findings: list[Finding], choices: list[ResolutionChoice]) -> list[Finding]:
    ids = {c.finding_id for c in choices}
    return [f for f in findings if f.id in ids]


def column_stats(series: pd.Series) -> dict[str, Any]:
    """count, missing, distinct; mean/median/min/max for numbers, top value for the rest."""
    stats: dict[str, Any] = {
        "dtype": str(series.dtype),
        "count": int(series.notna().sum()),
        "missing": int(series.isna().sum()),
        "distinct": int(series.nunique(dropna=True)),
    }
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        values = series.dropna().astype("float64")
        values = values[np.isfinite(values)]
        if len(values):
            stats.update(
                mean=float(values.mean()),
                median=float(values.median()),
                min=float(values.min()),
                max=float(values.max()),
                std=float(values.std()) if len(values) > 1 else 0.0,
            )
    elif stats["count"]:
        counts = series.astype("str")[series.notna()].value_counts()
        stats.update(top=str(counts.index[0]), top_count=int(counts.iloc[0]))
    return stats


def _json(value: Any) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value if isinstance(value, int | float | str | bool) else str(value)


def _row_diff(
    before: pd.DataFrame,
    after: pd.DataFrame,
    changed: dict[str, pd.Series],
    touched: pd.Series,
    removed: pd.Index,
) -> list[dict[str, Any]]:
    """Up to CHANGED_ROWS_SHOWN changed rows (cells before -> after) and removed rows."""
    out: list[dict[str, Any]] = []
    for row in touched[touched].index[:CHANGED_ROWS_SHOWN]:
        cells = {
            c: {"before": _json(before.at[row, c]), "after": _json(after.at[row, c])}
            for c in before.columns
            if c in changed and changed[c].at[row]
        }
        out.append({"row": int(row), "change": "changed", "cells": cells})
    for row in removed[: max(0, CHANGED_ROWS_SHOWN - len(out))]:
        out.append(
            {
                "row": int(row),
                "change": "removed",
                "cells": {c: {"before": _json(before.at[row, c]), "after": None} for c in before.columns},
            }
        )
    return out
