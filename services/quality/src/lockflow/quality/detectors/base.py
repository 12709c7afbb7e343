"""Shared by every detector family: the thresholds, the Context, and helpers that build findings."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from lockflow.common.models import (
    ColumnSchema,
    Finding,
    FindingCategory,
    QualityDimension,
    Resolution,
    Severity,
)
from lockflow.quality.profile import ColumnProfile, Profile
from lockflow.quality.risk import Evidence, rate
from lockflow.quality.sketches import PARTITIONS, SPILL_AFTER

SAMPLE_ROWS = 5
NUMERIC_LIKE_SHARE = 0.8
MIXED_MIN_VALUES = 20
MIXED_MIN_SHARE = 0.1
TUKEY_K = 1.5
ROBUST_Z = 3.5
OUTLIER_FAR_SHARE = 0.01
OUTLIER_TAIL_SHARE = 0.05
MIN_OUTLIER_VALUES = 8
SENTINEL_K = 3.0
SENTINEL_SPIKE = 5.0
SENTINEL_NEIGHBOURS = 10
DEFAULT_CONSTANT = "unknown"
NEAR_CONSTANT_SHARE = 0.99
IMBALANCE_SHARE = 0.9
HIGH_CARDINALITY_MIN = 50
HIGH_CARDINALITY_SHARE = 0.5
SKEW_BOWLEY = 0.3
SIMILAR_RATIO = 0.85
# A typo is rarer than the spelling it misspells; two near-equal spellings that are about as common
# are two values (names, models), not one value and its variant.
SIMILAR_RARITY = 3
CODE_MAX_LETTERS = 4
MAX_CATEGORIES_COMPARED = 300
IFOREST_ROWS = 20_000
IFOREST_SCORE = -0.75
PAIR_R = 0.8
PAIR_Z = 8.0
STALE_AFTER_DAYS = 365
KEY_REPEAT_SHARE = 0.5  # past this share of repeated rows an id-like column is a reference, not a key
# Rows can repeat by chance when the columns allow fewer combinations than this many times rows^2.
CHANCE_COMBINATIONS = 1000.0
GAP_COVERAGE = 0.5


@dataclass(frozen=True)
class Context:
    """What detection is compared against besides the data itself."""

    expected_schema: list[ColumnSchema] | None = None
    as_of: date | None = None


Detector = Callable[[Profile, Context], list[Finding]]


# ---- shared helpers -----------------------------------------------------------------------------


def severity(share: float) -> Severity:
    """high at >= 20% of rows, medium at >= 5%, else low."""
    if share >= 0.20:
        return "high"
    if share >= 0.05:
        return "medium"
    return "low"


def pct(part: float, whole: float) -> str:
    """A share as '12.3%'."""
    return f"{100.0 * part / whole:.1f}%" if whole else "0.0%"


def finding(
    *,
    id: str,
    category: FindingCategory,
    dimension: QualityDimension,
    columns: list[str],
    count: int,
    rows: int,
    sample_rows: list[int],
    explanation: str,
    resolutions: list[Resolution],
    exact: bool = True,
    method: str = "exact count over every row",
    details: dict[str, Any] | None = None,
    level: Severity | None = None,
) -> Finding:
    """A Finding with share and severity derived from the count, and each resolution's risk judged."""
    share = count / rows if rows else 0.0
    evidence = Evidence(category=category, columns=columns, count=count, rows=rows, details=details or {})
    resolutions = [rate(r, evidence) for r in resolutions]
    return Finding(
        id=id,
        category=category,
        severity=level or severity(share),
        columns=columns,
        count=count,
        share=share,
        sample_rows=sorted(sample_rows)[:SAMPLE_ROWS],
        explanation=explanation,
        resolutions=resolutions,
        dimension=dimension,
        method=method,
        exact=exact,
        details=details or {},
    )


def flag(column: str, what: str, count: int) -> Resolution:
    """The 'flag only' option: keep the data, add a boolean column."""
    return Resolution(
        strategy="flag_only",
        params={"column": f"{column}_{what}"},
        rationale=f"keeps the {count} values as they are and adds a column '{column}_{what}' marking them",
    )


def drop(count: int, rows: int, what: str) -> Resolution:
    """The 'drop rows' option."""
    return Resolution(
        strategy="drop_rows", rationale=f"removes the {count} rows ({pct(count, rows)} of the data) {what}"
    )


def sample_values(p: Profile, column: str) -> pd.Series:
    """The column's values in the row sample (index = row numbers)."""
    frame = p.sample.frame()
    return frame[column] if column in frame.columns else pd.Series(dtype="float64")


def numeric_sample(p: Profile, col: ColumnProfile, skip: list[float]) -> pd.Series:
    """Present numeric sample values as floats, without the given sentinels."""
    values = pd.to_numeric(sample_values(p, col.name), errors="coerce").astype("float64").dropna()
    return values[~values.isin(skip)] if skip else values


def sample_method(p: Profile, what: str) -> str:
    """How a sample-based figure was made."""
    if p.sample.exact:
        return f"{what} on every row (the {p.rows} rows fit the {p.sample.k}-row sample)"
    return (
        f"{what} on a uniform sample of {len(p.sample.keys)} of {p.rows} rows (bottom-k); "
        f"quantile rank error <= {p.sample.rank_error():.4f} at 99% confidence (DKW), count scaled"
    )


def disguised_sentinels(p: Profile, col: ColumnProfile) -> list[float]:
    """Sentinel values (-999, 9999 ...) standing for missing, judged on evidence: a sentinel lies more
    than SENTINEL_K x IQR beyond the quartiles of the other values and either beyond every other
    value or a frequency spike against its nearest values. A 99-minute delay among delays up to
    1301 minutes, as common as a 98 or a 100, is a value, not a missing one."""
    if not col.sentinels:
        return []
    found = [s for s, t in col.sentinels.items() if t.count >= 2]
    if not found:
        return []
    rest = numeric_sample(p, col, list(col.sentinels))
    if len(rest) < MIN_OUTLIER_VALUES:
        return []
    q1, q3 = np.percentile(rest.to_numpy(), [25, 75])
    iqr = max(q3 - q1, 1e-12)
    low, high = float(rest.min()), float(rest.max())
    out = []
    for s in found:
        if q1 - SENTINEL_K * iqr <= s <= q3 + SENTINEL_K * iqr:
            continue
        if s < low or s > high or _frequency_spike(p, col, s, rest):
            out.append(s)
    return sorted(out)


def _frequency_spike(p: Profile, col: ColumnProfile, sentinel: float, rest: pd.Series) -> bool:
    """True when `sentinel` is SENTINEL_SPIKE times as common as its nearest other values are (on
    average), its share from the exact count, theirs from the row sample."""
    sampled = len(sample_values(p, col.name))
    if sampled == 0 or col.rows == 0:
        return False
    counts = rest.value_counts()
    nearest = (pd.Series(counts.index, dtype="float64") - sentinel).abs().nsmallest(SENTINEL_NEIGHBOURS)
    neighbour_share = float(counts.iloc[nearest.index].mean()) / sampled
    return col.sentinels[sentinel].count / col.rows >= SENTINEL_SPIKE * neighbour_share


def hash_method(p: Profile) -> str:
    where = (
        f"spilled to disk in {PARTITIONS} hash partitions past {SPILL_AFTER:,} entries: bounded memory"
        if p.spilled
        else "held in memory, 16 bytes per row"
    )
    collision = min(1.0, p.rows * p.rows / 2.0**65)
    return (
        f"exact count of repeated 64-bit hashes (polars' value hash per column, combined per row; {where}); "
        f"a hash collision is the only possible error (probability about {collision:.1e})"
    )
