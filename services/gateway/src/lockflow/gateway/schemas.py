"""Request and response bodies of the gateway."""

from typing import Any

from pydantic import BaseModel, Field
from pydantic.json_schema import JsonDict

from lockflow.common.models import Goal, SourceFormat
from lockflow.common.pipeline import GATES, STREAM_GATES, Gate

# Every gate's options, a batch run's and a stream's (which of them the open request's gate takes is
# checked on submit: 422 otherwise).
OPTIONS = sorted(
    {option.name for table in (GATES, STREAM_GATES) for gate in table.values() for option in gate.options}
)
OPTION_SCHEMA: JsonDict = {"enum": list(OPTIONS)}


def _gate_names(schema: dict[str, Any]) -> None:
    """The gate names, on the string branch of `gate` (null, or leaving it out, means any gate)."""
    for choice in schema.get("anyOf", []):
        if choice.get("type") == "string":
            choice["enum"] = [gate.value for gate in Gate]


class RunCreate(BaseModel):
    """Start a run on a file the server may read."""

    path: str = Field(
        min_length=1, max_length=4096, description="A file under one of the gateway's allowed folders"
    )
    name: str | None = Field(default=None, max_length=200)
    format: SourceFormat | None = None
    goal: Goal = Field(
        default_factory=Goal,
        description="Without a target, lockflow picks a numeric column that is not an id (named like an "
        "outcome such as revenue, else the most varied one) and says so in the answer; 422 if none suits",
    )
    rules: str | dict[str, Any] | None = Field(
        default=None,
        description="Data quality rules: the rules file's YAML text, or the same as a JSON object "
        "({'rules': [...]}); checked before the run starts (422 naming each problem)",
    )


class RunCreated(BaseModel):
    """The new run's id, and its goal (with why the target was picked, when lockflow picked it)."""

    id: str
    status: str = "running"
    goal: Goal | None = None
    target_picked: str | None = Field(
        default=None, description="Why lockflow picked the goal's target; null when the caller named it"
    )


class DecisionSubmit(BaseModel):
    """A person's decision on an open gate."""

    option: str = Field(max_length=40, json_schema_extra=OPTION_SCHEMA)
    params: dict[str, Any] = Field(default_factory=dict)
    rationale: str = Field(default="", max_length=2000)
    gate: str | None = Field(
        default=None, description="If given, must match the request's gate", json_schema_extra=_gate_names
    )


class DecisionAccepted(BaseModel):
    """The recorded decision."""

    request_id: str
    gate: str
    option: str
    params: dict[str, Any]
    decided_by: str
    decided_at: str
    rationale: str


class ErrorBody(BaseModel):
    """Every error the API returns."""

    detail: str
