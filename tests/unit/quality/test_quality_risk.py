"""Every offered fix states its risk and what it changes; the ranking puts keeping the data first
where a finding only describes it, and the mode first only where it is overwhelmingly the value."""

from datetime import date

import numpy as np
import pandas as pd
import pytest
from test_quality_catalogue import RULES, build

from lockflow.common.kinds import RISKS
from lockflow.common.models import ColumnSchema, Finding, Resolution
from lockflow.quality.detect import assess
from lockflow.quality.risk import RANKS
from lockflow.qualityrules.rules import load_rules

DESCRIPTIVE = ("skew", "imbalance", "constant_column", "high_cardinality", "staleness", "time_gaps")


@pytest.fixture(scope="module")
def found() -> dict[str, Finding]:
    result = assess(frame=build(), rules=load_rules(RULES), as_of=date(2020, 6, 1), batch_rows=700)
    return {f.id: f for f in result.findings}


def _risks(finding: Finding) -> dict[str, str]:
    return {r.strategy: r.risk for r in finding.resolutions}


def test_every_offered_fix_states_its_risk_and_what_it_changes(found: dict[str, Finding]) -> None:
    for finding in found.values():
        for r in finding.resolutions:
            assert r.risk in RISKS and r.changes, (finding.id, r.strategy)
            if r.strategy == "flag_only":
                assert r.risk == "none"
            if r.strategy in ("drop_rows", "drop_column", "drop_duplicates_most_complete"):
                assert r.risk == "high", (finding.id, r.strategy)
            if r.strategy in ("cap_to_fences", "winsorize", "impute_median", "impute_mean", "set_missing"):
                assert RANKS[r.risk] >= RANKS["medium"], (finding.id, r.strategy)
    outliers = found["outliers:income"].resolutions[-1]
    assert outliers.strategy == "flag_only" and "adds column 'income_is_outlier'" in outliers.changes
    income = found["missing_values:income"]
    median = next(r for r in income.resolutions if r.strategy == "impute_median")
    assert median.changes == f"changes {income.count} cells ({100 * income.share:.1f}%) in 'income'"


def test_descriptive_findings_keep_the_data_first(found: dict[str, Finding]) -> None:
    present = [f for f in found.values() if f.category in DESCRIPTIVE]
    assert {f.category for f in present} >= {"constant_column", "imbalance", "time_gaps"}
    for finding in present:
        top = finding.resolutions[0]
        assert (top.strategy, top.risk) == ("flag_only", "none"), finding.id
    drift = assess(
        frame=pd.DataFrame({"a": [1, 2, 3]}),
        expected_schema=[ColumnSchema(name="b", dtype="integer", nullable=False, null_count=0, examples=[])],
    ).findings
    assert [(r.strategy, r.risk, r.changes) for r in drift[0].resolutions] == [
        ("flag_only", "none", "changes nothing in the data")
    ]


def test_exact_copies_are_low_risk_and_rows_sharing_a_key_are_not(found: dict[str, Finding]) -> None:
    assert _risks(found["duplicate_rows"]) == {
        "drop_duplicates_keep_first": "low",
        "drop_duplicates_keep_last": "low",
    }
    keys = found["duplicate_keys:customer_id"]
    assert {s: r for s, r in _risks(keys).items() if s != "flag_only"} == {
        "drop_duplicates_most_complete": "high",
        "drop_duplicates_keep_first": "high",
        "drop_duplicates_keep_last": "high",
    }


def _text_with_gaps(top_share: float, rows: int = 200) -> pd.DataFrame:
    top = round(top_share * (rows - 10))
    values = ["7:10 a.m."] * top + [f"{h}:05 p.m." for h in range(rows - 10 - top)] + [None] * 10
    return pd.DataFrame({"dep_time": pd.Series(values, dtype="str")})


def test_the_mode_goes_first_only_when_it_is_overwhelmingly_the_value() -> None:
    common = assess(frame=_text_with_gaps(0.95)).findings[0]
    assert [(r.strategy, r.risk) for r in common.resolutions][:2] == [
        ("impute_mode", "low"),
        ("fill_constant", "medium"),
    ]
    assert "'7:10 a.m.' holds 94.7% of the filled values" in common.resolutions[0].changes

    # The flights case: the most common departure time is not what the gaps hold.
    spread = assess(frame=_text_with_gaps(0.3)).findings
    gaps = next(f for f in spread if f.id == "missing_values:dep_time")
    assert gaps.resolutions[0].strategy == "fill_constant"
    mode = next(r for r in gaps.resolutions if r.strategy == "impute_mode")
    assert mode.risk == "high" and "under 90%" in mode.changes


def test_a_boolean_column_without_an_overwhelming_value_is_flagged_first() -> None:
    flags = pd.Series([True, False] * 20 + [None] * 4, dtype=object)
    gaps = assess(frame=pd.DataFrame({"active": flags})).findings[0]
    assert [r.strategy for r in gaps.resolutions] == ["flag_only", "impute_mode", "drop_rows"]


@pytest.mark.parametrize(("bad", "risk"), [(1, "low"), (20, "medium"), (100, "high")])
def test_a_conversion_is_low_risk_only_when_almost_nothing_is_lost(bad: int, risk: str) -> None:
    rng = np.random.default_rng(0)
    values = [f"{v:.2f}" for v in rng.uniform(0, 100, 1000 - bad)] + ["n.a.x"] * bad
    finding = assess(frame=pd.DataFrame({"fare": pd.Series(values, dtype="str")})).findings
    coerce = next(f for f in finding if f.id == "type_mismatch:fare").resolutions[0]
    assert (coerce.strategy, coerce.risk) == ("coerce_numeric", risk)
    assert f"{bad:,} values ({bad / 10:.1f}%) that are not numbers become missing" in coerce.changes


def test_merging_spellings_is_low_for_case_high_for_different_codes(found: dict[str, Finding]) -> None:
    # 'active ', 'ACTIVE' and the near spelling 'Activ' -> 'Active': not only case, so medium.
    assert found["inconsistent_categories:status"].resolutions[0].risk == "medium"

    case_only = pd.Series(["Oslo"] * 30 + ["oslo"] * 5 + ["Lima"] * 20, dtype="str")
    merge = _first_fix(pd.DataFrame({"city": case_only}), "inconsistent_categories:city")
    assert (merge.strategy, merge.risk) == ("merge_categories", "low")

    # Flight codes one digit apart are different flights: no merge is offered for them ...
    codes = pd.Series(["AA-1234"] * 30 + ["AA-1243"] * 5 + ["BA-77"] * 20, dtype="str")
    variants = [
        f for f in assess(frame=pd.DataFrame({"flight": codes})).findings if f.id.startswith("incons")
    ]
    for finding in variants:  # (the detector may stop reporting them at all)
        assert "merge_categories" not in _risks(finding)
        assert finding.resolutions[0].strategy == "flag_only"
    # ... and beside a real variant, the offered mapping leaves them out.
    codes = pd.Series(["AA-1234"] * 30 + ["AA-1243"] * 5 + ["BA-77"] * 20 + ["ba-77"] * 4, dtype="str")
    merge = _first_fix(pd.DataFrame({"flight": codes}), "inconsistent_categories:flight")
    assert (merge.strategy, merge.params, merge.risk) == (
        "merge_categories",
        {"mapping": {"ba-77": "BA-77"}},
        "low",
    )
    # The detector no longer clusters codes that differ in their digits, so none is even mentioned.
    assert "AA-1243" not in merge.rationale and "AA-1243" not in str(merge.params)
    assert merge.changes == "changes 4 cells (6.8%) in 'flight'; the variants differ only in case or spacing"


def _first_fix(frame: pd.DataFrame, finding_id: str) -> Resolution:
    return next(f for f in assess(frame=frame).findings if f.id == finding_id).resolutions[0]
