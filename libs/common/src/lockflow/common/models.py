"""Value objects that travel inside events: dataset references, findings, results, parameters.

Pure pydantic models, no I/O. Parameters that a person may change at a gate validate themselves
with messages meant for that person.
"""

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

LogicalType = Literal["integer", "float", "boolean", "datetime", "string"]
Severity = Literal["low", "medium", "high"]
# How much a fix may damage correct data: none (nothing changes) .. high (rows, columns or guessed values).
Risk = Literal["none", "low", "medium", "high"]
FindingCategory = Literal[
    "missing_values",
    "duplicate_rows",
    "type_mismatch",
    "outliers",
    "duplicate_keys",
    "invalid_format",
    "out_of_range",
    "multivariate_outliers",
    "inconsistent_categories",
    "constant_column",
    "high_cardinality",
    "skew",
    "imbalance",
    "cross_column",
    "personal_data",
    "encoding",
    "schema_drift",
    "time_gaps",
    "staleness",
    "rule_violation",
]
QualityDimension = Literal["completeness", "validity", "uniqueness", "consistency", "timeliness"]
Direction = Literal["increase", "decrease"]
# What people also say for a direction; accepted wherever a goal is given, stored as the direction.
DIRECTION_SYNONYMS: dict[str, Direction] = {"max": "increase", "min": "decrease"}
Resample = Literal["D", "W", "MS"]
HeavyStep = Literal["clustering", "anomalies", "drivers", "segments", "time_series"]
SourceFormat = Literal["csv", "jsonl", "parquet", "json", "xlsx"]
SourceKind = Literal["file", "api", "database", "s3", "stream"]  # stream: a Kafka topic, read live


class Model(BaseModel):
    """Base for every contract model: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class ColumnSchema(Model):
    """One column as inferred (or as approved) at ingest."""

    name: str
    dtype: LogicalType
    nullable: bool
    null_count: int = 0
    examples: list[str] = Field(default_factory=list)


class DatasetRef(Model):
    """A claim check for an immutable, content-addressed Parquet artifact."""

    uri: str
    fingerprint: str
    rows: int
    columns: list[ColumnSchema]


class SourceOptions(Model):
    """How to read a source; changed at gate 1 by 'reconfigure'."""

    delimiter: str | None = Field(default=None, max_length=1)
    column_types: dict[str, LogicalType] = Field(default_factory=dict)
    chunk_rows: int = Field(default=100_000, ge=1_000, le=5_000_000)
    encoding: str | None = Field(default=None, max_length=40, description="Text encoding; UTF-8 if unset")
    header: bool | None = Field(default=None, description="Whether a CSV has a header row; detected if unset")
    sheet: str | None = Field(default=None, max_length=200, description="Excel sheet; the first if unset")


class SourceSpec(Model):
    """Where a run's data comes from: a local file, or a registered source (source_id)."""

    kind: SourceKind = "file"
    path: str = Field(description="The file, or a display label of a registered source (no secrets)")
    format: SourceFormat | None = None
    options: SourceOptions = Field(default_factory=SourceOptions)
    source_id: str | None = Field(default=None, description="A registered source, read with its config")
    uri: str | None = Field(
        default=None,
        description="An uploaded file's artifact in the artifact store (set by the server; path is its name)",
    )


class SourceHealth(Model):
    """A source's health check: each step that passed, how long it took, and what failed."""

    ok: bool
    reachable: bool
    authorised: bool
    readable: bool
    seconds: float
    message: str = ""
    checked_at: datetime | None = None


class SchemaChange(Model):
    """One difference between a source's approved contract and what a later run read."""

    column: str
    change: Literal["added", "removed", "type_changed", "nullability_changed"]
    expected: str | None = None
    found: str | None = None


class Goal(Model):
    """What the user wants to move: a target column and the direction that is good."""

    target: str | None = None
    # A request may say max/min (the OpenAPI's input schema lists them); answers say increase/decrease.
    direction: Annotated[
        Direction,
        WithJsonSchema(
            {"type": "string", "enum": ["increase", "decrease", *DIRECTION_SYNONYMS], "default": "increase"},
            mode="validation",
        ),
    ] = "increase"
    description: str = Field(default="", max_length=500)

    @field_validator("direction", mode="before")
    @classmethod
    def _min_max_synonyms(cls, value: Any) -> Any:
        # People say "max"/"min" as often as "increase"/"decrease"; both mean the same goal.
        return DIRECTION_SYNONYMS.get(value, value) if isinstance(value, str) else value


class Resolution(Model):
    """One way to fix a finding, ranked by the detector."""

    strategy: str
    params: dict[str, Any] = Field(default_factory=dict)
    rationale: str
    # Judged from the strategy's base risk and this finding's evidence; an older producer's
    # resolution without one counts as high-risk, so nothing applies it without being asked.
    risk: Risk = "high"
    changes: str = ""  # what it changes and how much: "changes 1,203 cells (4.1%) in 'dep_delay'"


class Finding(Model):
    """A data quality problem with its evidence and ranked resolutions."""

    id: str
    category: FindingCategory
    severity: Severity
    columns: list[str]
    count: int
    share: float
    sample_rows: list[int]
    explanation: str
    resolutions: list[Resolution]
    dimension: QualityDimension = "validity"
    method: str = "exact count over every row"
    exact: bool = True
    details: dict[str, Any] = Field(default_factory=dict)


class ResolutionChoice(Model):
    """The user's pick for one finding at gate 2."""

    finding_id: str
    strategy: str
    params: dict[str, Any] = Field(default_factory=dict)


class AppliedResolution(Model):
    """What applying one resolution did."""

    finding_id: str
    strategy: str
    rows_removed: int = 0
    cells_changed: int = 0
    note: str = ""


class ColumnStats(Model):
    """Descriptive statistics for one column."""

    name: str
    kind: Literal["numeric", "categorical", "datetime", "boolean"]
    count: int
    missing: int
    distinct: int
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    p25: float | None = None
    median: float | None = None
    p75: float | None = None
    max: float | None = None
    top: list[tuple[str, int]] = Field(default_factory=list)
    histogram_edges: list[float] = Field(default_factory=list)
    histogram_counts: list[int] = Field(default_factory=list)


class CorrelationPair(Model):
    """Pearson (and Spearman rank) correlation of two numeric columns."""

    a: str
    b: str
    pearson: float
    n: int
    spearman: float | None = None


class Association(Model):
    """Strength of a pair involving a categorical column: Cramér's V or the correlation ratio (eta)."""

    a: str
    b: str
    measure: Literal["cramers_v", "correlation_ratio"]
    value: float
    n: int
    p_value: float | None = None


class ClusterProfile(Model):
    """One cluster: its size and the mean of each feature."""

    cluster: int
    size: int
    centroid: dict[str, float]


class Clustering(Model):
    """KMeans on standardised numeric features."""

    k: int
    chosen_by: Literal["silhouette", "user"]
    silhouette: float | None
    features: list[str]
    clusters: list[ClusterProfile]
    labels_uri: str | None = None


class ChangePoint(Model):
    """A shift in the level of a time series: where, and the means either side with a Welch test."""

    at: date
    mean_before: float
    mean_after: float
    diff_pct: float | None = None
    p_value: float
    periods_before: int
    periods_after: int


class TimeSeries(Model):
    """The goal metric (or the row count) resampled over a date column, with trend, season and breaks."""

    date_column: str
    value: str
    aggregate: Literal["mean", "count"]
    freq: Resample
    periods: list[date]
    values: list[float | None]
    trend_slope: float | None = None
    trend_p_value: float | None = None
    season_period: int | None = None
    season_strength: float | None = None
    change_points: list[ChangePoint] = Field(default_factory=list)


class AnomalyRow(Model):
    """One anomalous row: its position in the data, its score and the feature furthest from typical."""

    row: int
    score: float
    feature: str
    z: float


class Anomalies(Model):
    """IsolationForest on the standardised numeric features."""

    features: list[str]
    contamination: float
    rows_scored: int
    count: int
    share: float
    threshold: float
    top: list[AnomalyRow]
    feature_shift: dict[str, float] = Field(default_factory=dict)


class DriverImportance(Model):
    """How much one column tells about the target: mutual information and permutation importance."""

    column: str
    mutual_info: float
    permutation_importance: float
    permutation_std: float
    rank: int


class DriverAnalysis(Model):
    """Drivers of the target by a tree model's permutation importance (held-out rows) and MI."""

    target: str
    model: str
    rows_used: int
    holdout_r2: float | None
    drivers: list[DriverImportance]


class SegmentGroup(Model):
    """One value of a categorical column against the rest, on the target."""

    value: str
    n: int
    mean: float
    mean_rest: float
    diff_pct: float | None = None
    cohens_d: float | None = None


class SegmentComparison(Model):
    """Group-by of the target on one categorical column, with the share of variance it explains."""

    column: str
    target: str
    eta_squared: float
    p_value: float | None
    groups: list[SegmentGroup]


class AnalyticsParams(Model):
    """What the user may change at gate 3."""

    n_clusters: int | None = Field(default=None, ge=2, le=20)
    max_clusters: int = Field(default=8, ge=2, le=20)
    features: list[str] | None = None
    random_state: int = 0
    sample_rows: int = Field(default=200_000, ge=1_000, le=5_000_000)
    histogram_bins: int = Field(default=20, ge=2, le=200)
    contamination: float = Field(default=0.01, gt=0, le=0.5)
    target: str | None = None
    date_column: str | None = None
    resample: Resample | None = None
    steps: list[HeavyStep] | None = None

    @model_validator(mode="after")
    def _k_within_search(self) -> "AnalyticsParams":
        if self.n_clusters is not None and self.n_clusters > 20:
            raise ValueError("n_clusters must be at most 20")
        return self


class AnalyticsResult(Model):
    """Everything stage 4 computed, with how much of the data it used."""

    rows_total: int
    rows_used: int
    sampled: bool
    seed: int
    columns: list[ColumnStats]
    correlations: list[CorrelationPair]
    clustering: Clustering | None
    params: AnalyticsParams
    associations: list[Association] = Field(default_factory=list)
    time_series: TimeSeries | None = None
    anomalies: Anomalies | None = None
    drivers: DriverAnalysis | None = None
    segments: list[SegmentComparison] = Field(default_factory=list)
    target: str | None = None
    sample_note: str = ""
    # What a budget left out of a part (LOCKFLOW_MAX_PAIRS, LOCKFLOW_MAX_CELLS); also in sample_note.
    budget_notes: list[str] = Field(default_factory=list)
    parts: list[str] = Field(default_factory=list)


class InsightParams(Model):
    """What the user may change at gate 4."""

    goal: Goal
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    top_n: int = Field(default=10, ge=1, le=100)
    min_segment_rows: int = Field(default=30, ge=5)
    segment_of_interest: str | None = Field(default=None, pattern=r"^[^=]+=.*$")
    min_abs_correlation: float = Field(default=0.5, gt=0, le=1)


InsightKind = Literal[
    "driver", "segment", "cluster", "correlation", "trend_break", "anomaly", "concentration"
]


class Insight(Model):
    """A ranked statement toward the goal, with the numbers behind it."""

    id: str
    kind: InsightKind
    statement: str
    columns: list[str]
    numbers: dict[str, float]
    effect_size: float
    p_value: float | None
    significant: bool
    relevance: float
    score: float
    confidence: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    ci_of: str = ""
    method: str = ""


class ActionItem(Model):
    """A proposed action with its priority = impact x confidence / effort."""

    id: str
    title: str
    rationale: str
    origin: Literal["quality", "insight", "anomaly"]
    evidence: list[str]
    impact: float = Field(ge=0, le=1)
    confidence: float = Field(ge=0, le=1)
    effort: int = Field(ge=1, le=5)
    priority: float
    expected_impact: float | None = None
    impact_unit: str | None = None
    impact_basis: str = ""
    evidence_statements: list[str] = Field(default_factory=list)


class PlannedAction(Model):
    """An action the user selected at gate 5, in their order."""

    rank: int
    item: ActionItem
    owner: str | None = None
    due: date | None = None


class ActionSelection(Model):
    """Gate 5's parameters: the chosen item ids in priority order, with owners and due dates.

    Empty only when the run recommended no action at all (checked against the run by `pipeline.decide`).
    """

    selected: list[str]
    owners: dict[str, str] = Field(default_factory=dict)
    due: dict[str, date] = Field(default_factory=dict)

    @field_validator("selected")
    @classmethod
    def _no_repeats(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("an action may be selected only once")
        return value

    @model_validator(mode="after")
    def _owners_and_dates_of_selected(self) -> "ActionSelection":
        stray = sorted((set(self.owners) | set(self.due)) - set(self.selected))
        if stray:
            raise ValueError(f"owner or due date given for actions not selected: {', '.join(stray)}")
        blank = sorted(a for a, owner in self.owners.items() if not owner.strip())
        if blank:
            raise ValueError(f"owner is empty for: {', '.join(blank)}")
        return self


class DecisionRecord(Model):
    """Who decided what at which gate, for the report."""

    gate: str
    option: str
    params: dict[str, Any]
    decided_by: str
    decided_at: datetime
    rationale: str


class ReportRef(Model):
    """Where the final report was stored, in each format."""

    markdown_uri: str
    json_uri: str
    html_uri: str
    pdf_uri: str | None = Field(default=None, description="The HTML report printed to PDF (charts included)")
