"""Anomaly detection: IsolationForest on the standardised numeric features.

Missing values are put at the feature's median (z = 0) so a gap alone is not an anomaly. The
`contamination` parameter is the share of rows flagged. Each flagged row names the feature
furthest from typical (largest |z|); `feature_shift` is the mean |z| of flagged rows minus that
of the others, per feature, so the features that make rows unusual stand out.
"""

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest

from lockflow.analytics.columns import as_float, numeric_columns
from lockflow.common.models import Anomalies, AnomalyRow

TOP_ROWS = 20
N_TREES = 100


def anomaly_features(frame: pd.DataFrame, features: list[str] | None) -> list[str]:
    """The user's features that are numeric, else every non-constant numeric column."""
    numeric = numeric_columns(frame)
    chosen = [c for c in (features or numeric) if c in numeric]
    return [c for c in chosen if as_float(frame[c]).replace([np.inf, -np.inf], np.nan).nunique() > 1]


def detect(
    *, frame: pd.DataFrame, features: list[str] | None, contamination: float, seed: int
) -> tuple[Anomalies | None, pd.Series]:
    """The anomaly summary and a boolean mask over the frame's rows (True = anomalous)."""
    columns = anomaly_features(frame, features)
    if not columns or len(frame) < 20:
        return None, pd.Series(False, index=frame.index)
    z = _standardised(frame, columns)
    model = IsolationForest(n_estimators=N_TREES, contamination=contamination, random_state=seed)
    flagged = model.fit_predict(z.to_numpy()) == -1
    scores = -model.score_samples(z.to_numpy())  # higher = more anomalous
    mask = pd.Series(flagged, index=frame.index)
    threshold = float(-model.offset_)
    return _summary(z, mask, scores, columns, contamination, threshold), mask


def _standardised(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    data = pd.DataFrame({c: as_float(frame[c]) for c in columns}, index=frame.index)
    data = data.replace([np.inf, -np.inf], np.nan)
    z = (data - data.mean()) / data.std(ddof=0)
    return z.fillna(0.0)


def _summary(
    z: pd.DataFrame,
    mask: pd.Series,
    scores: np.ndarray,
    columns: list[str],
    contamination: float,
    threshold: float,
) -> Anomalies:
    flagged = np.flatnonzero(mask.to_numpy())
    order = flagged[np.argsort(-scores[flagged], kind="stable")][:TOP_ROWS]
    top = []
    for position in order:
        row = z.iloc[position]
        feature = str(row.abs().idxmax())
        top.append(
            AnomalyRow(
                row=int(z.index[position]),
                score=float(scores[position]),
                feature=feature,
                z=float(row[feature]),
            )
        )
    shift = {}
    if 0 < len(flagged) < len(z):
        shift = {c: float(z.loc[mask, c].abs().mean() - z.loc[~mask, c].abs().mean()) for c in columns}
    return Anomalies(
        features=columns,
        contamination=contamination,
        rows_scored=len(z),
        count=len(flagged),
        share=len(flagged) / len(z),
        threshold=threshold,
        top=top,
        feature_shift=dict(sorted(shift.items(), key=lambda kv: -kv[1])),
    )
