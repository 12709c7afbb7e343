"""Stage 4: every analysis part, and `analyse` which runs the parts that are requested or relevant.

Pure: a DataFrame and `AnalyticsParams` in, an `AnalyticsResult` out. Large frames are sampled
(see sampling.py) before anything is computed, and the result says so. Every float that leaves
this module is finite or None, so the result serialises to strict JSON.

Parts and the parameters each depends on (`PART_PARAMS`), so a changed parameter recomputes only
the parts that use it (the handler caches part by part):
- describe: per-column statistics and histograms (`histogram_bins`);
- correlations: Pearson and Spearman for numeric pairs;
- associations: Cramér's V and the correlation ratio for pairs with a categorical column;
- clustering (heavy): KMeans, k by silhouette (searched on <= 10,000 rows, then fitted on all)
  unless fixed (`n_clusters`, `max_clusters`, `features`);
- anomalies (heavy): IsolationForest (`contamination`, `features`);
- drivers (heavy): mutual information + permutation importance toward the target;
- segments (heavy): the target grouped by each categorical column, with effect sizes;
- time_series (heavy): the target (or row count) over a date column (`date_column`, `resample`).
Heavy parts run when relevant (a target for drivers/segments, a date column for time_series,
numeric columns for clustering/anomalies) and, when `steps` is given, only if listed there.

Column kinds: booleans are "boolean", other numbers "numeric", datetimes "datetime", and
everything else (strings, categories, mixed objects) "categorical". For datetime columns
`min`/`max` are POSIX seconds (UTC for naive values).
"""

import warnings
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import silhouette_score
from threadpoolctl import threadpool_limits

from lockflow.analytics.anomalies import detect
from lockflow.analytics.associations import associations
from lockflow.analytics.budget import AnalysisBudget, narrow
from lockflow.analytics.drivers import driver_analysis
from lockflow.analytics.segments import compare_segments
from lockflow.analytics.timeseries import date_column, time_series
from lockflow.common.errors import InvalidInput
from lockflow.common.models import (
    AnalyticsParams,
    AnalyticsResult,
    Clustering,
    ClusterProfile,
    ColumnStats,
    CorrelationPair,
)
from lockflow.datasets.columns import as_float, column_kind, finite, numeric_columns
from lockflow.datasets.sampling import sample_frame, sample_note

TOP_VALUES = 5
MIN_CLUSTER_ROWS = 20
SILHOUETTE_SAMPLE = 5_000
SEARCH_ROWS = 10_000
THREADS = 1
N_INIT = 10

PART_PARAMS: dict[str, tuple[str, ...]] = {
    "describe": ("histogram_bins",),
    "correlations": (),
    "associations": (),
    "clustering": ("n_clusters", "max_clusters", "features", "random_state"),
    "anomalies": ("contamination", "features", "random_state"),
    "drivers": ("random_state",),
    "segments": (),
    "time_series": ("date_column", "resample"),
}
BUDGET_NOTES = "budget_notes"
HEAVY = ("clustering", "anomalies", "drivers", "segments", "time_series")
NEEDS_TARGET = ("drivers", "segments", "time_series")


def analyse(
    *,
    frame: pd.DataFrame,
    params: AnalyticsParams,
    target: str | None = None,
    budget: AnalysisBudget | None = None,
) -> AnalyticsResult:
    """Every requested or relevant part on the (sampled) frame, assembled into one result."""
    used = sample_frame(frame, size=params.sample_rows, seed=params.random_state)
    target = resolve_target(used, params.target or target, strict=params.target is not None)
    names = parts_to_run(used, params, target)
    values = {
        name: compute_part(name, frame=used, params=params, target=target, budget=budget) for name in names
    }
    return assemble(parts=values, params=params, target=target, rows_total=len(frame), rows_used=len(used))


def resolve_target(frame: pd.DataFrame, target: str | None, *, strict: bool) -> str | None:
    """The target if it is a non-constant numeric column; the user's own choice must be, else None."""
    if target is None:
        return None
    numeric = numeric_columns(frame)
    problem = None
    if target not in numeric:
        problem = (
            f"target `{target}` is not a numeric column; numeric columns: {', '.join(numeric) or '(none)'}"
        )
    elif as_float(frame[target]).nunique() < 2:
        problem = f"target `{target}` is constant, so nothing can drive it"
    if problem and strict:
        raise InvalidInput(f"Analytics {problem}.")
    return None if problem else target


def parts_to_run(frame: pd.DataFrame, params: AnalyticsParams, target: str | None) -> list[str]:
    """The parts this frame and these parameters call for, in a fixed order."""
    numeric = [c for c in numeric_columns(frame) if as_float(frame[c]).nunique() > 1]
    relevant = {
        "clustering": len(numeric) >= 2 or bool(params.features),
        "anomalies": len(numeric) >= 1,
        "drivers": target is not None,
        "segments": target is not None,
        "time_series": date_column(frame, params.date_column) is not None,
    }
    wanted = set(params.steps) if params.steps is not None else set(HEAVY)
    return [p for p in PART_PARAMS if p not in HEAVY or (relevant[p] and p in wanted)]


def part_key_params(name: str, params: AnalyticsParams, target: str | None) -> dict[str, Any]:
    """The parameter values a part's result depends on (its cache key, with the data)."""
    values = {f: getattr(params, f) for f in PART_PARAMS[name]}
    if name in NEEDS_TARGET:
        values["target"] = target
    return values


def compute_part(
    name: str,
    *,
    frame: pd.DataFrame,
    params: AnalyticsParams,
    target: str | None,
    budget: AnalysisBudget | None = None,
) -> dict[str, Any]:
    """One part's fields of `AnalyticsResult`, as JSON-safe values, within the budget (see budget.py)."""
    narrowed = frame
    note = ""
    if name != "describe":  # describe is one pass per column: max_columns bounds it at ingest
        keep = (target or "", date_column(frame, params.date_column) or "", *(params.features or []))
        within = narrow(name, frame, budget or AnalysisBudget(), keep=keep)
        narrowed, note = within.frame, within.note
    # One native thread per part: workers scale out by replicas, and OpenMP/BLAS threads in one
    # worker spin against the other workers' on a shared box (measured 4x slower KMeans on 2 cores).
    with threadpool_limits(limits=THREADS):
        value = _PARTS[name](narrowed, params, target)
    jsonable = {field: _jsonable(v) for field, v in value.items()}
    return {**jsonable, BUDGET_NOTES: [note]} if note else jsonable


def assemble(
    *,
    parts: dict[str, dict[str, Any]],
    params: AnalyticsParams,
    target: str | None,
    rows_total: int,
    rows_used: int,
) -> AnalyticsResult:
    """The result from its parts (computed or cached), with the sampling stated."""
    fields: dict[str, Any] = {"columns": [], "correlations": [], "clustering": None}
    notes: list[str] = []
    for name in PART_PARAMS:
        part = dict(parts.get(name, {}))
        notes.extend(part.pop(BUDGET_NOTES, []))
        fields.update(part)
    sampled = sample_note(total=rows_total, used=rows_used, seed=params.random_state, size=params.sample_rows)
    return AnalyticsResult(
        rows_total=rows_total,
        rows_used=rows_used,
        sampled=rows_used < rows_total,
        seed=params.random_state,
        params=params,
        target=target,
        sample_note=" ".join([sampled, *notes]),
        budget_notes=notes,
        parts=list(parts),
        **fields,
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value


def _describe(frame: pd.DataFrame, params: AnalyticsParams, _target: str | None) -> dict[str, Any]:
    bins = params.histogram_bins
    return {"columns": [column_stats(name=str(c), series=frame[c], bins=bins) for c in frame.columns]}


def _anomalies(frame: pd.DataFrame, params: AnalyticsParams, _target: str | None) -> dict[str, Any]:
    found, _ = detect(
        frame=frame, features=params.features, contamination=params.contamination, seed=params.random_state
    )
    return {"anomalies": found}


def _drivers(frame: pd.DataFrame, params: AnalyticsParams, target: str | None) -> dict[str, Any]:
    return {
        "drivers": driver_analysis(frame=frame, target=target, seed=params.random_state) if target else None
    }


def _segments(frame: pd.DataFrame, _params: AnalyticsParams, target: str | None) -> dict[str, Any]:
    return {"segments": compare_segments(frame=frame, target=target) if target else []}


def _time_series(frame: pd.DataFrame, params: AnalyticsParams, target: str | None) -> dict[str, Any]:
    series = time_series(frame=frame, target=target, column=params.date_column, freq=params.resample)
    return {"time_series": series}


_PARTS: dict[str, Callable[[pd.DataFrame, AnalyticsParams, str | None], dict[str, Any]]] = {
    "describe": _describe,
    "correlations": lambda frame, _p, _t: {"correlations": correlations(frame=frame)},
    "associations": lambda frame, _p, _t: {"associations": associations(frame=frame)},
    "clustering": lambda frame, p, _t: {"clustering": cluster(frame=frame, params=p)},
    "anomalies": _anomalies,
    "drivers": _drivers,
    "segments": _segments,
    "time_series": _time_series,
}


# ---- column statistics -------------------------------------------------------------------------


def column_stats(*, name: str, series: pd.Series, bins: int = 20) -> ColumnStats:
    """Descriptive statistics for one column, according to its kind (numbers get a histogram)."""
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
        values = as_float(present)
        return ColumnStats(**base, **_numeric_summary(values), **histogram(values, bins=bins))
    if kind == "datetime":
        return ColumnStats(**base, **_datetime_range(present))
    if kind == "boolean":
        share_true = present.astype(bool).mean() if len(present) else None
        return ColumnStats(**base, mean=finite(share_true), top=_top_values(present))
    return ColumnStats(**base, top=_top_values(present))


def histogram(values: pd.Series, *, bins: int) -> dict[str, Any]:
    """Equal-width histogram of the finite values: bins+1 edges and bins counts (empty when none)."""
    data = values.to_numpy(dtype="float64")
    data = data[np.isfinite(data)]
    if data.size == 0:
        return {}
    counts, edges = np.histogram(data, bins=bins)
    return {"histogram_edges": [float(e) for e in edges], "histogram_counts": [int(c) for c in counts]}


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
    """Pearson r and Spearman rho for every pair of non-constant numeric columns (pairwise complete)."""
    names = [c for c in numeric_columns(frame) if as_float(frame[c]).nunique() > 1]
    if len(names) < 2:
        return []
    values = pd.DataFrame({c: as_float(frame[c]) for c in names})
    matrix = values.corr(method="pearson", min_periods=3)
    ranks = values.replace([np.inf, -np.inf], np.nan).corr(method="spearman", min_periods=3)
    present = values.notna().to_numpy(dtype="int64")
    pair_counts = present.T @ present
    pairs = []
    for i, a in enumerate(names):
        for j in range(i + 1, len(names)):
            r = finite(matrix.iat[i, j])
            # NaN means too few rows, or one side constant on the rows the pair shares.
            if r is not None:
                rho = finite(ranks.iat[i, j])
                pairs.append(
                    CorrelationPair(a=a, b=names[j], pearson=r, n=int(pair_counts[i, j]), spearman=rho)
                )
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
    # k is searched on at most SEARCH_ROWS rows (seeded): the silhouette needs no more to rank k,
    # and seven KMeans fits on 200,000 rows would dominate stage 4. The chosen k is then fitted on all.
    search = scaled
    if len(scaled) > SEARCH_ROWS:
        pick = np.random.default_rng(params.random_state).choice(len(scaled), SEARCH_ROWS, replace=False)
        search = scaled[np.sort(pick)]
    best: tuple[int, np.ndarray, float | None, Literal["silhouette", "user"]] | None = None
    for k in range(2, min(params.max_clusters, len(search) - 1) + 1):
        labels = _kmeans(search, k, params.random_state)
        score = _silhouette(search, labels, params.random_state)
        # Ties keep the smaller k: the simpler description wins.
        if score is not None and (best is None or best[2] is None or score > best[2]):
            best = (k, labels, score, "silhouette")
    if best is not None and search is not scaled:
        best = (best[0], _kmeans(scaled, best[0], params.random_state), best[2], "silhouette")
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
