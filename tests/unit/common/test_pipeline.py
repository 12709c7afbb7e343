"""Every transition of the pipeline definition and every way a decision can be refused."""

from dataclasses import replace
from datetime import date

import pytest

from lockflow.common.models import ActionSelection, AnalyticsParams
from lockflow.common.pipeline import (
    GATES,
    AbortRun,
    CompleteRun,
    DecisionContext,
    Gate,
    GateClosed,
    InsightRefinement,
    InvalidDecision,
    OpenGate,
    QualityChoices,
    RequestStep,
    SourceReconfiguration,
    Step,
    decide,
    next_after_step,
    option_specs,
)

CONTEXT = DecisionContext(
    columns=frozenset({"revenue", "region", "spend"}),
    numeric_columns=frozenset({"revenue", "spend"}),
    finding_strategies={"missing_values:spend": frozenset({"impute_median", "drop_rows"})},
    action_ids=frozenset({"act-1", "act-2"}),
)


def _decide(gate: Gate, option: str, params: dict | None = None, **overrides: object):
    kwargs = dict(
        open_gate=gate,
        request_gate=gate,
        request_open=True,
        submitted_gate=None,
        option=option,
        params=params,
        context=CONTEXT,
    )
    kwargs.update(overrides)
    return decide(**kwargs)  # type: ignore[arg-type]


# ---- transitions after each step ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "effect"),
    [
        (Step.INGEST, OpenGate(Gate.SOURCE_REVIEW)),
        (Step.ASSESS_QUALITY, OpenGate(Gate.QUALITY_REVIEW)),
        (Step.APPLY_RESOLUTIONS, RequestStep(Step.ANALYSE)),
        (Step.ANALYSE, OpenGate(Gate.ANALYTICS_REVIEW)),
        (Step.GENERATE_INSIGHTS, OpenGate(Gate.INSIGHT_REVIEW)),
        (Step.RECOMMEND, OpenGate(Gate.ACTION_SELECTION)),
        (Step.REPORT, CompleteRun()),
    ],
)
def test_what_follows_each_step(step: Step, effect: object) -> None:
    assert next_after_step(step) == effect


def test_every_step_has_a_successor() -> None:
    for step in Step:
        next_after_step(step)


# ---- transitions on each option ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("gate", "option", "params", "effect"),
    [
        (Gate.SOURCE_REVIEW, "approve", None, RequestStep(Step.ASSESS_QUALITY)),
        (Gate.SOURCE_REVIEW, "reconfigure", {"options": {"delimiter": ";"}}, RequestStep(Step.INGEST)),
        (
            Gate.QUALITY_REVIEW,
            "apply",
            {"choices": [{"finding_id": "missing_values:spend", "strategy": "drop_rows"}]},
            RequestStep(Step.APPLY_RESOLUTIONS),
        ),
        (Gate.QUALITY_REVIEW, "accept_as_is", None, RequestStep(Step.ANALYSE)),
        (Gate.ANALYTICS_REVIEW, "accept", None, RequestStep(Step.GENERATE_INSIGHTS)),
        (Gate.ANALYTICS_REVIEW, "modify", {"n_clusters": 3}, RequestStep(Step.ANALYSE)),
        (Gate.INSIGHT_REVIEW, "accept", None, RequestStep(Step.RECOMMEND)),
        (
            Gate.INSIGHT_REVIEW,
            "refine",
            {"goal": {"target": "spend", "direction": "decrease"}},
            RequestStep(Step.GENERATE_INSIGHTS),
        ),
        (Gate.ACTION_SELECTION, "choose", {"selected": ["act-2", "act-1"]}, RequestStep(Step.REPORT)),
    ],
)
def test_each_option_leads_where_the_definition_says(
    gate: Gate, option: str, params: dict | None, effect: object
) -> None:
    assert _decide(gate, option, params).effect == effect


@pytest.mark.parametrize("gate", list(Gate))
def test_every_gate_can_abort(gate: Gate) -> None:
    assert isinstance(_decide(gate, "abort").effect, AbortRun)


def test_loop_backs_return_to_the_step_before_their_gate() -> None:
    assert _decide(Gate.SOURCE_REVIEW, "reconfigure", {}).effect == RequestStep(
        GATES[Gate.SOURCE_REVIEW].after
    )
    assert _decide(Gate.ANALYTICS_REVIEW, "modify", {}).effect == RequestStep(
        GATES[Gate.ANALYTICS_REVIEW].after
    )
    assert _decide(Gate.INSIGHT_REVIEW, "refine", {}).effect == RequestStep(GATES[Gate.INSIGHT_REVIEW].after)


def test_parameters_are_parsed_into_their_models() -> None:
    assert isinstance(_decide(Gate.SOURCE_REVIEW, "reconfigure", {}).params, SourceReconfiguration)
    assert isinstance(_decide(Gate.ANALYTICS_REVIEW, "modify", {"n_clusters": 4}).params, AnalyticsParams)
    assert isinstance(_decide(Gate.INSIGHT_REVIEW, "refine", {"top_n": 3}).params, InsightRefinement)
    chosen = _decide(
        Gate.ACTION_SELECTION,
        "choose",
        {"selected": ["act-1"], "owners": {"act-1": "ana"}, "due": {"act-1": "2027-01-31"}},
    ).params
    assert isinstance(chosen, ActionSelection)
    assert chosen.due["act-1"] == date(2027, 1, 31)
    assert isinstance(
        _decide(
            Gate.QUALITY_REVIEW,
            "apply",
            {"choices": [{"finding_id": "missing_values:spend", "strategy": "impute_median"}]},
        ).params,
        QualityChoices,
    )


# ---- invalid decisions ---------------------------------------------------------------------------


def test_wrong_gate_is_refused() -> None:
    with pytest.raises(InvalidDecision, match="is for gate source_review"):
        _decide(Gate.SOURCE_REVIEW, "approve", submitted_gate="quality_review")


def test_closed_request_is_a_conflict() -> None:
    with pytest.raises(GateClosed, match="already decided"):
        _decide(Gate.SOURCE_REVIEW, "approve", request_open=False)


def test_request_for_a_gate_the_run_has_left_is_a_conflict() -> None:
    with pytest.raises(GateClosed):
        _decide(Gate.SOURCE_REVIEW, "approve", open_gate=Gate.QUALITY_REVIEW)
    with pytest.raises(GateClosed):
        _decide(Gate.SOURCE_REVIEW, "approve", open_gate=None)


@pytest.mark.parametrize("gate", list(Gate))
def test_unknown_option_names_the_valid_ones(gate: Gate) -> None:
    with pytest.raises(InvalidDecision, match=r"choose one of: .*abort"):
        _decide(gate, "maybe")


@pytest.mark.parametrize(
    ("gate", "option", "params", "message"),
    [
        (Gate.SOURCE_REVIEW, "approve", {"x": 1}, "takes no parameters"),
        (Gate.SOURCE_REVIEW, "reconfigure", {"options": {"delimiter": ";;"}}, "delimiter"),
        (Gate.SOURCE_REVIEW, "reconfigure", {"format": "xls"}, "format"),
        (Gate.QUALITY_REVIEW, "apply", {"choices": []}, "choices"),
        (
            Gate.QUALITY_REVIEW,
            "apply",
            {"choices": [{"finding_id": "nope", "strategy": "drop_rows"}]},
            "unknown finding",
        ),
        (
            Gate.QUALITY_REVIEW,
            "apply",
            {"choices": [{"finding_id": "missing_values:spend", "strategy": "magic"}]},
            "does not apply",
        ),
        (
            Gate.QUALITY_REVIEW,
            "apply",
            {
                "choices": [
                    {"finding_id": "missing_values:spend", "strategy": "drop_rows"},
                    {"finding_id": "missing_values:spend", "strategy": "impute_median"},
                ]
            },
            "more than one",
        ),
        (Gate.ANALYTICS_REVIEW, "modify", {"n_clusters": 1}, "n_clusters"),
        (Gate.ANALYTICS_REVIEW, "modify", {"n_clusters": "many"}, "n_clusters"),
        (Gate.ANALYTICS_REVIEW, "modify", {"features": ["region"]}, "numeric columns"),
        (Gate.ANALYTICS_REVIEW, "modify", {"unknown": 1}, "unknown"),
        (Gate.INSIGHT_REVIEW, "refine", {"goal": {"target": "region"}}, "not a numeric column"),
        (Gate.INSIGHT_REVIEW, "refine", {"alpha": 2}, "alpha"),
        (Gate.ACTION_SELECTION, "choose", {"selected": []}, "selected"),
        (Gate.ACTION_SELECTION, "choose", {"selected": ["act-9"]}, "unknown action"),
        (Gate.ACTION_SELECTION, "choose", {"selected": ["act-1", "act-1"]}, "only once"),
        (Gate.ACTION_SELECTION, "choose", {"selected": ["act-1"], "due": {"act-1": "soon"}}, "due"),
    ],
)
def test_bad_parameters_are_refused_with_a_reason(
    gate: Gate, option: str, params: dict, message: str
) -> None:
    with pytest.raises(InvalidDecision, match=message):
        _decide(gate, option, params)


def test_an_empty_plan_is_accepted_only_when_nothing_was_recommended() -> None:
    nothing = replace(CONTEXT, action_ids=frozenset())
    accepted = _decide(Gate.ACTION_SELECTION, "choose", {"selected": []}, context=nothing)
    assert isinstance(accepted.params, ActionSelection) and accepted.params.selected == []
    with pytest.raises(InvalidDecision, match="at least one action"):
        _decide(Gate.ACTION_SELECTION, "choose", {"selected": []})


def test_option_specs_show_parameter_schemas() -> None:
    specs = {s["name"]: s for s in option_specs(Gate.ANALYTICS_REVIEW)}
    assert specs["accept"]["params_schema"] is None
    assert "n_clusters" in specs["modify"]["params_schema"]["properties"]
