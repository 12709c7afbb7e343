"""The stream worker's pure parts: a record's window, its findings, the policy's verdict, a window's figures.

Nothing here touches Kafka: `processor.py` feeds records in and routes what comes out. A record is
checked once, when it is read (`check_record`); the policy is applied when its window closes
(`decide`), so a policy approved while a window is open governs that window and every later one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from lockflow.common.streams import (
    STREAM_FINDINGS,
    FieldCounts,
    StreamAction,
    StreamFindingKind,
    StreamPolicy,
    StreamPolicyRule,
)
from lockflow.sources.record_formats import JsonRecords

_JSON = JsonRecords()
# An epoch number above this is in milliseconds (1e11 s is the year 5138).
EPOCH_MS_ABOVE = 1e11
NUMBER_TYPES = ("number", "integer")
_NUMBERS = (int, float)
# How much a record with findings weighs against the score: each kind's share of records, weighted.
SCORE_WEIGHTS: dict[StreamFindingKind, float] = {
    "malformed": 1.0,
    "contract_violation": 1.0,
    "type_violation": 1.0,
    "null_value": 0.5,
    "out_of_range": 0.5,
    "duplicate_key": 0.5,
    "late_record": 0.25,
}


def window_start(event_ms: int, window_ms: int) -> int:
    """The start (epoch ms) of the tumbling window an event time falls in."""
    return event_ms - (event_ms % window_ms)


def is_late(event_ms: int, *, window_ms: int, closed_through_ms: int) -> bool:
    """Whether an event's window has already been closed (its end is at or before the closed mark)."""
    return window_start(event_ms, window_ms) + window_ms <= closed_through_ms


def closable_until(watermark_ms: int, *, grace_ms: int) -> int:
    """Every window whose end is at or before this can close: the watermark has passed it by the grace."""
    return watermark_ms - grace_ms


def idle_watermark(open_starts: list[int], *, window_ms: int, grace_ms: int) -> int | None:
    """The watermark at which every open window can close (None: no window is open).

    When the stream has been silent for its idle close time, event time stops waiting for records
    that may never come: the watermark jumps to the last open window's end plus the grace.
    """
    if not open_starts:
        return None
    return max(open_starts) + window_ms + grace_ms


def is_idle(now_s: float, last_record_s: float, *, idle_close_ms: int) -> bool:
    """Whether no record has been read for the idle close time (wall clock, seconds)."""
    return (now_s - last_record_s) * 1000 >= idle_close_ms


def event_time_ms(value: Any) -> int | None:
    """An event time as epoch ms: an ISO-8601 string, or epoch seconds or milliseconds (None: unreadable)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if not math.isfinite(value):
            return None
        return int(value) if abs(value) > EPOCH_MS_ABOVE else int(value * 1000)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return int(parsed.timestamp() * 1000)
    return None


@dataclass
class Finding:
    """One thing wrong with one record; `field` is None for the record as a whole."""

    kind: StreamFindingKind
    field: str | None
    detail: str

    def as_json(self) -> dict[str, Any]:
        """For headers and the hold topic."""
        return {"kind": self.kind, "field": self.field, "detail": self.detail}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Finding:
        """Back from `as_json`."""
        return cls(kind=data["kind"], field=data.get("field"), detail=data.get("detail", ""))


@dataclass(slots=True)  # one per record read, tens of thousands held in an open window
class Checked:
    """A record as read: its decoded value (None when malformed), its event time and findings."""

    value: dict[str, Any] | None
    raw: bytes
    event_ms: int
    key: str | None
    findings: list[Finding] = field(default_factory=list)


class Contract:
    """The approved JSON Schema, compiled once, and the facts the checks need from it."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.validator = Draft202012Validator(schema)
        # A fast accept for the many valid records; jsonschema names the findings of the others.
        self.accepts = jsonschema_rs.validator_for(schema).is_valid
        self.properties: dict[str, dict[str, Any]] = dict(schema.get("properties") or {})
        self.required: tuple[str, ...] = tuple(schema.get("required") or ())
        self.number_fields: tuple[str, ...] = tuple(
            name for name, prop in self.properties.items() if _types(prop) & set(NUMBER_TYPES)
        )

    def findings(self, value: dict[str, Any]) -> list[Finding]:
        """Every finding of a decoded record against the contract, one per field and kind at most."""
        found: dict[tuple[str, str | None], Finding] = {}
        if self.accepts(value):
            return []
        for name in self.required:
            if value.get(name) is None:
                found[("null_value", name)] = Finding("null_value", name, "required value is missing or null")
        for error in self.validator.iter_errors(value):
            finding = self._classify(error, value)
            if finding is not None:
                found.setdefault((finding.kind, finding.field), finding)
        return list(found.values())

    def _classify(self, error: ValidationError, value: dict[str, Any]) -> Finding | None:
        """The finding a JSON Schema error stands for (None: already counted as a null)."""
        name = str(error.absolute_path[0]) if error.absolute_path else None
        if error.validator == "required":
            return None  # counted above, with the field named
        if error.validator == "type" and name is not None:
            if value.get(name) is None:
                return None if name in self.required else Finding("null_value", name, "null value")
            return Finding("type_violation", name, error.message)
        if error.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            return Finding("out_of_range", name, error.message)
        return Finding("contract_violation", name, error.message)


def _types(prop: dict[str, Any]) -> set[str]:
    """The JSON types a property allows."""
    declared = prop.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return {str(t) for t in declared}
    return set()


def check_record(
    raw: bytes,
    *,
    contract: Contract,
    event_time_field: str,
    key_field: str | None,
    message_key: bytes | None,
    fallback_ms: int,
    decode: Callable[[bytes], Any] = _JSON.decode,
) -> Checked:
    """Decode one record (`decode` raises ValueError) and check it (no event time: `fallback_ms`)."""
    try:
        value = decode(raw)
    except ValueError as exc:
        return _malformed(raw, fallback_ms, str(exc))
    if not isinstance(value, dict):
        return _malformed(raw, fallback_ms, f"not an object: {type(value).__name__}")
    event_ms = event_time_ms(value.get(event_time_field))
    findings = contract.findings(value)
    if event_ms is None:
        findings.append(Finding("contract_violation", event_time_field, "no readable event time"))
        event_ms = fallback_ms
    key: str | None
    if key_field is not None:
        key = None if value.get(key_field) is None else str(value.get(key_field))
    else:
        key = message_key.decode("utf-8", "replace") if message_key is not None else None
    return Checked(value=value, raw=raw, event_ms=event_ms, key=key, findings=findings)


def _malformed(raw: bytes, event_ms: int, detail: str) -> Checked:
    return Checked(
        value=None, raw=raw, event_ms=event_ms, key=None, findings=[Finding("malformed", None, detail)]
    )


def median(values: list[float]) -> float | None:
    """The median, or None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return float(ordered[mid]) if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2.0


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100) by nearest rank, or None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return float(ordered[rank - 1])


def medians(records: list[Checked], number_fields: tuple[str, ...]) -> dict[str, float]:
    """Per number field, the median of the values that are numbers (booleans excluded)."""
    out: dict[str, float] = {}
    decoded = [r.value for r in records if r.value is not None]
    for name in number_fields:
        column = [value.get(name) for value in decoded]
        values = [float(v) for v in column if isinstance(v, _NUMBERS) and not isinstance(v, bool)]
        found = median(values)
        if found is not None:
            out[name] = found
    return out


def mark_duplicates(records: list[Checked]) -> None:
    """Add a duplicate_key finding to each record whose key came before in the window (arrival order)."""
    seen: set[str] = set()
    for record in records:
        if record.key is None:
            continue
        if record.key in seen:
            record.findings.append(
                Finding("duplicate_key", None, f"key {record.key!r} seen before in the window")
            )
        else:
            seen.add(record.key)


def field_counts(records: list[Checked], fields: tuple[str, ...]) -> dict[str, FieldCounts]:
    """Nulls, type violations and out-of-range values per contract field."""
    counts = {name: FieldCounts() for name in fields}
    for record in records:
        if record.value is None:
            continue
        for name in fields:
            if record.value.get(name) is None:
                counts[name].nulls += 1
        for finding in record.findings:
            if finding.field is None or finding.field not in counts:
                continue
            if finding.kind == "type_violation":
                counts[finding.field].type_violations += 1
            elif finding.kind == "out_of_range":
                counts[finding.field].out_of_range += 1
    return counts


def quality_score(records: int, findings: dict[StreamFindingKind, int]) -> float:
    """100 for a clean window, down by each kind's share of records, weighted (0 at worst; 100 when empty)."""
    if records == 0:
        return 100.0
    penalty = sum(
        SCORE_WEIGHTS.get(kind, 1.0) * min(count, records) / records for kind, count in findings.items()
    )
    return round(max(0.0, 100.0 * (1.0 - penalty)), 2)


@dataclass
class Verdict:
    """What the policy does with one record: where it goes, what changed, the headers to say why."""

    route: str  # "clean" | "quarantine" | "drop"
    value: dict[str, Any] | None
    repaired: bool = False
    flags: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


def rule_for(
    policy: StreamPolicy, kind: StreamFindingKind, field_name: str | None
) -> StreamPolicyRule | None:
    """The rule for a finding: the one naming its field first, then the kind's rule for every field."""
    general: StreamPolicyRule | None = None
    for rule in policy.rules:
        if rule.kind != kind:
            continue
        if rule.field is not None and rule.field == field_name:
            return rule
        if rule.field is None and general is None:
            general = rule
    return general


def decide(record: Checked, *, policy: StreamPolicy, last_medians: dict[str, float]) -> Verdict:
    """Apply the policy to one record: quarantine wins, then a drop, then repairs and flags."""
    value = dict(record.value) if record.value is not None else None
    verdict = Verdict(route="clean", value=value)
    actions: list[tuple[Finding, StreamAction, StreamPolicyRule | None]] = []
    for finding in record.findings:
        rule = rule_for(policy, finding.kind, finding.field)
        action: StreamAction = (
            rule.action if rule is not None else STREAM_FINDINGS[finding.kind].default_action
        )
        if action not in STREAM_FINDINGS[finding.kind].actions:
            action = "quarantine"  # an action the kind cannot take (e.g. repairing a malformed record)
        actions.append((finding, action, rule))
    quarantined = [f for f, action, _ in actions if action == "quarantine"]
    if quarantined:
        verdict.route = "quarantine"
        verdict.reasons = [_reason(f) for f in quarantined]
        return verdict
    if any(action == "drop_duplicate" for _, action, _ in actions):
        verdict.route = "drop"
        return verdict
    for finding, action, rule in actions:
        if action == "flag":
            verdict.flags.append(_reason(finding))
        elif action in ("repair_constant", "repair_last_median"):
            if value is None or finding.field is None:
                verdict.flags.append(_reason(finding))
                continue
            if action == "repair_constant":
                value[finding.field] = rule.constant if rule is not None else None
            else:
                repaired = last_medians.get(finding.field)
                if repaired is None:  # no previous window (or no number in it): nothing to repair with
                    verdict.route = "quarantine"
                    verdict.reasons.append(f"{_reason(finding)} (no previous window median to repair with)")
                    return verdict
                value[finding.field] = repaired
            verdict.repaired = True
            verdict.flags.append(f"repaired:{_reason(finding)}")
    return verdict


def _reason(finding: Finding) -> str:
    return f"{finding.kind}:{finding.field}" if finding.field else finding.kind
