"""Stage 1: read a file (CSV/TSV, JSON, JSON lines, Parquet, Excel; gzip or zip) in chunks, infer its schema.

Every column of the returned table has one of five Arrow types, one per logical type:
int64 (integer), float64 (float), bool (boolean), timestamp[us] (datetime), large_string (string).
Downstream stages can rely on that instead of handling every Arrow type a file may contain; the
types, and how a table is described, are the datasets library's (`lockflow.datasets.canonical`).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lockflow.common.errors import InvalidInput, StageError
from lockflow.common.models import ColumnSchema, LogicalType, SourceFormat, SourceOptions, SourceSpec
from lockflow.datasets.canonical import (
    ARROW_TYPES,
    TIMESTAMP,
    as_text,
    is_null,
    logical_type,
    strings,
)
from lockflow.datasets.parquet import open_parquet, parquet_batches, unreadable_parquet
from lockflow.ingest.archives import check_xlsx, gunzip, unzip_one
from lockflow.sources.settings import FileLimits

SAMPLE_ROWS = 10
SNIFF_BYTES = 64 * 1024
BINARY_PROBE_BYTES = 8 * 1024
_DECODE_BLOCK = 1024 * 1024
_DELIMITERS = ",;\t|"

_EXTENSIONS: dict[str, SourceFormat] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",  # a JSON array is recognised by its first character (see detect_format)
    ".parquet": "parquet",
    ".pq": "parquet",
    ".xlsx": "xlsx",
}
_COMPRESSED = (".gz", ".zip")
_XLSX_BATCH = 10_000


# Strict ISO 8601 shapes: a date, optionally a time, optionally an offset. Stricter than pandas'
# "ISO8601" format, which also takes bare years or compact forms that are usually plain numbers.
_ISO_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?"
)
_ISO_ANCHORED = f"^(?:{_ISO_DATETIME.pattern})$"  # the same shape for Arrow's RE2 matcher
_PANDAS_RAGGED = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_PANDAS_EOF_QUOTE = re.compile(r"EOF inside string starting at row (\d+)")
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


@dataclass(frozen=True)
class LoadedSource:
    """A source read into memory: the table, its inferred schema, a JSON-safe sample and its size."""

    table: pa.Table
    columns: list[ColumnSchema]
    sample: list[dict[str, Any]]
    bytes_read: int


def detect_format(path: Path, declared: SourceFormat | None) -> SourceFormat:
    """The declared format, else the one the file's extension implies."""
    if declared is not None:
        return declared
    fmt = _EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(_EXTENSIONS))
        raise InvalidInput(
            f"cannot tell the format of {path.name!r} from its extension "
            f"(known: {known}, also inside .gz or .zip); declare the format (csv, json, jsonl, parquet, xlsx)"
        )
    if fmt == "jsonl" and path.suffix.lower() == ".json" and _first_char(path) == "[":
        return "json"
    return fmt


def _first_char(path: Path) -> str:
    if not path.is_file():
        return ""
    with path.open("rb") as handle:
        head = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return chr(head[0]) if head else ""


def load_source(
    *, spec: SourceSpec, max_rows: int | None = None, limits: FileLimits | None = None
) -> LoadedSource:
    """Read the file in chunks (stopping after max_rows if given), apply type overrides, infer the schema."""
    path = Path(spec.path)
    limits = limits or FileLimits()
    size = _check_file(path)
    if size > limits.max_file_bytes:
        raise InvalidInput(f"{path.name} is {size} bytes, more than the limit of {limits.max_file_bytes}")
    with tempfile.TemporaryDirectory(prefix="lockflow-unpack-") as workdir:
        data_path, fmt = unpack(path, spec.format, Path(workdir), limits, entry=None)
        chunks = read_chunks(data_path, fmt, spec.options, limits)
        if max_rows is not None:
            chunks = _first_rows(chunks, max_rows)
        return load_chunks(chunks, name=path.name, column_types=spec.options.column_types, bytes_read=size)


def unpack(
    path: Path, declared: SourceFormat | None, workdir: Path, limits: FileLimits, *, entry: str | None
) -> tuple[Path, SourceFormat]:
    """The data file to read (a .gz or .zip extracted safely into workdir) and its format."""
    suffix = path.suffix.lower()
    if suffix == ".gz":
        inner = gunzip(path, workdir / path.stem, limits)
        return inner, detect_format(inner, declared)
    if suffix == ".zip":
        inner = unzip_one(path, workdir, limits, entry=entry)
        return inner, detect_format(inner, declared)
    return path, detect_format(path, declared)


def read_chunks(
    path: Path, fmt: SourceFormat, options: SourceOptions, limits: FileLimits
) -> Iterator[pa.Table]:
    """The file's rows as Arrow tables of at most options.chunk_rows rows."""
    chunk_rows = options.chunk_rows
    if fmt == "parquet":
        return _read_parquet(path, chunk_rows)
    if fmt == "xlsx":
        return _read_xlsx(path, options, limits)
    # CSV in UTF-8: only the head is checked here; pandas refuses a bad byte anywhere later, and then
    # the full scan finds its offset (saves decoding every file twice).
    _check_text(path, options.encoding, full=fmt != "csv" or options.encoding is not None)
    if fmt == "csv":
        delimiter = options.delimiter or sniff_delimiter(path, options.encoding)
        return _read_csv(path, delimiter, options, limits)
    if fmt == "json":
        return _read_json(path, chunk_rows, options.encoding)
    return _read_jsonl(path, chunk_rows)


def load_chunks(
    chunks: Iterable[pa.Table], *, name: str, column_types: dict[str, LogicalType], bytes_read: int
) -> LoadedSource:
    """One normalised table from chunks, type overrides applied, schema and sample inferred (in memory)."""
    from lockflow.ingest.stream import MemorySink, stream_chunks  # stream builds on this module's helpers

    sink = MemorySink()
    streamed = stream_chunks(chunks, name=name, column_types=column_types, sink=sink)
    return LoadedSource(
        table=sink.table(),
        columns=streamed.columns,
        sample=streamed.sample,
        bytes_read=bytes_read,
    )


def _first_rows(chunks: Iterable[pa.Table], limit: int) -> Iterator[pa.Table]:
    taken = 0
    for chunk in chunks:
        if taken >= limit:
            return
        yield chunk.slice(0, limit - taken)
        taken += chunk.num_rows


# ---- file checks ------------------------------------------------------------------------------


def _check_file(path: Path) -> int:
    if not path.exists():
        raise InvalidInput(f"no such file: {path}")
    if path.is_dir():
        raise InvalidInput(f"{path} is a directory, not a file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from exc
    if size == 0:
        raise InvalidInput(f"{path.name} is empty (0 bytes)")
    return size


def _check_text(path: Path, encoding: str | None = None, *, full: bool = True) -> None:
    """Refuse binary content: a NUL byte near the start, or bytes that are not UTF-8 (anywhere if full)."""
    with path.open("rb") as handle:
        head = handle.read(BINARY_PROBE_BYTES)
        nul = head.find(b"\x00")
        if nul >= 0 and not (encoding or "").lower().startswith("utf-16"):
            raise InvalidInput(_not_text(path, nul))
        if encoding is not None:
            _check_encoding(path, encoding)
            return
        # Decode the whole file incrementally: pandas would fail later with an offset into its buffer.
        decoder = codecs.getincrementaldecoder("utf-8")()
        offset = 0
        block = head
        while True:
            final = not block
            # The decoder may hold up to 3 bytes of a sequence left unfinished by the previous block.
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(block, final=final)
            except UnicodeDecodeError as exc:
                raise InvalidInput(_not_text(path, max(offset - pending + exc.start, 0))) from exc
            if final:
                return
            offset += len(block)
            if not full:
                return
            block = handle.read(_DECODE_BLOCK)


def _not_text(path: Path, at: int) -> str:
    return (
        f"{path.name} does not look like a text file in UTF-8 (binary content at byte {at}); "
        "if it is text in another encoding, set the encoding option (e.g. latin-1)"
    )


def _check_encoding(path: Path, encoding: str) -> None:
    try:
        codecs.lookup(encoding)
    except LookupError as exc:
        raise InvalidInput(f"unknown text encoding {encoding!r}") from exc
    try:
        with path.open("r", encoding=encoding) as handle:
            while handle.read(_DECODE_BLOCK):
                pass
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path.name} is not valid {encoding} text ({exc.reason})") from exc


def sniff_delimiter(path: Path, encoding: str | None = None) -> str:
    """The delimiter among , ; tab | that csv.Sniffer finds in the first 64 KiB, else ','."""
    if path.suffix.lower() == ".tsv":
        return "\t"
    sample = _head_text(path, encoding)
    if len(sample) == SNIFF_BYTES and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # a cut last line would mislead the sniffer
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        return ","


def _head_text(path: Path, encoding: str | None) -> str:
    with path.open("r", encoding=encoding or "utf-8-sig", errors="replace", newline="") as handle:
        return handle.read(SNIFF_BYTES)


def has_header(path: Path, delimiter: str, encoding: str | None) -> bool:
    """Whether the first row is a header: csv.Sniffer's vote, a header unless clearly not one."""
    sample = _head_text(path, encoding)
    if len(sample) == SNIFF_BYTES and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    try:
        first = next(csv.reader(io.StringIO(sample), delimiter=delimiter), [])
        # A first row with any empty or repeated cell is not a header; one with no number in it is
        # (Sniffer's vote by cell lengths misjudges short text columns); otherwise Sniffer decides.
        if not first or any(not c.strip() for c in first) or len(set(first)) < len(first):
            return False
        if not any(_as_float(c) is not None for c in first):
            return True
        return csv.Sniffer().has_header(sample)
    except csv.Error:
        return True


# ---- readers ----------------------------------------------------------------------------------


def _read_csv(path: Path, delimiter: str, options: SourceOptions, limits: FileLimits) -> Iterator[pa.Table]:
    header = options.header if options.header is not None else has_header(path, delimiter, options.encoding)
    if header:
        _check_first_row(path, delimiter, options.encoding)
    text_columns = list(options.column_types)
    names = None if header else _numbered_columns(path, delimiter, options.encoding)
    start = 1
    try:
        reader = pd.read_csv(
            path,
            sep=delimiter,
            chunksize=options.chunk_rows,
            on_bad_lines="error",
            encoding=options.encoding or "utf-8",
            header=0 if header else None,
            names=names,
            # Columns with a type override are read as written ("007" stays "007" for a string).
            dtype=dict.fromkeys(text_columns, "str"),
        )
        with reader:
            for chunk in reader:
                table = _frame_to_table(chunk)
                _check_field_sizes(path, table, start, limits.max_field_bytes)
                start += table.num_rows
                yield table
    except pd.errors.EmptyDataError as exc:
        raise InvalidInput(f"{path.name} is empty: no header and no rows") from exc
    except pd.errors.ParserError as exc:
        raise InvalidInput(_ragged_message(path, str(exc))) from exc
    except UnicodeDecodeError as exc:
        if options.encoding is None:
            _check_text(path)  # raises naming the byte offset of the first bad byte
        raise InvalidInput(
            f"{path.name} is not valid {options.encoding or 'UTF-8'} text ({exc.reason})"
        ) from exc


def _numbered_columns(path: Path, delimiter: str, encoding: str | None) -> list[str]:
    first = next(csv.reader(io.StringIO(_head_text(path, encoding)), delimiter=delimiter), [])
    return [f"column_{i}" for i in range(1, len(first) + 1)]


def _check_field_sizes(path: Path, table: pa.Table, start: int, limit: int) -> None:
    """Refuse a field longer than the limit, naming its row and column."""
    for name, column in zip(table.column_names, table.columns, strict=True):
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        lengths = pc.binary_length(column)
        longest = pc.max(lengths).as_py()
        if longest is not None and longest > limit:
            row = pc.index(pc.greater(lengths, limit), True).as_py()
            raise InvalidInput(
                f"{path.name}: row {start + row}, column {name!r} has a field of {longest} bytes, "
                f"over the limit of {limit} bytes (an unmatched quote can also cause this)"
            )


def _check_first_row(path: Path, delimiter: str, encoding: str | None = None) -> None:
    """Refuse a first data row longer than the header, which pandas would silently make an index."""
    with path.open("r", encoding=encoding or "utf-8-sig", newline="") as handle:
        rows = (row for row in csv.reader(handle, delimiter=delimiter) if row)
        try:
            header = next(rows, None)
            first = next(rows, None)
        except csv.Error:
            return  # e.g. a field beyond the csv module's size limit: pandas will judge the file
        except UnicodeDecodeError:
            _check_text(path, encoding)  # a bad byte past the checked head: name its offset
            raise
    if header is not None and first is not None and len(first) > len(header):
        raise InvalidInput(f"{path.name}: row 1 has {len(first)} fields, expected {len(header)}")


def _ragged_message(path: Path, message: str) -> str:
    match = _PANDAS_RAGGED.search(message)
    quote = _PANDAS_EOF_QUOTE.search(message)
    if quote is not None:
        return (
            f"{path.name}: a quoted field opened in row {quote.group(1)} is never closed "
            "(unmatched quote); the file ends inside it"
        )
    if match is None:
        return f"{path.name} is not a readable CSV file: {message}"
    expected, line, saw = (int(g) for g in match.groups())
    # pandas counts physical lines with the header as line 1, so data row = line - 1.
    return f"{path.name}: row {line - 1} (line {line}) has {saw} fields, expected {expected}"


def _read_jsonl(path: Path, chunk_rows: int) -> Iterator[pa.Table]:
    try:
        # dtype=False: keep strings such as "007" as written; numbers still come out as numbers.
        reader = pd.read_json(path, lines=True, chunksize=chunk_rows, dtype=False, encoding="utf-8")
        with reader:
            for chunk in reader:
                yield _frame_to_table(chunk)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(_bad_json_line(path, exc)) from exc


def _bad_json_line(path: Path, exc: Exception) -> str:
    """Find the first line that is not a JSON object, since pandas' message has no line number."""
    with path.open("r", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as err:
                return f"{path.name}: line {number} is not valid JSON ({err.msg} at column {err.colno})"
            if not isinstance(value, dict):
                return f"{path.name}: line {number} is a JSON {type(value).__name__}, expected an object"
    return f"{path.name} is not a readable JSON lines file: {exc}"


def _read_parquet(path: Path, chunk_rows: int) -> Iterator[pa.Table]:
    try:
        parquet = open_parquet(path)
        for batch in parquet_batches(parquet, chunk_rows):
            yield pa.Table.from_batches([batch])
        if parquet.metadata.num_rows == 0:
            yield parquet.schema_arrow.empty_table()
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInput(unreadable_parquet(path, exc)) from exc


def _read_json(path: Path, chunk_rows: int, encoding: str | None) -> Iterator[pa.Table]:
    """A JSON document: an array of objects, or an object holding exactly one such array."""
    try:
        with path.open("r", encoding=encoding or "utf-8-sig") as handle:
            document = json.load(handle)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{path.name} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from exc
    records = records_of(document, None, source=path.name)
    yield from records_to_tables(records, chunk_rows)


def records_of(document: Any, records_path: str | None, *, source: str) -> list[dict[str, Any]]:
    """The list of records in a JSON document, at records_path (dotted) if given."""
    node = document
    if records_path:
        for part in records_path.split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise InvalidInput(f"{source}: the records path {records_path!r} is not in the response")
    elif isinstance(node, dict):
        lists = [v for v in node.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise InvalidInput(f"{source}: expected a JSON array of records; set the records path")
        node = lists[0]
    if not isinstance(node, list):
        raise InvalidInput(f"{source}: the records are a JSON {type(node).__name__}, expected an array")
    for index, item in enumerate(node):
        if not isinstance(item, dict):
            raise InvalidInput(
                f"{source}: record {index + 1} is a JSON {type(item).__name__}, expected an object"
            )
    return node


def records_to_tables(records: list[dict[str, Any]], chunk_rows: int) -> Iterator[pa.Table]:
    """Records as Arrow tables of at most chunk_rows rows (nested values kept as JSON text)."""
    for start in range(0, len(records), chunk_rows):
        frame = pd.DataFrame.from_records(records[start : start + chunk_rows])
        yield _frame_to_table(frame.astype(object).where(frame.notna(), None))


def _read_xlsx(path: Path, options: SourceOptions, limits: FileLimits) -> Iterator[pa.Table]:
    """An Excel sheet, first row as header, after the package passed the zip and XML checks."""
    import openpyxl  # imported here: only Excel sources need it

    check_xlsx(path, limits)
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken package
        raise InvalidInput(f"{path.name} is not a readable .xlsx workbook: {exc}") from exc
    try:
        if options.sheet is not None and options.sheet not in book.sheetnames:
            raise InvalidInput(
                f"{path.name} has no sheet {options.sheet!r}; sheets: {', '.join(book.sheetnames)}"
            )
        sheet = book[options.sheet] if options.sheet else book.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        first = next(rows, None)
        if first is None:
            raise InvalidInput(f"{path.name}: the sheet {sheet.title!r} is empty")
        if options.header is False:
            names = [f"column_{i}" for i in range(1, len(first) + 1)]
            pending: list[tuple[Any, ...]] = [first]
        else:
            names = [str(v) if v is not None else f"column_{i}" for i, v in enumerate(first, start=1)]
            pending = []
        for row in rows:
            pending.append(row)
            if len(pending) >= min(options.chunk_rows, _XLSX_BATCH):
                yield _frame_to_table(pd.DataFrame(pending, columns=names, dtype=object))
                pending = []
        if pending:
            yield _frame_to_table(pd.DataFrame(pending, columns=names, dtype=object))
    finally:
        book.close()


# ---- normalising chunks -----------------------------------------------------------------------


def _frame_to_table(frame: pd.DataFrame) -> pa.Table:
    arrays = [_series_to_arrow(frame[name]) for name in frame.columns]
    return pa.table(arrays, names=[str(name) for name in frame.columns])


def _series_to_arrow(series: pd.Series) -> pa.Array:
    if pd.api.types.is_object_dtype(series.dtype):
        values = series.to_numpy(dtype=object)
        if any(isinstance(v, dict | list) for v in values):
            return strings(values)  # nested JSON stays readable as JSON text
        try:
            return pa.array(values, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            # Mixed kinds in one column (e.g. 1 and "a" in JSON), or integers past 64 bits: text.
            return strings(values)
    return pa.Array.from_pandas(series)


# ---- datetimes --------------------------------------------------------------------------------


def parse_iso_column(column: pa.Array | pa.ChunkedArray) -> pa.Array | None:
    """Timestamps if every non-null value of a text column is an ISO date or datetime, else None."""
    present = column.drop_null()
    if len(present) == 0 or not iso_shaped(present):
        return None
    try:
        return _parse_datetimes(column.to_pandas(), fmt="ISO8601")
    except (ValueError, OverflowError):
        return None  # shaped like a date but not one (e.g. 2024-13-45)


def iso_shaped(present: pa.Array | pa.ChunkedArray) -> bool:
    """Whether every value of a text column without nulls has the shape of an ISO date or datetime."""
    # Most text columns fail on their first values: skip the full scan for them (checked in Arrow).
    if not pc.all(pc.match_substring_regex(present.slice(0, 100), _ISO_ANCHORED)).as_py():
        return False
    return bool(pc.all(pc.match_substring_regex(present, _ISO_ANCHORED)).as_py())


def _parse_datetimes(values: pd.Series, *, fmt: str, errors: str = "raise") -> pa.Array:
    try:
        parsed = pd.to_datetime(values, format=fmt, errors=errors)  # type: ignore[call-overload]
    except ValueError as exc:
        if "timezone" not in str(exc).lower() and "utc=true" not in str(exc).lower():
            raise
        parsed = pd.to_datetime(values, format=fmt, errors=errors, utc=True)  # type: ignore[call-overload]
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_convert("UTC")
        target = pa.timestamp("us", tz="UTC")
    else:
        target = TIMESTAMP
    # safe=False: nanoseconds beyond microsecond precision are truncated rather than refused.
    return pc.cast(pa.array(parsed), target, safe=False)


# ---- type overrides ---------------------------------------------------------------------------


def cast_column(
    column: pa.Array | pa.ChunkedArray, logical: LogicalType, name: str, *, first_row: int = 1
) -> pa.Array | pa.ChunkedArray:
    """The column as the requested logical type, naming the first value (and its row) that fails."""
    if logical_type(column.type) == logical:
        return column
    values = column.to_pylist()
    if logical == "datetime":
        return _cast_datetimes(values, name, first_row)
    convert = _CONVERTERS[logical]
    out: list[Any] = []
    for row, value in enumerate(values, start=first_row):
        if is_null(value):
            out.append(None)
            continue
        converted = convert(value)
        if converted is None:
            raise _cast_error(name, logical, value, row)
        out.append(converted)
    return pa.array(out, type=ARROW_TYPES[logical])


def _cast_datetimes(values: list[Any], name: str, first_row: int) -> pa.Array:
    # Numbers are not dates here: epoch seconds vs milliseconds would be a guess.
    text = pd.Series([v if isinstance(v, str) else None for v in values], dtype=object)
    parsed = _parse_datetimes(text, fmt="mixed", errors="coerce")
    valid_flags = parsed.is_valid().to_pylist()
    for row, (value, valid) in enumerate(zip(values, valid_flags, strict=True), start=first_row):
        if not valid and not is_null(value):
            raise _cast_error(name, "datetime", value, row)
    return parsed


def _cast_error(name: str, logical: LogicalType, value: Any, row: int) -> StageError:
    return StageError(
        f"column {name!r} cannot be read as {logical}: "
        f"the value {as_text(value)!r} in row {row} does not convert"
    )


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool | int | float):
        return float(value)
    if isinstance(value, str) and "_" not in value:  # float() takes "1_000"; a data file should not
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _as_integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else None
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return _as_integer(int(value))  # exact, even beyond 2**53
    number = _as_float(value)
    if number is None or not math.isfinite(number) or not number.is_integer():
        return None
    return _as_integer(int(number))


def _as_boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    return None


_CONVERTERS: dict[LogicalType, Callable[[Any], Any]] = {
    "integer": _as_integer,
    "float": _as_float,
    "boolean": _as_boolean,
    "string": as_text,
}
