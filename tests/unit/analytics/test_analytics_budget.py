"""Wide data stays within the pair and cell budgets, and the result says what was left out."""

import numpy as np
import pandas as pd

from lockflow.analytics.budget import AnalysisBudget, narrow, ranked
from lockflow.analytics.compute import analyse
from lockflow.common.models import AnalyticsParams


def _wide(columns: int, rows: int = 50, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.integers(0, 10, size=(rows, columns)), columns=[f"c{i}" for i in range(columns)])


def test_a_frame_within_budget_is_left_whole() -> None:
    frame = _wide(20)
    assert narrow("correlations", frame, AnalysisBudget()).frame is frame
    assert narrow("clustering", frame, AnalysisBudget()).note == ""


def test_correlations_keep_the_most_informative_columns_within_the_pair_budget() -> None:
    frame = _wide(30)
    frame.loc[:10, "c3"] = np.nan  # fewer values present: ranked last
    within = narrow("correlations", frame, AnalysisBudget(max_pairs=45))
    assert len(within.frame.columns) == 10  # 10 columns are 45 pairs
    assert "c3" not in within.frame.columns
    assert "Correlations used 10 of 30 columns (45 of 435 pairs; LOCKFLOW_MAX_PAIRS=45)" in within.note


def test_associations_count_categorical_pairs() -> None:
    frame = _wide(10)
    for i in range(4):
        frame[f"g{i}"] = np.where(frame[f"c{i}"] > 4, "high", "low")
    # 4 categorical, 10 numeric: 6 + 40 pairs.
    within = narrow("associations", frame, AnalysisBudget(max_pairs=20))
    kept = within.frame.columns
    cats, nums = [c for c in kept if c.startswith("g")], [c for c in kept if c.startswith("c")]
    assert len(cats) * (len(cats) - 1) // 2 + len(cats) * len(nums) <= 20
    assert "of 46 pairs" in within.note


def test_heavy_parts_keep_the_target_within_the_cell_budget() -> None:
    frame = _wide(100, rows=100)
    within = narrow("drivers", frame, AnalysisBudget(max_cells=1_000), keep=("c99",))
    assert len(within.frame.columns) == 10 and "c99" in within.frame.columns
    assert "LOCKFLOW_MAX_CELLS=1,000" in within.note


def test_ranking_is_the_same_on_every_run() -> None:
    frame = _wide(50)
    assert ranked(frame, list(frame.columns)) == ranked(frame, list(reversed(frame.columns)))


def test_900_columns_complete_and_say_what_was_sampled() -> None:
    frame = _wide(900)
    result = analyse(frame=frame, params=AnalyticsParams(steps=[]), budget=AnalysisBudget(max_pairs=20_000))
    assert len(result.columns) == 900
    assert 0 < len(result.correlations) <= 20_000
    (note,) = result.budget_notes
    assert note.startswith("Correlations used 200 of 900 columns (19,900 of 404,550 pairs")
    assert note in result.sample_note and result.sample_note.startswith("All 50 rows were used")
