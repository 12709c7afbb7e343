"""Stage 3 resolution: apply the fixes a person chose at gate 2 to a copy of the frame.

Choices are checked in full before anything is applied, then applied in a stable order that
does not depend on the order they were given in: text repairs first (on the text as found),
then type conversions (so later steps see numbers and dates), then blanking, then imputations,
caps, masks and flags, then row drops, duplicate removal (so rows that only became identical
after fixing are removed too) and column drops last.

Steps that act on the rows with a finding's problem (blank, drop, flag, mask) act on the rows
that had it in the data as found, so one fix never picks up another's output (a masked phone
number is not a malformed one; a gap filled with 'unknown' is not a bad email). Every other
step works on the column as the earlier steps left it: any Python values in an object column,
numbers after a conversion, an all-missing or removed column. A step with nothing left to do
says so in its note instead of failing; combinations that cannot mean anything are refused
when the choice is made (`lockflow.common.pipeline.check_quality_choices`).
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lockflow.common.errors import InvalidInput
from lockflow.common.kinds import STRATEGIES
from lockflow.common.models import AppliedResolution, Finding, ResolutionChoice
from lockflow.common.pipeline import QUALITY_EXTRA_PARAMS
from lockflow.quality import patterns
from lockflow.quality.detect import is_numeric, is_text, missing_mask, outside_fences
from lockflow.quality.masks import problem_mask, text_array

# Phase of each strategy in the stable application order (see the module docstring).
PHASES: dict[str, int] = {
    "repair_text": 0,
    "trim_whitespace": 0,
    "normalise_case": 0,
    "merge_categories": 0,
    "coerce_numeric": 1,
    "coerce_datetime": 1,
    "set_missing": 2,
    "impute_interpolate": 3,
    "winsorize": 3,
    "impute_median": 3,
    "impute_mean": 3,
    "impute_mode": 3,
    "fill_constant": 3,
    "cap_to_fences": 3,
    "flag_only": 3,
    "drop_rows": 4,
    "drop_duplicates_keep_first": 5,
    "drop_duplicates_keep_last": 5,
    "drop_duplicates_most_complete": 5,
    # Masking last: masked values must not make distinct rows look like repeats.
    "mask_personal_data": 6,
    "drop_column": 7,
}
# Strategies that act on the rows with the finding's problem, as found in the data.
ROW_STRATEGIES = frozenset({"set_missing", "drop_rows", "flag_only", "mask_personal_data"})

# Params a choice may set beyond the finding's defaults.
EXTRA_PARAMS = QUALITY_EXTRA_PARAMS


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
    found: pd.Series | None = None  # the rows with the problem in the data as found (ROW_STRATEGIES)
    # What a step takes from the whole column (a median, quantiles, the interpolated column, the rows
    # a duplicate removal keeps), fixed beforehand when the data is fixed batch by batch.
    frozen: dict[str, Any] | None = None


# Stands for a step's count in its note, so a note made per batch can be said for the whole data.
COUNT = "\x00"


class Recorded(AppliedResolution):
    """A step's record with its note's count kept apart (`template`, `count`) for adding up batches."""

    template: str = ""
    count: int = 0

    def plain(self) -> AppliedResolution:
        """The published record."""
        return AppliedResolution(**self.model_dump(exclude={"template", "count"}))

    def plus(self, other: "Recorded") -> "Recorded":
        """The record of the same step over more rows: counts added, the note said again."""
        count = self.count + other.count
        return Recorded(
            finding_id=self.finding_id,
            strategy=self.strategy,
            rows_removed=self.rows_removed + other.rows_removed,
            cells_changed=self.cells_changed + other.cells_changed,
            note=self.template.replace(COUNT, str(count)),
            template=self.template,
            count=count,
        )


def apply_resolutions(
    *,
    frame: pd.DataFrame,
    findings: list[Finding],
    choices: list[ResolutionChoice],
    keep_index: bool = False,
    found_memo: dict[str, pd.Series | None] | None = None,
) -> Applied:
    """Apply `choices` to a copy of `frame`; a choice that cannot be applied raises InvalidInput.

    With keep_index the result keeps the row labels of the rows that remain (for previews);
    `found_memo` keeps the rows found per finding and params for the next call on the same frame."""
    if not frame.index.is_unique:
        frame = frame.reset_index(drop=True)  # rows are matched by label from step to step
    steps = [
        replace(s, found=_found_once(frame, s, found_memo)) if s.strategy in ROW_STRATEGIES else s
        for s in plan_steps(columns=list(frame.columns), findings=findings, choices=choices)
    ]
    result, records = run_steps(frame.copy(deep=True), steps)
    applied = [r.plain() for r in records]
    return Applied(frame=result if keep_index else result.reset_index(drop=True), applied=applied)


def _found_once(
    frame: pd.DataFrame, step: _Step, memo: dict[str, pd.Series | None] | None
) -> pd.Series | None:
    """_rows_found, kept in `memo` (the frame's) by finding and params."""
    if memo is None:
        return _rows_found(frame, step)
    key = json.dumps([step.finding.id, step.params], sort_keys=True, default=str)
    if key not in memo:
        memo[key] = _rows_found(frame, step)
    return memo[key]


def prime_found(frame: pd.DataFrame, findings: list[Finding], memo: dict[str, pd.Series | None]) -> None:
    """Find the rows of every row-level fix each finding offers (its default params) into `memo`."""
    for finding in findings:
        for offered in finding.resolutions:
            if offered.strategy not in ROW_STRATEGIES:
                continue
            choice = ResolutionChoice(finding_id=finding.id, strategy=offered.strategy)
            try:
                (step,) = _plan(list(frame.columns), findings, [choice])
                _found_once(frame, step, memo)
            except InvalidInput:
                continue  # refused when chosen, with the reason; nothing to find beforehand


def plan_steps(
    *, columns: list[str], findings: list[Finding], choices: list[ResolutionChoice]
) -> list[_Step]:
    """The checked choices as steps in application order (phase, then the findings' order)."""
    return sorted(_plan(columns, findings, choices), key=lambda s: (PHASES[s.strategy], s.order))


def run_steps(frame: pd.DataFrame, steps: list[_Step]) -> tuple[pd.DataFrame, list[Recorded]]:
    """Apply the steps in turn to `frame` (changed in place where a step can)."""
    records = []
    for step in steps:
        frame, record = _APPLY[step.strategy](frame, step)
        records.append(record)
    return frame, records


def _plan(columns: list[str], findings: list[Finding], choices: list[ResolutionChoice]) -> list[_Step]:
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
        allowed = set(defaults) | EXTRA_PARAMS.get(choice.strategy, frozenset())
        unknown = sorted(set(choice.params) - allowed)
        if unknown:
            raise InvalidInput(
                f"strategy '{choice.strategy}' for finding '{finding.id}' does not take "
                f"{', '.join(unknown)} (it takes: {', '.join(sorted(allowed)) or 'no parameters'})"
            )
        missing_columns = [c for c in finding.columns if c not in columns]
        if missing_columns:
            raise InvalidInput(
                f"finding '{finding.id}' names columns not in the data: {', '.join(missing_columns)}"
            )
        steps.append(_Step(order, finding, choice.strategy, {**defaults, **choice.params}))
    return steps


def _rows_found(frame: pd.DataFrame, step: _Step) -> pd.Series | None:
    """The rows of `frame` with the step's problem, or None for a finding without row-level problems."""
    if step.finding.category == "outliers":
        lower, upper = _fences(step)
        return outside_fences(pd.Series(_numbers(frame[_column(step)]), index=frame.index), lower, upper)
    return problem_mask(frame, step.finding, step.params)


def _rows_now(frame: pd.DataFrame, found: pd.Series) -> np.ndarray:
    """The found rows among those still in `frame` (earlier steps may have removed some)."""
    return found.reindex(frame.index, fill_value=False).to_numpy(dtype=bool)


def _record(
    step: _Step, note: str, *, count: int = 0, rows_removed: int = 0, cells_changed: int = 0
) -> Recorded:
    """A step's record; COUNT in `note` stands for `count`."""
    return Recorded(
        finding_id=step.finding.id,
        strategy=step.strategy,
        rows_removed=rows_removed,
        cells_changed=cells_changed,
        note=note.replace(COUNT, str(count)),
        template=note,
        count=count,
    )


def _column(step: _Step) -> str:
    return step.finding.columns[0]


def _coerce_numeric(frame: pd.DataFrame, step: _Step) -> tuple[pd.DataFrame, Recorded]:
    """Make the column numeric; unparseable values become missing."""
    column = _column(step)
    series = frame[column]
    if is_numeric(series):
        return frame, _record(step, f"'{column}' already holds numbers; nothing to convert")
    missing = missing_mask(series).to_numpy()
    numbers = pd.to_numeric(_text_or_numbers(series).where(~missing), errors="coerce").astype("float64")
    frame[column] = numbers
    lost = int((numbers.isna().to_numpy() & ~missing).sum())
    note = f"converted '{column}' to numbers; {COUNT} values that were not numbers became missing"
    return frame, _record(step, note, count=lost, cells_changed=lost)


def _text_or_numbers(series: pd.Series) -> pd.Series:
    """Values pd.to_numeric can read: numbers as they are, anything else (booleans, dates) as text."""
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_datetime64_any_dtype(series):
        return series.astype("str").where(series.notna(), None)
    if not pd.api.types.is_object_dtype(series):
        return series
    keep = series.map(lambda v: isinstance(v, str | int | float) and not isinstance(v, bool))
    return series.where(keep.to_numpy(dtype=bool), series.astype("str"))


def changed_cells(before: pd.Series, after: pd.Series) -> pd.Series:
    """True where a cell's value differs (missing equals missing; '12' equals 12.0 after coercion,
    '2024-01-05' the date it was parsed to)."""
    both_missing = before.isna().to_numpy() & after.isna().to_numpy()
    same = np.zeros(len(before), dtype=bool)
    if _is_num(before) or _is_num(after):
        num_before = _numbers(before)
        num_after = _numbers(after)
        same = (num_before == num_after) & ~np.isnan(num_before)
        if _is_num(before) and _is_num(after):
            # Two numeric columns: equal text means equal numbers, so the text comparison adds nothing.
            return pd.Series(~(same | both_missing), index=before.index)
    elif _is_date(before) or _is_date(after):
        same = _dates(before) == _dates(after)
    elif isinstance(before.dtype, pd.StringDtype) and isinstance(after.dtype, pd.StringDtype):
        # Two text columns: compared as they are (missing is handled above), not via object arrays.
        text_same = before.eq(after).fillna(False).to_numpy(dtype=bool)
        return pd.Series(~(text_same | both_missing), index=before.index)
    text_same = before.astype("str").to_numpy(dtype=object) == after.astype("str").to_numpy(dtype=object)
    return pd.Series(~(same | text_same | both_missing), index=before.index)


def _count_changed(before: pd.Series, after: pd.Series) -> int:
    return int(changed_cells(before, after).sum())


def _is_num(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _is_date(series: pd.Series) -> bool:
    return pd.api.types.is_datetime64_any_dtype(series)


def _numbers(series: pd.Series) -> np.ndarray:
    if _is_num(series):
        return series.astype("float64").to_numpy()
    parsed = pd.to_numeric(_text_or_numbers(series), errors="coerce")
    return pd.Series(parsed, index=series.index).astype("float64").to_numpy()


def _dates(series: pd.Series) -> np.ndarray:
    if _is_date(series):
        return series.to_numpy(dtype="datetime64[ns]")
    parsed = patterns.parse_dates(text_array(series)).to_pandas()
    return pd.to_datetime(parsed.to_numpy()).to_numpy(dtype="datetime64[ns]")


def _fill(frame: pd.DataFrame, step: _Step, value: Any, how: str) -> tuple[pd.DataFrame, Recorded]:
    """Put `value` into every missing cell of the step's column."""
    column = _column(step)
    series = frame[column]
    mask = _missing(series, step).to_numpy()
    if is_numeric(series) and (not isinstance(value, Real) or isinstance(value, bool)):
        raise InvalidInput(
            f"column '{column}' is numeric; {step.strategy} for '{step.finding.id}' needs a number, "
            f"not {value!r}"
        )
    if _is_date(series) and not isinstance(value, pd.Timestamp):
        raise InvalidInput(
            f"column '{column}' holds dates; {step.strategy} for '{step.finding.id}' cannot put "
            f"{value!r} in it"
        )
    if is_numeric(series) and not pd.api.types.is_float_dtype(series) and float(value) != int(value):
        # A fractional mean or median cannot live in an integer column.
        series = series.astype("float64")
    if _all_text(series) and not isinstance(value, str):
        value = str(value)  # a text column stays text (Arrow stores one type per column)
    elif pd.api.types.is_bool_dtype(series) and not isinstance(value, bool | np.bool_):
        series = series.astype(object)
    filled = series.where(~mask, value)
    frame[column] = filled
    changed = _count_changed(series, filled)
    note = f"filled {COUNT} missing values in '{column}' with {how} '{value}'"
    return frame, _record(step, note, count=changed, cells_changed=changed)


def _all_text(series: pd.Series) -> bool:
    """A text column whose present values are all strings."""
    if not is_text(series):
        return False
    if pd.api.types.is_string_dtype(series) and not pd.api.types.is_object_dtype(series):
        return True
    return bool(series.dropna().map(lambda v: isinstance(v, str)).all())


def _missing(series: pd.Series, step: _Step) -> pd.Series:
    return missing_mask(series, sentinels=step.finding.details.get("sentinels", []))


def _numeric_or_fail(frame: pd.DataFrame, step: _Step) -> pd.Series:
    series = frame[_column(step)]
    if not is_numeric(series):
        raise InvalidInput(
            f"{step.strategy} needs a numeric column but '{_column(step)}' holds text; "
            "choose coerce_numeric for its type mismatch first"
        )
    return series


def _impute_median(frame: pd.DataFrame, step: _Step) -> tuple[pd.DataFrame, Recorded]:
    """Fill with the median of the present values."""
    return _impute_stat(frame, step, "median")


def _impute_mean(frame: pd.DataFrame, step: _Step) -> tuple[pd.DataFrame, Recorded]:
    """Fill with the mean of the present values."""
    return _impute_stat(frame, step, "mean")


def _impute_stat(frame: pd.DataFrame, step: _Step, stat: str) -> tuple[pd.DataFrame, Recorded]:
    _numeric_or_fail(frame, step)
    value = (step.frozen or column_stat(frame, step))["value"]
    if value is None:
        return frame, _nothing_to_take(step, f"the {stat}")
    return _fill(frame, step, value, f"the {stat}")


# Strategies that take something from the whole column (see column_stat).
WHOLE_COLUMN = frozenset({"impute_median", "impute_mean", "impute_mode", "winsorize", "impute_interpolate"})


def column_stat(frame: pd.DataFrame, step: _Step) -> dict[str, Any]:
    """What a WHOLE_COLUMN step takes from its column as `frame` holds it (every row of the data)."""
    series = frame[_column(step)]
    if step.strategy in ("impute_median", "impute_mean"):
        series = _numeric_or_fail(frame, step)
        present = series[~_missing(series, step)].astype(float)
        if present.empty:
            return {"value": None}
        return {"value": float(present.median() if step.strategy == "impute_median" else present.mean())}
    if step.strategy == "impute_mode":
        return {"value": _mode(series, step)}
    if step.strategy == "winsorize":
        series = _numeric_or_fail(frame, step)
        low_q, high_q = _quantiles(step)
        lower, upper = (float(v) for v in series.quantile([low_q, high_q]))
        return {"lower": lower, "upper": upper}
    if step.strategy == "impute_interpolate":
        series = _numeric_or_fail(frame, step).astype("float64")
        filled = series.where(~_missing(series, step)).interpolate(limit_direction="both")
        return {"filled": filled.to_numpy(), "start": int(frame.index[0]) if len(frame) else 0}
    raise ValueError(f"{step.strategy} takes nothing from the whole column")


def _nothing_to_take(step: _Step, what: str) -> Recorded:
    """An earlier step (or the data) left the column without values: there is nothing to fill from."""
    return _record(step, f"'{_column(step)}' has no values left to take {what} of; nothing was filled")


def _impute_mode(frame: pd.DataFrame, step: _Step) -> tuple[pd.DataFrame, Recorded]:
    """Fill with the most frequent present value (the smallest one on ties)."""
    value = (step.frozen or column_stat(frame, step))["value"]
    if value is None:
        return frame, _nothing_to_take(step, "the mode")
    return _fill(frame, step, value, "the mode")


def _mode(series: pd.Series, step: _Step) -> Any:
    """The most frequent present value (the smallest on ties), None if there is none."""
    present = series[~_missing(series, step).to_numpy()]
    if present.empty:
        return None
    counts = present.value_counts(sort=False, dropna=True)
    tied = list(counts[counts == counts.max()].index)
    try:
        value = min(tied)
    except TypeError:  # values of several types (an object column): order them by their text
        value = min(tied, key=str)
    if isinstance(value, np.generic):
        value = value.item()
    if is_numeric(series):
        value = float(value)
    return value


def _fill_constant(frame: pd.DataFrame, step: _Step) -> tuple[pd.DataFrame, Recorded]:
    """Fill with the constant in params['value']."""
    if "value" not in step.params:
        raise InvalidInput(f"fill_constant for '{step.finding.id}' needs a 'value' parameter")
    return _fill(frame, step, step.params["value"], "the constant")


def _fences(step: _Step) -> tuple[float, float]:
    """The (lower, upper) params, checked; a missing bound (None) is unbounded."""
    bounds = []
    for name, unbounded in (("lower", -np.inf), ("upper", np.inf)):
        bound = step.params.get(name)
        if bound is None and step.finding.category == "outliers":
            bound = step.finding.details.get(name)  # null means: the fence the detector measured
        if bound is None and step.finding.category != "outliers":
            bounds.append(unbounded)
            continue
        if not isinstance(bound, Real) or isinstance(bound, bool):
            raise InvalidInput(f"{step.strategy} for '{step.finding.id}' needs a number as '{name}'")
        bounds.append(float(bound))
    lower, upper = bounds
    if lower > upper:
        raise InvalidInput(
            f"{step.strategy} for '{step.finding.id}': lower ({lower:g}) is above upper ({upper:g})"
        )
    return lower, upper


def _cap_to_fences(frame: pd.DataFrame, step: _Step) -> tuple[pd.DataFrame, Recorded]:
    """Clip values outside [lower, upper] to the nearest fence."""
    lower, upper = _fences(step)
    column = _column(step)
    series = _numeric_or_fail(frame, step)
    frame[column] = series.clip(lower, upper)
    changed = _count_changed(series, frame[column])
    note = f"capped {COUNT} values in '{column}' to [{lower:.4g}, {upper:.4g}]"
    return frame, _record(step, note, count=changed, cells_changed=changed)


def _flag_only(frame: pd.DataFrame, step: _Step) -> tuple[pd.DataFrame, Recorded]:
    """Add a boolean column that is True on the rows with this finding's problem."""
    column = _column(step)
    if step.found is None:
        return frame, _record(step, f"acknowledged '{step.finding.id}'; the data was not changed")
    mask = _rows_now(frame, step.found)
    default = f"{column}_is_outlier" if step.finding.category == "outliers" else f"{column}_flag"
    wanted = str(step.params.get("column") or default)
    flag = _free_name(frame, wanted)
    frame[flag] = mask
    renamed = f" ('{wanted}' was taken)" if flag != wanted else ""
    note = f"kept the values; added column '{flag}'{renamed} marking {COUNT} rows for '{step.finding.id}'"
    return frame, _record(step, note, count=int(mask.sum()))


def _free_name(frame: pd.DataFrame, wanted: str) -> str:
    """`wanted`, or `wanted_2`, `wanted_3` ... if a column (of the data or an earlier flag) has it."""
    name, n = wanted, 1
    while name in frame.columns:
        n += 1
        name = f"{wanted}_{n}"
    return name


def _drop_rows(frame: pd.DataFrame, step: _Step) -> tuple[pd.DataFrame, Recorded]:
    """Remove the rows that had this finding's problem (and are still there)."""
    if step.found is None:
        raise InvalidInput(f"drop_rows does not apply to a {step.finding.category} finding")
    mask = _rows_now(frame, step.found)
    removed = int(mask.sum())
    note = f"removed {COUNT} rows with {step.finding.category.replace('_', ' ')} ({step.finding.id})"
    return frame[~mask], _record(step, note, count=removed, rows_removed=removed)


def _drop_duplicates(frame: pd.DataFrame, step: _Step) -> tuple[pd.DataFrame, Recorded]:
    """Remove exact repeats over the finding's columns, keeping the first, last or most complete."""
    subset = [c for c in step.finding.columns if c in frame.columns]
    keep = {"drop_duplicates_keep_first": "first", "drop_duplicates_keep_last": "last"}.get(
        step.strategy, "most complete"
    )
    if step.frozen is not None:  # the rows to keep, decided over the whole data (row numbers)
        result = frame[step.frozen["keep"][frame.index.to_numpy()]]
    elif step.strategy == "drop_duplicates_most_complete":
        completeness = frame.notna().sum(axis=1)
        order = completeness.sort_values(ascending=False, kind="stable").index
        kept = frame.loc[order].drop_duplicates(subset=subset, keep="first")
        result = frame.loc[frame.index.isin(kept.index)]
    else:
        result = frame.drop_duplicates(subset=subset, keep=keep)  # type: ignore[arg-type]
    removed = len(frame) - len(result)
    note = f"removed {COUNT} repeated rows, keeping the {keep} occurrence"
    return result, _record(step, note, count=removed, rows_removed=removed)


def _interpolate(frame: pd.DataFrame, step: _Step) -> tuple[pd.DataFrame, Recorded]:
    """Fill missing numbers linearly between neighbours (ends take the nearest value)."""
    column = _column(step)
    series = _numeric_or_fail(frame, step).astype("float64")
    if step.frozen is None:
        filled = pd.Series(column_stat(frame, step)["filled"], index=frame.index)
    else:  # the whole column interpolated beforehand; this frame's rows are row numbers into it
        positions = frame.index.to_numpy() - step.frozen["start"]
        filled = pd.Series(step.frozen["filled"][positions], index=frame.index)
    frame[column] = filled
    changed = _count_changed(series, filled)
    note = f"interpolated {COUNT} missing values in '{column}'"
    return frame, _record(step, note, count=changed, cells_changed=changed)


def _winsorize(frame: pd.DataFrame, step: _Step) -> tuple[pd.DataFrame, Recorded]:
    """Clip to the column's lower/upper quantiles."""
    column = _column(step)
    series = _numeric_or_fail(frame, step)
    _quantiles(step)  # checked before anything is taken
    stat = step.frozen or column_stat(frame, step)
    lower, upper = stat["lower"], stat["upper"]
    if np.isnan(lower) or np.isnan(upper):
        return frame, _record(step, f"'{column}' has no values left to winsorize; nothing changed")
    frame[column] = series.clip(lower, upper)
    changed = _count_changed(series, frame[column])
    low_q, high_q = step.params.get("lower_quantile"), step.params.get("upper_quantile")
    low_q, high_q = 0.01 if low_q is None else low_q, 0.99 if high_q is None else high_q
    note = (
        f"winsorized {COUNT} values in '{column}' to [{lower:.4g}, {upper:.4g}] ({low_q}-{high_q} quantiles)"
    )
    return frame, _record(step, note, count=changed, cells_changed=changed)


def _quantiles(step: _Step) -> tuple[float, float]:
    """winsorize's (lower, upper) quantiles, checked (0.01 and 0.99 unless given)."""
    low_q, high_q = step.params.get("lower_quantile"), step.params.get("upper_quantile")
    low_q, high_q = 0.01 if low_q is None else low_q, 0.99 if high_q is None else high_q
    if not all(isinstance(q, Real) and 0 <= float(q) <= 1 for q in (low_q, high_q)) or low_q >= high_q:
        raise InvalidInput(
            f"winsorize for '{step.finding.id}' needs 0 <= lower_quantile < upper_quantile <= 1, "
            f"got {low_q!r} and {high_q!r}"
        )
    return float(low_q), float(high_q)


def _coerce_datetime(frame: pd.DataFrame, step: _Step) -> tuple[pd.DataFrame, Recorded]:
    """Parse text dates; values that are not real dates become missing (and are counted)."""
    column = _column(step)
    series = frame[column]
    if _is_date(series):
        return frame, _record(step, f"'{column}' already holds dates; nothing to convert")
    missing = missing_mask(series).to_numpy()
    parsed = patterns.parse_dates(text_array(series, missing)).to_pandas()
    frame[column] = pd.Series(pd.to_datetime(parsed.to_numpy()), index=series.index)
    lost = int((parsed.isna().to_numpy() & ~missing).sum())
    note = f"converted '{column}' to dates; {COUNT} values that were not real dates became missing"
    return frame, _record(step, note, count=lost, cells_changed=lost)


def _set_missing(frame: pd.DataFrame, step: _Step) -> tuple[pd.DataFrame, Recorded]:
    """Blank the values with this finding's problem."""
    column = _column(step)
    if step.found is None:
        raise InvalidInput(f"set_missing does not apply to a {step.finding.category} finding")
    mask = _rows_now(frame, step.found)
    series = frame[column]
    if pd.api.types.is_integer_dtype(series):
        series = series.astype("float64")
    elif pd.api.types.is_bool_dtype(series):
        series = series.astype(object)
    blanked = series.where(~mask, None)
    frame[column] = blanked
    changed = _count_changed(series, blanked)
    return frame, _record(step, f"blanked {COUNT} values in '{column}'", count=changed, cells_changed=changed)


def _map_text(
    frame: pd.DataFrame, step: _Step, fn: Callable[[str], str], what: str
) -> tuple[pd.DataFrame, Recorded]:
    """Rewrite the column's text values with `fn`; numbers, dates and missing values stay as they are."""
    column = _column(step)
    series = frame[column]
    if not is_text(series):
        return frame, _record(step, f"'{column}' holds no text ({series.dtype}); nothing was {what}")
    new = series.map(lambda v: fn(v) if isinstance(v, str) else v)
    changed = _count_changed(series, new)
    frame[column] = new.astype(series.dtype) if str(series.dtype) == "str" else new
    return frame, _record(step, f"{what} {COUNT} values in '{column}'", count=changed, cells_changed=changed)


def _trim(frame: pd.DataFrame, step: _Step) -> tuple[pd.DataFrame, Recorded]:
    """Strip leading and trailing whitespace."""
    return _map_text(frame, step, str.strip, "trimmed")


def _normalise_case(frame: pd.DataFrame, step: _Step) -> tuple[pd.DataFrame, Recorded]:
    """Trim, collapse inner spaces and lower-case."""
    return _map_text(frame, step, lambda v: " ".join(v.split()).lower(), "normalised")


def _merge_categories(frame: pd.DataFrame, step: _Step) -> tuple[pd.DataFrame, Recorded]:
    """Rewrite variants to their canonical spelling with the (shown, or user-edited) mapping."""
    mapping = step.params.get("mapping")
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
    ):
        raise InvalidInput(
            f"merge_categories for '{step.finding.id}' needs 'mapping': an object of text to text"
        )
    return _map_text(frame, step, lambda v: mapping.get(v, v), "merged")


def _repair(value: str) -> str:
    try:
        value = value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    return "".join(ch for ch in value if ch in "\t\n\r" or (ord(ch) >= 32 and ord(ch) != 127))


def _repair_text(frame: pd.DataFrame, step: _Step) -> tuple[pd.DataFrame, Recorded]:
    """Undo UTF-8-as-Latin-1 mojibake where it round-trips; drop control characters."""
    return _map_text(frame, step, _repair, "repaired")


def _mask_one(value: str) -> str:
    keep = value[-4:]
    return re.sub(r"[A-Za-z0-9]", "*", value[:-4]) + keep


def _mask_all(values: pd.Series) -> list[str]:
    """_mask_one of every value (all strings), in Arrow: the same text, without a Python call per value."""
    try:
        text = pa.array(values.to_numpy(dtype=object), pa.string())
    except (pa.ArrowException, UnicodeEncodeError):  # text Arrow cannot hold (a lone surrogate)
        return [_mask_one(v) for v in values]
    head = pc.replace_substring_regex(pc.utf8_slice_codeunits(text, 0, -4), r"[A-Za-z0-9]", "*")
    return pc.binary_join_element_wise(head, pc.utf8_slice_codeunits(text, -4), "").to_pylist()


def _mask_personal(frame: pd.DataFrame, step: _Step) -> tuple[pd.DataFrame, Recorded]:
    """Mask values holding personal data, keeping the last 4 characters."""
    column = _column(step)
    series = frame[column]
    if not is_text(series):
        return frame, _record(step, f"'{column}' holds no text ({series.dtype}); nothing was masked")
    assert step.found is not None
    mask = _rows_now(frame, step.found) & series.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    new = series.copy()
    new[mask] = _mask_all(series[mask])
    frame[column] = new
    changed = _count_changed(series, new)
    note = f"masked personal data in {COUNT} values of '{column}'"
    return frame, _record(step, note, count=changed, cells_changed=changed)


def _drop_column(frame: pd.DataFrame, step: _Step) -> tuple[pd.DataFrame, Recorded]:
    """Remove the finding's column."""
    column = _column(step)
    if column not in frame.columns:
        return frame, _record(step, f"'{column}' was already removed by an earlier step")
    return frame.drop(columns=[column]), _record(step, f"removed column '{column}'", cells_changed=len(frame))


_APPLY: dict[str, Callable[[pd.DataFrame, _Step], tuple[pd.DataFrame, Recorded]]] = {
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
    "drop_duplicates_most_complete": _drop_duplicates,
    "impute_interpolate": _interpolate,
    "winsorize": _winsorize,
    "coerce_datetime": _coerce_datetime,
    "set_missing": _set_missing,
    "trim_whitespace": _trim,
    "normalise_case": _normalise_case,
    "merge_categories": _merge_categories,
    "repair_text": _repair_text,
    "mask_personal_data": _mask_personal,
    "drop_column": _drop_column,
}
