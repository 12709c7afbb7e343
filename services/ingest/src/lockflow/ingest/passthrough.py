"""Stage 1 for a Parquet file already in canonical form: store the file as it is, do not re-encode it.

Normalisation (stream.py) would give a Parquet source whose columns already have the canonical types
(read.py) exactly the rows it holds. Such a file is copied byte for byte into the artifact store
(hashed while copied: the same content addressing as any artifact), and the schema, sample and null
counts are taken from one read of the copy, in batches, one row group at a time (memory stays
flat). That read also proves every page decodes (and matches its CRC where the writer stored one),
so a corrupt file is refused here as on the normal path, and nothing is stored. Reading the copy,
not the source, means what was checked is exactly what is stored.

What keeps a file off this path (it then goes through normalisation, which decides):
- a column whose Arrow type is not canonical (int32, float32, string instead of large_string,
  dictionary, date, decimal, timestamp other than µs naive or µs UTC, nested...), a non-nullable
  field, duplicate names, or a type override that would change a column;
- pandas metadata that would make later stages' `to_pandas` differ from a plain table's (an index
  stored as a column, extension dtypes such as Int64);
- a text column whose every value has the shape of an ISO date (normalisation may read it as dates);
- a column that is all null and not text (normalisation writes such a column as text);
- no rows (normalisation refuses the file with its usual message).
The ISO-date and all-null cases are only known after the read: then the copy is dropped and
normalisation runs (the rest is decided from the footer, before anything is copied).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from lockflow.common.artifacts import ArtifactStore
from lockflow.common.errors import InvalidInput
from lockflow.common.models import DatasetRef, LogicalType
from lockflow.datasets.canonical import STRING, TIMESTAMP, logical_type
from lockflow.datasets.parquet import open_parquet, parquet_batches, unreadable_parquet
from lockflow.ingest.read import iso_shaped
from lockflow.ingest.stream import Streamed, Summary

# The types normalisation leaves as they are (see lockflow.datasets.canonical.normalise).
CANONICAL = (pa.int64(), pa.float64(), pa.bool_(), TIMESTAMP, pa.timestamp("us", tz="UTC"), STRING)
BATCH_ROWS = 65_536


@dataclass
class _Checks:
    """What the read of a file with canonical types must still settle before the file is kept."""

    undecided_text: set[str]  # text columns with no value yet that is not ISO-shaped
    needs_values: set[str]  # non-text columns: one with no value at all would be written as text


def keep_parquet(
    path: Path,
    *,
    column_types: dict[str, LogicalType],
    artifacts: ArtifactStore,
    batch_rows: int = BATCH_ROWS,
) -> tuple[DatasetRef, list[dict[str, Any]]] | None:
    """Store a canonical Parquet file as it is; its claim check and sample, or None to normalise it."""
    with _open(path) as source:
        if _plan(source, column_types) is None:
            return None  # decided from the footer alone, before copying anything
    with artifacts.open_copy(path, suffix=".parquet") as copy:
        assert copy.path is not None
        with _open(copy.path, shown=path) as parquet:
            checks = _plan(parquet, column_types)  # again on the copy: the source may have changed
            if checks is None:
                return None
            try:
                streamed = _summarise(parquet, checks, batch_rows, shown=path)
            except (pa.ArrowException, OSError) as exc:
                raise InvalidInput(unreadable_parquet(path, exc)) from exc
        if streamed is None:
            return None
        uri = copy.commit()
    ref = DatasetRef(uri=uri, fingerprint=copy.digest, rows=streamed.rows, columns=streamed.columns)
    return ref, streamed.sample


def _open(path: Path, *, shown: Path | None = None) -> pq.ParquetFile:
    try:
        return open_parquet(path)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInput(unreadable_parquet(shown or path, exc)) from exc


def _plan(parquet: pq.ParquetFile, column_types: dict[str, LogicalType]) -> _Checks | None:
    """The checks left for the read, or None if the footer already shows normalisation would change it."""
    schema = parquet.schema_arrow
    names = schema.names
    if parquet.metadata.num_rows == 0 or not names or len(set(names)) != len(names):
        return None
    if any(name not in names for name in column_types):
        return None  # normalisation names the missing columns in its error
    undecided: set[str] = set()
    needs_values: set[str] = set()
    for field in schema:
        if field.type not in CANONICAL or not field.nullable:
            return None
        pinned = column_types.get(field.name)
        if pinned is not None:
            if pinned != logical_type(field.type):
                return None
            continue  # a pinned column keeps its type even when all null, and is never parsed as dates
        (undecided if field.type == STRING else needs_values).add(field.name)
    if not _plain_for_pandas(schema):
        return None
    return _Checks(undecided, needs_values)


def _plain_for_pandas(schema: pa.Schema) -> bool:
    """Whether pandas metadata (kept in the file) converts it to pandas as a table without it would."""
    raw = (schema.metadata or {}).get(b"pandas")
    if raw is None:
        return True
    try:
        meta = json.loads(raw)
    except ValueError:
        return False
    for index in meta.get("index_columns", []):
        if not isinstance(index, dict) or index.get("kind") != "range" or index.get("name") is not None:
            return False  # an index stored as a column would leave the data columns
        if index.get("start", 0) != 0 or index.get("step", 1) != 1:
            return False
    empty = schema.empty_table()
    try:
        with_meta = empty.to_pandas()
    except Exception:  # metadata pandas cannot apply: let normalisation write a table without it
        return False
    without = empty.replace_schema_metadata(None).to_pandas()
    return (
        with_meta.columns.equals(without.columns)
        and list(with_meta.columns.names) == list(without.columns.names)
        and with_meta.dtypes.equals(without.dtypes)
    )


def _summarise(parquet: pq.ParquetFile, checks: _Checks, batch_rows: int, *, shown: Path) -> Streamed | None:
    """Null counts, examples and sample from one read of every row; None if normalisation must decide."""
    summary = Summary()
    rows = 0
    for batch in parquet_batches(parquet, batch_rows):
        table = pa.Table.from_batches([batch])
        rows += table.num_rows
        summary.add(table)
        for name in list(checks.undecided_text):
            present = table.column(name).drop_null()
            if len(present) and not iso_shaped(present):
                checks.undecided_text.discard(name)  # text for good: normalisation keeps it as it is
    if rows != parquet.metadata.num_rows:
        raise InvalidInput(
            f"{shown.name} is not a readable Parquet file: {rows} rows where its footer says "
            f"{parquet.metadata.num_rows}"
        )
    if any(summary.nulls.get(name, 0) < rows for name in checks.undecided_text):
        return None  # every value shaped like a date: normalisation may read the column as dates
    if any(summary.nulls.get(name, 0) == rows for name in checks.needs_values):
        return None  # no value at all: normalisation writes the column as text
    return Streamed(summary.columns(parquet.schema_arrow), summary.sample, rows)
