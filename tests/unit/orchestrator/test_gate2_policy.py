"""`--yes` at gate 2: each top fix only when it is low-risk; the rest is left for a person."""

from typing import Any

import numpy as np
import pandas as pd

from lockflow.common.models import Finding, Resolution
from lockflow.common.pipeline import DecisionContext, check_quality_choices
from lockflow.orchestrator.policy import PolicyDecision, default_policy, resolve
from lockflow.quality.detect import assess


def _frame() -> pd.DataFrame:
    """Exact repeats and padded categories (low-risk fixes), gaps in numbers and outliers (not low-risk)."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "delay": rng.normal(10.0, 2.0, 200),
            "gate": pd.Series(
                [f"G{i % 7} " if i % 10 == 0 else f"G{i % 7}" for i in range(200)], dtype="str"
            ),
        }
    )
    frame.loc[[3, 17, 40, 41], "delay"] = np.nan
    frame.loc[[5, 60], "delay"] = [80.0, -60.0]
    return pd.concat([frame, frame.iloc[:6]], ignore_index=True)


def _request(findings: list[Finding]) -> dict[str, Any]:
    return {"gate": "quality_review", "context": {"findings": [f.model_dump(mode="json") for f in findings]}}


def _context(frame: pd.DataFrame, findings: list[Finding]) -> DecisionContext:
    numeric = frozenset(c for c in frame.columns if pd.api.types.is_float_dtype(frame[c]))
    return DecisionContext(
        columns=frozenset(frame.columns),
        numeric_columns=numeric,
        finding_strategies={f.id: frozenset(r.strategy for r in f.resolutions) for f in findings},
        finding_columns={f.id: tuple(f.columns) for f in findings},
        finding_params={f.id: {r.strategy: frozenset(r.params) for r in f.resolutions} for f in findings},
        finding_defaults={f.id: {r.strategy: dict(r.params) for r in f.resolutions} for f in findings},
    )


def _finding(fid: str, resolutions: list[Resolution], columns: list[str] | None = None) -> Finding:
    return Finding(
        id=fid,
        category=fid.split(":")[0],  # type: ignore[arg-type]
        severity="low",
        columns=columns or [fid.split(":")[-1]],
        count=3,
        share=0.03,
        sample_rows=[],
        explanation="made up",
        resolutions=resolutions,
    )


def test_yes_fixes_low_risk_findings_and_leaves_the_rest() -> None:
    frame = _frame()
    findings = assess(frame=frame).findings
    by_id = {f.id: f for f in findings}
    assert by_id["duplicate_rows"].resolutions[0].risk == "low"
    assert by_id["inconsistent_categories:gate"].resolutions[0].risk == "low"  # 'G3 ' -> 'G3' only
    assert by_id["missing_values:delay"].resolutions[0].risk == "medium"
    assert by_id["outliers:delay"].resolutions[0].risk == "medium"

    decision = resolve(default_policy(), request=_request(findings), visit=0)
    assert decision is not None and decision.option == "apply"
    chosen = {c["finding_id"]: c["strategy"] for c in decision.params["choices"]}
    assert chosen == {
        "duplicate_rows": "drop_duplicates_keep_first",
        "inconsistent_categories:gate": "merge_categories",
    }
    assert decision.rationale.startswith("--yes: fixed 2: duplicate_rows (drop_duplicates_keep_first)")
    assert "left 2 for a person: missing_values:delay (impute_median is medium-risk: " in (decision.rationale)
    capped = by_id["outliers:delay"].count
    assert f"outliers:delay (cap_to_fences is medium-risk: changes {capped} cells" in decision.rationale
    # What --yes answers is a decision the gate accepts as it is.
    check_quality_choices(decision.params, _context(frame, findings))


def test_top_any_takes_every_top_fix_whatever_its_risk() -> None:
    findings = assess(frame=_frame()).findings
    policy = {gate: list(entries) for gate, entries in default_policy().items()}
    for gate in policy:
        if gate.value == "quality_review":
            policy[gate] = [PolicyDecision(option="apply", params={"choices": "top_any"}, rationale="mine")]
    decision = resolve(policy, request=_request(findings), visit=0)
    assert decision is not None
    chosen = {c["finding_id"]: c["strategy"] for c in decision.params["choices"]}
    assert chosen["missing_values:delay"] == "impute_median"
    assert chosen["outliers:delay"] == "cap_to_fences"
    assert decision.rationale.startswith("mine: fixed 4")


def test_top_any_replaces_a_fix_the_gate_would_refuse_beside_the_others() -> None:
    frame = pd.DataFrame(
        {"n": pd.Series(["1", "2", "", "4", "5", "6", "7", "8", "9", "10", "x"], dtype="str")}
    )
    findings = assess(frame=frame).findings
    assert [f.resolutions[0].strategy for f in findings] == ["fill_constant", "coerce_numeric"]
    policy = {g: e for g, e in default_policy().items()}
    policy[next(g for g in policy if g.value == "quality_review")] = [
        PolicyDecision(option="apply", params={"choices": "top_any"})
    ]
    decision = resolve(policy, request=_request(findings), visit=0)
    assert decision is not None
    # 'unknown' cannot fill a column coerce_numeric turns into numbers: the first choice is kept,
    # the clashing one is flagged instead, and the gate accepts the result.
    assert decision.params["choices"] == [
        {"finding_id": "missing_values:n", "strategy": "fill_constant"},
        {"finding_id": "type_mismatch:n", "strategy": "flag_only"},
    ]
    assert "replaced 1 the gate would refuse" in decision.rationale
    check_quality_choices(decision.params, _context(frame, findings))


def test_a_finding_without_a_flag_is_left_and_nothing_low_risk_accepts_as_is() -> None:
    risky = _finding(
        "duplicate_keys:id", [Resolution(strategy="drop_duplicates_most_complete", rationale="x")]
    )
    unjudged = _finding(  # an older producer's resolution carries no risk: it counts as high
        "missing_values:city",
        [Resolution.model_validate({"strategy": "impute_mode", "rationale": "x"})],
    )
    decision = resolve(default_policy(), request=_request([risky, unjudged]), visit=0)
    assert decision is not None and decision.option == "accept_as_is"
    assert "left 2 for a person: duplicate_keys:id (drop_duplicates_most_complete is high-risk: " in (
        decision.rationale
    )


def test_no_findings_accepts_as_is() -> None:
    decision = resolve(default_policy(), request=_request([]), visit=0)
    assert decision is not None and decision.option == "accept_as_is"
    assert decision.rationale == "--yes: no findings to fix"
