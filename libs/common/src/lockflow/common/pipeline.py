"""The pipeline definition: stages, the five gates, their options and loop-backs.

Pure: no I/O. The orchestrator applies these rules to persisted run state; every transition and
every way a decision can be invalid is unit-tested in tests/unit/test_pipeline.py.
"""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from lockflow.common.errors import Conflict, InvalidInput
from lockflow.common.models import (
    ActionSelection,
    AnalyticsParams,
    Goal,
    Model,
    ResolutionChoice,
    SourceFormat,
    SourceOptions,
)
from lockflow.common.stream_contract import check_contract
from lockflow.common.streams import STREAM_FINDINGS, StreamPolicyRule, UnapprovedMode


class Step(StrEnum):
    """A unit of stage work the orchestrator can ask for."""

    INGEST = "ingest"
    ASSESS_QUALITY = "assess_quality"
    APPLY_RESOLUTIONS = "apply_resolutions"
    ANALYSE = "analyse"
    GENERATE_INSIGHTS = "generate_insights"
    RECOMMEND = "recommend"
    REPORT = "report"


STAGE_OF_STEP: dict[Step, str] = {
    Step.INGEST: "ingest",
    Step.ASSESS_QUALITY: "quality",
    Step.APPLY_RESOLUTIONS: "quality",
    Step.ANALYSE: "analytics",
    Step.GENERATE_INSIGHTS: "insights",
    Step.RECOMMEND: "recommendations",
    Step.REPORT: "reporting",
}
STAGES: tuple[str, ...] = ("ingest", "quality", "analytics", "insights", "recommendations", "reporting")


# A live stream's commands (StartStream, StopStream, ApplyStreamPolicy) go to the stream worker's stage.
STREAM_STAGE = "streams"
# The current_step of a stream run once its contract is approved: the stream worker consumes it.
STREAMING = "stream"


def all_topics(prefix: str) -> list[str]:
    """Every topic lockflow uses: the events topic and each stage's commands (DLQs: ensure_topics)."""
    return [f"{prefix}.events", *[f"{prefix}.commands.{s}" for s in (*STAGES, STREAM_STAGE)]]


class Gate(StrEnum):
    """The five points where a person decides."""

    SOURCE_REVIEW = "source_review"
    QUALITY_REVIEW = "quality_review"
    ANALYTICS_REVIEW = "analytics_review"
    INSIGHT_REVIEW = "insight_review"
    ACTION_SELECTION = "action_selection"


# ---- parameters of options that take them ----------------------------------------------------


class SourceReconfiguration(Model):
    """Gate 1 'reconfigure': read the source again with other settings."""

    path: str | None = None
    format: SourceFormat | None = None
    options: SourceOptions = Field(default_factory=SourceOptions)


class QualityChoices(Model):
    """Gate 2 'apply': one chosen resolution per finding."""

    choices: list[ResolutionChoice] = Field(min_length=1)


class InsightRefinement(Model):
    """Gate 4 'refine': a new goal and/or thresholds for the insights."""

    goal: Goal | None = None
    alpha: float | None = Field(default=None, gt=0, lt=0.5)
    top_n: int | None = Field(default=None, ge=1, le=100)
    min_segment_rows: int | None = Field(default=None, ge=5)
    segment_of_interest: str | None = Field(default=None, pattern=r"^[^=]+=.*$")
    min_abs_correlation: float | None = Field(default=None, gt=0, le=1)


# ---- effects the orchestrator carries out -------------------------------------------------------


@dataclass(frozen=True)
class RequestStep:
    """Send the command for this step."""

    step: Step


@dataclass(frozen=True)
class OpenGate:
    """Ask a person to decide at this gate."""

    gate: Gate


@dataclass(frozen=True)
class CompleteRun:
    """The report is stored: the run is done."""


@dataclass(frozen=True)
class AbortRun:
    """A person stopped the run at a gate."""

    reason: str


@dataclass(frozen=True)
class StartStreaming:
    """A stream's contract is approved: the stream worker starts consuming it (StartStream)."""


@dataclass(frozen=True)
class ApplyPolicy:
    """A new version of a stream's standing policy: every window from now on (ApplyStreamPolicy)."""


@dataclass(frozen=True)
class KeepStreaming:
    """Gate 2 of a stream closed with the policy in force unchanged; the stream goes on."""


@dataclass(frozen=True)
class StopStreaming:
    """A person stopped the stream (StopStream); the run ends."""

    reason: str


Effect = (
    RequestStep
    | OpenGate
    | CompleteRun
    | AbortRun
    | StartStreaming
    | ApplyPolicy
    | KeepStreaming
    | StopStreaming
)


@dataclass(frozen=True)
class GateOption:
    """One choice at a gate, what its parameters look like, and where it leads."""

    name: str
    description: str
    effect: Effect
    params_model: type[BaseModel] | None = None


@dataclass(frozen=True)
class GateDefinition:
    """A gate: the step it follows and its options."""

    gate: Gate
    title: str
    after: Step
    options: tuple[GateOption, ...]

    def option(self, name: str) -> GateOption:
        """The named option, or InvalidDecision naming the valid ones."""
        for option in self.options:
            if option.name == name:
                return option
        valid = ", ".join(o.name for o in self.options)
        raise InvalidDecision(f"unknown option {name!r} at gate {self.gate.value}; choose one of: {valid}")


_ABORT = GateOption("abort", "Stop the run here.", AbortRun("aborted at gate"))

GATES: dict[Gate, GateDefinition] = {
    Gate.SOURCE_REVIEW: GateDefinition(
        Gate.SOURCE_REVIEW,
        "Approve the source and its inferred schema",
        Step.INGEST,
        (
            GateOption(
                "approve",
                "The source and schema are right; assess quality.",
                RequestStep(Step.ASSESS_QUALITY),
            ),
            GateOption(
                "reconfigure",
                "Read the source again with other settings.",
                RequestStep(Step.INGEST),
                SourceReconfiguration,
            ),
            _ABORT,
        ),
    ),
    Gate.QUALITY_REVIEW: GateDefinition(
        Gate.QUALITY_REVIEW,
        "Choose quality fixes",
        Step.ASSESS_QUALITY,
        (
            GateOption(
                "apply",
                "Apply the chosen resolutions, then analyse the cleaned data.",
                RequestStep(Step.APPLY_RESOLUTIONS),
                QualityChoices,
            ),
            GateOption("accept_as_is", "Analyse the data without changes.", RequestStep(Step.ANALYSE)),
            _ABORT,
        ),
    ),
    Gate.ANALYTICS_REVIEW: GateDefinition(
        Gate.ANALYTICS_REVIEW,
        "Accept or modify the analytics",
        Step.ANALYSE,
        (
            GateOption(
                "accept", "Use these analytics to find insights.", RequestStep(Step.GENERATE_INSIGHTS)
            ),
            GateOption(
                "modify",
                "Run the analytics again with new parameters.",
                RequestStep(Step.ANALYSE),
                AnalyticsParams,
            ),
            _ABORT,
        ),
    ),
    Gate.INSIGHT_REVIEW: GateDefinition(
        Gate.INSIGHT_REVIEW,
        "Accept or refine the insights",
        Step.GENERATE_INSIGHTS,
        (
            GateOption(
                "accept", "Turn these insights into recommended actions.", RequestStep(Step.RECOMMEND)
            ),
            GateOption(
                "refine",
                "Find insights again with a refined goal or thresholds.",
                RequestStep(Step.GENERATE_INSIGHTS),
                InsightRefinement,
            ),
            _ABORT,
        ),
    ),
    Gate.ACTION_SELECTION: GateDefinition(
        Gate.ACTION_SELECTION,
        "Pick and order the final actions",
        Step.RECOMMEND,
        (
            GateOption(
                "choose",
                "These actions, in this order, are the plan.",
                RequestStep(Step.REPORT),
                ActionSelection,
            ),
            _ABORT,
        ),
    ),
}
GATE_AFTER_STEP: dict[Step, Gate] = {d.after: g for g, d in GATES.items()}


class StreamApproval(Model):
    """Gate 1 of a stream 'approve': the contract as inferred, or as the person edited it."""

    contract: dict[str, Any] | None = Field(
        default=None, description="The JSON Schema of one record; the inferred one when left out"
    )
    unapproved_mode: UnapprovedMode | None = Field(
        default=None,
        description="Before the first policy: hold or pass records (the source's setting if unset)",
    )


class StreamPolicyChoice(Model):
    """Gate 2 of a stream 'apply_policy': one rule per finding kind (and field), and when to ask again."""

    rules: list[StreamPolicyRule] = Field(min_length=1)
    reopen_violation_rate: float = Field(default=0.05, ge=0, le=1)
    reopen_score_drop: float = Field(default=15.0, ge=0, le=100)


_STOP = GateOption("stop", "Stop the stream; the run ends.", StopStreaming("stopped at gate"))

# A stream's gates: the same two decisions a batch run's first gates take, about a stream that goes on.
STREAM_GATES: dict[Gate, GateDefinition] = {
    Gate.SOURCE_REVIEW: GateDefinition(
        Gate.SOURCE_REVIEW,
        "Approve the stream's contract",
        Step.INGEST,
        (
            GateOption(
                "approve",
                "This contract (as inferred, or edited) is right; start checking the stream's windows.",
                StartStreaming(),
                StreamApproval,
            ),
            GateOption("resample", "Read a new sample from the topic.", RequestStep(Step.INGEST)),
            _ABORT,
        ),
    ),
    Gate.QUALITY_REVIEW: GateDefinition(
        Gate.QUALITY_REVIEW,
        "Approve the stream's standing quality policy",
        Step.ASSESS_QUALITY,
        (
            GateOption(
                "apply_policy",
                "Apply these rules to every window that closes from now on (a new policy version).",
                ApplyPolicy(),
                StreamPolicyChoice,
            ),
            GateOption("keep_policy", "Keep the policy in force unchanged.", KeepStreaming()),
            _STOP,
        ),
    ),
}


def gate_definitions(*, stream: bool = False) -> dict[Gate, GateDefinition]:
    """The gates of a batch run, or of a stream."""
    return STREAM_GATES if stream else GATES


class InvalidDecision(InvalidInput):
    """The decision does not fit the open gate (wrong gate, unknown option, bad parameters)."""


class GateClosed(Conflict):
    """The gate was already decided (or the run has moved on)."""


@dataclass(frozen=True)
class DecisionContext:
    """What a decision's parameters are checked against: the run's current results."""

    columns: frozenset[str] = frozenset()
    numeric_columns: frozenset[str] = frozenset()
    finding_strategies: dict[str, frozenset[str]] = field(default_factory=dict)
    finding_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    finding_params: dict[str, dict[str, frozenset[str]]] = field(default_factory=dict)
    # finding id -> strategy -> the params its resolution offers (their values: fill_constant's 'value').
    finding_defaults: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    action_ids: frozenset[str] = frozenset()
    datetime_columns: frozenset[str] = frozenset()
    constant_columns: frozenset[str] = frozenset()
    # A stream: its event-time and key fields, the fields of its contract, the finding kinds gate 2 was
    # opened about (each needs a rule), and whether a policy is already in force.
    stream: bool = False
    event_time_field: str | None = None
    key_field: str | None = None
    stream_fields: frozenset[str] = frozenset()
    stream_kinds: frozenset[str] = frozenset()
    has_policy: bool = False


@dataclass(frozen=True)
class AcceptedDecision:
    """A decision that passed every check, with its parsed parameters and effect."""

    gate: Gate
    option: str
    params: BaseModel | None
    effect: Effect


def next_after_step(step: Step) -> Effect:
    """What follows a finished step: its gate, the next step, or completion."""
    if step in GATE_AFTER_STEP:
        return OpenGate(GATE_AFTER_STEP[step])
    if step is Step.APPLY_RESOLUTIONS:
        return RequestStep(Step.ANALYSE)
    if step is Step.REPORT:
        return CompleteRun()
    raise ValueError(f"no transition after step {step}")


def decide(
    *,
    open_gate: Gate | None,
    request_gate: Gate,
    request_open: bool,
    submitted_gate: str | None,
    option: str,
    params: dict[str, Any] | None,
    context: DecisionContext,
) -> AcceptedDecision:
    """Check a decision against the open request and return its effect, or raise why not."""
    if not request_open or open_gate is not request_gate:
        raise GateClosed(f"gate {request_gate.value} is closed: it was already decided")
    if submitted_gate is not None and submitted_gate != request_gate.value:
        raise InvalidDecision(
            f"this decision request is for gate {request_gate.value}, not {submitted_gate!r}"
        )
    definition = gate_definitions(stream=context.stream)[request_gate]
    chosen = definition.option(option)
    parsed = _parse_params(chosen, params or {})
    if chosen.name == "keep_policy" and not context.has_policy:
        raise InvalidDecision("no policy is in force yet: approve one with apply_policy, or stop the stream")
    _check_against_context(request_gate, parsed, context)
    return AcceptedDecision(request_gate, chosen.name, parsed, chosen.effect)


def _parse_params(option: GateOption, params: dict[str, Any]) -> BaseModel | None:
    if option.params_model is None:
        if params:
            raise InvalidDecision(f"option {option.name!r} takes no parameters, got: {', '.join(params)}")
        return None
    try:
        return option.params_model.model_validate(params)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidDecision(f"bad parameters for {option.name!r}: {problems}") from exc


def _check_against_context(gate: Gate, params: BaseModel | None, context: DecisionContext) -> None:
    if isinstance(params, StreamApproval):
        _check_stream_approval(params, context)
    elif isinstance(params, StreamPolicyChoice):
        check_stream_policy(params, context)
    elif isinstance(params, QualityChoices):
        _check_quality_choices(params, context)
    elif isinstance(params, AnalyticsParams):
        _check_analytics_params(params, context)
    elif isinstance(params, InsightRefinement):
        if params.goal and params.goal.target:
            _check_target(params.goal.target, "goal target", context)
        if params.segment_of_interest:
            column = params.segment_of_interest.split("=", 1)[0]
            if column not in context.columns:
                raise InvalidDecision(
                    f"segment_of_interest {params.segment_of_interest!r}: {column!r} is not a column "
                    "of the dataset (write it as column=value)"
                )
    elif isinstance(params, ActionSelection):
        if not params.selected and context.action_ids:
            raise InvalidDecision("selected: choose at least one action (or abort the run)")
        unknown = [i for i in params.selected if i not in context.action_ids]
        if unknown:
            raise InvalidDecision(f"unknown action ids: {', '.join(unknown)}")


def _check_stream_approval(params: StreamApproval, context: DecisionContext) -> None:
    if params.contract is None:
        return
    try:
        check_contract(
            params.contract, event_time_field=context.event_time_field or "", key_field=context.key_field
        )
    except InvalidInput as exc:
        raise InvalidDecision(f"contract: {exc}") from exc


def check_stream_policy(params: StreamPolicyChoice, context: DecisionContext) -> None:
    """Each rule's action must be one its kind allows, its field one of the contract's, one rule per
    kind and field, a constant for repair_constant, and a rule for every kind gate 2 was opened about."""
    seen: set[tuple[str, str | None]] = set()
    for rule in params.rules:
        facts = STREAM_FINDINGS[rule.kind]
        if rule.action not in facts.actions:
            raise InvalidDecision(
                f"{rule.kind}: action {rule.action!r} does not apply to {facts.words}; "
                f"choose one of: {', '.join(facts.actions)}"
            )
        if rule.field is not None and context.stream_fields and rule.field not in context.stream_fields:
            raise InvalidDecision(f"{rule.kind}: {rule.field!r} is not a field of the stream's contract")
        if rule.action == "repair_constant" and rule.constant is None:
            raise InvalidDecision(f"{rule.kind}: repair_constant needs the 'constant' it writes")
        if (rule.kind, rule.field) in seen:
            where = f" for field {rule.field!r}" if rule.field else ""
            raise InvalidDecision(f"{rule.kind} has more than one rule{where}")
        seen.add((rule.kind, rule.field))
    missing = sorted(context.stream_kinds - {kind for kind, _ in seen})
    if missing:
        raise InvalidDecision(
            f"give a rule for every kind of finding the stream showed; missing: {', '.join(missing)}"
        )


def _check_analytics_params(params: AnalyticsParams, context: DecisionContext) -> None:
    if params.features:
        unknown = sorted(set(params.features) - context.numeric_columns)
        if unknown:
            raise InvalidDecision(
                f"features must be numeric columns of the dataset; not: {', '.join(unknown)}"
            )
    if params.target:
        _check_target(params.target, "target", context)
    if params.date_column and params.date_column not in context.datetime_columns:
        valid = ", ".join(sorted(context.datetime_columns)) or "(none)"
        raise InvalidDecision(
            f"date_column {params.date_column!r} is not a date column of the dataset; date columns: {valid}"
        )


def _check_target(target: str, what: str, context: DecisionContext) -> None:
    if target not in context.numeric_columns:
        valid = ", ".join(sorted(context.numeric_columns)) or "(none)"
        raise InvalidDecision(
            f"{what} {target!r} is not a numeric column of the dataset; numeric columns: {valid}"
        )
    if target in context.constant_columns:
        raise InvalidDecision(f"{what} {target!r} is constant in this data, so nothing can move it")


def check_quality_choices(params: dict[str, Any], context: DecisionContext) -> QualityChoices:
    """Parse and check gate 2 'apply' parameters as `decide` would (used by the preview)."""
    option = GATES[Gate.QUALITY_REVIEW].option("apply")
    parsed = _parse_params(option, params)
    assert isinstance(parsed, QualityChoices)
    _check_quality_choices(parsed, context)
    return parsed


def _check_quality_choices(params: QualityChoices, context: DecisionContext) -> None:
    seen: set[str] = set()
    for choice in params.choices:
        strategies = context.finding_strategies.get(choice.finding_id)
        if strategies is None:
            raise InvalidDecision(f"unknown finding {choice.finding_id!r}")
        if choice.strategy not in strategies:
            raise InvalidDecision(
                f"strategy {choice.strategy!r} does not apply to {choice.finding_id!r}; "
                f"choose one of: {', '.join(sorted(strategies))}"
            )
        if choice.finding_id in seen:
            raise InvalidDecision(f"finding {choice.finding_id!r} has more than one resolution chosen")
        seen.add(choice.finding_id)
        _check_choice_params(choice, params, context)


# Parameters a quality choice may set beyond those the finding's resolution offers.
QUALITY_EXTRA_PARAMS: dict[str, frozenset[str]] = {
    "flag_only": frozenset({"column"}),
    "cap_to_fences": frozenset({"lower", "upper"}),
    "winsorize": frozenset({"lower_quantile", "upper_quantile"}),
    "fill_constant": frozenset({"value"}),
    "merge_categories": frozenset({"mapping"}),
}
NUMERIC_STRATEGIES = frozenset(
    {"impute_mean", "impute_median", "impute_interpolate", "winsorize", "cap_to_fences"}
)
NUMBER_PARAMS = frozenset({"lower", "upper", "lower_quantile", "upper_quantile"})


def _check_choice_params(choice: ResolutionChoice, params: QualityChoices, context: DecisionContext) -> None:
    """Parameters must be ones the strategy takes, and fit the column (no mean of a text column)."""
    offered = context.finding_params.get(choice.finding_id, {}).get(choice.strategy, frozenset())
    allowed = offered | QUALITY_EXTRA_PARAMS.get(choice.strategy, frozenset())
    unknown = sorted(set(choice.params) - allowed)
    if unknown:
        raise InvalidDecision(
            f"strategy {choice.strategy!r} for {choice.finding_id!r} does not take {', '.join(unknown)} "
            f"(it takes: {', '.join(sorted(allowed)) or 'no parameters'})"
        )
    for name in sorted(NUMBER_PARAMS & set(choice.params)):
        value = choice.params[name]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise InvalidDecision(f"{choice.strategy} for {choice.finding_id!r} needs a number as {name!r}")
    _check_bounds(choice, context)
    mapping = choice.params.get("mapping", {})
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
    ):
        raise InvalidDecision(
            f"{choice.strategy} for {choice.finding_id!r} needs 'mapping': an object of text to text"
        )
    if not isinstance(choice.params.get("column", ""), str):
        raise InvalidDecision(f"{choice.strategy} for {choice.finding_id!r} needs a column name as 'column'")
    columns = context.finding_columns.get(choice.finding_id, ())
    if not columns:
        return
    column = columns[0]
    conversions = _conversions(column, params, context)
    if len(conversions) > 1:
        both = " and ".join(f"{strategy} ({finding})" for strategy, finding in conversions)
        raise InvalidDecision(
            f"column {column!r} cannot be converted twice: {both} were both chosen for it; choose one of them"
        )
    converted = {strategy for strategy, _ in conversions}
    to_numbers = "coerce_numeric" in converted or (column in context.numeric_columns and not converted)
    to_dates = "coerce_datetime" in converted or (column in context.datetime_columns and not converted)
    if choice.strategy == "mask_personal_data" and converted:
        raise InvalidDecision(
            f"mask_personal_data for {choice.finding_id!r} masks text, but {', '.join(sorted(converted))} "
            f"turns column {column!r} into {'numbers' if 'coerce_numeric' in converted else 'dates'} "
            "first; choose one of them"
        )
    if choice.strategy == "fill_constant":
        _check_constant(choice, column, context, to_numbers=to_numbers, to_dates=to_dates)
    if not context.columns or column not in context.columns:
        return
    if choice.strategy in NUMERIC_STRATEGIES and not to_numbers:
        raise InvalidDecision(
            f"{choice.strategy} for {choice.finding_id!r} needs numbers, but column {column!r} is not numeric"
        )


def _check_bounds(choice: ResolutionChoice, context: DecisionContext) -> None:
    """Fences must be in order, quantiles within [0, 1] and in order (chosen or offered values)."""
    offered = context.finding_defaults.get(choice.finding_id, {}).get(choice.strategy, {})

    def value(name: str) -> Any:
        given = choice.params.get(name)
        return offered.get(name) if given is None else given

    lower, upper = value("lower"), value("upper")
    if isinstance(lower, int | float) and isinstance(upper, int | float) and lower > upper:
        raise InvalidDecision(
            f"{choice.strategy} for {choice.finding_id!r}: lower ({lower:g}) is above upper ({upper:g})"
        )
    if choice.strategy == "winsorize":
        low_q, high_q = value("lower_quantile"), value("upper_quantile")
        low_q = 0.01 if low_q is None else low_q
        high_q = 0.99 if high_q is None else high_q
        if not (0 <= low_q < high_q <= 1):
            raise InvalidDecision(
                f"winsorize for {choice.finding_id!r} needs 0 <= lower_quantile < upper_quantile <= 1, "
                f"got {low_q!r} and {high_q!r}"
            )


CONVERSIONS = ("coerce_numeric", "coerce_datetime")


def _conversions(column: str, params: QualityChoices, context: DecisionContext) -> list[tuple[str, str]]:
    """The type conversions (strategy, finding id) chosen for `column`, in choice order."""
    return [
        (c.strategy, c.finding_id)
        for c in params.choices
        if c.strategy in CONVERSIONS and context.finding_columns.get(c.finding_id, ())[:1] == (column,)
    ]


def _check_constant(
    choice: ResolutionChoice, column: str, context: DecisionContext, *, to_numbers: bool, to_dates: bool
) -> None:
    """fill_constant's value (chosen, or the one offered) must fit what the column holds when it is filled."""
    offered = context.finding_defaults.get(choice.finding_id, {}).get("fill_constant", {})
    if "value" not in choice.params and "value" not in offered:
        return
    value = choice.params.get("value", offered.get("value"))
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if to_numbers and not is_number:
        raise InvalidDecision(
            f"fill_constant for {choice.finding_id!r}: column {column!r} is numeric (or made numeric by "
            f"coerce_numeric), so 'value' must be a number, not {value!r}"
        )
    if to_dates:
        raise InvalidDecision(
            f"fill_constant for {choice.finding_id!r}: column {column!r} holds dates (or is made a date "
            f"column by coerce_datetime), which cannot hold {value!r}; choose impute_mode or flag_only"
        )


def option_specs(gate: Gate, *, stream: bool = False) -> list[dict[str, Any]]:
    """The options of a gate (a batch run's, or a stream's) as shown to a person."""
    return [
        {
            "name": o.name,
            "description": o.description,
            "params_schema": o.params_model.model_json_schema() if o.params_model else None,
        }
        for o in gate_definitions(stream=stream)[gate].options
    ]
