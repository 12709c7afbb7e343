"""A stream's contract: a JSON Schema of one record, inferred from a sample at gate 1 and checked when edited.

Pure: no Kafka, no I/O. Gate 1 shows the inferred contract beside the sample; the person approves it
as it is or edited, and the stream worker checks every record against the approved one
(`lockflow.common.streams.StreamSpec.contract`). What inference decides, and why:
- a field's `type` is every JSON type seen in it (integer and number together are `number`);
- `required`: the fields present and non-null in every sampled record (the event-time field always);
- `additionalProperties: false`: a field the contract does not name is a contract violation;
- `format: date-time` for text that is an ISO 8601 time in every sampled record;
- `enum` for text with few distinct values, each seen more than once, in a sample large enough to say so;
- `minimum: 0` for a number never negative in a large enough sample (amounts, counts); no maximum is
  inferred (a sample's largest value is no limit), a person adds one when editing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from lockflow.common.errors import InvalidInput

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
JSON_TYPES = ("null", "boolean", "integer", "number", "string", "object", "array")
ENUM_MAX_VALUES = 10  # at most this many distinct texts make an enum
ENUM_MIN_RECORDS = 50  # ... and only from a sample of at least this many records
MINIMUM_MIN_VALUES = 20  # a field needs this many numbers before 'never negative' becomes minimum 0
CONTRACT_MAX_BYTES = 200_000
_CHECKED_KEYWORDS = {"type", "format", "enum", "minimum", "maximum", "description"}


def json_type(value: Any) -> str:
    """The JSON Schema type of a decoded JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    return "array"


def is_timestamp(value: Any) -> bool:
    """True for an ISO 8601 date-time text (a trailing Z allowed)."""
    if not isinstance(value, str) or len(value) < 10:
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return "T" in value or " " in value


def infer_contract(
    records: Iterable[dict[str, Any]], *, event_time_field: str, key_field: str | None = None
) -> dict[str, Any]:
    """The JSON Schema of one record that every sampled record satisfies (InvalidInput without records)."""
    rows = list(records)
    if not rows:
        raise InvalidInput("no records to infer a contract from")
    order: list[str] = []
    seen: dict[str, list[Any]] = {}
    for row in rows:
        for name, value in row.items():
            if name not in seen:
                seen[name] = []
                order.append(name)
            seen[name].append(value)
    for wanted in (event_time_field, key_field):
        if wanted is not None and wanted not in seen:
            raise InvalidInput(
                f"no sampled record has the field {wanted!r}; fields seen: {', '.join(order[:30])}"
            )
    properties = {name: _property(seen[name], records=len(rows)) for name in order}
    required = [
        name for name in order if len(seen[name]) == len(rows) and all(v is not None for v in seen[name])
    ]
    if event_time_field not in required:
        required.append(event_time_field)
    return {
        "$schema": SCHEMA_DIALECT,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
        "x-lockflow": {
            "inferred_from_records": len(rows),
            "event_time_field": event_time_field,
            "key_field": key_field,
        },
    }


def _property(values: list[Any], *, records: int) -> dict[str, Any]:
    types = {json_type(v) for v in values}
    if "integer" in types and "number" in types:
        types.discard("integer")
    ordered = [t for t in JSON_TYPES if t in types]
    concrete = [t for t in ordered if t != "null"]
    shown: dict[str, Any] = {"type": ordered[0] if len(ordered) == 1 else ordered}
    present = [v for v in values if v is not None]
    if concrete == ["string"]:
        if all(is_timestamp(v) for v in present):
            shown["format"] = "date-time"
        else:
            counts: dict[str, int] = {}
            for v in present:
                counts[v] = counts.get(v, 0) + 1
            if records >= ENUM_MIN_RECORDS and len(counts) <= ENUM_MAX_VALUES and min(counts.values()) > 1:
                shown["enum"] = [*sorted(counts), *([None] if "null" in types else [])]
    elif concrete in (["integer"], ["number"]) and len(present) >= MINIMUM_MIN_VALUES and min(present) >= 0:
        shown["minimum"] = 0
    return shown


def check_contract(contract: Any, *, event_time_field: str, key_field: str | None = None) -> dict[str, Any]:
    """The contract if the stream worker can check records against it, else InvalidInput saying what is wrong.

    Accepted: an object schema whose properties each give a JSON type (or a list of them) and only the
    keywords the worker checks (type, format, enum, minimum, maximum, description); `required` naming
    properties; the event-time field among them.
    """
    if not isinstance(contract, dict):
        raise InvalidInput("the contract must be a JSON Schema object")
    if len(json.dumps(contract, default=str)) > CONTRACT_MAX_BYTES:
        raise InvalidInput(f"the contract is larger than {CONTRACT_MAX_BYTES:,} bytes")
    if contract.get("type") != "object":
        raise InvalidInput("the contract must describe an object: its 'type' must be 'object'")
    properties = contract.get("properties")
    if not isinstance(properties, dict) or not properties:
        raise InvalidInput("the contract's 'properties' must name at least one field")
    for name, prop in properties.items():
        _check_property(name, prop)
    if event_time_field not in properties:
        raise InvalidInput(f"the contract must have the event-time field {event_time_field!r}")
    if key_field is not None and key_field not in properties:
        raise InvalidInput(f"the contract must have the key field {key_field!r}")
    required = contract.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise InvalidInput("the contract's 'required' must be a list of field names")
    unknown = [r for r in required if r not in properties]
    if unknown:
        raise InvalidInput(f"'required' names fields the contract has no property for: {', '.join(unknown)}")
    extra = contract.get("additionalProperties", True)
    if not isinstance(extra, bool):
        raise InvalidInput("'additionalProperties' must be true or false")
    return contract


def _check_property(name: str, prop: Any) -> None:
    if not isinstance(prop, dict):
        raise InvalidInput(f"property {name!r} must be an object")
    types = prop.get("type")
    listed = types if isinstance(types, list) else [types]
    if not listed or not all(t in JSON_TYPES for t in listed):
        raise InvalidInput(f"property {name!r}: 'type' must be one of {', '.join(JSON_TYPES)} (or a list)")
    unknown = sorted(set(prop) - _CHECKED_KEYWORDS)
    if unknown:
        raise InvalidInput(
            f"property {name!r}: the stream worker does not check {', '.join(unknown)}; "
            f"use {', '.join(sorted(_CHECKED_KEYWORDS))}"
        )
    for bound in ("minimum", "maximum"):
        value = prop.get(bound)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise InvalidInput(f"property {name!r}: {bound} must be a number")
    low, high = prop.get("minimum"), prop.get("maximum")
    if isinstance(low, int | float) and isinstance(high, int | float) and low > high:
        raise InvalidInput(f"property {name!r}: minimum ({low:g}) is above maximum ({high:g})")
    if "enum" in prop and (not isinstance(prop["enum"], list) or not prop["enum"]):
        raise InvalidInput(f"property {name!r}: enum must be a non-empty list")
