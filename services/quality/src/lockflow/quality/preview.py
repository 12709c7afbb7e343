"""Preview (dry run) of chosen resolutions: what would change, before anything is applied.

Works on the whole dataset when it has at most PREVIEW_ROWS rows, else on a uniform random
sample of that many rows (bottom-k, one streaming pass), and says which.
"""

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lockflow.common.kinds import category_label, strategy_facts
from lockflow.common.models import AppliedResolution, Finding, ResolutionChoice
from lockflow.datasets.parquet import parquet_batches
from lockflow.quality.resolve import apply_resolutions, changed_cells
from lockflow.quality.sketches import RowSample

PREVIEW_ROWS = 200_000
HISTOGRAM_BINS = 20
CHANGED_ROWS_SHOWN = 10
BATCH_ROWS = 65_536


def load_for_preview(*, path: Path | pa.NativeFile, max_rows: int = PREVIEW_ROWS) -> tuple[pd.DataFrame, int]:
    """The dataset (or a uniform sample of it), indexed by row number, and the total row count."""
    handle = pq.ParquetFile(path)
    total = handle.metadata.num_rows
    if total <= max_rows:
        return handle.read().to_pandas(), total
    sample = RowSample(k=max_rows, seed=0)
    offset = 0
    for batch in parquet_batches(handle, BATCH_ROWS):
        sample.add(batch, offset)
        offset += batch.num_rows
    return sample.frame(), total


def preview(
    *, frame: pd.DataFrame, total_rows: int, findings: list[Finding], choices: list[ResolutionChoice]
) -> dict[str, Any]:
    """Apply `choices` to a copy of `frame` and describe the difference; `frame` is not changed."""
    applied = apply_resolutions(frame=frame, findings=findings, choices=choices, keep_index=True)
    after = applied.frame
    sampled = len(frame) < total_rows
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
    scale = total_rows / len(frame) if len(frame) else 1.0
    return {
        "rows_total": total_rows,
        "rows_previewed": len(frame),
        "sampled": sampled,
        "method": (
            f"uniform random sample of {len(frame)} of {total_rows} rows (bottom-k, seed 0); "
            "counts for the whole data are scaled estimates"
            if sampled
            else "every row of the dataset"
        ),
        "rows_removed": len(removed),
        "rows_changed": int(touched_rows.sum()),
        "cells_changed": int(sum(per_column.values())),
        "cells_changed_by_column": per_column,
        "estimated_rows_removed_total": round(len(removed) * scale),
        "columns_added": added,
        "columns_removed": dropped,
        "steps": describe_steps(applied.applied, findings),
        "columns": {
            c: {
                "before": column_stats(frame[c]) if c in frame.columns else None,
                "after": column_stats(after[c]) if c in after.columns else None,
            }
            for c in affected
        },
        "changed_rows": _row_diff(frame, after, touched_rows, removed),
        "histograms": {
            c: pair
            for c in affected
            if c in frame.columns and c in after.columns
            for pair in [histogram_pair(frame[c], after[c])]
            if pair is not None
        },
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
    before: pd.DataFrame, after: pd.DataFrame, touched: pd.Series, removed: pd.Index
) -> list[dict[str, Any]]:
    """Up to CHANGED_ROWS_SHOWN changed rows (cells before -> after) and removed rows."""
    out: list[dict[str, Any]] = []
    for row in touched[touched].index[:CHANGED_ROWS_SHOWN]:
        cells = {}
        for c in before.columns:
            if c in after.columns and changed_cells(before.loc[[row], c], after.loc[[row], c]).iloc[0]:
                cells[c] = {"before": _json(before.at[row, c]), "after": _json(after.at[row, c])}
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
