"""Stage 1's streaming pass: chunks are normalised one at a time and written to a sink as they arrive.

Memory holds one chunk (and the sample), whatever the row count. A column's type is the one its
chunks agree on (see read.py for the five canonical types); when a later chunk disagrees, say a float
in a column written so far as integers, a column first seen in a later JSON chunk, or a non-date in a
column read as dates, the rows already written are re-encoded once under the wider type (the sink
reads them back piece by piece). Each column can only widen a few times (unknown -> integer ->
float -> string), so this stays bounded. Text parsed as dates is also kept on disk as written, so a
column that turns out not to be dates goes back to its original text, not a reformatted one.
"""

from __future__ import annotations

import queue
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lockflow.common.errors import InvalidInput
from lockflow.common.models import ColumnSchema, LogicalType
from lockflow.datasets.canonical import STRING, ColumnTally, normalise, sample_rows, to_string
from lockflow.ingest.read import SAMPLE_ROWS, cast_column, parse_iso_column

_UTC = pa.timestamp("us", tz="UTC")

Column: TypeAlias = pa.Array | pa.ChunkedArray


class Sink(Protocol):
    """Where normalised chunks go: an artifact being written (DatasetWriter) or memory (MemorySink)."""

    rows: int

    def write(self, data: pa.Table) -> None:
        """Append rows."""

    def rewrite(self, schema: pa.Schema, convert: Callable[[pa.Table], pa.Table]) -> None:
        """Re-encode every piece written so far through convert."""


class MemorySink:
    """Keeps the chunks in memory, for previews and tests that want the whole table."""

    def __init__(self) -> None:
        self.tables: list[pa.Table] = []
        self.rows = 0

    def write(self, data: pa.Table) -> None:
        """Keep the chunk."""
        self.tables.append(data)
        self.rows += data.num_rows

    def rewrite(self, schema: pa.Schema, convert: Callable[[pa.Table], pa.Table]) -> None:
        """Convert every chunk kept so far."""
        self.tables = [convert(t).cast(schema) for t in self.tables]

    def table(self) -> pa.Table:
        """All chunks as one table."""
        return pa.concat_tables(self.tables)


class BackgroundSink:
    """Hands chunks to a writer thread, so reading the next chunk overlaps encoding the last one.

    Parsing (pandas' C reader, Arrow casts) and Parquet encoding both release the GIL. At most
    `depth` chunks wait in the queue, so memory stays bounded; a failed write is raised on the
    next call (or at `close`), and a rewrite waits for the queue to drain first.
    """

    def __init__(self, inner: Sink, *, depth: int = 2) -> None:
        self.inner = inner
        self.rows = inner.rows
        self._queue: queue.Queue[pa.Table | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="lockflow-ingest-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (table := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self.inner.write(table)
                except BaseException as exc:  # handed to the reading thread, which raises it
                    self._error = exc
            self._queue.task_done()
        self._queue.task_done()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, data: pa.Table) -> None:
        """Queue the chunk for the writer thread."""
        self._raise()
        self._queue.put(data)
        self.rows += data.num_rows

    def rewrite(self, schema: pa.Schema, convert: Callable[[pa.Table], pa.Table]) -> None:
        """Wait for queued chunks, then re-encode in this thread."""
        self._queue.join()
        self._raise()
        self.inner.rewrite(schema, convert)

    def close(self) -> None:
        """Wait for every queued chunk to be written; raise a write's failure."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._raise()


@dataclass(frozen=True)
class Streamed:
    """What the streaming pass found: the schema of what it wrote, a sample and the row count."""

    columns: list[ColumnSchema]
    sample: list[dict[str, Any]]
    rows: int


@dataclass
class _Col:
    """One column's state: its type so far (None until a non-null value) and whether it came from text."""

    type: pa.DataType | None = None
    from_text: bool = False

    def written(self) -> pa.DataType:
        # A column with no value yet is written as null text, as a wholly empty column ends up.
        return self.type if self.type is not None else STRING


@dataclass
class Summary(ColumnTally):
    """Null counts, examples and sample of exactly what was written, gathered piece by piece."""

    sample: list[dict[str, Any]] = field(default_factory=list)

    def add(self, table: pa.Table) -> None:
        """Count one written batch and keep the first rows as the sample."""
        if len(self.sample) < SAMPLE_ROWS:
            self.sample.extend(sample_rows(table, SAMPLE_ROWS - len(self.sample)))
        super().add(table)


class _RawText:
    """The original text of a column read as dates, on disk and row-aligned with what was written."""

    def __init__(self, path: Path, *, leading_nulls: int) -> None:
        self.path = path
        self._writer: pq.ParquetWriter | None = pq.ParquetWriter(
            path, pa.schema([("text", STRING)]), compression="none"
        )
        if leading_nulls:
            self.append(pa.nulls(leading_nulls, STRING))

    def append(self, text: Column) -> None:
        assert self._writer is not None
        self._writer.write_table(pa.table({"text": text}))

    def rows(self) -> Iterator[pa.Array]:
        """Finish the file and yield its text in batches (the caller slices them to its pieces)."""
        self.close()
        for batch in pq.ParquetFile(self.path).iter_batches(batch_size=65_536):
            yield batch.column(0)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class _Cursor:
    """Hands out the next n values of a batch stream, whatever the batch sizes."""

    def __init__(self, batches: Iterator[pa.Array]) -> None:
        self._batches = batches
        self._buffer: list[pa.Array] = []
        self._held = 0

    def take(self, n: int) -> pa.Array:
        while self._held < n:
            batch = next(self._batches)
            self._buffer.append(batch)
            self._held += len(batch)
        joined = pa.concat_arrays(self._buffer) if len(self._buffer) != 1 else self._buffer[0]
        rest = joined.slice(n)
        self._buffer, self._held = ([rest] if len(rest) else []), len(rest)
        return joined.slice(0, n)


def common_type(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    """The type two chunks of one column share: integers widen to floats, anything else mixed is text."""
    if a == b:
        return a
    if {a, b} == {pa.int64(), pa.float64()}:
        return pa.float64()
    if pa.types.is_timestamp(a) and pa.types.is_timestamp(b):
        return _UTC  # naive and UTC-offset values together: naive ones are read as UTC (as pandas does)
    return STRING


class ChunkStream:
    """Normalises chunks one at a time into a sink, widening column types when chunks disagree."""

    def __init__(self, *, name: str, column_types: dict[str, LogicalType], sink: Sink, workdir: Path) -> None:
        self.name = name
        self.column_types = column_types
        self.sink = sink
        self.workdir = workdir
        self.cols: dict[str, _Col] = {}
        self.raw: dict[str, _RawText] = {}
        self.summary = Summary()

    def schema(self) -> pa.Schema:
        """The schema of what has been written."""
        return pa.schema([(name, col.written()) for name, col in self.cols.items()])

    def add(self, chunk: pa.Table) -> None:
        """Normalise one chunk, widen what was written if it must, and write the chunk."""
        parts, texts = self._prepare(chunk)
        before = {name: col.written() for name, col in self.cols.items()}
        for name, part in parts.items():
            self._merge(name, part, from_text=name in texts)
        if chunk.num_rows == 0:
            return  # columns noted; nothing to write (and nothing written yet needs widening)
        # Columns read as dates from text that this chunk turned into text go back to their original text.
        demoted = [n for n, c in self.cols.items() if c.from_text and not pa.types.is_timestamp(c.written())]
        grown = len(self.cols) > len(before)
        changed = any(self.cols[name].written() != kind for name, kind in before.items())
        if self.sink.rows and (grown or changed):
            self._rewrite(demoted)
        for name in demoted:
            self.cols[name].from_text = False
            self.raw.pop(name).close()
        self._keep_text(texts, chunk.num_rows)
        self._write(self._conform(parts, texts, chunk.num_rows))

    def finish(self) -> Streamed:
        """Check the whole read and return what it found (the sink holds the rows)."""
        for raw in self.raw.values():
            raw.close()
        if self.sink.rows == 0:
            raise InvalidInput(f"{self.name} is empty: it has no data rows")
        missing = [name for name in self.column_types if name not in self.cols]
        if missing:
            names = ", ".join(missing)
            raise InvalidInput(f"column_types names columns that are not in {self.name}: {names}")
        schema = self.schema()
        return Streamed(self.summary.columns(schema), self.summary.sample, self.sink.rows)

    def _prepare(self, chunk: pa.Table) -> tuple[dict[str, Column], dict[str, Column]]:
        """Each column in its canonical type, overrides applied, ISO text parsed (original text kept)."""
        parts: dict[str, Column] = {}
        texts: dict[str, Column] = {}
        first_row = self.sink.rows + 1
        for name, column in zip(chunk.column_names, chunk.columns, strict=True):
            array = normalise(column)
            if name in self.column_types:
                array = cast_column(array, self.column_types[name], name, first_row=first_row)
            elif array.type == STRING and self._may_be_dates(name):
                parsed = parse_iso_column(array)
                if parsed is not None:
                    texts[name], array = array, parsed
            parts[name] = array
        return parts, texts

    def _may_be_dates(self, name: str) -> bool:
        col = self.cols.get(name)
        return col is None or col.type is None or pa.types.is_timestamp(col.type)

    def _merge(self, name: str, part: Column, *, from_text: bool) -> None:
        col = self.cols.setdefault(name, _Col())
        # An all-null part says nothing about the type, unless the user named the type.
        if part.null_count == len(part) and name not in self.column_types:
            return
        col.type = part.type if col.type is None else common_type(col.type, part.type)
        if from_text and not col.from_text and pa.types.is_timestamp(col.type):
            col.from_text = True
            path = self.workdir / f"text-{len(self.raw)}.parquet"
            self.raw[name] = _RawText(path, leading_nulls=self.sink.rows)

    def _keep_text(self, texts: dict[str, Column], rows: int) -> None:
        """Append this chunk's original text for every column still read as dates from text."""
        for name, raw in self.raw.items():
            raw.append(texts.get(name, pa.nulls(rows, STRING)))

    def _conform(self, parts: dict[str, Column], texts: dict[str, Column], rows: int) -> pa.Table:
        arrays: list[Column] = []
        for name, col in self.cols.items():
            target = col.written()
            part = parts.get(name)
            if part is None or part.null_count == len(part):
                arrays.append(pa.nulls(rows, target))
            elif part.type == target:
                arrays.append(part)
            elif target == STRING:
                arrays.append(texts[name] if name in texts else to_string(part))
            else:
                arrays.append(widen(part, target))
        return pa.table(arrays, schema=self.schema())

    def _write(self, table: pa.Table) -> None:
        self.sink.write(table)
        self.summary.add(table)

    def _rewrite(self, demoted: list[str]) -> None:
        """Re-encode the rows written so far under the widened schema (original text for ex-dates)."""
        cursors = {name: _Cursor(self.raw[name].rows()) for name in demoted}
        self.summary = Summary()
        schema = self.schema()

        def convert(piece: pa.Table) -> pa.Table:
            arrays: list[Column] = []
            for name, col in self.cols.items():
                target = col.written()
                if name not in piece.column_names:
                    arrays.append(pa.nulls(piece.num_rows, target))
                    continue
                column = piece.column(name)
                if name in cursors:
                    text = cursors[name].take(piece.num_rows)
                    arrays.append(pc.if_else(pc.is_null(text), to_string(column), text))
                elif column.type == target:
                    arrays.append(column)
                elif target == STRING:
                    arrays.append(to_string(column))
                else:
                    arrays.append(widen(column, target))
            table = pa.table(arrays, schema=schema)
            self.summary.add(table)
            return table

        self.sink.rewrite(schema, convert)


def widen(column: Column, target: pa.DataType) -> Column:
    """A column cast to its widened type; integers past 2^53 become the nearest float, as in pandas."""
    unsafe = pa.types.is_integer(column.type) and pa.types.is_floating(target)
    return pc.cast(column, target, safe=not unsafe)


def stream_chunks(
    chunks: Iterable[pa.Table], *, name: str, column_types: dict[str, LogicalType], sink: Sink
) -> Streamed:
    """Normalise the chunks into the sink one at a time; return the inferred schema and a sample."""
    background = BackgroundSink(sink)
    try:
        with tempfile.TemporaryDirectory(prefix="lockflow-stream-") as workdir:
            stream = ChunkStream(name=name, column_types=column_types, sink=background, workdir=Path(workdir))
            for chunk in chunks:
                stream.add(chunk)
            background.close()
            return stream.finish()
    finally:
        background.close()
