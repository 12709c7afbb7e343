"""Segment comparison: the target grouped by each low-cardinality categorical column.

Per column: eta^2 (share of the target's variance the grouping explains) and the one-way ANOVA
p-value. Per value: size, mean, mean of the other rows, the difference in percent and Cohen's d
against the rest (pooled sd). Columns are listed by eta^2, values by mean.
"""

import math

import numpy as np
import pandas as pd
from scipy import stats

from lockflow.analytics.associations import categorical_columns
from lockflow.common.models import SegmentComparison, SegmentGroup
from lockflow.datasets.columns import as_float, finite

MAX_LEVELS = 30


def compare_segments(*, frame: pd.DataFrame, target: str) -> list[SegmentComparison]:
    """One comparison per categorical column with 2..30 values, strongest grouping first."""
    y = as_float(frame[target]).replace([np.inf, -np.inf], np.nan)
    found = []
    for column in categorical_columns(frame, max_levels=MAX_LEVELS):
        if column == target:
            continue
        pair = pd.DataFrame({"g": frame[column].astype("string"), "y": y}).dropna()
        comparison = _compare(pair, column, target)
        if comparison is not None:
            found.append(comparison)
    return sorted(found, key=lambda s: (-s.eta_squared, s.column))


def _compare(pair: pd.DataFrame, column: str, target: str) -> SegmentComparison | None:
    groups = pair.groupby("g")["y"]
    n, k = len(pair), groups.ngroups
    total = float(((pair["y"] - pair["y"].mean()) ** 2).sum())
    if k < 2 or n <= k or total == 0:
        return None
    between = float((groups.size() * (groups.mean() - pair["y"].mean()) ** 2).sum())
    within = total - between
    p = float(stats.f.sf((between / (k - 1)) / (within / (n - k)), k - 1, n - k)) if within > 0 else 0.0
    rows = [_group(pair, str(value)) for value in groups.size().index]
    return SegmentComparison(
        column=column,
        target=target,
        eta_squared=between / total,
        p_value=finite(p),
        groups=sorted(rows, key=lambda g: (g.mean, g.value)),
    )


def _group(pair: pd.DataFrame, value: str) -> SegmentGroup:
    inside = pair["g"] == value
    seg, rest = pair.loc[inside, "y"], pair.loc[~inside, "y"]
    m1 = float(seg.mean())
    m2 = float(rest.mean()) if len(rest) else math.nan
    d = None
    if len(seg) > 1 and len(rest) > 1:
        pooled = math.sqrt(
            ((len(seg) - 1) * seg.var(ddof=1) + (len(rest) - 1) * rest.var(ddof=1))
            / (len(seg) + len(rest) - 2)
        )
        d = (m1 - m2) / pooled if pooled > 0 else None
    return SegmentGroup(
        value=value,
        n=len(seg),
        mean=m1,
        mean_rest=finite(m2) or 0.0,
        diff_pct=finite((m1 - m2) / abs(m2) * 100) if m2 else None,
        cohens_d=finite(d),
    )
