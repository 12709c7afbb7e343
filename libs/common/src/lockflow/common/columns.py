"""What a column's name and first values say about it: whether it identifies rows, and which column
is a sensible goal target when the user named none.

Pure: facts in, a choice out. Ingest's preflight computes the facts from a file's head; the quality
pass uses `looks_like_id` for its key columns.
"""

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ID_RE = re.compile(r"(^id$|_id$|^id_|uuid|guid|(^|_)key$)", re.IGNORECASE)
# Names people give the number they want to move, best first.
OUTCOME_WORDS = (
    "revenue", "sales", "profit", "amount", "price", "value", "target", "score", "income", "total"
)  # fmt: skip
# Numbers that name a time part, a place or a position: counted, not improved.
NOT_AN_OUTCOME_WORDS = frozenset(
    {"year", "month", "day", "week", "hour", "minute", "zip", "postcode", "postal", "phone", "lat",
     "latitude", "lon", "lng", "longitude", "index", "row", "rownum"}
)  # fmt: skip
MIN_ROWS_FOR_A_ROW_NUMBER = 3
NUMERIC_TYPES = ("integer", "float")


def looks_like_id(name: str) -> bool:
    """A column whose name says it identifies rows (id, *_id, uuid, key)."""
    return bool(ID_RE.search(name))


def name_words(name: str) -> list[str]:
    """The words of a column name: `totalRevenue`, `total_revenue` and `Total Revenue` give the same."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return [w for w in re.split(r"[^a-z0-9]+", spaced.lower()) if w]


@dataclass(frozen=True)
class ColumnFacts:
    """What the head of a file says about one column."""

    name: str
    numeric: bool
    values: int  # non-missing values seen
    distinct: int
    # An integer column whose every value is larger than the last: a row number, whatever its name.
    row_number: bool = False


@dataclass(frozen=True)
class TargetChoice:
    """The column picked as the goal's target, and why, in words a person reads."""

    target: str
    reason: str


def unsuitable_because(facts: ColumnFacts) -> str | None:
    """Why a column cannot be a goal target, or None when it can."""
    if not facts.numeric:
        return "not numeric"
    if looks_like_id(facts.name):
        return "its name says it identifies rows"
    if facts.distinct < 2:
        return "constant"
    if facts.row_number:
        return "a row number (every value distinct and ascending)"
    if NOT_AN_OUTCOME_WORDS & set(name_words(facts.name)):
        return "a time part, place or position"
    return None


def outcome_rank(name: str) -> int | None:
    """The position of the first outcome word in the name (lower is better), None without one."""
    words = set(name_words(name))
    for rank, word in enumerate(OUTCOME_WORDS):
        if word in words or f"{word}s" in words:
            return rank
    return None


def choose_target(columns: Sequence[ColumnFacts]) -> TargetChoice | None:
    """A numeric, non-id, non-constant column: one named like an outcome, else the most varied one."""
    usable = [c for c in columns if unsuitable_because(c) is None]
    if not usable:
        return None
    named = [(rank, i, c) for i, c in enumerate(usable) if (rank := outcome_rank(c.name)) is not None]
    if named:
        _, _, best = min(named, key=lambda t: (t[0], t[1]))
        word = OUTCOME_WORDS[outcome_rank(best.name) or 0]
        return TargetChoice(best.name, f"numeric, and its name says it is an outcome ({word})")
    # max() keeps the first of equals, so the leftmost column wins a tie.
    varied = max(usable, key=lambda c: c.distinct)
    return TargetChoice(
        varied.name, f"the numeric column with the most distinct values ({varied.distinct} in the first rows)"
    )


def no_target_message(columns: Sequence[ColumnFacts]) -> str:
    """Why no column suits as a goal target, naming each numeric column and what is wrong with it."""
    numeric = [c for c in columns if c.numeric]
    if not numeric:
        return "it has no numeric column, and a goal's target must be a number"
    listed = "; ".join(f"{c.name} ({unsuitable_because(c)})" for c in numeric)
    return f"no numeric column suits as the goal's target: {listed}"


def facts_from_rows(
    columns: Sequence[tuple[str, str]], rows: Sequence[Mapping[str, Any]]
) -> list[ColumnFacts]:
    """Column facts from a few sample rows: (name, logical type) per column, values as JSON-safe rows."""
    facts = []
    for name, dtype in columns:
        values = [row.get(name) for row in rows if row.get(name) is not None]
        facts.append(
            ColumnFacts(
                name=name,
                numeric=dtype in NUMERIC_TYPES,
                values=len(values),
                distinct=len({str(v) for v in values}),
                row_number=dtype == "integer" and is_row_number(values),
            )
        )
    return facts


def is_row_number(values: Sequence[Any]) -> bool:
    """Whole numbers, every one larger than the one before (so all distinct), at least a few of them."""
    if len(values) < MIN_ROWS_FOR_A_ROW_NUMBER:
        return False
    if not all(isinstance(v, int | float) and float(v).is_integer() for v in values):
        return False
    return all(b > a for a, b in itertools.pairwise(values))
