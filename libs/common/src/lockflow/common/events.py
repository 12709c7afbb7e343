"""The event envelope and every event type: facts (past tense) and commands (imperative).

Pydantic models are the contract's source; `schemas/` is exported from them
(`python -m lockflow.common.schema_export`) and a test fails on drift.
"""

import builtins
from datetime import UTC, date, datetime
from functools import cache
from typing import Annotated, Any, ClassVar, Literal, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from lockflow.common.errors import InvalidEvent
from lockflow.common.ids import new_id
from lockflow.common.models import (
    ActionItem,
    AnalyticsParams,
    AnalyticsResult,
    AppliedResolution,
    ColumnSchema,
    DatasetRef,
    DecisionRecord,
    Finding,
    Goal,
    Insight,
    InsightParams,
    PlannedAction,
    ReportRef,
    ResolutionChoice,
    SchemaChange,
    SourceHealth,
    SourceSpec,
)
from lockflow.common.streams import StreamPolicy, StreamSpec, WindowResult

E = TypeVar("E", bound="Event")


def utcnow() -> datetime:
    """Timezone-aware current time in UTC."""
    return datetime.now(UTC)


class Payload(BaseModel):
    """Base of every event payload."""

    model_config = ConfigDict(extra="forbid")


class Event(BaseModel):
    """The envelope shared by every event; subclasses fix `type` and `payload`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    is_command: ClassVar[bool] = False
    is_request: ClassVar[bool] = False
    is_reply: ClassVar[bool] = False
    stage: ClassVar[str | None] = None

    event_id: str = Field(default_factory=new_id)
    type: str
    version: int = 1
    run_id: str
    occurred_at: datetime = Field(default_factory=utcnow)
    producer: str = "unknown"
    causation_id: str | None = None
    correlation_id: str | None = None
    payload: Payload

    def follow(self, event_type: "builtins.type[E]", payload: Payload, *, producer: str) -> E:
        """Build the next event of this run, caused by this one."""
        # Each subclass fixes `type` by default; the base declares it required.
        return event_type(  # type: ignore[call-arg]
            run_id=self.run_id,
            producer=producer,
            causation_id=self.event_id,
            correlation_id=self.correlation_id or self.run_id,
            payload=payload,
        )


class Command(Event):
    """An instruction to one stage's workers."""

    is_command: ClassVar[bool] = True


class Request(Event):
    """A question to one service that the requester waits for (request/reply), not a step of a run.

    The requester sets `correlation_id` to a fresh id, names the topic its replies arrive on in
    `reply_to`, and stops waiting at `expires_at`; a worker skips a request it finds after that. A
    request about no run (a source's health check, a file's pre-check) carries its correlation id as
    `run_id`, which is also its key.
    """

    is_request: ClassVar[bool] = True
    service: ClassVar[str] = ""
    reply_type: ClassVar[str] = ""
    purpose: ClassVar[str] = ""  # what it asks for, in the words of a timeout message
    reply_to: str = Field(description="The topic the reply goes to (the requester's replies topic)")
    expires_at: datetime = Field(description="When the requester stops waiting; a later worker skips it")


class Reply(Event):
    """The answer to one Request: its `correlation_id` is the request's, `causation_id` the request's id."""

    is_reply: ClassVar[bool] = True


# ---- payloads ---------------------------------------------------------------------------------


class RunRequestedPayload(Payload):
    name: str
    source: SourceSpec
    goal: Goal
    requested_by: str
    quality_rules: dict[str, Any] | None = None


class StageCommandPayload(Payload):
    attempt_id: str


class IngestSourcePayload(StageCommandPayload):
    source: SourceSpec


class SourceIngestedPayload(StageCommandPayload):
    source: SourceSpec
    dataset: DatasetRef
    sample: list[dict[str, Any]]
    bytes_read: int
    config: dict[str, Any] = Field(default_factory=dict, description="The source's config, secrets masked")
    health: SourceHealth | None = None
    drift: list[SchemaChange] | None = Field(
        default=None, description="Changes against the source's approved contract; None when it has none"
    )
    schema_cached: bool = Field(default=False, description="Schema taken from the cache (same content hash)")
    contract: dict[str, Any] | None = Field(
        default=None, description="A stream's JSON Schema contract inferred from its sample; None for batches"
    )


class AssessQualityPayload(StageCommandPayload):
    dataset: DatasetRef
    rules: dict[str, Any] | None = None
    approved_schema: list[ColumnSchema] | None = None


class QualityAssessedPayload(StageCommandPayload):
    dataset: DatasetRef
    findings: list[Finding]
    score: float
    dimension_scores: dict[str, float] = Field(default_factory=dict)
    profile: dict[str, Any] = Field(default_factory=dict)
    as_of: date | None = Field(
        default=None, description="The date the data was judged against (staleness); None if not sent"
    )


class ApplyResolutionsPayload(StageCommandPayload):
    dataset: DatasetRef
    findings: list[Finding]
    choices: list[ResolutionChoice]
    rules: dict[str, Any] | None = None


class ResolutionsAppliedPayload(StageCommandPayload):
    dataset_before: DatasetRef
    dataset: DatasetRef
    applied: list[AppliedResolution]
    findings_after: list[Finding]
    score_before: float
    score_after: float
    dimensions_before: dict[str, float] = Field(default_factory=dict)
    dimensions_after: dict[str, float] = Field(default_factory=dict)
    resolved: list[str] = Field(default_factory=list)
    introduced: list[str] = Field(default_factory=list)
    as_of: date | None = Field(
        default=None, description="The date the data was judged against (staleness); None if not sent"
    )


class RunAnalyticsPayload(StageCommandPayload):
    dataset: DatasetRef
    params: AnalyticsParams
    # The run's goal: its target is the default target of the drivers/segments/time series parts.
    goal: Goal | None = None


class AnalyticsCompletedPayload(StageCommandPayload):
    dataset: DatasetRef
    result: AnalyticsResult
    cached: bool
    # Which of result.parts came from the cache (the rest were computed for this request).
    parts_cached: list[str] = Field(default_factory=list)


class GenerateInsightsPayload(StageCommandPayload):
    dataset: DatasetRef
    analytics: AnalyticsResult
    params: InsightParams


class InsightsGeneratedPayload(StageCommandPayload):
    params: InsightParams
    insights: list[Insight]


class RecommendActionsPayload(StageCommandPayload):
    goal: Goal
    unresolved_findings: list[Finding]
    insights: list[Insight]


class ActionsRecommendedPayload(StageCommandPayload):
    items: list[ActionItem]
    cached: bool = False


class CompileReportPayload(StageCommandPayload):
    name: str
    source: SourceSpec
    goal: Goal
    dataset_ingested: DatasetRef
    dataset_final: DatasetRef
    findings: list[Finding]
    applied: list[AppliedResolution]
    score_before: float
    score_after: float
    analytics: AnalyticsResult
    insights: list[Insight]
    plan: list[PlannedAction]
    decisions: list[DecisionRecord]
    requested_by: str
    judged_as_of: date | None = Field(
        default=None, description="The date quality judged the data against (staleness), when known"
    )
    dimensions_before: dict[str, float] = Field(
        default_factory=dict, description="Quality score per dimension as assessed (the report's chart)"
    )
    dimensions_after: dict[str, float] = Field(
        default_factory=dict, description="Quality score per dimension after the applied fixes; empty if none"
    )


class ReportCompiledPayload(StageCommandPayload):
    report: ReportRef


class StageFailedPayload(Payload):
    attempt_id: str
    stage: str
    error: str


class GateOptionSpec(Payload):
    name: str
    description: str
    params_schema: dict[str, Any] | None = None


class DecisionRequestedPayload(Payload):
    request_id: str
    gate: str
    title: str
    options: list[GateOptionSpec]
    context: dict[str, Any]


class DecisionMadePayload(Payload):
    request_id: str
    gate: str
    option: str
    params: dict[str, Any]
    decided_by: str
    rationale: str
    decided_at: datetime


class RetryRequestedPayload(Payload):
    """Someone asked to run a failed run's failed step again, with the same inputs."""

    step: str
    failed_attempt_id: str
    error: str
    requested_by: str


class RunCompletedPayload(Payload):
    report: ReportRef


class RunEndedPayload(Payload):
    reason: str


class StartStreamPayload(Payload):
    spec: StreamSpec


class StopStreamPayload(Payload):
    stream_id: str
    reason: str


class ApplyStreamPolicyPayload(Payload):
    policy: StreamPolicy


class WindowAssessedPayload(Payload):
    window: WindowResult


class PreviewResolutionsPayload(Payload):
    """Gate 2's dry run: the run's current dataset, its findings and the checked choices."""

    request_id: str = Field(description="The open quality_review decision request previewed")
    dataset: DatasetRef
    findings: list[Finding]
    choices: list[ResolutionChoice]


class ResolutionsPreviewedPayload(Payload):
    preview: dict[str, Any] = Field(description="What the choices would change (the API's preview answer)")


class TestSourcePayload(Payload):
    __test__ = False  # not a pytest class, whatever its name
    ref: str = Field(description="The registered source's id or name")


class SourceTestedPayload(Payload):
    health: SourceHealth


class CheckFilePayload(Payload):
    """A file's pre-check before a run exists: readable head, the goal's target a column (or picked)."""

    source: SourceSpec
    goal: Goal


class PickedTarget(BaseModel):
    """The column picked as the goal's target, and why."""

    model_config = ConfigDict(extra="forbid")
    target: str
    reason: str


class FileCheckedPayload(Payload):
    columns: list[str]
    goal: Goal = Field(
        description="The goal with its target settled (the given one, picked, or none and why)"
    )
    picked: PickedTarget | None = Field(default=None, description="Set when lockflow picked the target")
    numeric_columns: list[str] = Field(
        default_factory=list, description="The head's numeric columns (known when no target was given)"
    )


class DescribeFilePayload(Payload):
    source: SourceSpec


class FileDescribedPayload(Payload):
    columns: list[ColumnSchema] = Field(description="The schema inferred from the file's head")


ErrorKind = Literal["invalid_input", "too_large", "not_found", "conflict", "refused", "unexpected"]


class RequestFailedPayload(Payload):
    """A request its service could not answer: the error's family (the requester raises the same) and text."""

    request_type: str
    kind: ErrorKind
    message: str


# ---- facts ------------------------------------------------------------------------------------


class RunRequested(Event):
    type: Literal["RunRequested"] = "RunRequested"
    payload: RunRequestedPayload


class SourceIngested(Event):
    type: Literal["SourceIngested"] = "SourceIngested"
    payload: SourceIngestedPayload


class QualityAssessed(Event):
    type: Literal["QualityAssessed"] = "QualityAssessed"
    payload: QualityAssessedPayload


class ResolutionsApplied(Event):
    type: Literal["ResolutionsApplied"] = "ResolutionsApplied"
    payload: ResolutionsAppliedPayload


class AnalyticsCompleted(Event):
    type: Literal["AnalyticsCompleted"] = "AnalyticsCompleted"
    payload: AnalyticsCompletedPayload


class InsightsGenerated(Event):
    type: Literal["InsightsGenerated"] = "InsightsGenerated"
    payload: InsightsGeneratedPayload


class ActionsRecommended(Event):
    type: Literal["ActionsRecommended"] = "ActionsRecommended"
    payload: ActionsRecommendedPayload


class ReportCompiled(Event):
    type: Literal["ReportCompiled"] = "ReportCompiled"
    payload: ReportCompiledPayload


class StageFailed(Event):
    type: Literal["StageFailed"] = "StageFailed"
    payload: StageFailedPayload


class DecisionRequested(Event):
    type: Literal["DecisionRequested"] = "DecisionRequested"
    payload: DecisionRequestedPayload


class DecisionMade(Event):
    type: Literal["DecisionMade"] = "DecisionMade"
    payload: DecisionMadePayload


class RetryRequested(Event):
    type: Literal["RetryRequested"] = "RetryRequested"
    payload: RetryRequestedPayload


class RunCompleted(Event):
    type: Literal["RunCompleted"] = "RunCompleted"
    payload: RunCompletedPayload


class RunFailed(Event):
    type: Literal["RunFailed"] = "RunFailed"
    payload: RunEndedPayload


class WindowAssessed(Event):
    """A stream's window closed and was checked (and its records routed under the policy named)."""

    type: Literal["WindowAssessed"] = "WindowAssessed"
    payload: WindowAssessedPayload


class RunAborted(Event):
    type: Literal["RunAborted"] = "RunAborted"
    payload: RunEndedPayload


# ---- commands ---------------------------------------------------------------------------------


class IngestSource(Command):
    stage: ClassVar[str | None] = "ingest"
    type: Literal["IngestSource"] = "IngestSource"
    payload: IngestSourcePayload


class AssessQuality(Command):
    stage: ClassVar[str | None] = "quality"
    type: Literal["AssessQuality"] = "AssessQuality"
    payload: AssessQualityPayload


class ApplyResolutions(Command):
    stage: ClassVar[str | None] = "quality"
    type: Literal["ApplyResolutions"] = "ApplyResolutions"
    payload: ApplyResolutionsPayload


class RunAnalytics(Command):
    stage: ClassVar[str | None] = "analytics"
    type: Literal["RunAnalytics"] = "RunAnalytics"
    payload: RunAnalyticsPayload


class GenerateInsights(Command):
    stage: ClassVar[str | None] = "insights"
    type: Literal["GenerateInsights"] = "GenerateInsights"
    payload: GenerateInsightsPayload


class RecommendActions(Command):
    stage: ClassVar[str | None] = "recommendations"
    type: Literal["RecommendActions"] = "RecommendActions"
    payload: RecommendActionsPayload


class CompileReport(Command):
    stage: ClassVar[str | None] = "reporting"
    type: Literal["CompileReport"] = "CompileReport"
    payload: CompileReportPayload


# ---- requests (to one service, answered on the requester's replies topic) and their replies ----


class PreviewResolutions(Request):
    service: ClassVar[str] = "quality"
    reply_type: ClassVar[str] = "ResolutionsPreviewed"
    purpose: ClassVar[str] = "the preview of gate 2's fixes"
    type: Literal["PreviewResolutions"] = "PreviewResolutions"
    payload: PreviewResolutionsPayload


class TestSource(Request):
    __test__ = False
    service: ClassVar[str] = "ingest"
    reply_type: ClassVar[str] = "SourceTested"
    purpose: ClassVar[str] = "the source's health check"
    type: Literal["TestSource"] = "TestSource"
    payload: TestSourcePayload


class CheckFile(Request):
    service: ClassVar[str] = "ingest"
    reply_type: ClassVar[str] = "FileChecked"
    purpose: ClassVar[str] = "the file's pre-check"
    type: Literal["CheckFile"] = "CheckFile"
    payload: CheckFilePayload


class DescribeFile(Request):
    service: ClassVar[str] = "ingest"
    reply_type: ClassVar[str] = "FileDescribed"
    purpose: ClassVar[str] = "the file's schema"
    type: Literal["DescribeFile"] = "DescribeFile"
    payload: DescribeFilePayload


class ResolutionsPreviewed(Reply):
    type: Literal["ResolutionsPreviewed"] = "ResolutionsPreviewed"
    payload: ResolutionsPreviewedPayload


class SourceTested(Reply):
    type: Literal["SourceTested"] = "SourceTested"
    payload: SourceTestedPayload


class FileChecked(Reply):
    type: Literal["FileChecked"] = "FileChecked"
    payload: FileCheckedPayload


class FileDescribed(Reply):
    type: Literal["FileDescribed"] = "FileDescribed"
    payload: FileDescribedPayload


class RequestFailed(Reply):
    type: Literal["RequestFailed"] = "RequestFailed"
    payload: RequestFailedPayload


class StartStream(Command):
    """Start (or resume) consuming a stream under its approved contract; idempotent per stream id."""

    stage: ClassVar[str | None] = "streams"
    type: Literal["StartStream"] = "StartStream"
    payload: StartStreamPayload


class StopStream(Command):
    stage: ClassVar[str | None] = "streams"
    type: Literal["StopStream"] = "StopStream"
    payload: StopStreamPayload


class ApplyStreamPolicy(Command):
    """A newly approved policy version: applied to every window that closes from now on."""

    stage: ClassVar[str | None] = "streams"
    type: Literal["ApplyStreamPolicy"] = "ApplyStreamPolicy"
    payload: ApplyStreamPolicyPayload


REQUEST_TYPES: tuple[type[Request], ...] = (PreviewResolutions, TestSource, CheckFile, DescribeFile)
REPLY_TYPES: tuple[type[Reply], ...] = (
    ResolutionsPreviewed,
    SourceTested,
    FileChecked,
    FileDescribed,
    RequestFailed,
)

EVENT_TYPES: tuple[type[Event], ...] = (
    RunRequested,
    SourceIngested,
    QualityAssessed,
    ResolutionsApplied,
    AnalyticsCompleted,
    InsightsGenerated,
    ActionsRecommended,
    ReportCompiled,
    StageFailed,
    DecisionRequested,
    DecisionMade,
    RetryRequested,
    RunCompleted,
    RunFailed,
    RunAborted,
    IngestSource,
    AssessQuality,
    ApplyResolutions,
    RunAnalytics,
    GenerateInsights,
    RecommendActions,
    CompileReport,
    WindowAssessed,
    StartStream,
    StopStream,
    ApplyStreamPolicy,
    *REQUEST_TYPES,
    *REPLY_TYPES,
)
EVENTS_BY_TYPE: dict[str, type[Event]] = {t.model_fields["type"].default: t for t in EVENT_TYPES}


@cache
def _adapter() -> TypeAdapter[Any]:
    union = Annotated[Union[EVENT_TYPES], Field(discriminator="type")]  # type: ignore[valid-type]  # noqa: UP007
    return TypeAdapter(union)


def parse_event(raw: bytes | str) -> Event:
    """Validate raw JSON against the contract of its type, or raise InvalidEvent with the reason."""
    try:
        event: Event = _adapter().validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidEvent(f"{where}: {first['msg']} ({exc.error_count()} error(s))") from exc
    return event


def serialize_event(event: Event) -> bytes:
    """Validate an outgoing event again and return its JSON bytes."""
    raw = event.model_dump_json().encode()
    parse_event(raw)  # produced events are validated exactly as consumers will
    return raw
