"""Stage 3 detection: find data quality problems and rank ways to fix them.

`assess` (a DataFrame), `assess_parquet` and `assess_csv` (files, streamed in batches) all run
the same single streaming pass (profile.py) and then the catalogue of detectors (the detectors
package, one module per family), and score the result overall and per dimension. Nothing here
mutates its input.
"""

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from lockflow.common.kinds import category_facts
from lockflow.common.models import ColumnSchema, Finding, QualityDimension
from lockflow.datasets.parquet import parquet_batches
from lockflow.quality import patterns
from lockflow.quality.detectors import DETECTORS, Context
from lockflow.quality.detectors.base import TUKEY_K, numeric_sample
from lockflow.quality.detectors.outliers import detect_multivariate_outliers
from lockflow.quality.profile import Profile, profile_batches, rebatch, table_batches
from lockflow.qualityrules.rules import QualityRules

HISTOGRAM_BINS = 20  # as analytics' default: the same column looks the same at gates 2 and 3

BATCH_ROWS = 65_536
# pyarrow's streaming CSV reader reads ~40 blocks ahead, so the block size sets its memory
# (~160 MiB at 4 MiB blocks, ~600 MiB at 16 MiB); small blocks are joined into BATCH_ROWS batches.
CSV_BLOCK = 4 << 20
MIN_OUTLIER_VALUES = 8
DIMENSIONS: tuple[QualityDimension, ...] = (
    "completeness",
    "validity",
    "uniqueness",
    "consistency",
    "timeliness",
)

TIMELINESS_PENALTY = {"low": 10.0, "medium": 25.0, "high": 50.0}


@dataclass(frozen=True)
class Assessment:
    """The findings, the overall quality score (0..100) and the score of each dimension."""

    findings: list[Finding]
    score: float
    dimensions: dict[str, float] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Fences:
    """Tukey fences of a numeric column: values strictly outside [lower, upper] are outliers."""

    q1: float
    q3: float
    lower: float
    upper: float


def assess(
    *,
    frame: pd.DataFrame,
    rules: QualityRules | None = None,
    expected_schema: list[ColumnSchema] | None = None,
    as_of: date | None = None,
    batch_rows: int = BATCH_ROWS,
) -> Assessment:
    """Run every detector on `frame` (streamed in batches, like a file) and score it."""
    table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    return assess_batches(
        schema=table.schema,
        batches=table_batches(table, batch_rows),
        rules=rules,
        expected_schema=expected_schema,
        as_of=as_of,
    )


def assess_parquet(
    *,
    path: Path | pa.NativeFile,
    rules: QualityRules | None = None,
    expected_schema: list[ColumnSchema] | None = None,
    as_of: date | None = None,
    batch_rows: int = BATCH_ROWS,
) -> Assessment:
    """Assess a Parquet file (a path, or an artifact opened from the store) in one pass (bounded memory)."""
    handle = pq.ParquetFile(path)
    return assess_batches(
        schema=handle.schema_arrow,
        batches=parquet_batches(handle, batch_rows),  # by row group: memory does not grow with the file
        rules=rules,
        expected_schema=expected_schema,
        as_of=as_of,
    )


def assess_csv(
    *, path: Path, rules: QualityRules | None = None, as_of: date | None = None, block_bytes: int = CSV_BLOCK
) -> Assessment:
    """Assess a CSV file in one pass over streamed blocks (bounded memory)."""
    # One parsing thread (the prefetch thread) and mimalloc: on two cores Arrow's parallel parse costs
    # CPU the detectors' threads need, and the default pool hands freed blocks back to the OS
    # only to fault fresh pages in for the next block (bench/quality.py, docs/architecture.md).
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=block_bytes, use_threads=False),
        memory_pool=pa.mimalloc_memory_pool(),
    )
    batches = rebatch(reader, BATCH_ROWS)
    return assess_batches(schema=reader.schema, batches=batches, rules=rules, as_of=as_of)


def assess_batches(
    *,
    schema: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    rules: QualityRules | None = None,
    expected_schema: list[ColumnSchema] | None = None,
    as_of: date | None = None,
) -> Assessment:
    """The pass, then the detectors, then the scores."""
    profile = profile_batches(schema, batches, rules=rules)
    ctx = Context(expected_schema=expected_schema, as_of=as_of)
    findings = run_detectors(profile, ctx)
    rows, cols = profile.rows, len(profile.columns)
    return Assessment(
        findings=findings,
        score=score_of(rows=rows, columns=cols, findings=findings),
        dimensions=dimension_scores(rows=rows, columns=cols, findings=findings),
        summary=summary_of(profile),
    )


def run_detectors(profile: Profile, ctx: Context) -> list[Finding]:
    """Every detector's findings in catalogue order; the multivariate one beside the rest, on a thread."""
    # Its model fit and tree walks are mostly native code that drops the GIL, and it is the slowest.
    profile.sample.frame()  # built once here, before two threads read it
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lockflow-detect") as side:
        beside = side.submit(detect_multivariate_outliers, profile, ctx)
        found = {d: list(d(profile, ctx)) for d in DETECTORS if d is not detect_multivariate_outliers}
        found[detect_multivariate_outliers] = list(beside.result())
    return [f for detector in DETECTORS for f in found[detector]]


def summary_of(profile: Profile) -> dict[str, Any]:
    """How the pass ran, for the record, and the numeric columns' histograms (gate 2's charts)."""
    return {
        "rows": profile.rows,
        "columns": len(profile.columns),
        "batches": profile.batches,
        "sample_rows": len(profile.sample.keys),
        "sample_exact": profile.sample.exact,
        "hashes_spilled": profile.spilled,
        "histograms": histograms_of(profile),
    }


def histograms_of(profile: Profile) -> dict[str, dict[str, Any]]:
    """Per numeric column, the histogram of the row sample's values (every row when they fit it)."""
    out: dict[str, dict[str, Any]] = {}
    for col in profile.columns.values():
        if col.kind != "numeric":
            continue
        values = numeric_sample(profile, col, []).to_numpy()
        values = values[np.isfinite(values)]
        if not len(values):
            continue
        counts, edges = np.histogram(values, bins=HISTOGRAM_BINS)
        out[col.name] = {"edges": edges.tolist(), "counts": counts.tolist(), "exact": profile.sample.exact}
    return out


def _cells(finding: Finding, columns: int) -> float:
    cells = finding.count * columns if finding.category == "duplicate_rows" else finding.count
    return category_facts(finding.category).weight * cells


def score_of(*, rows: int, columns: int, findings: list[Finding]) -> float:
    """100 x (1 - min(1, sum_f w(f) x cells(f) / (rows x columns))), rounded to 2 places.

    cells(f) is the finding's count, or count x columns for duplicate rows (a repeated row is
    wrong in every cell); w is the category's score weight (`lockflow.common.kinds`). Timeliness
    findings are scored apart. An empty table scores 100.
    """
    total = rows * columns
    if total == 0:
        return 100.0
    weighted = sum(_cells(f, columns) for f in findings if f.dimension != "timeliness")
    return round(100.0 * (1.0 - min(1.0, weighted / total)), 2)


def dimension_scores(*, rows: int, columns: int, findings: list[Finding]) -> dict[str, float]:
    """The score formula applied to each dimension's findings; timeliness loses 10/25/50 per finding."""
    out: dict[str, float] = {}
    for dimension in DIMENSIONS:
        mine = [f for f in findings if f.dimension == dimension]
        if dimension == "timeliness":
            out[dimension] = max(0.0, 100.0 - sum(TIMELINESS_PENALTY[f.severity] for f in mine))
        else:
            out[dimension] = score_of(rows=rows, columns=columns, findings=mine)
    return out


def quality_score(*, frame: pd.DataFrame, findings: list[Finding]) -> float:
    """The 0..100 score of `assess` for findings already computed on `frame`."""
    return score_of(rows=len(frame), columns=len(frame.columns), findings=findings)


# --- column helpers (shared with resolve) ------------------------------------------------


def is_numeric(series: pd.Series) -> bool:
    """True for int/float columns (booleans are not numbers here)."""
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def is_text(series: pd.Series) -> bool:
    """True for string and object columns (categoricals excluded)."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        return False
    return pd.api.types.is_string_dtype(series) or pd.api.types.is_object_dtype(series)


def missing_mask(series: pd.Series, *, sentinels: Iterable[float] = ()) -> pd.Series:
    """NaN/None; in text columns also blank strings and placeholder tokens ('N/A', '?', 'null' ...);
    in numeric columns also the given sentinel values (-999 ...)."""
    mask = series.isna()
    if is_text(series):
        # astype("str") keeps NaN as NaN, so only real strings can compare equal to "".
        normal = series.astype("str").str.strip().str.lower()
        blank = normal.eq("").fillna(False).astype(bool)
        token = normal.isin(patterns.MISSING_TOKENS).fillna(False).astype(bool)
        mask = mask | blank | token
    elif is_numeric(series) and sentinels:
        mask = mask | series.isin(list(sentinels))
    return mask.astype(bool)


def unparseable_mask(series: pd.Series) -> pd.Series:
    """Non-missing values that `pd.to_numeric` cannot read as a number."""
    missing = missing_mask(series)
    parsed = pd.to_numeric(series.where(~missing), errors="coerce")
    return (parsed.isna() & ~missing).astype(bool)


def tukey_fences(values: pd.Series) -> Fences | None:
    """Fences at 1.5 x IQR beyond the quartiles (linear interpolation); None if not meaningful."""
    clean = values.dropna().astype(float)
    if len(clean) < MIN_OUTLIER_VALUES:
        return None
    q1, q3 = (float(q) for q in np.percentile(clean.to_numpy(), [25, 75]))
    iqr = q3 - q1
    if iqr == 0:
        return None
    return Fences(q1=q1, q3=q3, lower=q1 - TUKEY_K * iqr, upper=q3 + TUKEY_K * iqr)


def outside_fences(series: pd.Series, lower: float, upper: float) -> pd.Series:
    """Non-missing values strictly below `lower` or above `upper`."""
    return ((series < lower) | (series > upper)).fillna(False).astype(bool)
