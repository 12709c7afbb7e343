"""Gates 3-5 refuse out-of-range parameters with a message that names the parameter."""

import pytest

from lockflow.common.models import Goal
from lockflow.common.pipeline import DecisionContext, Gate, InvalidDecision, decide

CONTEXT = DecisionContext(
    columns=frozenset({"revenue", "region", "spend", "flat", "day"}),
    numeric_columns=frozenset({"revenue", "spend", "flat"}),
    datetime_columns=frozenset({"day"}),
    constant_columns=frozenset({"flat"}),
    action_ids=frozenset({"act-1", "act-2"}),
)


def _decide(gate: Gate, option: str, params: dict):  # type: ignore[no-untyped-def, type-arg]
    return decide(
        open_gate=gate, request_gate=gate, request_open=True, submitted_gate=None,
        option=option, params=params, context=CONTEXT,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("gate", "option", "params", "message"),
    [
        (Gate.ANALYTICS_REVIEW, "modify", {"n_clusters": 0}, "n_clusters"),
        (Gate.ANALYTICS_REVIEW, "modify", {"contamination": 2}, "contamination"),
        (Gate.ANALYTICS_REVIEW, "modify", {"histogram_bins": 1}, "histogram_bins"),
        (Gate.ANALYTICS_REVIEW, "modify", {"target": "nope"}, "target 'nope' is not a numeric column"),
        (Gate.ANALYTICS_REVIEW, "modify", {"target": "flat"}, "target 'flat' is constant"),
        (Gate.ANALYTICS_REVIEW, "modify", {"date_column": "region"}, "date_column 'region'"),
        (Gate.ANALYTICS_REVIEW, "modify", {"steps": ["magic"]}, "steps"),
        (Gate.INSIGHT_REVIEW, "refine", {"goal": {"target": "nope"}}, "goal target 'nope'"),
        (Gate.INSIGHT_REVIEW, "refine", {"goal": {"target": "flat"}}, "constant"),
        (Gate.INSIGHT_REVIEW, "refine", {"goal": {"target": "revenue", "direction": "up"}}, "direction"),
        (Gate.INSIGHT_REVIEW, "refine", {"segment_of_interest": "city=Oslo"}, "segment_of_interest"),
        (Gate.INSIGHT_REVIEW, "refine", {"segment_of_interest": "no-equals"}, "segment_of_interest"),
        (Gate.ACTION_SELECTION, "choose", {"selected": ["act-1"], "owners": {"act-2": "Bo"}}, "not selected"),
        (
            Gate.ACTION_SELECTION,
            "choose",
            {"selected": ["act-1"], "owners": {"act-1": " "}},
            "owner is empty",
        ),
    ],
)
def test_bad_parameters_name_what_is_wrong(gate: Gate, option: str, params: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(InvalidDecision, match=message):
        _decide(gate, option, params)


def test_good_parameters_pass_and_min_max_mean_the_directions() -> None:
    assert _decide(
        Gate.ANALYTICS_REVIEW, "modify", {"target": "spend", "contamination": 0.05, "date_column": "day"}
    )
    refined = _decide(Gate.INSIGHT_REVIEW, "refine", {"goal": {"target": "revenue", "direction": "min"}})
    assert refined.params.goal == Goal(target="revenue", direction="decrease")  # type: ignore[union-attr]
    chosen = _decide(
        Gate.ACTION_SELECTION, "choose",
        {"selected": ["act-2", "act-1"], "owners": {"act-2": "Ana"}, "due": {"act-2": "2025-06-30"}},
    )  # fmt: skip
    assert chosen.params.selected == ["act-2", "act-1"]  # type: ignore[union-attr]
