"""Drivers of a target: mutual information and a gradient-boosted tree's permutation importance.

Candidates are the other numeric, boolean and low-cardinality categorical columns (datetimes and
id-like text are left out). At most `DRIVER_ROWS` rows with a target are used (a seeded sample,
stated in `rows_used`). The model is fitted on 75% of them; permutation importance is the mean
drop in R^2 on the held-out 25% when a column is shuffled (`N_REPEATS` times). Mutual information
(k-nearest-neighbour estimate, nats) is computed on at most `MI_ROWS` of them, gaps at the median.
Drivers are ranked by permutation importance, ties by mutual information.
"""

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.feature_selection import mutual_info_regression
from sklearn.inspection import permutation_importance
from sklearn.model_selection import train_test_split

from lockflow.analytics.associations import categorical_columns
from lockflow.common.models import DriverAnalysis, DriverImportance
from lockflow.datasets.columns import as_float, finite, numeric_columns

DRIVER_ROWS = 20_000
MI_ROWS = 5_000
N_REPEATS = 5
MIN_ROWS = 40


def driver_analysis(*, frame: pd.DataFrame, target: str, seed: int) -> DriverAnalysis | None:
    """Candidates ranked by how much the model loses without them; None with too few rows."""
    y = as_float(frame[target]).replace([np.inf, -np.inf], np.nan)
    rows = frame[y.notna()]
    if len(rows) > DRIVER_ROWS:
        rows = rows.sample(n=DRIVER_ROWS, random_state=seed)
    numeric = [c for c in numeric_columns(rows) if c != target and as_float(rows[c]).nunique() > 1]
    categorical = [c for c in categorical_columns(rows) if c != target]
    columns = numeric + categorical
    if len(rows) < MIN_ROWS or not columns:
        return None
    x = _encoded(rows, numeric, categorical)
    target_values = as_float(rows[target]).to_numpy()
    is_cat = np.array([c in categorical for c in columns])
    mi = _mutual_info(x, target_values, is_cat, seed)
    importance, spread, r2 = _permutation(x, target_values, is_cat, seed)
    ranked = sorted(range(len(columns)), key=lambda i: (-importance[i], -mi[i], columns[i]))
    return DriverAnalysis(
        target=target,
        model="HistGradientBoostingRegressor",
        rows_used=len(rows),
        holdout_r2=finite(r2),
        drivers=[
            DriverImportance(
                column=columns[i],
                mutual_info=float(mi[i]),
                permutation_importance=float(importance[i]),
                permutation_std=float(spread[i]),
                rank=rank,
            )
            for rank, i in enumerate(ranked, start=1)
        ],
    )


def _encoded(rows: pd.DataFrame, numeric: list[str], categorical: list[str]) -> np.ndarray:
    parts = {c: as_float(rows[c]).replace([np.inf, -np.inf], np.nan) for c in numeric}
    for c in categorical:
        codes = pd.Categorical(rows[c].astype("string")).codes.astype("float64")
        parts[c] = pd.Series(np.where(codes < 0, np.nan, codes), index=rows.index)
    return pd.DataFrame(parts)[numeric + categorical].to_numpy(dtype="float64")


def _mutual_info(x: np.ndarray, y: np.ndarray, is_cat: np.ndarray, seed: int) -> np.ndarray:
    # kNN mutual information grows fast with rows; a seeded MI_ROWS of them estimate it well.
    if len(x) > MI_ROWS:
        keep = np.sort(np.random.default_rng(seed).choice(len(x), MI_ROWS, replace=False))
        x, y = x[keep], y[keep]
    filled = x.copy()
    medians = np.nanmedian(filled, axis=0)
    gaps = np.isnan(filled)
    filled[gaps] = np.take(medians, np.nonzero(gaps)[1])
    return np.asarray(mutual_info_regression(filled, y, discrete_features=is_cat, random_state=seed))


def _permutation(
    x: np.ndarray, y: np.ndarray, is_cat: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray, float]:
    x_fit, x_test, y_fit, y_test = train_test_split(x, y, test_size=0.25, random_state=seed)
    model = HistGradientBoostingRegressor(max_iter=100, random_state=seed, categorical_features=is_cat)
    model.fit(x_fit, y_fit)
    result = permutation_importance(model, x_test, y_test, n_repeats=N_REPEATS, random_state=seed)
    return (
        np.asarray(result.importances_mean),
        np.asarray(result.importances_std),
        float(model.score(x_test, y_test)),
    )
