"""Tables that fit the terminal: the most important columns first, as many more as the width allows.

A rich table squeezed below its content's width wraps every cell into slivers of a few characters.
Here each column says how important it is; ids, names and numbers are never wrapped or cropped (a
person copies them), and at most the one free-text column (a statement, examples) wraps at word
boundaries in the width left. A column that does not fit is left out rather than squeezed.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

CELL_OVERHEAD = 3  # one border and one space either side of each cell
TABLE_EDGE = 1  # the closing border


@dataclass(frozen=True)
class Col:
    """A table column: its header, how important it is (0: always shown) and whether it may wrap."""

    header: str
    priority: int = 0
    wrap: bool = False  # free text that wraps at word boundaries in the width left to it
    min_width: int = 20  # the narrowest a wrapping column is allowed to become
    justify: str = "left"
    short_for: str | None = None  # a short form of the column with this header, shown when that one is not


def widest_line(value: str) -> int:
    """The terminal width of a value's longest line."""
    return max((cell_len(line) for line in value.splitlines()), default=0)


def fitted_table(
    columns: Sequence[Col], rows: Sequence[Sequence[str]], *, width: int, title: str | None = None
) -> Table:
    """A table of the columns that fit in width (by priority, then order), shown in their order."""
    natural = [
        max([widest_line(col.header), *(widest_line(row[i]) for row in rows)])
        for i, col in enumerate(columns)
    ]
    needs = [
        (min(col.min_width, natural[i]) if col.wrap else natural[i]) + CELL_OVERHEAD
        for i, col in enumerate(columns)
    ]
    chosen = _choose(columns, needs, width)
    table = Table(title=Text(title) if title else None)  # data text: brackets are shown, not markup
    shown = [i for i in range(len(columns)) if i in chosen]
    for i in shown:
        col = columns[i]
        if col.wrap:
            table.add_column(col.header, min_width=min(col.min_width, natural[i]), overflow="fold")
        else:
            table.add_column(col.header, no_wrap=True, min_width=natural[i], justify=col.justify)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(*(Text(row[i]) for i in shown))
    return table


def _choose(columns: Sequence[Col], needs: list[int], width: int) -> set[int]:
    """Column indexes by priority while they fit; a full column replaces its short form when it fits."""
    index = {col.header: i for i, col in enumerate(columns)}
    short_of = {index[c.short_for]: i for i, c in enumerate(columns) if c.short_for in index}
    chosen: set[int] = set()
    used = TABLE_EDGE
    for i in sorted(range(len(columns)), key=lambda i: (columns[i].priority, i)):
        full = index.get(columns[i].short_for or "")
        if full is not None and full in chosen:
            continue
        freed = needs[short_of[i]] if short_of.get(i) in chosen else 0
        if columns[i].priority == 0 or used - freed + needs[i] <= width:
            if freed:
                chosen.discard(short_of[i])
            chosen.add(i)
            used += needs[i] - freed
    return chosen


def print_fitted(
    console: Console, columns: Sequence[Col], rows: Sequence[Sequence[str]], *, title: str | None = None
) -> None:
    """Print a fitted table at the console's width."""
    console.print(fitted_table(columns, rows, width=console.width, title=title))
