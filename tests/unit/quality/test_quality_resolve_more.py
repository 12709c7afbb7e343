"""The resolutions added with the catalogue, each checked against an independent pandas computation."""

import numpy as np
import pandas as pd

from lockflow.common.models import ResolutionChoice
from lockflow.quality.detect import assess
from lockflow.quality.resolve import apply_resolutions


def _fix(frame: pd.DataFrame, finding_id: str, strategy: str, **params: object) -> pd.DataFrame:
    findings = assess(frame=frame).findings
    choice = ResolutionChoice(finding_id=finding_id, strategy=strategy, params=params)
    return apply_resolutions(frame=frame, findings=findings, choices=[choice]).frame


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    n = 600
    frame = pd.DataFrame(
        {
            "order_id": np.arange(n),
            "x": rng.uniform(0, 10, n),
            "color": rng.choice(["Red", "Blue"], n).astype(object),
            "day": [f"2021-03-{d:02d}" for d in rng.integers(1, 29, n)],
            "mail": [f"p{i}@mail.org" for i in range(n)],
        }
    )
    frame.loc[[5, 6, 7], "x"] = np.nan
    frame.loc[[20, 21], "color"] = "red"
    frame.loc[[30], "day"] = "2021-02-31"
    frame.loc[[40, 41], "order_id"] = 1
    frame.loc[41, "x"] = np.nan
    frame["color"] = frame["color"].astype("str")
    return frame


def test_merge_categories_uses_the_shown_mapping() -> None:
    frame = _frame()
    fixed = _fix(frame, "inconsistent_categories:color", "merge_categories")
    assert fixed["color"].tolist() == frame["color"].replace({"red": "Red"}).tolist()


def test_interpolate_and_set_missing_and_coerce_datetime() -> None:
    frame = _frame()
    fixed = _fix(frame, "missing_values:x", "impute_interpolate")
    pd.testing.assert_series_equal(
        fixed["x"], frame["x"].interpolate(limit_direction="both"), check_names=False
    )
    blanked = _fix(frame, "invalid_format:day", "set_missing")
    assert blanked["day"].isna().sum() == 1 and pd.isna(blanked.loc[30, "day"])
    dated = _fix(frame, "invalid_format:day", "coerce_datetime")
    expected = pd.to_datetime(frame["day"], format="%Y-%m-%d", errors="coerce")
    assert (dated["day"].isna() == expected.isna()).all() and int(dated["day"].isna().sum()) == 1


def test_set_missing_on_a_text_column_that_already_has_missing_values() -> None:
    # pandas' "str" dtype hands missing values to Arrow as NaN (mosaicData HELPrct crashed here).
    frame = _frame()
    frame.loc[[50, 51], "day"] = None
    blanked = _fix(frame, "invalid_format:day", "set_missing")
    assert blanked["day"].isna().sum() == 3 and pd.isna(blanked.loc[30, "day"])


def test_dedupe_keys_keeps_the_most_complete_row() -> None:
    frame = _frame()
    fixed = _fix(frame, "duplicate_keys:order_id", "drop_duplicates_most_complete")
    assert not fixed["order_id"].duplicated().any()
    kept = fixed[fixed["order_id"] == 1]
    assert len(kept) == 1 and kept["x"].notna().all()  # row 41 (x missing) lost to row 1 or 40
    assert len(fixed) == len(frame) - int(frame["order_id"].duplicated().sum())


def test_mask_personal_data_keeps_the_last_four_characters() -> None:
    frame = _frame()
    fixed = _fix(frame, "personal_data:mail", "mask_personal_data")
    assert fixed.loc[0, "mail"].endswith(".org") and "@" in fixed.loc[0, "mail"]
    assert not fixed["mail"].str.contains(r"p\d+@mail").any()


def test_winsorize_clips_to_quantiles() -> None:
    rng = np.random.default_rng(9)
    frame = pd.DataFrame({"v": np.concatenate([rng.normal(0, 1, 500), [40.0, -35.0]])})
    fixed = _fix(frame, "outliers:v", "winsorize", lower_quantile=0.05, upper_quantile=0.95)
    low, high = frame["v"].quantile([0.05, 0.95])
    pd.testing.assert_series_equal(fixed["v"], frame["v"].clip(low, high))
