"""The pipeline's canonical dataset types: five Arrow types, one per logical type, and what is read off them.

Every stage's dataset has columns of exactly these types: int64 (integer), float64 (float), bool
(boolean), timestamp[us] (datetime; UTC when the source had an offset) and large_string (string).
Ingest casts whatever a source holds to them (`normalise`); every stage that stores a dataset
describes it the same way (`infer_schema`, `sample_rows`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lockflow.common.models import ColumnSchema, LogicalType

EXAMPLES = 3
STRING = pa.large_string()
TIMESTAMP = pa.timestamp("us")
ARROW_TYPES: dict[LogicalType, pa.DataType] = {
    "integer": pa.int64(),
    "float": pa.float64(),
    "boolean": pa.bool_(),
    "datetime": TIMESTAMP,
    "string": STRING,
}


# ---- casting to the canonical types ----------------------------------------------------------


def strings(values: Iterable[Any]) -> pa.Array:
    """Values as a large_string array: nulls stay null, the rest as `as_text` writes them."""
    return pa.array([None if is_null(v) else as_text(v) for v in values], type=STRING)


def as_text(value: Any) -> str:
    """A value as text: booleans lower-case, dates in ISO 8601, nested JSON as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def is_null(value: Any) -> bool:
    """Whether a value read from a source is missing (None, NaT or a float NaN)."""
    return value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def normalise(array: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Cast any Arrow type to the one canonical type of its logical type."""
    kind = array.type
    if pa.types.is_dictionary(kind):
        return normalise(pc.cast(array, kind.value_type))
    if pa.types.is_null(kind):
        return pa.nulls(len(array), STRING)
    if pa.types.is_boolean(kind):
        return array
    if pa.types.is_integer(kind):
        try:
            return pc.cast(array, pa.int64())
        except pa.ArrowInvalid:
            # A uint64 beyond int64's range: the nearest float, as pandas would give (a safe cast refuses it).
            return pc.cast(array, pa.float64(), safe=False)
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return pc.cast(array, pa.float64())
    if pa.types.is_timestamp(kind):
        if kind.tz is not None:
            return pc.cast(array, pa.timestamp("us", tz="UTC"))
        return pc.cast(array, TIMESTAMP)
    if pa.types.is_date(kind):
        return pc.cast(pc.cast(array, pa.timestamp("s")), TIMESTAMP)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return pc.cast(array, STRING)
    return strings(array.to_pylist())


def to_string(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Any column as text (see `as_text`)."""
    return strings(array.to_pylist())


# ---- schema and sample ------------------------------------------------------------------------


def logical_type(kind: pa.DataType) -> LogicalType:
    """The logical type an Arrow type stands for (anything unknown reads as string)."""
    if pa.types.is_boolean(kind):
        return "boolean"
    if pa.types.is_integer(kind):
        return "integer"
    if pa.types.is_floating(kind):
        return "float"
    if pa.types.is_timestamp(kind):
        return "datetime"
    return "string"


def infer_schema(table: pa.Table) -> list[ColumnSchema]:
    """One ColumnSchema per column: logical type, null count and up to three distinct examples."""
    return [
        ColumnSchema(
            name=name,
            dtype=logical_type(column.type),
            nullable=column.null_count > 0,
            null_count=column.null_count,
            examples=_examples(column),
        )
        for name, column in zip(table.column_names, table.columns, strict=True)
    ]


def _examples(column: pa.ChunkedArray) -> list[str]:
    return add_examples([], column)


def add_examples(found: list[str], column: pa.Array | pa.ChunkedArray) -> list[str]:
    """Distinct non-null values of the column appended to found, in order, until there are three."""
    if len(found) >= EXAMPLES:
        return found
    pieces = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    for piece in pieces:
        present = piece.drop_null()
        # Growing windows in row order: most columns show three distinct values in the first few rows,
        # and a unique() over a whole chunk of an id column is wasted work.
        start, size = 0, 64
        while start < len(present):
            for value in pc.unique(present.slice(start, size)).to_pylist():
                shown = as_text(value)
                if shown not in found:
                    found.append(shown)
                if len(found) == EXAMPLES:
                    return found
            start, size = start + size, size * 8
    return found


def sample_rows(table: pa.Table, limit: int) -> list[dict[str, Any]]:
    """The first rows as plain JSON-safe dicts (None for nulls, ISO strings for datetimes)."""
    return [{k: json_value(v) for k, v in row.items()} for row in table.slice(0, limit).to_pylist()]


def json_value(value: Any) -> Any:
    """A cell as strict JSON takes it: ISO strings for datetimes, None for NaN or infinity."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class ColumnTally:
    """Null counts and examples per column of what a stage wrote, gathered batch by batch."""

    rows: int = 0
    nulls: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, table: pa.Table) -> None:
        """Count one written batch."""
        self.rows += table.num_rows
        for name, column in zip(table.column_names, table.columns, strict=True):
            self.nulls[name] = self.nulls.get(name, 0) + column.null_count
            add_examples(self.examples.setdefault(name, []), column)

    def columns(self, schema: pa.Schema) -> list[ColumnSchema]:
        """The written dataset's column summaries, in the schema's order."""
        return [
            ColumnSchema(
                name=f.name,
                dtype=logical_type(f.type),
                nullable=self.nulls.get(f.name, 0) > 0,
                null_count=self.nulls.get(f.name, 0),
                examples=self.examples.get(f.name, []),
            )
            for f in schema
        ]
