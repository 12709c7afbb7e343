"""Checks a source before a run is created, so bad input is refused at once with a clear message."""

from pathlib import Path

import pyarrow.parquet as pq

from lockflow.common.errors import InvalidInput
from lockflow.common.models import ColumnSchema, Goal, SourceSpec
from lockflow.ingest.read import detect_format, load_source

HEAD_ROWS = 1_000


def resolve_inside(path: str, allowed: list[Path]) -> Path:
    """The resolved path, if it lies inside one of the allowed folders."""
    try:
        resolved = Path(path).expanduser().resolve()
    except (RuntimeError, ValueError, OSError) as exc:
        # `~user` of no such user, a NUL byte, a path the OS refuses: bad input, not a server error.
        raise InvalidInput(f"{path!r} is not a usable path ({exc})") from exc
    if allowed and not any(resolved == d or d in resolved.parents for d in allowed):
        raise InvalidInput(f"{path} is outside the folders this server may read")
    return resolved


def preflight_columns(*, spec: SourceSpec) -> list[ColumnSchema]:
    """The schema inferred from the head of a file (at most HEAD_ROWS rows); refuses unreadable files."""
    path = Path(spec.path)
    if not path.exists():
        raise InvalidInput(f"no such file: {spec.path}")
    if not path.is_file():
        raise InvalidInput(f"{spec.path} is not a file")
    if path.stat().st_size == 0:
        raise InvalidInput(f"{spec.path} is empty")
    head = spec.model_copy(update={"options": spec.options.model_copy(update={"chunk_rows": HEAD_ROWS})})
    return load_source(spec=head, max_rows=HEAD_ROWS).columns


def preflight(*, spec: SourceSpec, goal: Goal) -> list[str]:
    """Read the head of the source; refuse missing, empty, binary or unreadable files; return its columns."""
    path = Path(spec.path)
    plain = path.is_file() and path.stat().st_size > 0 and path.suffix.lower() not in (".gz", ".zip")
    if plain and detect_format(path, spec.format) == "parquet":
        try:
            columns = pq.ParquetFile(path).schema_arrow.names
        except Exception as exc:
            raise InvalidInput(f"{spec.path} is not a readable Parquet file: {exc}") from exc
    else:
        columns = [c.name for c in preflight_columns(spec=spec)]
    if goal.target is not None and goal.target not in columns:
        raise InvalidInput(
            f"goal target {goal.target!r} is not a column of {spec.path}; columns: {', '.join(columns)}"
        )
    return columns
