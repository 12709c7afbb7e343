"""Stage 3 detection: find data quality problems in a DataFrame and rank ways to fix them.

Each detector is a small pure function from a DataFrame to a list of `Finding`s; `assess`
runs them all and scores the frame. Nothing here mutates its input.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lockflow.common.models import Finding, FindingCategory, Resolution, Severity

SAMPLE_ROWS = 5
NUMERIC_LIKE_SHARE = 0.8
TUKEY_K = 1.5
MIN_OUTLIER_VALUES = 8
DEFAULT_CONSTANT = "unknown"

# Outliers may be genuine extreme values, so they weigh less in the score than cells that are
# certainly wrong (missing, unparseable, repeated).
CATEGORY_WEIGHTS: dict[FindingCategory, float] = {
    "missing_values": 1.0,
    "duplicate_rows": 1.0,
    "type_mismatch": 1.0,
    "outliers": 0.5,
}


@dataclass(frozen=True)
class Assessment:
    """The findings on one frame and its quality score (0..100)."""

    findings: list[Finding]
    score: float


@dataclass(frozen=True)
class Fences:
    """Tukey fences of a numeric column: values strictly outside [lower, upper] are outliers."""

    q1: float
    q3: float
    lower: float
    upper: float


def assess(*, frame: pd.DataFrame) -> Assessment:
    """Run every detector on `frame` and score it.

    score = 100 x (1 - min(1, sum_f w(f) x cells(f) / (rows x columns))), rounded to 2 places,
    where cells(f) is the finding's count for a column finding (missing values, type mismatch,
    outliers) and count x columns for duplicate rows (a repeated row is wrong in every cell),
    and w is CATEGORY_WEIGHTS (1.0, except 0.5 for outliers, which may be real). An empty
    frame scores 100.
    """
    findings = [finding for detector in DETECTORS for finding in detector(frame)]
    return Assessment(findings=findings, score=quality_score(frame=frame, findings=findings))


def quality_score(*, frame: pd.DataFrame, findings: list[Finding]) -> float:
    """The 0..100 score of `assess` for findings already computed on `frame`."""
    total_cells = len(frame) * len(frame.columns)
    if total_cells == 0:
        return 100.0
    n_columns = len(frame.columns)
    weighted = 0.0
    for finding in findings:
        cells = finding.count * n_columns if finding.category == "duplicate_rows" else finding.count
        weighted += CATEGORY_WEIGHTS[finding.category] * cells
    return round(100.0 * (1.0 - min(1.0, weighted / total_cells)), 2)


# --- column helpers (shared with resolve) ------------------------------------------------


def is_numeric(series: pd.Series) -> bool:
    """True for int/float columns (booleans are not numbers here)."""
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def is_text(series: pd.Series) -> bool:
    """True for string and object columns (categoricals excluded)."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        return False
    return pd.api.types.is_string_dtype(series) or pd.api.types.is_object_dtype(series)


def missing_mask(series: pd.Series) -> pd.Series:
    """NaN/None, plus empty or whitespace-only strings in text columns."""
    mask = series.isna()
    if is_text(series):
        # astype("str") keeps NaN as NaN, so only real strings can compare equal to "".
        blank = series.astype("str").str.strip().eq("").fillna(False).astype(bool)
        mask = mask | blank
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


# --- detectors ---------------------------------------------------------------------------


def detect_missing_values(frame: pd.DataFrame) -> list[Finding]:
    """One finding per column with missing values (NaN/None or blank strings)."""
    findings = []
    for column in frame.columns:
        series = frame[column]
        mask = missing_mask(series)
        count = int(mask.sum())
        if count == 0:
            continue
        rows = len(frame)
        blanks = count - int(series.isna().sum())
        blank_note = f", of which {blanks} are empty or blank strings" if blanks else ""
        findings.append(
            Finding(
                id=f"missing_values:{column}",
                category="missing_values",
                severity=_severity(count / rows),
                columns=[str(column)],
                count=count,
                share=count / rows,
                sample_rows=_sample(mask),
                explanation=(
                    f"Column '{column}' has {count} missing values ({_pct(count, rows)} of {rows} rows)"
                    f"{blank_note}."
                ),
                resolutions=_missing_resolutions(series[~mask], count, rows),
            )
        )
    return findings


def _missing_resolutions(present: pd.Series, count: int, rows: int) -> list[Resolution]:
    """Ranked fixes for missing values, depending on what the column holds."""
    drop = Resolution(
        strategy="drop_rows",
        rationale=f"removes the {count} rows ({_pct(count, rows)} of the data) missing this value",
    )
    if is_numeric(present) and len(present) > 0:
        values = present.astype(float)
        skew = float(values.skew()) if len(values) > 2 else 0.0
        skew = 0.0 if np.isnan(skew) else skew
        return [
            Resolution(
                strategy="impute_median",
                rationale=f"the median ({values.median():.4g}) is robust to the skew measured as {skew:.2f}",
            ),
            Resolution(
                strategy="impute_mean",
                rationale=f"the mean ({values.mean():.4g}) keeps the column's average; "
                f"sound when the skew ({skew:.2f}) is near 0",
            ),
            drop,
        ]
    options: list[Resolution] = []
    if len(present) > 0:
        top = present.mode().iloc[0]
        top_count = int((present == top).sum())
        options.append(
            Resolution(
                strategy="impute_mode",
                rationale=f"the most frequent value '{top}' holds {_pct(top_count, len(present))} "
                f"of the {len(present)} filled rows",
            )
        )
    if is_text(present):
        options.append(
            Resolution(
                strategy="fill_constant",
                params={"value": DEFAULT_CONSTANT},
                rationale=f"marks the {count} gaps as '{DEFAULT_CONSTANT}' so they stay visible in analysis",
            )
        )
    options.append(drop)
    return options


def detect_duplicate_rows(frame: pd.DataFrame) -> list[Finding]:
    """One finding if some rows repeat an earlier row exactly in every column."""
    if frame.empty or len(frame.columns) == 0:
        return []
    mask = frame.duplicated(keep="first")
    count = int(mask.sum())
    if count == 0:
        return []
    rows = len(frame)
    return [
        Finding(
            id="duplicate_rows",
            category="duplicate_rows",
            severity=_severity(count / rows),
            columns=[str(c) for c in frame.columns],
            count=count,
            share=count / rows,
            sample_rows=_sample(mask),
            explanation=(
                f"{count} rows ({_pct(count, rows)} of {rows}) repeat an earlier row exactly "
                f"in all {len(frame.columns)} columns."
            ),
            resolutions=[
                Resolution(
                    strategy="drop_duplicates_keep_first",
                    rationale=f"removes the {count} later copies and keeps each first occurrence",
                ),
                Resolution(
                    strategy="drop_duplicates_keep_last",
                    rationale=f"removes {count} copies and keeps each last occurrence instead",
                ),
            ],
        )
    ]


def detect_type_mismatches(frame: pd.DataFrame) -> list[Finding]:
    """One finding per text column that is mostly numbers but holds some non-numbers."""
    findings = []
    for column in frame.columns:
        series = frame[column]
        if not is_text(series):
            continue
        filled = int((~missing_mask(series)).sum())
        bad = unparseable_mask(series)
        count = int(bad.sum())
        if filled == 0 or count == 0 or (filled - count) / filled < NUMERIC_LIKE_SHARE:
            continue
        rows = len(frame)
        examples = ", ".join(f"'{v}'" for v in pd.unique(series[bad])[:3])
        findings.append(
            Finding(
                id=f"type_mismatch:{column}",
                category="type_mismatch",
                severity=_severity(count / rows),
                columns=[str(column)],
                count=count,
                share=count / rows,
                sample_rows=_sample(bad),
                explanation=(
                    f"Column '{column}' holds text, but {filled - count} of its {filled} filled values "
                    f"({_pct(filled - count, filled)}) are numbers; {count} are not (e.g. {examples})."
                ),
                resolutions=[
                    Resolution(
                        strategy="coerce_numeric",
                        rationale=f"makes the column numeric; the {count} values that are not numbers "
                        "become missing",
                    ),
                    Resolution(
                        strategy="drop_rows",
                        rationale=f"removes the {count} rows whose value is not a number",
                    ),
                ],
            )
        )
    return findings


def detect_outliers(frame: pd.DataFrame) -> list[Finding]:
    """One finding per numeric column with values outside its Tukey fences."""
    findings = []
    for column in frame.columns:
        series = frame[column]
        if not is_numeric(series):
            continue
        fences = tukey_fences(series)
        if fences is None:
            continue
        mask = outside_fences(series, fences.lower, fences.upper)
        count = int(mask.sum())
        if count == 0:
            continue
        rows = len(frame)
        bounds = {"lower": fences.lower, "upper": fences.upper}
        findings.append(
            Finding(
                id=f"outliers:{column}",
                category="outliers",
                severity=_severity(count / rows),
                columns=[str(column)],
                count=count,
                share=count / rows,
                sample_rows=_sample(mask),
                explanation=(
                    f"Column '{column}' has {count} values ({_pct(count, rows)} of {rows} rows) outside "
                    f"the Tukey fences [{fences.lower:.4g}, {fences.upper:.4g}], i.e. more than "
                    f"{TUKEY_K} x IQR beyond the quartiles {fences.q1:.4g} and {fences.q3:.4g}."
                ),
                resolutions=[
                    Resolution(
                        strategy="cap_to_fences",
                        params=bounds,
                        rationale=f"clips the {count} values to [{fences.lower:.4g}, {fences.upper:.4g}] "
                        "and keeps every row",
                    ),
                    Resolution(
                        strategy="drop_rows",
                        params=dict(bounds),
                        rationale=f"removes the {count} rows with a value outside the fences",
                    ),
                    Resolution(
                        strategy="flag_only",
                        params=dict(bounds),
                        rationale=f"keeps the {count} values (they may be real) and adds a flag column",
                    ),
                ],
            )
        )
    return findings


DETECTORS: tuple[Callable[[pd.DataFrame], list[Finding]], ...] = (
    detect_missing_values,
    detect_duplicate_rows,
    detect_type_mismatches,
    detect_outliers,
)


def _severity(share: float) -> Severity:
    if share >= 0.20:
        return "high"
    if share >= 0.05:
        return "medium"
    return "low"


def _sample(mask: pd.Series) -> list[int]:
    return [int(i) for i in np.flatnonzero(mask.to_numpy())[:SAMPLE_ROWS]]


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "0.0%"
