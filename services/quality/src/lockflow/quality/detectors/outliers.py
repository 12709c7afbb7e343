"""Outliers: Tukey fences per column, and rows unusual in several columns at once (isolation forest)."""

from typing import Any

import numpy as np
import pandas as pd

# Imported with the module (about 1 s, mostly scipy.stats) so a worker pays it once at start,
# not inside the first assessment.
from sklearn.ensemble import IsolationForest

from lockflow.common.models import (
    Finding,
    Resolution,
    Severity,
)
from lockflow.quality import patterns
from lockflow.quality.detectors.base import (
    IFOREST_ROWS,
    IFOREST_SCORE,
    MIN_OUTLIER_VALUES,
    OUTLIER_FAR_SHARE,
    OUTLIER_TAIL_SHARE,
    PAIR_R,
    PAIR_Z,
    ROBUST_Z,
    SENTINEL_K,
    TUKEY_K,
    Context,
    disguised_sentinels,
    drop,
    finding,
    numeric_sample,
    pct,
    sample_method,
)
from lockflow.quality.profile import FEED_THREADS, Profile, feed_pool


def tukey(values: np.ndarray) -> tuple[float, float, float, float] | None:
    """(q1, q3, lower, upper) at 1.5 x IQR, or None if fewer than 8 values or IQR is 0."""
    if len(values) < MIN_OUTLIER_VALUES:
        return None
    q1, q3 = (float(q) for q in np.percentile(values, [25, 75]))
    iqr = q3 - q1
    if iqr == 0:
        return None
    return q1, q3, q1 - TUKEY_K * iqr, q3 + TUKEY_K * iqr


def outlier_severity(*, far: int, outside: int, values: int) -> Severity:
    """Values outside the fences are often real (a long tail, a second mode): never high. Medium only
    for a few values far out (beyond SENTINEL_K x IQR, at most OUTLIER_FAR_SHARE of the values) in a
    column whose tail is short (under OUTLIER_TAIL_SHARE outside the fences); otherwise low."""
    if far and far <= OUTLIER_FAR_SHARE * values and outside < OUTLIER_TAIL_SHARE * values:
        return "medium"
    return "low"


def detect_outliers(p: Profile, ctx: Context) -> list[Finding]:
    """Values outside the Tukey fences (1.5 x IQR), with the robust z-score (> 3.5) count alongside."""
    out = []
    for col in p.columns.values():
        if col.kind != "numeric" or patterns.looks_like_id(col.name):
            continue
        values = numeric_sample(p, col, disguised_sentinels(p, col))
        fences = tukey(values.to_numpy())
        if fences is None:
            continue
        q1, q3, lower, upper = fences
        outside = (values < lower) | (values > upper)
        in_sample = int(outside.sum())
        if in_sample == 0:
            continue
        median = float(values.median())
        mad = float((values - median).abs().median())
        robust = int((0.6745 * (values - median).abs() / mad > ROBUST_Z).sum()) if mad > 0 else 0
        far = int(((values < q1 - SENTINEL_K * (q3 - q1)) | (values > q3 + SENTINEL_K * (q3 - q1))).sum())
        present = col.rows - col.nulls.count
        count = in_sample if p.sample.exact else round(in_sample / len(values) * present)
        robust_count = robust if p.sample.exact else round(robust / len(values) * present)
        bounds = {"lower": lower, "upper": upper}
        out.append(
            finding(
                id=f"outliers:{col.name}",
                category="outliers",
                dimension="validity",
                columns=[col.name],
                count=count,
                rows=col.rows,
                sample_rows=[int(i) for i in values.index[outside.to_numpy()]],
                explanation=f"Column '{col.name}' has {count} values ({pct(count, col.rows)} of "
                f"{col.rows} rows) "
                f"outside the Tukey fences [{lower:.4g}, {upper:.4g}], i.e. more than {TUKEY_K} x IQR "
                f"beyond the "
                f"quartiles {q1:.4g} and {q3:.4g}; {robust_count} have a robust z-score above {ROBUST_Z} "
                f"(median {median:.4g}, MAD {mad:.4g}).",
                exact=p.sample.exact,
                method=sample_method(p, "quartiles, MAD and counts"),
                level=outlier_severity(far=far, outside=in_sample, values=len(values)),
                details={"robust_z_count": robust_count, "median": median, "mad": mad, **bounds},
                resolutions=[
                    Resolution(
                        strategy="cap_to_fences",
                        params=bounds,
                        rationale=f"clips the {count} values to [{lower:.4g}, {upper:.4g}] and keeps "
                        f"every row",
                    ),
                    Resolution(
                        strategy="winsorize",
                        params={"lower_quantile": 0.01, "upper_quantile": 0.99},
                        rationale="clips to the 1st and 99th percentiles: gentler than the fences",
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
    return out


def multivariate_scores(
    frame: pd.DataFrame, details: dict[str, Any] | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Rows unusual in combination: a broken strong linear relation between two columns (robust z of the
    regression residual > PAIR_Z), or an IsolationForest anomaly score below IFOREST_SCORE; rows already
    beyond 2 x IQR on one column are left to the univariate detector. Returns (mask, parameters); given
    parameters (from a finding's details) it reuses them instead of fitting the pairs again."""
    median, iqr = frame.median(), (frame.quantile(0.75) - frame.quantile(0.25)).replace(0, np.nan)
    usable = [c for c in frame.columns if not np.isnan(iqr[c])]
    scaled = (frame[usable] - median[usable]) / iqr[usable]
    univariate = ((scaled < -2.0) | (scaled > 2.0)).any(axis=1).to_numpy()
    pairs = details["pairs"] if details else _strong_pairs(frame[usable])
    broken = np.zeros(len(frame), dtype=bool)
    for a, b, slope, intercept, center, spread in pairs:
        residual = frame[b].to_numpy() - (slope * frame[a].to_numpy() + intercept)
        broken |= np.abs(residual - center) / spread > PAIR_Z
    model = IsolationForest(n_estimators=50, random_state=0).fit(scaled.iloc[:IFOREST_ROWS].to_numpy())
    isolated = _scores(model, scaled.to_numpy()) < IFOREST_SCORE
    return (broken | isolated) & ~univariate, {"pairs": pairs, "columns": usable}


def _scores(model: IsolationForest, rows: np.ndarray) -> np.ndarray:
    """The model's anomaly scores, the rows split over the quality thread pool (tree walks drop the GIL)."""
    parts = np.array_split(rows, FEED_THREADS) if len(rows) >= 10_000 else [rows]
    return np.concatenate(list(feed_pool().map(model.score_samples, parts)))


def _strong_pairs(frame: pd.DataFrame) -> list[list[Any]]:
    """[a, b, slope, intercept, residual median, residual robust sd] for |Pearson r| >= PAIR_R."""
    corr = frame.corr().abs().to_numpy()
    names = list(frame.columns)
    out: list[list[Any]] = []
    for i, a in enumerate(names):
        for j in range(i + 1, len(names)):
            if corr[i, j] >= PAIR_R:
                b = names[j]
                slope, intercept = np.polyfit(frame[a].to_numpy(), frame[b].to_numpy(), 1)
                residual = frame[b].to_numpy() - (slope * frame[a].to_numpy() + intercept)
                center = float(np.median(residual))
                spread = float(np.median(np.abs(residual - center)) * 1.4826)
                if spread > 0:
                    out.append([a, b, float(slope), float(intercept), center, spread])
    return out


def detect_multivariate_outliers(p: Profile, ctx: Context) -> list[Finding]:
    """Rows unusual in combination (broken strong relations; IsolationForest), on the row sample."""
    names = [n for n, c in p.columns.items() if c.kind == "numeric" and not patterns.looks_like_id(n)]
    if len(names) < 2:
        return []
    frame = p.sample.frame()[names].apply(pd.to_numeric, errors="coerce").astype("float64").dropna()
    for name in names:
        frame = frame[~frame[name].isin(disguised_sentinels(p, p.columns[name]))]
    if len(frame) < 500:
        return []
    unusual, params = multivariate_scores(frame)
    in_sample = int(unusual.sum())
    if in_sample == 0:
        return []
    count = in_sample if p.sample.exact else round(in_sample / len(frame) * p.rows)
    relations = ", ".join(f"{b} ~ {a}" for a, b, *_ in params["pairs"]) or "none"
    return [
        finding(
            id="multivariate_outliers",
            category="multivariate_outliers",
            dimension="validity",
            columns=params["columns"],
            count=count,
            rows=p.rows,
            sample_rows=[int(i) for i in frame.index[unusual]],
            explanation=f"{'About ' if not p.sample.exact else ''}{count} rows are unusual in combination "
            f"although each value is within its column's usual range "
            f"(strong relations checked: {relations}).",
            exact=False,
            method=f"residual robust z > {PAIR_Z} for column pairs with |r| >= {PAIR_R}, or IsolationForest "
            f"(50 trees, seed 0) score < {IFOREST_SCORE}, on {len(frame)} "
            + ("rows (all)" if p.sample.exact else "sampled rows; count scaled to all rows"),
            details={"score_threshold": IFOREST_SCORE, "sample_rows_used": len(frame), **params},
            resolutions=[
                Resolution(
                    strategy="flag_only",
                    params={"column": "is_multivariate_outlier"},
                    rationale="marks the unusual rows so analysis can include or exclude them",
                ),
                drop(count, p.rows, "that are unusual in combination"),
            ],
        )
    ]
