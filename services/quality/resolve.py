"""Stage 3 resolution: apply the fixes a person chose at gate 2 to a copy of the frame.

Choices are checked in full before anything is applied, then applied in a stable order that
does not depend on the order they were given in: type coercions first (so later steps see
numbers), then imputations, caps and flags, then row drops, and duplicate removal last (so
rows that only became identical after fixing are removed too).
"""

from collections.abc import Callable
from dataclasses import dataclass
from numbers import Real
from typing import Any

import pandas as pd

from lockflow.common.errors import InvalidInput
from lockflow.common.models import AppliedResolution, Finding, ResolutionChoice
from lockflow.quality.detect import is_numeric, missing_mask, outside_fences, unparseable_mask

STRATEGIES: dict[str, str] = {
    "impute_median": "fill the missing values with the column's median",
    "impute_mean": "fill the missing values with the column's mean",
    "impute_mode": "fill the missing values with the column's most frequent value",
    "fill_constant": "fill the missing values with a constant (params: value)",
    "drop_rows": "remove the rows that have this problem",
    "drop_duplicates_keep_first": "remove repeated rows, keeping the first occurrence",
    "drop_duplicates_keep_last": "remove repeated rows, keeping the last occurrence",
    "coerce_numeric": "convert the column to numbers; values that are not numbers become missing",
    "cap_to_fences": "clip values to the outlier fences (params: lower, upper)",
    "flag_only": "keep the values and add a boolean column marking the outliers (params: column)",
}

# Phase of each strategy in the stable application order (see the module docstring).
PHASES: dict[str, int] = {
    "coerce_numeric": 0,
    "impute_median": 1,
    "impute_mean": 1,
    "impute_mode": 1,
    "fill_constant": 1,
    "cap_to_fences": 1,
    "flag_only": 1,
    "drop_rows": 2,
    "drop_duplicates_keep_first": 3,
    "drop_duplicates_keep_last": 3,
}

# Params a choice may set beyond the finding's defaults.
EXTRA_PARAMS: dict[str, set[str]] = {"flag_only": {"column"}}


@dataclass(frozen=True)
class Applied:
    """The fixed frame (a new object) and what each resolution did, in application order."""

    frame: pd.DataFrame
    applied: list[AppliedResolution]


@dataclass(frozen=True)
class _Step:
    order: int
    finding: Finding
    strategy: str
    params: dict[str, Any]


def apply_resolutions(
    *, frame: pd.DataFrame, findings: list[Finding], choices: list[ResolutionChoice]
) -> Applied:
    """Apply `choices` to a copy of `frame`; a choice that cannot be applied raises InvalidInput."""
    steps = sorted(_plan(frame, findings, choices), key=lambda s: (PHASES[s.strategy], s.order))
    result = frame.copy(deep=True)
    applied = []
    for step in steps:
        result, record = _APPLY[step.strategy](result, step)
        applied.append(record)
    return Applied(frame=result.reset_index(drop=True), applied=applied)


def _plan(frame: pd.DataFrame, findings: list[Finding], choices: list[ResolutionChoice]) -> list[_Step]:
    """Check every choice against its finding and merge its params over the defaults."""
    by_id = {finding.id: (i, finding) for i, finding in enumerate(findings)}
    seen: set[str] = set()
    steps = []
    for choice in choices:
        if choice.finding_id not in by_id:
            known = ", ".join(sorted(by_id)) or "none"
            raise InvalidInput(f"unknown finding '{choice.finding_id}' (known findings: {known})")
        if choice.finding_id in seen:
            raise InvalidInput(f"finding '{choice.finding_id}' was given more than one resolution")
        seen.add(choice.finding_id)
        order, finding = by_id[choice.finding_id]
        if choice.strategy not in STRATEGIES:
            raise InvalidInput(
                f"unknown strategy '{choice.strategy}' (known strategies: {', '.join(sorted(STRATEGIES))})"
            )
        offered = {r.strategy: r for r in finding.resolutions}
        if choice.strategy not in offered:
            raise InvalidInput(
                f"strategy '{choice.strategy}' is not offered for finding '{finding.id}' "
                f"(choose one of: {', '.join(offered)})"
            )
        defaults = offered[choice.strategy].params
        allowed = set(defaults) | EXTRA_PARAMS.get(choice.strategy, set())
        unknown = sorted(set(choice.params) - allowed)
        if unknown:
            raise InvalidInput(
                f"strategy '{choice.strategy}' for finding '{finding.id}' does not take "
                f"{', '.join(unknown)} (it takes: {', '.join(sorted(allowed)) or 'no parameters'})"
            )
        missing_columns = [c for c in finding.columns if c not in frame.columns]
        if missing_columns:
            raise InvalidInput(
                f"finding '{finding.id}' names columns not in the data: {', '.join(missing_columns)}"
            )
        steps.append(_Step(order, finding, choice.strategy, {**defaults, **choice.params}))
    return steps


def _record(step: _Step, note: str, *, rows_removed: int = 0, cells_changed: int = 0) -> AppliedResolution:
    return AppliedResolution(
        finding_id=step.finding.id,
        strategy=step.strategy,
        rows_removed=rows_removed,
        cells_changed=cells_changed,
        note=note,
    )


def _column(step: _Step) -> str:
    return step.finding.columns[0]


def _coerce_numeric(frame: pd.DataFrame, step: _Step) -> tuple[pd.DataFrame, AppliedResolution]:
    """Make the column numeric; unparseable values become missing."""
    column = _column(step)
    series = frame[column]
    lost = int(unparseable_mask(series).sum())
    frame[column] = pd.to_numeric(series.where(~missing_mask(series)), errors="coerce")
    note = f"converted '{column}' to numbers; {lost} values that were not numbers became missing"
    return frame, _record(step, note, cells_changed=lost)


def _fill(frame: pd.DataFrame, step: _Step, value: Any, how: str) -> tuple[pd.DataFrame, AppliedResolution]:
    """Put `value` into every missing cell of the step's column."""
    column = _column(step)
    series = frame[column]
    mask = missing_mask(series)
    if is_numeric(series) and (not isinstance(value, Real) or isinstance(value, bool)):
        raise InvalidInput(
            f"column '{column}' is numeric; {step.strategy} for '{step.finding.id}' needs a number, "
            f"not {value!r}"
        )
    if pd.api.types.is_integer_dtype(series) and float(value) != int(value):
        # A fractional mean or median cannot live in an integer column.
        series = series.astype("float64")
    filled = series.where(~mask, value)
    frame[column] = filled
    note = f"filled {int(mask.sum())} missing values in '{column}' with {how} '{value}'"
    return frame, _record(step, note, cells_changed=int(mask.sum()))


def _numeric_or_fail(frame: pd.DataFrame, step: _Step) -> pd.Series:
    series = frame[_column(step)]
    if not is_numeric(series):
        raise InvalidInput(
            f"{step.strategy} needs a numeric column but '{_column(step)}' holds text; "
            "choose coerce_numeric for its type mismatch first"
        )
    return series


def _impute_median(frame: pd.DataFrame, step: _Step) -> tuple[pd.DataFrame, AppliedResolution]:
    """Fill with the median of the present values."""
    series = _numeric_or_fail(frame, step)
    return _fill(frame, step, _present_stat(series, step, "median"), "the median")


def _impute_mean(frame: pd.DataFrame, step: _Step) -> tuple[pd.DataFrame, AppliedResolution]:
    """Fill with the mean of the present values."""
    series = _numeric_or_fail(frame, step)
    return _fill(frame, step, _present_stat(series, step, "mean"), "the mean")


def _present_stat(series: pd.Series, step: _Step, stat: str) -> float:
    present = series[~missing_mask(series)].astype(float)
    if present.empty:
        raise InvalidInput(f"column '{_column(step)}' has no values to take the {stat} of")
    return float(present.median() if stat == "median" else present.mean())


def _impute_mode(frame: pd.DataFrame, step: _Step) -> tuple[pd.DataFrame, AppliedResolution]:
    """Fill with the most frequent present value (the smallest one on ties)."""
    series = frame[_column(step)]
    present = series[~missing_mask(series)]
    if present.empty:
        raise InvalidInput(f"column '{_column(step)}' has no values to take the mode of")
    value = present.mode().iloc[0]
    if is_numeric(series):
        value = float(value)
    return _fill(frame, step, value, "the mode")


def _fill_constant(frame: pd.DataFrame, step: _Step) -> tuple[pd.DataFrame, AppliedResolution]:
    """Fill with the constant in params['value']."""
    if "value" not in step.params:
        raise InvalidInput(f"fill_constant for '{step.finding.id}' needs a 'value' parameter")
    return _fill(frame, step, step.params["value"], "the constant")


def _fences(step: _Step) -> tuple[float, float]:
    """The (lower, upper) params, checked."""
    bounds = []
    for name in ("lower", "upper"):
        bound = step.params.get(name)
        if not isinstance(bound, Real) or isinstance(bound, bool):
            raise InvalidInput(f"{step.strategy} for '{step.finding.id}' needs a number as '{name}'")
        bounds.append(float(bound))
    lower, upper = bounds
    if lower > upper:
        raise InvalidInput(
            f"{step.strategy} for '{step.finding.id}': lower ({lower:g}) is above upper ({upper:g})"
        )
    return lower, upper


def _cap_to_fences(frame: pd.DataFrame, step: _Step) -> tuple[pd.DataFrame, AppliedResolution]:
    """Clip values outside [lower, upper] to the nearest fence."""
    lower, upper = _fences(step)
    column = _column(step)
    series = _numeric_or_fail(frame, step)
    changed = int(outside_fences(series, lower, upper).sum())
    frame[column] = series.clip(lower, upper)
    note = f"capped {changed} values in '{column}' to [{lower:.4g}, {upper:.4g}]"
    return frame, _record(step, note, cells_changed=changed)


def _flag_only(frame: pd.DataFrame, step: _Step) -> tuple[pd.DataFrame, AppliedResolution]:
    """Add a boolean column that is True where the value is outside the fences."""
    lower, upper = _fences(step)
    column = _column(step)
    flag = str(step.params.get("column", f"{column}_is_outlier"))
    if flag in frame.columns:
        raise InvalidInput(f"flag_only for '{step.finding.id}': column '{flag}' already exists")
    mask = outside_fences(_numeric_or_fail(frame, step), lower, upper)
    frame[flag] = mask
    note = f"kept the values; added column '{flag}' marking {int(mask.sum())} outliers in '{column}'"
    return frame, _record(step, note)


def _drop_rows(frame: pd.DataFrame, step: _Step) -> tuple[pd.DataFrame, AppliedResolution]:
    """Remove the rows that currently have this finding's problem."""
    column = _column(step)
    series = frame[column]
    category = step.finding.category
    if category == "missing_values":
        mask, what = missing_mask(series), "a missing value"
    elif category == "type_mismatch":
        mask, what = unparseable_mask(series), "a value that is not a number"
    elif category == "outliers":
        lower, upper = _fences(step)
        mask, what = outside_fences(_numeric_or_fail(frame, step), lower, upper), "an outlier"
    else:
        raise InvalidInput(f"drop_rows does not apply to a {category} finding")
    removed = int(mask.sum())
    note = f"removed {removed} rows with {what} in '{column}'"
    return frame[~mask], _record(step, note, rows_removed=removed)


def _drop_duplicates(frame: pd.DataFrame, step: _Step) -> tuple[pd.DataFrame, AppliedResolution]:
    """Remove exact repeats over the finding's columns, keeping the first or the last."""
    keep = "first" if step.strategy == "drop_duplicates_keep_first" else "last"
    result = frame.drop_duplicates(subset=step.finding.columns, keep=keep)
    removed = len(frame) - len(result)
    note = f"removed {removed} repeated rows, keeping the {keep} occurrence"
    return result, _record(step, note, rows_removed=removed)


_APPLY: dict[str, Callable[[pd.DataFrame, _Step], tuple[pd.DataFrame, AppliedResolution]]] = {
    "coerce_numeric": _coerce_numeric,
    "impute_median": _impute_median,
    "impute_mean": _impute_mean,
    "impute_mode": _impute_mode,
    "fill_constant": _fill_constant,
    "cap_to_fences": _cap_to_fences,
    "flag_only": _flag_only,
    "drop_rows": _drop_rows,
    "drop_duplicates_keep_first": _drop_duplicates,
    "drop_duplicates_keep_last": _drop_duplicates,
}
