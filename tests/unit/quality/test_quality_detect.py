"""Detection: every planted problem is found with counts equal to independent pandas computations."""

import numpy as np
import pandas as pd
from conftest import Planted

from lockflow.quality.detect import assess, quality_score

CLEAN = ("row_id", "clean_num", "clean_int", "clean_text")


def _by_id(frame: pd.DataFrame) -> dict:
    return {f.id: f for f in assess(frame=frame).findings}


def _missing(series: pd.Series) -> pd.Series:
    """Independent definition: NA, or a string that is empty after stripping."""
    return series.map(lambda v: bool(pd.isna(v)) or (isinstance(v, str) and v.strip() == "")).astype(bool)


def _first_positions(mask: pd.Series) -> list[int]:
    return [i for i, flag in enumerate(mask.tolist()) if flag][:5]


def test_finds_exactly_the_planted_problems(planted: Planted) -> None:
    findings = _by_id(planted.frame)
    assert set(findings) == {
        "missing_values:amount",
        "missing_values:city",
        "duplicate_rows",
        "duplicate_keys:row_id",  # the 12 copied rows copy their row_id too
        "type_mismatch:code",
        "outliers:price",
    }
    for finding in findings.values():
        if finding.category not in ("duplicate_rows", "duplicate_keys"):
            assert not set(finding.columns) & set(CLEAN)


def test_numeric_missing_values(planted: Planted) -> None:
    frame = planted.frame
    finding = _by_id(frame)["missing_values:amount"]
    mask = frame["amount"].isna()
    assert finding.count == int(mask.sum()) == planted.missing_amount
    assert finding.share == mask.mean()
    assert finding.severity == "medium"  # 7% is between 5% and 20%
    assert finding.sample_rows == _first_positions(mask)
    assert [r.strategy for r in finding.resolutions] == [
        "impute_median",
        "impute_mean",
        "drop_rows",
        "impute_interpolate",
        "flag_only",
    ]
    median_rationale = finding.resolutions[0].rationale
    assert f"{frame['amount'].median():.4g}" in median_rationale
    assert f"{frame['amount'].dropna().skew():.2f}" in median_rationale
    assert "70 missing values (7.0% of 1000 rows)" in finding.explanation


def test_text_missing_values_count_blank_strings(planted: Planted) -> None:
    frame = planted.frame
    finding = _by_id(frame)["missing_values:city"]
    mask = _missing(frame["city"])
    assert finding.count == int(mask.sum()) == planted.missing_city
    assert int(frame["city"].isna().sum()) < finding.count  # blanks are not NA to pandas
    assert finding.severity == "low"
    assert finding.sample_rows == _first_positions(mask)
    assert f"{planted.blank_city} are empty or blank strings" in finding.explanation
    strategies = [(r.strategy, r.params) for r in finding.resolutions]
    # 'Oslo' is about half the filled cities, not overwhelmingly the value: the mode is not offered first.
    assert strategies == [
        ("fill_constant", {"value": "unknown"}),
        ("impute_mode", {}),
        ("drop_rows", {}),
        ("flag_only", {"column": "city_was_missing"}),
    ]
    top = frame["city"][~mask].value_counts().idxmax()
    assert f"'{top}'" in finding.resolutions[1].rationale
    assert [r.risk for r in finding.resolutions] == ["medium", "high", "high", "none"]


def test_duplicate_rows(planted: Planted) -> None:
    frame = planted.frame
    finding = _by_id(frame)["duplicate_rows"]
    mask = frame.duplicated(keep="first")
    assert finding.count == int(mask.sum()) == planted.duplicates
    assert finding.sample_rows == _first_positions(mask)
    assert finding.columns == list(frame.columns)
    assert [r.strategy for r in finding.resolutions] == [
        "drop_duplicates_keep_first",
        "drop_duplicates_keep_last",
    ]


def test_type_mismatch(planted: Planted) -> None:
    frame = planted.frame
    finding = _by_id(frame)["type_mismatch:code"]
    filled = frame["code"][~_missing(frame["code"])]
    bad = pd.to_numeric(filled, errors="coerce").isna()
    assert finding.count == int(bad.sum()) == planted.non_numbers
    assert finding.sample_rows == [int(i) for i in filled.index[bad]][:5]
    assert f"{len(filled) - finding.count} of its {len(filled)} filled values" in finding.explanation
    assert [r.strategy for r in finding.resolutions] == ["coerce_numeric", "drop_rows", "flag_only"]
    assert str(planted.non_numbers) in finding.resolutions[0].rationale


def test_outliers_use_tukey_fences(planted: Planted) -> None:
    frame = planted.frame
    finding = _by_id(frame)["outliers:price"]
    q1, q3 = frame["price"].quantile([0.25, 0.75])
    lower, upper = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
    mask = (frame["price"] < lower) | (frame["price"] > upper)
    assert finding.count == int(mask.sum()) == planted.extremes
    assert finding.sample_rows == _first_positions(mask)
    cap = finding.resolutions[0]
    assert cap.strategy == "cap_to_fences"
    assert np.isclose(cap.params["lower"], lower) and np.isclose(cap.params["upper"], upper)
    assert [r.strategy for r in finding.resolutions] == [
        "cap_to_fences",
        "winsorize",
        "drop_rows",
        "flag_only",
    ]
    assert f"[{lower:.4g}, {upper:.4g}]" in finding.explanation


def test_clean_frame_has_no_findings_and_full_score(planted: Planted) -> None:
    clean = planted.frame[list(CLEAN)].drop_duplicates()
    result = assess(frame=clean)
    assert result.findings == []
    assert result.score == 100.0


def test_score_follows_the_documented_formula(planted: Planted) -> None:
    frame = planted.frame
    result = assess(frame=frame)
    rows, cols = frame.shape
    weighted = (
        planted.missing_amount
        + planted.missing_city
        + planted.duplicates * cols
        + planted.duplicates  # duplicate_keys:row_id
        + planted.non_numbers
        + 0.5 * planted.extremes
    )
    assert result.score == round(100 * (1 - weighted / (rows * cols)), 2)
    assert quality_score(frame=frame, findings=result.findings) == result.score


def test_severity_thresholds_and_high_share() -> None:
    values = [1.0] * 75 + [np.nan] * 25
    finding = _by_id(pd.DataFrame({"x": values}))["missing_values:x"]
    assert finding.severity == "high" and finding.share == 0.25


def test_outlier_detector_skips_few_values_and_zero_iqr() -> None:
    few = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 1000.0]})  # 7 values
    enough = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 1000.0]})  # 8 values
    flat = pd.DataFrame({"x": [5.0] * 30 + [1000.0]})  # IQR is 0
    assert assess(frame=few).findings == []
    assert [f.id for f in assess(frame=enough).findings] == ["outliers:x"]
    assert "outliers:x" not in [f.id for f in assess(frame=flat).findings]


def test_mostly_text_column_is_not_a_type_mismatch() -> None:
    frame = pd.DataFrame({"t": ["1", "2", "3", "4", "a", "b", "c", "d", "e", "f"]})
    assert assess(frame=frame).findings == []
    mostly_numbers = pd.DataFrame({"t": ["1", "2", "3", "4", "5", "6", "7", "8", "9", "x"]})
    assert [f.id for f in assess(frame=mostly_numbers).findings] == ["type_mismatch:t"]


def test_assess_does_not_change_its_input(planted: Planted) -> None:
    before = planted.frame.copy(deep=True)
    assess(frame=planted.frame)
    pd.testing.assert_frame_equal(planted.frame, before)


def test_empty_frame() -> None:
    result = assess(frame=pd.DataFrame({"a": pd.Series([], dtype="float64")}))
    assert result.findings == [] and result.score == 100.0
