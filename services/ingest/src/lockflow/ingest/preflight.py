"""Checks a source before a run is created, so bad input is refused at once with a clear message."""

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lockflow.common.columns import (
    NUMERIC_TYPES,
    ColumnFacts,
    TargetChoice,
    choose_target,
    is_row_number,
    no_target_message,
)
from lockflow.common.errors import InvalidInput
from lockflow.common.models import ColumnSchema, Goal, SourceSpec
from lockflow.common.paths import resolve_inside as resolve_inside  # where it was, for its callers
from lockflow.ingest.read import detect_format, load_source

HEAD_ROWS = 1_000


@dataclass(frozen=True)
class Preflight:
    """What the head of a source says: its columns and, when the goal named no target, their facts."""

    columns: list[str]
    facts: list[ColumnFacts] = field(default_factory=list)

    def suggested_target(self) -> TargetChoice | None:
        """The column a run without a goal target would aim at, if any suits."""
        return choose_target(self.facts)

    def numeric_columns(self) -> list[str]:
        """The numeric columns of the head."""
        return [f.name for f in self.facts if f.numeric]


def preflight_columns(*, spec: SourceSpec, local: Path | None = None) -> list[ColumnSchema]:
    """The schema inferred from the head of a file (at most HEAD_ROWS rows); refuses unreadable files.

    `local` is where the bytes are when the spec names an upload (messages still name `spec.path`).
    """
    return _head(spec=spec, local=local)[0]


def _head(*, spec: SourceSpec, local: Path | None = None) -> tuple[list[ColumnSchema], pa.Table]:
    path = local or Path(spec.path)
    if not path.exists():
        raise InvalidInput(f"no such file: {spec.path}")
    if not path.is_file():
        raise InvalidInput(f"{spec.path} is not a file")
    if path.stat().st_size == 0:
        raise InvalidInput(f"{spec.path} is empty")
    options = spec.options.model_copy(update={"chunk_rows": HEAD_ROWS})
    head = spec.model_copy(update={"path": str(path), "uri": None, "options": options})
    loaded = load_source(spec=head, max_rows=HEAD_ROWS)
    return loaded.columns, loaded.table


def preflight(*, spec: SourceSpec, goal: Goal, local: Path | None = None) -> Preflight:
    """Read the head of the source; refuse missing, empty, binary or unreadable files; return its columns.

    Without a goal target the head's column facts come too, so the target can be settled before any
    stage runs (`settle_goal`). `local` holds an upload's bytes (messages still name `spec.path`).
    """
    path = local or Path(spec.path)
    plain = path.is_file() and path.stat().st_size > 0 and path.suffix.lower() not in (".gz", ".zip")
    want_facts = goal.target is None
    if plain and detect_format(path, spec.format) == "parquet":
        try:
            parquet = pq.ParquetFile(path)
            columns = parquet.schema_arrow.names
            facts = _parquet_facts(parquet) if want_facts else []
        except Exception as exc:
            raise InvalidInput(f"{spec.path} is not a readable Parquet file: {exc}") from exc
    else:
        schema, table = _head(spec=spec, local=local)
        columns = [c.name for c in schema]
        facts = [_facts(c.name, c.dtype, table.column(c.name)) for c in schema]
    if goal.target is not None and goal.target not in columns:
        raise InvalidInput(
            f"goal target {goal.target!r} is not a column of {spec.path}; columns: {', '.join(columns)}"
        )
    return Preflight(columns=columns, facts=facts if want_facts else [])


def settle_goal(goal: Goal, checked: Preflight, *, source: str) -> tuple[Goal, TargetChoice | None]:
    """The goal with a target: the user's, else the suggested column (with why, in its description).

    Where no column can be a target (no numeric column, or only ids, row numbers and constants) the
    run goes on without one, and says why in the goal's description: the insights stage then finds
    nothing to aim at, while quality, analytics and actions from the findings still run. So a run
    never fails at stage 5 for want of a goal.
    """
    if goal.target is not None:
        return goal, None
    choice = checked.suggested_target()
    if choice is None:
        note = f"no goal target: {no_target_message(checked.facts)}; insights toward a target are skipped"
        description = f"{goal.description}; {note}" if goal.description else note
        return goal.model_copy(update={"description": description[:500]}), None
    note = f"target picked by lockflow: {choice.target}, {choice.reason}"
    description = f"{goal.description}; {note}" if goal.description else note
    return goal.model_copy(update={"target": choice.target, "description": description[:500]}), choice


def _parquet_facts(parquet: pq.ParquetFile) -> list[ColumnFacts]:
    """Column facts from the first HEAD_ROWS rows of a Parquet file (its first row group at most)."""
    schema = parquet.schema_arrow
    first = next(parquet.iter_batches(batch_size=HEAD_ROWS), None)
    table = pa.Table.from_batches([first]) if first is not None else schema.empty_table()
    return [_facts(f.name, _logical(f.type), table.column(f.name)) for f in schema]


def _logical(arrow_type: pa.DataType) -> str:
    if pa.types.is_integer(arrow_type):
        return "integer"
    return "float" if pa.types.is_floating(arrow_type) else "other"


def _facts(name: str, dtype: str, values: pa.ChunkedArray) -> ColumnFacts:
    present = values.drop_null()
    # Row numbers are told by their first values; the head is small, so this list is too.
    head = present.to_pylist() if dtype == "integer" else []
    return ColumnFacts(
        name=name,
        numeric=dtype in NUMERIC_TYPES,
        values=len(present),
        distinct=pc.count_distinct(present).as_py() if len(present) else 0,
        row_number=dtype == "integer" and is_row_number(head),
    )
