"""Column kinds and number hygiene shared by every stage 4 part (and by the insights)."""

import math
from typing import Any, Literal

import numpy as np
import pandas as pd

Kind = Literal["numeric", "categorical", "datetime", "boolean"]


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
