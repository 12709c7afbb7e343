"""Time series of the goal metric over a date column: resampling, trend, seasonality, change points.

- value: the mean target per period, or the number of rows per period when there is no target.
- freq: the user's, or by span: daily up to 120 days, weekly up to 3 years, monthly beyond.
- trend: least-squares slope per period with its p-value.
- seasonality: period 7 (daily), 52 (weekly) or 12 (monthly) when two full cycles exist; strength
  = max(0, 1 - var(remainder) / var(remainder + seasonal)) after removing a moving-average trend.
- change points: binary segmentation. In a segment, each split position is tried as a level step
  on top of a linear trend; the best one is kept when its F-test p-value, Bonferroni-corrected for
  the number of positions tried, is below `BREAK_ALPHA`. A smooth trend alone is not a break.
"""

import math

import numpy as np
import pandas as pd
from scipy import stats

from lockflow.common.errors import InvalidInput
from lockflow.common.models import ChangePoint, Resample, TimeSeries
from lockflow.datasets.columns import as_float, column_kind, finite

MIN_PERIODS = 8
MIN_SEGMENT = 3
MAX_BREAKS = 3
BREAK_ALPHA = 0.01
SEASON: dict[str, int] = {"D": 7, "W": 52, "MS": 12}


def date_column(frame: pd.DataFrame, chosen: str | None) -> str | None:
    """The user's date column (checked), else the first datetime column, else None."""
    datetimes = [str(c) for c in frame.columns if column_kind(frame[c]) == "datetime"]
    if chosen is None:
        return datetimes[0] if datetimes else None
    if chosen not in datetimes:
        raise InvalidInput(
            f"date_column `{chosen}` is not a date column of this data; "
            f"date columns: {', '.join(datetimes) or '(none)'}."
        )
    return chosen


def time_series(
    *, frame: pd.DataFrame, target: str | None, column: str | None, freq: Resample | None
) -> TimeSeries | None:
    """The resampled series with its trend, season and breaks; None without a usable date column."""
    column = date_column(frame, column)
    if column is None:
        return None
    dates = pd.to_datetime(frame[column])
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_convert(None)
    present = dates.notna()
    if present.sum() < MIN_PERIODS:
        return None
    freq = freq or _auto_freq(dates[present])
    indexed = pd.Series(
        as_float(frame[target])[present].to_numpy() if target else np.ones(int(present.sum())),
        index=pd.DatetimeIndex(dates[present]),
    ).sort_index()
    resampled = indexed.resample(freq)
    series = resampled.mean() if target else resampled.size().astype(float)
    if len(series) < MIN_PERIODS:
        return None
    values = series.to_numpy(dtype="float64")
    slope, slope_p = _trend(values)
    period, strength = _season(values, SEASON[freq])
    return TimeSeries(
        date_column=column,
        value=target or "rows",
        aggregate="mean" if target else "count",
        freq=freq,
        periods=[ts.date() for ts in series.index],
        values=[finite(v) for v in values],
        trend_slope=slope,
        trend_p_value=slope_p,
        season_period=period,
        season_strength=strength,
        change_points=change_points(values, [ts.date() for ts in series.index]),
    )


def _auto_freq(dates: pd.Series) -> Resample:
    span = (dates.max() - dates.min()).days
    return "D" if span <= 120 else "W" if span <= 3 * 365 else "MS"


def _trend(values: np.ndarray) -> tuple[float | None, float | None]:
    ok = np.isfinite(values)
    if ok.sum() < 3:
        return None, None
    fit = stats.linregress(np.arange(len(values))[ok], values[ok])
    return finite(fit.slope), finite(fit.pvalue)


def _season(values: np.ndarray, period: int) -> tuple[int | None, float | None]:
    if len(values) < 2 * period or not np.isfinite(values).all():
        return None, None
    series = pd.Series(values)
    trend = series.rolling(period, center=True, min_periods=period).mean()
    detrended = (series - trend).dropna()
    phase = detrended.index.to_numpy() % period
    seasonal = detrended.groupby(phase).transform("mean")
    remainder = detrended - seasonal
    total = float((remainder + seasonal).var())
    if total == 0:
        return period, None
    return period, max(0.0, 1.0 - float(remainder.var()) / total)


def change_points(values: np.ndarray, periods: list) -> list[ChangePoint]:  # type: ignore[type-arg]
    """Level shifts found by binary segmentation (see module doc), in date order."""
    ok = np.isfinite(values)
    y, when = values[ok], [p for p, keep in zip(periods, ok, strict=True) if keep]
    found: list[tuple[int, float]] = []
    pending = [(0, len(y))]
    while pending and len(found) < MAX_BREAKS:
        lo, hi = pending.pop(0)
        split = _best_split(y[lo:hi])
        if split is None:
            continue
        at, p = split
        found.append((lo + at, p))
        pending += [(lo, lo + at), (lo + at, hi)]
    return [_change_point(y, when, at, p) for at, p in sorted(found)]


def _best_split(y: np.ndarray) -> tuple[int, float] | None:
    n = len(y)
    if n < 2 * MIN_SEGMENT + 1:
        return None
    t = np.arange(n, dtype="float64")
    base = np.column_stack([np.ones(n), t])
    sse0 = _sse(base, y)
    if sse0 == 0:
        return None
    candidates = range(MIN_SEGMENT, n - MIN_SEGMENT + 1)
    sse = [(_sse(np.column_stack([base, (t >= at).astype(float)]), y), at) for at in candidates]
    sse1, at = min(sse)
    if sse1 <= 0:
        return at, 0.0
    f = (sse0 - sse1) / (sse1 / (n - 3))
    p = min(1.0, float(stats.f.sf(f, 1, n - 3)) * len(candidates))
    return (at, p) if p < BREAK_ALPHA else None


def _sse(design: np.ndarray, y: np.ndarray) -> float:
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - design @ coef
    return float(residual @ residual)


def _change_point(y: np.ndarray, when: list, at: int, p: float) -> ChangePoint:  # type: ignore[type-arg]
    before, after = float(y[:at].mean()), float(y[at:].mean())
    diff = (after - before) / abs(before) * 100 if before != 0 else None
    return ChangePoint(
        at=when[at],
        mean_before=before,
        mean_after=after,
        diff_pct=finite(diff),
        p_value=p if math.isfinite(p) else 1.0,
        periods_before=at,
        periods_after=len(y) - at,
    )
