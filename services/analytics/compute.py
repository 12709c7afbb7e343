"""Stage 4 statistics: per-column summaries, pairwise Pearson correlations and KMeans clustering.

Pure: a DataFrame and `AnalyticsParams` in, an `AnalyticsResult` out. Large frames are sampled
(with the run's seed) before anything is computed, and the result says so. Every float that
leaves this module is finite or None, so the result serialises to strict JSON.

Column kinds: booleans are "boolean", other numbers "numeric", datetimes "datetime", and
everything else (strings, categories, mixed objects) "categorical". For datetime columns
`min`/`max` are POSIX seconds (UTC for naive values).
"""

import math
import warnings
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import silhouette_score

from lockflow.common.errors import InvalidInput
from lockflow.common.models import (
    AnalyticsParams,
    AnalyticsResult,
    Clustering,
    ClusterProfile,
    ColumnStats,
    CorrelationPair,
)

Kind = Literal["numeric", "categorical", "datetime", "boolean"]

TOP_VALUES = 5
MIN_CLUSTER_ROWS = 20
SILHOUETTE_SAMPLE = 5_000
N_INIT = 10


def analyse(*, frame: pd.DataFrame, params: AnalyticsParams) -> AnalyticsResult:
    """Describe every column, correlate numeric pairs and cluster the numeric features."""
    used = _sample(frame, params)
    return AnalyticsResult(
        rows_total=len(frame),
        rows_used=len(used),
        sampled=len(used) < len(frame),
        seed=params.random_state,
        columns=[column_stats(name=str(name), series=used[name]) for name in used.columns],
        correlations=correlations(frame=used),
        clustering=cluster(frame=used, params=params),
        params=params,
    )


def column_kind(series: pd.Series) -> Kind:
    """The analytic kind of a column, from its dtype."""
    if pd.api.types.is_bool_dtype(series.dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(series.dtype):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return "datetime"
    return "categorical"


def numeric_columns(frame: pd.DataFrame) -> list[str]:
    """Names of the numeric (non-boolean) columns, in frame order."""
    return [str(c) for c in frame.columns if column_kind(frame[c]) == "numeric"]


def as_float(series: pd.Series) -> pd.Series:
    """A numeric column as float64 with NaN for missing (works for nullable dtypes too)."""
    return pd.Series(series.to_numpy(dtype="float64", na_value=np.nan), index=series.index)


def finite(value: Any) -> float | None:
    """A float, or None when the value is missing, NaN or infinite (strict JSON has none of them)."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _sample(frame: pd.DataFrame, params: AnalyticsParams) -> pd.DataFrame:
    if len(frame) <= params.sample_rows:
        return frame
    return frame.sample(n=params.sample_rows, random_state=params.random_state)


# ---- column statistics -------------------------------------------------------------------------


def column_stats(*, name: str, series: pd.Series) -> ColumnStats:
    """Descriptive statistics for one column, according to its kind."""
    kind = column_kind(series)
    present = series.dropna()
    base: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "count": len(present),
        "missing": len(series) - len(present),
        "distinct": int(present.nunique()),
    }
    if kind == "numeric":
        return ColumnStats(**base, **_numeric_summary(as_float(present)))
    if kind == "datetime":
        return ColumnStats(**base, **_datetime_range(present))
    if kind == "boolean":
        share_true = present.astype(bool).mean() if len(present) else None
        return ColumnStats(**base, mean=finite(share_true), top=_top_values(present))
    return ColumnStats(**base, top=_top_values(present))


def _numeric_summary(values: pd.Series) -> dict[str, float | None]:
    if values.empty:
        return {}
    with np.errstate(invalid="ignore"):  # inf - inf in the std is reported as None below
        return _numeric_figures(values)


def _numeric_figures(values: pd.Series) -> dict[str, float | None]:
    quartiles = values.quantile([0.25, 0.5, 0.75])
    return {
        "mean": finite(values.mean()),
        "std": finite(values.std(ddof=1)) if len(values) > 1 else None,
        "min": finite(values.min()),
        "p25": finite(quartiles.iloc[0]),
        "median": finite(quartiles.iloc[1]),
        "p75": finite(quartiles.iloc[2]),
        "max": finite(values.max()),
    }


def _datetime_range(values: pd.Series) -> dict[str, float | None]:
    if values.empty:
        return {}
    # Timestamp.timestamp() treats naive values as UTC, whatever the column's resolution.
    return {"min": finite(values.min().timestamp()), "max": finite(values.max().timestamp())}


def _top_values(values: pd.Series) -> list[tuple[str, int]]:
    counts = values.astype(str).value_counts()
    # Sort ties by value so the list is the same on every run.
    ranked = sorted(counts.items(), key=lambda item: (-int(item[1]), str(item[0])))
    return [(str(value), int(count)) for value, count in ranked[:TOP_VALUES]]


# ---- correlations ------------------------------------------------------------------------------


def correlations(*, frame: pd.DataFrame) -> list[CorrelationPair]:
    """Pearson r for every pair of non-constant numeric columns, on pairwise complete rows."""
    names = [c for c in numeric_columns(frame) if as_float(frame[c]).nunique() > 1]
    if len(names) < 2:
        return []
    values = pd.DataFrame({c: as_float(frame[c]) for c in names})
    matrix = values.corr(method="pearson", min_periods=3)
    present = values.notna().to_numpy(dtype="int64")
    pair_counts = present.T @ present
    pairs = []
    for i, a in enumerate(names):
        for j in range(i + 1, len(names)):
            r = finite(matrix.iat[i, j])
            # NaN means too few rows, or one side constant on the rows the pair shares.
            if r is not None:
                pairs.append(CorrelationPair(a=a, b=names[j], pearson=r, n=int(pair_counts[i, j])))
    return pairs


# ---- clustering --------------------------------------------------------------------------------


def cluster(*, frame: pd.DataFrame, params: AnalyticsParams) -> Clustering | None:
    """KMeans on standardised features; None when there is too little to cluster."""
    features = _cluster_features(frame, params)
    if len(features) < 2:
        return None
    # Infinite values have no place in a distance; they are dropped like missing ones.
    data = pd.DataFrame({c: as_float(frame[c]) for c in features}).replace([np.inf, -np.inf], np.nan).dropna()
    if len(data) < MIN_CLUSTER_ROWS:
        return None
    spread = data.std(ddof=0)
    # A feature can become constant once incomplete rows are dropped; it carries no distance.
    features = [c for c in features if spread[c] > 0]
    if len(features) < 2:
        return None
    data = data[features]
    scaled = ((data - data.mean()) / data.std(ddof=0)).to_numpy()
    fitted = _fit_best(scaled, params)
    if fitted is None:
        return None
    k, labels, silhouette, chosen_by = fitted
    return Clustering(
        k=k,
        chosen_by=chosen_by,
        silhouette=silhouette,
        features=features,
        clusters=_profiles(data, labels, k),
    )


def _cluster_features(frame: pd.DataFrame, params: AnalyticsParams) -> list[str]:
    numeric = numeric_columns(frame)
    if params.features is None:
        return [c for c in numeric if as_float(frame[c]).nunique() > 1]
    unusable = [c for c in params.features if c not in numeric]
    if unusable:
        raise InvalidInput(
            f"Clustering features must be numeric columns; not usable: {', '.join(unusable)}. "
            f"Numeric columns: {', '.join(numeric) or '(none)'}."
        )
    return list(dict.fromkeys(params.features))


def _fit_best(
    scaled: np.ndarray, params: AnalyticsParams
) -> tuple[int, np.ndarray, float | None, Literal["silhouette", "user"]] | None:
    if params.n_clusters is not None:
        if params.n_clusters >= len(scaled):
            raise InvalidInput(
                f"n_clusters={params.n_clusters} needs more rows than the {len(scaled)} usable ones."
            )
        labels = _kmeans(scaled, params.n_clusters, params.random_state)
        return params.n_clusters, labels, _silhouette(scaled, labels, params.random_state), "user"
    best: tuple[int, np.ndarray, float | None, Literal["silhouette", "user"]] | None = None
    for k in range(2, min(params.max_clusters, len(scaled) - 1) + 1):
        labels = _kmeans(scaled, k, params.random_state)
        score = _silhouette(scaled, labels, params.random_state)
        # Ties keep the smaller k: the simpler description wins.
        if score is not None and (best is None or best[2] is None or score > best[2]):
            best = (k, labels, score, "silhouette")
    return best


def _kmeans(scaled: np.ndarray, k: int, seed: int) -> np.ndarray:
    with warnings.catch_warnings():
        # Fewer distinct points than k is reported through the silhouette instead.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = KMeans(n_clusters=k, n_init=N_INIT, random_state=seed)
        return np.asarray(model.fit_predict(scaled))


def _silhouette(scaled: np.ndarray, labels: np.ndarray, seed: int) -> float | None:
    if not 2 <= len(np.unique(labels)) < len(scaled):
        return None
    sample = SILHOUETTE_SAMPLE if len(scaled) > SILHOUETTE_SAMPLE else None
    return finite(silhouette_score(scaled, labels, sample_size=sample, random_state=seed))


def _profiles(data: pd.DataFrame, labels: np.ndarray, k: int) -> list[ClusterProfile]:
    grouped = data.groupby(labels)
    means = grouped.mean()
    sizes = grouped.size()
    profiles = []
    for label in range(k):
        if label not in sizes.index:
            continue
        centroid = {c: finite(means.at[label, c]) for c in data.columns}
        profiles.append(
            ClusterProfile(
                cluster=label,
                size=int(sizes[label]),
                centroid={c: v for c, v in centroid.items() if v is not None},
            )
        )
    return profiles
