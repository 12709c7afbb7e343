"""Stage 5 insights beyond drivers and segments: strong correlations, trend breaks, anomalies and
concentration (Pareto). Each builder returns `Insight`s with an effect on the r scale for ranking.

- correlation: a pair of numeric columns other than the target with |r| >= `min_abs_correlation`;
  p from the t distribution of r, Holm-corrected over every such pair tested; relevance 0.5
  (it does not involve the goal; it warns that two levers move together).
- trend_break: a change point of stage 4's time series of the target; its p-value is already
  Bonferroni-corrected over the split positions tried; effect = the level shift in sds of the
  period values (d); relevance 1.0 when the series is the goal metric.
- anomaly: stage 4's IsolationForest rows; no test (the contamination is a chosen share), so it is
  never "significant"; effect = the largest feature shift (in sds) of flagged vs normal rows, as d;
  relevance 1.0 when the goal target is among the three most shifted features, else 0.7.
- concentration: share of the target's total held by the top 20% of rows, with a percentile
  bootstrap 95% interval (`BOOTSTRAP` resamples of at most `BOOTSTRAP_ROWS` rows); "significant"
  when the interval's low end is above 50% (a Pareto-like concentration); effect =
  (share - 0.2) / 0.8; relevance 0.6. Only for a non-negative target with a positive total.
"""

import math

import numpy as np
import pandas as pd
from scipy import stats

from lockflow.common.models import AnalyticsResult, Direction, Insight
from lockflow.datasets.columns import as_float
from lockflow.stats.effects import r_from_d
from lockflow.stats.pvalues import holm

CORRELATION_RELEVANCE = 0.5
ANOMALY_RELEVANCE = 0.7
CONCENTRATION_RELEVANCE = 0.6
CONCENTRATION_NOTABLE = 0.5
TOP_SHARE = 0.2
BOOTSTRAP = 200
BOOTSTRAP_ROWS = 20_000
NOT_SIGNIFICANT_WEIGHT = 0.3


def _score(effect_r: float, relevance: float, significant: bool) -> float:
    return abs(effect_r) * relevance * (1.0 if significant else NOT_SIGNIFICANT_WEIGHT)


def correlation_insights(
    *, analytics: AnalyticsResult, target: str, threshold: float, alpha: float
) -> list[Insight]:
    """Strong correlations between two columns that are not the target."""
    pairs = [
        c
        for c in analytics.correlations
        if target not in (c.a, c.b) and abs(c.pearson) >= threshold and c.n > 3
    ]
    p_values = [_p_of_r(c.pearson, c.n) for c in pairs]
    out = []
    for pair, p, p_holm in zip(pairs, p_values, holm(p_values), strict=True):
        significant = p_holm < alpha
        rho = f", Spearman {pair.spearman:.2f}" if pair.spearman is not None else ""
        numbers = {"r": pair.pearson, "n": float(pair.n), "p_value": p, "p_holm": p_holm}
        if pair.spearman is not None:
            numbers["spearman"] = pair.spearman
        out.append(
            Insight(
                id=f"correlation:{pair.a}~{pair.b}",
                kind="correlation",
                statement=(
                    f"`{pair.a}` and `{pair.b}` move together (r = {pair.pearson:.2f}{rho}, n = {pair.n}): "
                    "changing one likely changes the other"
                ),
                columns=[pair.a, pair.b],
                numbers=numbers,
                effect_size=pair.pearson,
                p_value=p,
                significant=significant,
                relevance=CORRELATION_RELEVANCE,
                score=_score(pair.pearson, CORRELATION_RELEVANCE, significant),
                confidence=1.0 - p_holm,
                method="Pearson r, t test, Holm-corrected over strong pairs",
            )
        )
    return out


def _p_of_r(r: float, n: int) -> float:
    if abs(r) >= 1:
        return 0.0
    t = r * math.sqrt((n - 2) / (1 - r * r))
    return float(2 * stats.t.sf(abs(t), n - 2))


def trend_break_insights(
    *, analytics: AnalyticsResult, target: str, direction: Direction, alpha: float
) -> list[Insight]:
    """Level shifts in the goal metric over time."""
    series = analytics.time_series
    if series is None or series.value != target:
        return []
    values = np.array([v for v in series.values if v is not None], dtype="float64")
    spread = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    out = []
    for cp in series.change_points:
        d = (cp.mean_after - cp.mean_before) / spread if spread > 0 else 0.0
        significant = cp.p_value < alpha
        worse = (cp.mean_after < cp.mean_before) == (direction == "increase")
        way = "dropped" if cp.mean_after < cp.mean_before else "rose"
        diff = f" ({cp.diff_pct:+.1f}%)" if cp.diff_pct is not None else ""
        numbers = {
            "mean_before": cp.mean_before,
            "mean_after": cp.mean_after,
            "periods_before": float(cp.periods_before),
            "periods_after": float(cp.periods_after),
            "p_value": cp.p_value,
            "d": d,
        }
        if cp.diff_pct is not None:
            numbers["diff_pct"] = cp.diff_pct
        relevance = 1.0 if worse else 0.8
        out.append(
            Insight(
                id=f"trend_break:{cp.at.isoformat()}",
                kind="trend_break",
                statement=(
                    f"`{target}` {way} from {cp.mean_before:.4g} to {cp.mean_after:.4g}{diff} per "
                    f"{_period_word(series.freq)} from {cp.at.isoformat()} on (p = {cp.p_value:.2g}, "
                    "corrected for the dates tried)"
                ),
                columns=[series.date_column, target],
                numbers=numbers,
                effect_size=d,
                p_value=cp.p_value,
                significant=significant,
                relevance=relevance,
                score=_score(r_from_d(d), relevance, significant),
                confidence=1.0 - cp.p_value,
                method="step + linear trend F test, Bonferroni over split dates",
            )
        )
    return out


def _period_word(freq: str) -> str:
    return {"D": "day", "W": "week", "MS": "month"}.get(freq, "period")


def anomaly_insight(*, analytics: AnalyticsResult, target: str) -> Insight | None:
    """The rows IsolationForest flags, and which features make them unusual."""
    found = analytics.anomalies
    if found is None or found.count == 0 or not found.feature_shift:
        return None
    shifted = list(found.feature_shift)
    lead, shift = shifted[0], found.feature_shift[shifted[0]]
    relevance = 1.0 if target in shifted[:3] else ANOMALY_RELEVANCE
    rows = ", ".join(str(r.row) for r in found.top[:5])
    return Insight(
        id="anomaly:rows",
        kind="anomaly",
        statement=(
            f"{found.count} rows ({found.share:.1%} of {found.rows_scored} scored) are anomalous; they "
            f"stand out most on `{lead}` (+{shift:.1f} sd on average); most unusual rows: {rows}"
        ),
        columns=shifted[:3],
        numbers={
            "count": float(found.count),
            "share": found.share,
            "rows_scored": float(found.rows_scored),
            "contamination": found.contamination,
            "top_shift_sd": shift,
        },
        effect_size=shift,
        p_value=None,
        significant=False,
        relevance=relevance,
        score=_score(r_from_d(shift), relevance, False),
        method="IsolationForest; share flagged = contamination",
    )


def concentration_insight(*, frame: pd.DataFrame, target: str, seed: int) -> Insight | None:
    """How much of the target's total the top 20% of rows hold, with a bootstrap interval."""
    y = as_float(frame[target]).replace([np.inf, -np.inf], np.nan).dropna().to_numpy()
    if len(y) < 20 or (y < 0).any() or y.sum() <= 0:
        return None
    share = top_share(y)
    rng = np.random.default_rng(seed)
    base = rng.choice(y, size=BOOTSTRAP_ROWS, replace=False) if len(y) > BOOTSTRAP_ROWS else y
    boot = [top_share(rng.choice(base, size=len(base), replace=True)) for _ in range(BOOTSTRAP)]
    low, high = (float(v) for v in np.percentile(boot, [2.5, 97.5]))
    significant = low > CONCENTRATION_NOTABLE
    effect = (share - TOP_SHARE) / (1 - TOP_SHARE)
    return Insight(
        id=f"concentration:{target}",
        kind="concentration",
        statement=(
            f"The top 20% of rows hold {share:.0%} of total `{target}` (95% CI {low:.0%}-{high:.0%})"
            + ("" if significant else "; not a Pareto-like concentration")
        ),
        columns=[target],
        numbers={"top20_share": share, "n": float(len(y)), "total": float(y.sum())},
        effect_size=effect,
        p_value=None,
        significant=significant,
        relevance=CONCENTRATION_RELEVANCE,
        score=_score(effect, CONCENTRATION_RELEVANCE, significant),
        ci_low=low,
        ci_high=high,
        ci_of="share of the total held by the top 20% of rows",
        confidence=0.95 if significant else None,
        method=f"percentile bootstrap, {BOOTSTRAP} resamples",
    )


def top_share(values: np.ndarray) -> float:
    """Share of the sum held by the largest 20% of values (at least one value)."""
    k = max(1, math.ceil(len(values) * TOP_SHARE))
    top = np.partition(values, len(values) - k)[len(values) - k :]
    return float(top.sum() / values.sum())
