"""How much of a wide frame each part may work on: pairs per pairwise part, cells per heavy part.

Pairwise parts (correlations, associations) grow with the square of the columns: 10,000 numeric
columns are 50 million pairs. Above `max_pairs` pairs a part uses the most informative columns
only (most values present, then most distinct values, then name order: the same on every run),
as many as fit in the budget. Heavy parts (clustering, anomalies, drivers, segments, time series)
use at most `max_cells` rows x columns. Columns a part needs (the target, the date column, the
user's features) are always kept. Every narrowing is stated in the result's notes.
"""

from dataclasses import dataclass

import pandas as pd

from lockflow.analytics.associations import categorical_columns
from lockflow.datasets.columns import as_float, numeric_columns

PAIRWISE = ("correlations", "associations")
MIN_HEAVY_COLUMNS = 2


@dataclass(frozen=True)
class AnalysisBudget:
    """The pairs a pairwise part and the cells a heavy part may use (from the worker's settings)."""

    max_pairs: int = 20_000
    max_cells: int = 50_000_000

    def key(self) -> dict[str, int]:
        """What a part's cached result depends on."""
        return {"max_pairs": self.max_pairs, "max_cells": self.max_cells}


@dataclass(frozen=True)
class Narrowed:
    """The frame a part works on, and the sentence saying what was left out (empty: nothing)."""

    frame: pd.DataFrame
    note: str = ""


def ranked(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    """Columns by information: most values present, then most distinct values, then name."""
    facts = {c: (int(frame[c].notna().sum()), int(frame[c].nunique())) for c in columns}
    return sorted(columns, key=lambda c: (-facts[c][0], -facts[c][1], c))


def narrow(part: str, frame: pd.DataFrame, budget: AnalysisBudget, *, keep: tuple[str, ...] = ()) -> Narrowed:
    """The frame within the part's budget; the whole frame when it already fits."""
    if part == "correlations":
        return _within_pairs(frame, budget, cats=[], nums=_varying_numeric(frame), label=part)
    if part == "associations":
        cats = categorical_columns(frame)
        return _within_pairs(
            frame, budget, cats=cats, nums=_varying_numeric(frame) if cats else [], label=part
        )
    return _within_cells(part, frame, budget, keep=keep)


def _varying_numeric(frame: pd.DataFrame) -> list[str]:
    return [c for c in numeric_columns(frame) if as_float(frame[c]).nunique() > 1]


def _pairs(cats: int, nums: int, *, with_categorical: bool) -> int:
    if with_categorical:  # categorical x categorical and categorical x numeric
        return cats * (cats - 1) // 2 + cats * nums
    return nums * (nums - 1) // 2


def _within_pairs(
    frame: pd.DataFrame, budget: AnalysisBudget, *, cats: list[str], nums: list[str], label: str
) -> Narrowed:
    with_categorical = label == "associations"
    total = _pairs(len(cats), len(nums), with_categorical=with_categorical)
    if total <= budget.max_pairs:
        return Narrowed(frame)
    categorical = set(cats)
    kept_cats: list[str] = []
    kept_nums: list[str] = []
    for column in ranked(frame, cats + nums):
        trial_cats = [*kept_cats, column] if column in categorical else kept_cats
        trial_nums = kept_nums if column in categorical else [*kept_nums, column]
        if _pairs(len(trial_cats), len(trial_nums), with_categorical=with_categorical) > budget.max_pairs:
            continue
        kept_cats, kept_nums = trial_cats, trial_nums
    kept = set(kept_cats + kept_nums)
    used = _pairs(len(kept_cats), len(kept_nums), with_categorical=with_categorical)
    note = (
        f"{label.capitalize()} used {len(kept):,} of {len(cats) + len(nums):,} columns "
        f"({used:,} of {total:,} pairs; LOCKFLOW_MAX_PAIRS={budget.max_pairs:,}): "
        "those with the most values present, then the most distinct values."
    )
    return Narrowed(frame[[c for c in frame.columns if c in kept]], note)


def _within_cells(
    part: str, frame: pd.DataFrame, budget: AnalysisBudget, *, keep: tuple[str, ...]
) -> Narrowed:
    rows = max(len(frame), 1)
    if rows * len(frame.columns) <= budget.max_cells:
        return Narrowed(frame)
    limit = max(MIN_HEAVY_COLUMNS, budget.max_cells // rows)
    pinned = [c for c in dict.fromkeys(keep) if c in frame.columns]
    others = ranked(frame, [str(c) for c in frame.columns if c not in pinned])
    kept = set(pinned + others[: max(0, limit - len(pinned))])
    note = (
        f"{part.replace('_', ' ').capitalize()} used {len(kept):,} of {len(frame.columns):,} columns "
        f"on {rows:,} rows (LOCKFLOW_MAX_CELLS={budget.max_cells:,} cells): "
        "those with the most values present, then the most distinct values."
    )
    return Narrowed(frame[[c for c in frame.columns if c in kept]], note)
