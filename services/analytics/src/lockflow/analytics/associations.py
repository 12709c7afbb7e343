"""Pairs involving a categorical column: Cramér's V (categorical x categorical) and the correlation
ratio eta (categorical x numeric), each with its test (chi-square; one-way ANOVA F).

Categorical here means a categorical/boolean column with 2..`MAX_LEVELS` distinct values; more
levels (ids, free text) say nothing as a group-by.
"""

import math

import numpy as np
import pandas as pd
from scipy import stats

from lockflow.common.models import Association
from lockflow.datasets.columns import as_float, column_kind, finite, numeric_columns

MAX_LEVELS = 50


def categorical_columns(frame: pd.DataFrame, *, max_levels: int = MAX_LEVELS) -> list[str]:
    """Categorical/boolean columns with 2..max_levels distinct values."""
    return [
        str(c)
        for c in frame.columns
        if column_kind(frame[c]) in ("categorical", "boolean") and 2 <= frame[c].nunique() <= max_levels
    ]


def associations(*, frame: pd.DataFrame) -> list[Association]:
    """Cramér's V for categorical pairs and eta for categorical-numeric pairs, strongest first."""
    cats = categorical_columns(frame)
    nums = [c for c in numeric_columns(frame) if as_float(frame[c]).nunique() > 1]
    found = [
        *(a for i, x in enumerate(cats) for y in cats[i + 1 :] if (a := cramers_v(frame, x, y))),
        *(a for x in cats for y in nums if (a := correlation_ratio(frame, x, y))),
    ]
    return sorted(found, key=lambda a: (-a.value, a.a, a.b))


def cramers_v(frame: pd.DataFrame, a: str, b: str) -> Association | None:
    """sqrt(chi2 / (n (min(r, c) - 1))) on the rows where both are present."""
    pair = frame[[a, b]].dropna()
    table = pd.crosstab(pair[a].astype(str), pair[b].astype(str))
    if min(table.shape) < 2:
        return None
    chi2, p, _, _ = stats.chi2_contingency(table.to_numpy(), correction=False)
    n = int(table.to_numpy().sum())
    value = math.sqrt(chi2 / (n * (min(table.shape) - 1)))
    return Association(a=a, b=b, measure="cramers_v", value=value, n=n, p_value=finite(p))


def correlation_ratio(frame: pd.DataFrame, category: str, numeric: str) -> Association | None:
    """eta = sqrt(between-group / total sum of squares), with the one-way ANOVA p-value."""
    pair = pd.DataFrame({"g": frame[category], "y": as_float(frame[numeric])}).dropna()
    pair = pair[np.isfinite(pair["y"])]
    groups = pair.groupby(pair["g"].astype(str))["y"]
    k, n = groups.ngroups, len(pair)
    total = float(((pair["y"] - pair["y"].mean()) ** 2).sum())
    if k < 2 or n <= k or total == 0:
        return None
    between = float((groups.size() * (groups.mean() - pair["y"].mean()) ** 2).sum())
    within = total - between
    f = (between / (k - 1)) / (within / (n - k)) if within > 0 else math.inf
    p = float(stats.f.sf(f, k - 1, n - k)) if math.isfinite(f) else 0.0
    value = math.sqrt(min(1.0, max(0.0, between / total)))
    return Association(a=category, b=numeric, measure="correlation_ratio", value=value, n=n, p_value=p)
