"""Which rows of an in-memory frame have a finding's problem (used to drop, flag, blank or preview).

Each category recomputes its problem on the frame as it is now, with the definitions the
streaming detectors use, so a fix applies to exactly what was found (and to nothing else).
"""

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lockflow.common.errors import InvalidInput
from lockflow.common.models import Finding
from lockflow.quality import patterns
from lockflow.quality.detect import missing_mask, outside_fences, unparseable_mask
from lockflow.quality.profile import outside_between, rule_missing
from lockflow.qualityrules.rules import Rule, violations


def problem_mask(frame: pd.DataFrame, finding: Finding, params: dict[str, Any]) -> pd.Series | None:
    """A boolean Series over `frame`'s rows, or None if the category has no row-level problem."""
    column = finding.columns[0] if finding.columns else None
    category = finding.category
    if column is not None and column not in frame.columns and category != "schema_drift":
        raise InvalidInput(f"finding '{finding.id}' names column '{column}', which is not in the data")
    if category == "missing_values":
        return missing_mask(frame[column], sentinels=finding.details.get("sentinels", []))
    if category == "type_mismatch":
        return unparseable_mask(frame[column])
    if category == "outliers":
        lower, upper = (
            _given(params, "lower", finding.details.get("lower")),
            _given(params, "upper", finding.details.get("upper")),
        )
        return outside_fences(_as_numbers(frame[column]), float(lower), float(upper))
    if category in ("duplicate_keys",):
        return pd.Series(frame.duplicated(subset=[column], keep="first").to_numpy(), index=frame.index)
    if category == "duplicate_rows":
        return frame.duplicated(keep="first")
    if category in ("out_of_range", "rule_violation", "cross_column"):
        return _rule_mask(frame, finding)
    if category == "invalid_format":
        fmt = finding.details.get("format")
        if fmt != "date" and fmt not in patterns.FORMATS:
            raise InvalidInput(f"finding '{finding.id}' names a format this build does not know: {fmt!r}")
        return _text_mask(frame[column], lambda a: pc.invert(patterns.format_ok(str(fmt), a)))
    if category == "encoding":
        return _text_mask(frame[column], lambda a: pc.match_substring_regex(a, patterns.DAMAGE_RE))
    if category == "personal_data":
        # Phone numbers are personal data only in a phone column (the detector's rule): say so.
        fmt = "phone" if "phone" in finding.details.get("kinds", []) else None
        return _text_mask(frame[column], lambda a: _pii_any(a, fmt))
    if category == "inconsistent_categories":
        mapping = params.get("mapping") or finding.details.get("mapping")
        if mapping:
            return frame[column].isin(list(mapping)).fillna(False).astype(bool)
        text = frame[column].astype("str")
        return (text != text.str.strip()).fillna(False).astype(bool) & frame[column].notna()
    if category == "constant_column":
        top = finding.details.get("top")
        return ((frame[column].astype("str") != top) & frame[column].notna()).fillna(False).astype(bool)
    if category == "multivariate_outliers":
        return _isolation_mask(frame, finding)
    return None


def text_array(series: pd.Series, missing: np.ndarray | None = None) -> pa.Array:
    """The column's values as Arrow text, null where missing, whatever Python types it holds now."""
    absent = series.isna().to_numpy() if missing is None else missing
    # astype("str") keeps NaN as NaN (a float): Arrow must see it as null, not as a value.
    values = series.astype("str").to_numpy(dtype=object)
    return pa.array(values, pa.string(), mask=np.asarray(absent, dtype=bool), from_pandas=True)


def _present_text(series: pd.Series) -> tuple[pa.Array, np.ndarray]:
    missing = missing_mask(series).to_numpy()
    return text_array(series, missing), missing


def _given(params: dict[str, Any], name: str, default: Any) -> Any:
    """A chosen parameter, or the finding's own value where the choice left it out or set it to null."""
    value = params.get(name)
    return default if value is None else value


def _as_numbers(series: pd.Series) -> pd.Series:
    """The column as floats, whatever an earlier step left in it (booleans and non-numbers: missing)."""
    if pd.api.types.is_bool_dtype(series):
        return pd.Series(np.nan, index=series.index)
    if pd.api.types.is_numeric_dtype(series):
        return series.astype("float64")
    values = [np.nan if isinstance(v, bool | np.bool_) else _number(v) for v in series.to_numpy(dtype=object)]
    return pd.Series(values, index=series.index, dtype="float64")


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan


def _text_mask(series: pd.Series, test: Any) -> pd.Series:
    array, missing = _present_text(series)
    hits = pc.fill_null(test(array), False).to_numpy(zero_copy_only=False)
    return pd.Series(np.asarray(hits, dtype=bool) & ~missing, index=series.index)


def _pii_any(array: pa.Array, fmt: str | None) -> pa.Array:
    masks = list(patterns.pii_masks(pc.fill_null(array, ""), fmt).values())
    out = masks[0]
    for m in masks[1:]:
        out = pc.or_(out, m)
    return out


def _rule_mask(frame: pd.DataFrame, finding: Finding) -> pd.Series:
    rule = Rule.model_validate(finding.details["rule"])
    table = arrow_table(frame[[c for c in rule.columns() if c in frame.columns]])
    if rule.kind == "expression":
        hits = violations(str(rule.expression), table)
    else:
        column = table.column(str(rule.column)).combine_chunks()
        if rule.kind == "not_null":
            hits = rule_missing(column)
        elif rule.kind == "between":
            hits = outside_between(column, rule.between)
        elif rule.kind == "unique":
            return pd.Series(
                frame.duplicated(subset=[rule.column], keep="first").to_numpy(), index=frame.index
            )
        elif rule.kind == "in_set":
            series = frame[str(rule.column)]
            allowed = {str(v) for v in rule.in_set or []}
            return (~series.astype("str").isin(allowed) & series.notna()).astype(bool)
        else:
            text = pc.cast(column, pa.string())
            hits = pc.invert(pc.match_substring_regex(text, f"^(?:{rule.matches})$"))
    values = pc.fill_null(hits, False).to_numpy(zero_copy_only=False)
    return pd.Series(np.asarray(values, dtype=bool), index=frame.index)


def arrow_table(frame: pd.DataFrame) -> pa.Table:
    """The frame as Arrow; a column whose values an earlier step left mixed (numbers and text) as text."""
    arrays = []
    for name in frame.columns:
        try:
            arrays.append(pa.array(frame[name], from_pandas=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arrays.append(text_array(frame[name]))
    return pa.Table.from_arrays(arrays, names=[str(c) for c in frame.columns])


def _isolation_mask(frame: pd.DataFrame, finding: Finding) -> pd.Series:
    """The detector's rule on every row: the same column pairs and thresholds, refitted forest (seed 0)."""
    from lockflow.quality.detectors.outliers import multivariate_scores

    names = [c for c in finding.columns if c in frame.columns]
    complete = frame[names].apply(pd.to_numeric, errors="coerce").astype("float64").dropna()
    unusual, _ = multivariate_scores(complete, finding.details)
    mask = pd.Series(False, index=frame.index)
    mask.loc[complete.index[unusual]] = True
    return mask
