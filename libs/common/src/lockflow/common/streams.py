"""The contract of a live stream: its finding kinds, the standing policy a person approves, a window's result.

A stream is a long-lived run (its `run_id` is the stream's id): gate 1 approves the contract (a JSON
Schema), gate 2 a standing policy that the stream worker applies to every window that closes after
the approval. The control plane (gateway, orchestrator) and the data plane (the stream worker) share
only these models, carried by the events in `lockflow.common.events`.

The facts about each stream finding kind live in `STREAM_FINDINGS`, read by every consumer (the
worker's checks, the gate's options, the API, the UI's labels); `tests/unit/common/test_streams.py`
enumerates the Literals against the table.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

StreamFindingKind = Literal[
    "malformed",  # not decodable (not JSON, or Avro that does not match the writer's schema)
    "contract_violation",  # decodable, but against the approved JSON Schema (missing/extra field, enum)
    "type_violation",  # a field of the wrong type
    "null_value",  # null (or absent) in a field the contract requires
    "out_of_range",  # a number outside the contract's minimum/maximum
    "duplicate_key",  # a key seen before within the same window
    "late_record",  # event time in a window already closed (after its grace period)
]
StreamAction = Literal[
    "quarantine",  # to <topic>.quarantine with the reason in headers
    "repair_constant",  # the field set to the rule's constant; the record goes on to .clean, marked repaired
    "repair_last_median",  # the field set to the previous window's median of that field (numbers only)
    "drop_duplicate",  # a repeated key within the window is dropped (counted, not forwarded)
    "flag",  # passed through to .clean with a flag header naming the finding
]
# Before the first policy: keep records in <topic>.hold (replayed once approved), or pass them untouched.
UnapprovedMode = Literal["hold", "pass"]

STREAM_FINDING_KINDS: tuple[StreamFindingKind, ...] = get_args(StreamFindingKind)
STREAM_ACTIONS: tuple[StreamAction, ...] = get_args(StreamAction)


@dataclass(frozen=True)
class StreamFindingFacts:
    """What a stream finding kind is called and which actions a policy may take on it."""

    words: str  # plural noun phrase for running text
    one: str  # the same for a single one, with its article: "a late record"
    label: str  # for headings and table cells
    default_action: StreamAction
    actions: tuple[StreamAction, ...]  # the actions that make sense for this kind


# fmt: off
STREAM_FINDINGS: dict[StreamFindingKind, StreamFindingFacts] = {
    "malformed": StreamFindingFacts(
        "malformed records", "a malformed record", "Malformed", "quarantine", ("quarantine",)),
    "contract_violation": StreamFindingFacts(
        "contract violations", "a contract violation", "Contract violation", "quarantine",
        ("quarantine", "flag")),
    "type_violation": StreamFindingFacts(
        "type violations", "a type violation", "Type violation", "quarantine",
        ("quarantine", "repair_constant", "repair_last_median", "flag")),
    "null_value": StreamFindingFacts(
        "missing required values", "a missing required value", "Null value", "repair_last_median",
        ("quarantine", "repair_constant", "repair_last_median", "flag")),
    "out_of_range": StreamFindingFacts(
        "out-of-range values", "an out-of-range value", "Out of range", "flag",
        ("quarantine", "repair_constant", "repair_last_median", "flag")),
    "duplicate_key": StreamFindingFacts(
        "repeated keys", "a repeated key", "Duplicate key", "drop_duplicate",
        ("drop_duplicate", "quarantine", "flag")),
    "late_record": StreamFindingFacts(
        "late records", "a late record", "Late record", "flag", ("flag", "quarantine")),
}
# fmt: on


def counted(kind: str, count: int) -> str:
    """A count of one kind in running text: "a late record", "3 late records"."""
    facts = stream_finding_facts(kind)
    return facts.one if count == 1 else f"{count} {facts.words}"


def stream_finding_facts(kind: str) -> StreamFindingFacts:
    """The facts of a kind, or generic wording for a kind this version does not know."""
    known = STREAM_FINDINGS.get(kind)  # type: ignore[call-overload]
    if known is not None:
        return known
    words = kind.replace("_", " ")
    return StreamFindingFacts(words, f"one {words}", words.capitalize(), "flag", ("flag",))


class StreamModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StreamPolicyRule(StreamModel):
    """What to do with every future record that has one kind of finding."""

    kind: StreamFindingKind
    action: StreamAction
    field: str | None = Field(default=None, description="Only this field (None: every field of the contract)")
    constant: Any = Field(default=None, description="The value repair_constant writes")


class StreamPolicy(StreamModel):
    """A standing policy, versioned: every window result and output record names the version applied."""

    stream_id: str
    version: int = Field(ge=1)
    rules: list[StreamPolicyRule]
    approved_by: str
    approved_at: datetime
    reopen_violation_rate: float = Field(
        default=0.05, ge=0, le=1, description="Reopen gate 2 above this contract violation rate"
    )
    reopen_score_drop: float = Field(
        default=15.0, ge=0, le=100, description="Reopen gate 2 when a window's score drops this many points"
    )


class StreamSpec(StreamModel):
    """What the stream worker needs to run a stream: the source's settings and the approved contract."""

    stream_id: str
    source_id: str
    bootstrap_servers: str
    topic: str
    consumer_group: str
    security: dict[str, Any] = Field(
        default_factory=dict, description="Kafka security settings; secrets unsealed by the worker"
    )
    format: Literal["json", "avro"] = "json"
    schema_registry_url: str | None = None
    schema_registry_username: str | None = Field(
        default=None, description="The registry's basic-auth user; its password travels sealed in security"
    )
    event_time_field: str
    key_field: str | None = None
    window_seconds: int = Field(ge=1)
    grace_seconds: int = Field(ge=0)
    contract: dict[str, Any] = Field(description="The approved JSON Schema of one record")
    unapproved_mode: UnapprovedMode = "hold"


class FieldCounts(StreamModel):
    """One field's counts in a window."""

    nulls: int = 0
    type_violations: int = 0
    out_of_range: int = 0


class WindowResult(StreamModel):
    """One closed tumbling window of a stream: what arrived, what was wrong, what was done."""

    stream_id: str
    window_start: datetime
    window_end: datetime
    policy_version: int | None = Field(description="The policy applied (None: none approved yet)")
    mode: Literal["policy", "hold", "pass"]
    records: int
    findings: dict[StreamFindingKind, int] = Field(default_factory=dict)
    fields: dict[str, FieldCounts] = Field(default_factory=dict)
    clean: int = 0
    quarantined: int = 0
    repaired: int = 0
    dropped: int = 0
    held: int = 0
    late: int = 0
    freshness_p50_seconds: float | None = None
    freshness_p99_seconds: float | None = None
    quality_score: float = Field(ge=0, le=100)
    medians: dict[str, float] = Field(default_factory=dict, description="Per number field")
    artifact_uri: str | None = Field(default=None, description="The records as a Parquet micro-batch")
    closed_at: datetime
