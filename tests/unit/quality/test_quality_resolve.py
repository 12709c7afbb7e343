"""Resolution: each strategy does what it says (checked against pandas) on a copy of the frame."""

import numpy as np
import pandas as pd
import pytest
from conftest import Planted

from lockflow.common.errors import InvalidInput
from lockflow.common.models import Finding, ResolutionChoice
from lockflow.quality.detect import assess
from lockflow.quality.resolve import PHASES, STRATEGIES, Applied, apply_resolutions


def _apply(frame: pd.DataFrame, *picks: tuple[str, str], **params: object) -> tuple[Applied, list[Finding]]:
    """Assess `frame`, then apply (finding_id, strategy) picks; params go to the last pick."""
    findings = assess(frame=frame).findings
    choices = [ResolutionChoice(finding_id=f, strategy=s) for f, s in picks]
    if params:
        last = choices[-1]
        choices[-1] = ResolutionChoice(finding_id=last.finding_id, strategy=last.strategy, params=params)
    return apply_resolutions(frame=frame, findings=findings, choices=choices), findings


def _blank(series: pd.Series) -> pd.Series:
    return series.map(lambda v: bool(pd.isna(v)) or (isinstance(v, str) and v.strip() == "")).astype(bool)


def test_every_strategy_is_named_and_ordered() -> None:
    assert set(STRATEGIES) == set(PHASES)
    assert all(f.description for f in STRATEGIES.values())


@pytest.mark.parametrize(("strategy", "stat"), [("impute_median", "median"), ("impute_mean", "mean")])
def test_numeric_imputation(planted: Planted, strategy: str, stat: str) -> None:
    frame = planted.frame
    result, _ = _apply(frame, ("missing_values:amount", strategy))
    expected = frame["amount"].fillna(getattr(frame["amount"], stat)())
    pd.testing.assert_series_equal(result.frame["amount"], expected)
    assert result.applied[0].cells_changed == planted.missing_amount
    pd.testing.assert_frame_equal(result.frame.drop(columns="amount"), frame.drop(columns="amount"))


def test_drop_rows_with_missing_values(planted: Planted) -> None:
    frame = planted.frame
    result, _ = _apply(frame, ("missing_values:amount", "drop_rows"))
    expected = frame.dropna(subset=["amount"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(result.frame, expected)
    assert result.applied[0].rows_removed == planted.missing_amount


def test_impute_mode_fills_blanks_and_nulls(planted: Planted) -> None:
    frame = planted.frame
    result, _ = _apply(frame, ("missing_values:city", "impute_mode"))
    mask = _blank(frame["city"])
    mode = frame["city"][~mask].value_counts().idxmax()
    assert (result.frame["city"][mask] == mode).all()
    pd.testing.assert_series_equal(result.frame["city"][~mask], frame["city"][~mask])
    assert result.applied[0].cells_changed == planted.missing_city


def test_fill_constant_default_and_override(planted: Planted) -> None:
    frame = planted.frame
    mask = _blank(frame["city"])
    default, _ = _apply(frame, ("missing_values:city", "fill_constant"))
    assert (default.frame["city"][mask] == "unknown").all()
    override, _ = _apply(frame, ("missing_values:city", "fill_constant"), value="N/A")
    assert (override.frame["city"][mask] == "N/A").all()
    assert override.frame["city"].eq("N/A").sum() == planted.missing_city


def test_coerce_numeric(planted: Planted) -> None:
    frame = planted.frame
    result, _ = _apply(frame, ("type_mismatch:code", "coerce_numeric"))
    expected = pd.to_numeric(frame["code"], errors="coerce")
    pd.testing.assert_series_equal(result.frame["code"], expected, check_dtype=False)
    assert pd.api.types.is_numeric_dtype(result.frame["code"])
    assert int(result.frame["code"].isna().sum()) == planted.non_numbers
    assert result.applied[0].cells_changed == planted.non_numbers


def test_drop_rows_that_are_not_numbers(planted: Planted) -> None:
    frame = planted.frame
    result, _ = _apply(frame, ("type_mismatch:code", "drop_rows"))
    keep = pd.to_numeric(frame["code"], errors="coerce").notna()
    pd.testing.assert_frame_equal(result.frame, frame[keep].reset_index(drop=True))
    assert result.applied[0].rows_removed == planted.non_numbers


def test_cap_drop_and_flag_outliers(planted: Planted) -> None:
    frame = planted.frame
    q1, q3 = frame["price"].quantile([0.25, 0.75])
    lower, upper = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
    outside = (frame["price"] < lower) | (frame["price"] > upper)

    capped, _ = _apply(frame, ("outliers:price", "cap_to_fences"))
    pd.testing.assert_series_equal(capped.frame["price"], frame["price"].clip(lower, upper))
    assert capped.applied[0].cells_changed == planted.extremes

    dropped, _ = _apply(frame, ("outliers:price", "drop_rows"))
    pd.testing.assert_frame_equal(dropped.frame, frame[~outside].reset_index(drop=True))

    flagged, _ = _apply(frame, ("outliers:price", "flag_only"))
    pd.testing.assert_frame_equal(flagged.frame[frame.columns], frame)
    assert flagged.frame["price_is_outlier"].tolist() == outside.tolist()


def test_cap_with_user_fences(planted: Planted) -> None:
    frame = planted.frame
    result, _ = _apply(frame, ("outliers:price", "cap_to_fences"), lower=120.0, upper=180.0)
    pd.testing.assert_series_equal(result.frame["price"], frame["price"].clip(120.0, 180.0))
    assert result.applied[0].cells_changed == int(((frame["price"] < 120) | (frame["price"] > 180)).sum())


@pytest.mark.parametrize("keep", ["first", "last"])
def test_drop_duplicates(planted: Planted, keep: str) -> None:
    frame = planted.frame
    result, _ = _apply(frame, ("duplicate_rows", f"drop_duplicates_keep_{keep}"))
    pd.testing.assert_frame_equal(result.frame, frame.drop_duplicates(keep=keep).reset_index(drop=True))
    assert result.applied[0].rows_removed == planted.duplicates


def test_top_fixes_raise_the_score_and_leave_the_input_alone(planted: Planted) -> None:
    frame = planted.frame
    before = frame.copy(deep=True)
    assessment = assess(frame=frame)
    choices = [
        ResolutionChoice(finding_id=f.id, strategy=f.resolutions[0].strategy) for f in assessment.findings
    ]
    result = apply_resolutions(frame=frame, findings=assessment.findings, choices=choices)
    pd.testing.assert_frame_equal(frame, before)
    after = assess(frame=result.frame)
    assert after.score > assessment.score
    remaining = {f.id: f for f in after.findings}
    # Coercion leaves the 9 non-numbers missing (no missing-value finding existed to fill them).
    assert remaining.pop("missing_values:code").count == planted.non_numbers
    # Capped prices sit on the old fences; removing duplicates afterwards may nudge the quartiles,
    # so a re-assessment may flag values at the old fences, but none beyond them.
    cap = next(f for f in assessment.findings if f.id == "outliers:price").resolutions[0].params
    assert result.frame["price"].between(cap["lower"], cap["upper"]).all()
    assert set(remaining) <= {"outliers:price"}


def test_order_is_stable_whatever_the_choice_order(planted: Planted) -> None:
    frame = planted.frame
    findings = assess(frame=frame).findings
    picks = [
        ResolutionChoice(finding_id="duplicate_rows", strategy="drop_duplicates_keep_first"),
        ResolutionChoice(finding_id="missing_values:amount", strategy="drop_rows"),
        ResolutionChoice(finding_id="outliers:price", strategy="cap_to_fences"),
        ResolutionChoice(finding_id="type_mismatch:code", strategy="coerce_numeric"),
    ]
    forward = apply_resolutions(frame=frame, findings=findings, choices=picks)
    backward = apply_resolutions(frame=frame, findings=findings, choices=picks[::-1])
    pd.testing.assert_frame_equal(forward.frame, backward.frame)
    assert forward.applied == backward.applied
    assert [a.strategy for a in forward.applied] == [
        "coerce_numeric",
        "cap_to_fences",
        "drop_rows",
        "drop_duplicates_keep_first",
    ]
    rows_removed = sum(a.rows_removed for a in forward.applied)
    assert len(forward.frame) == len(frame) - rows_removed


def test_coerce_then_fill_needs_a_number() -> None:
    frame = pd.DataFrame({"n": ["1", "2", "", "4", "5", "6", "7", "8", "9", "10", "x"]})
    findings = assess(frame=frame).findings
    coerce = ResolutionChoice(finding_id="type_mismatch:n", strategy="coerce_numeric")
    fill = ResolutionChoice(finding_id="missing_values:n", strategy="fill_constant")
    with pytest.raises(InvalidInput, match="needs a number"):
        apply_resolutions(frame=frame, findings=findings, choices=[fill, coerce])
    zero = ResolutionChoice(finding_id="missing_values:n", strategy="fill_constant", params={"value": 0})
    result = apply_resolutions(frame=frame, findings=findings, choices=[zero, coerce])
    expected = pd.to_numeric(frame["n"], errors="coerce").fillna(0)
    np.testing.assert_array_equal(result.frame["n"].to_numpy(dtype=float), expected.to_numpy(dtype=float))
    assert [a.cells_changed for a in result.applied] == [1, 2]  # 'x' coerced, then '' and 'x' filled


@pytest.mark.parametrize(
    ("choice", "message"),
    [
        (ResolutionChoice(finding_id="missing_values:nope", strategy="drop_rows"), "unknown finding"),
        (ResolutionChoice(finding_id="missing_values:city", strategy="impute_median"), "not offered"),
        (ResolutionChoice(finding_id="duplicate_rows", strategy="shuffle"), "unknown strategy"),
        (
            ResolutionChoice(finding_id="missing_values:city", strategy="drop_rows", params={"value": 1}),
            "does not take value",
        ),
        (
            ResolutionChoice(
                finding_id="outliers:price", strategy="cap_to_fences", params={"lower": 9, "upper": 1}
            ),
            "is above upper",
        ),
        (
            ResolutionChoice(finding_id="outliers:price", strategy="cap_to_fences", params={"lower": "low"}),
            "needs a number",
        ),
    ],
)
def test_bad_choices_raise_invalid_input(planted: Planted, choice: ResolutionChoice, message: str) -> None:
    findings = assess(frame=planted.frame).findings
    with pytest.raises(InvalidInput, match=message):
        apply_resolutions(frame=planted.frame, findings=findings, choices=[choice])


def test_two_choices_for_one_finding_are_refused(planted: Planted) -> None:
    findings = assess(frame=planted.frame).findings
    choices = [
        ResolutionChoice(finding_id="missing_values:amount", strategy="impute_mean"),
        ResolutionChoice(finding_id="missing_values:amount", strategy="drop_rows"),
    ]
    with pytest.raises(InvalidInput, match="more than one resolution"):
        apply_resolutions(frame=planted.frame, findings=findings, choices=choices)
