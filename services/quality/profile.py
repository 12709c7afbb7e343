"""One streaming pass over record batches that gathers everything the detectors need.

Exact per-column counts (nulls, blanks, missing tokens, sentinels, numbers and dates stored as
text, format mismatches, personal data, damaged text, padded whitespace, min/max, rule and
range violations, repeated rows and keys) are taken batch by batch with pyarrow compute.
What is not cheap to do exactly in bounded memory uses a sketch (see sketches.py): value
counts are kept only while a column has at most VALUE_COUNT_CAP distinct values (then a
HyperLogLog takes over), and quantiles come from a uniform row sample. Memory depends on the
columns and the caps, not on the number of rows.
"""

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lockflow.quality import patterns
from lockflow.quality.rules import QualityRules, Rule, violations
from lockflow.quality.sketches import HyperLogLog, RepeatCounter, RowSample, hash_rows, hash_values

VALUE_COUNT_CAP = 5_000
FIRST_ROWS = 5
MAX_DAYS = 200_000
TOTAL_MATCH_SHARE = 0.95


def first_rows(mask: pa.Array, offset: int, have: list[int]) -> None:
    """Append the first row numbers where `mask` is true, up to FIRST_ROWS in all."""
    if len(have) >= FIRST_ROWS:
        return
    hits = pc.indices_nonzero(pc.fill_null(mask, False)).to_numpy()[: FIRST_ROWS - len(have)]
    have.extend(int(i) + offset for i in hits)


def count_true(mask: pa.Array) -> int:
    """Number of true values (nulls count as false)."""
    return int(pc.sum(pc.cast(pc.fill_null(mask, False), pa.int64())).as_py() or 0)


@dataclass
class Tally:
    """An exact count with the first few row numbers it was seen at, and a few examples."""

    count: int = 0
    rows: list[int] = field(default_factory=list)
    examples: list[Any] = field(default_factory=list)

    def add(self, mask: pa.Array, offset: int, values: pa.Array | None = None) -> None:
        """Count a batch's mask; remember first rows and distinct examples."""
        n = count_true(mask)
        if n == 0:
            return
        self.count += n
        first_rows(mask, offset, self.rows)
        if values is not None and len(self.examples) < 5:
            for v in pc.filter(values, pc.fill_null(mask, False)).slice(0, 20).to_pylist():
                if v not in self.examples and len(self.examples) < 5:
                    self.examples.append(v)


@dataclass
class ColumnProfile:
    """What the pass learned about one column."""

    name: str
    arrow_type: str
    kind: str  # numeric | text | boolean | temporal | other
    integer: bool = False
    rows: int = 0
    nulls: Tally = field(default_factory=Tally)
    blanks: Tally = field(default_factory=Tally)
    tokens: Counter[str] = field(default_factory=Counter)
    token_rows: Tally = field(default_factory=Tally)
    sentinels: dict[float, Tally] = field(default_factory=dict)
    values: Counter[Any] | None = field(default_factory=Counter)
    hll: HyperLogLog = field(default_factory=HyperLogLog)
    minimum: Any = None
    maximum: Any = None
    total: float = 0.0
    numeric_like: int = 0
    not_numeric: Tally = field(default_factory=Tally)
    date_like: int = 0
    fmt: str | None = None
    fmt_bad: Tally = field(default_factory=Tally)
    pii: dict[str, Tally] = field(default_factory=dict)
    damaged: Tally = field(default_factory=Tally)
    padded: Tally = field(default_factory=Tally)
    days: set[int] | None = field(default_factory=set)

    @property
    def filled(self) -> int:
        """Values that are neither null, blank nor a missing token."""
        return self.rows - self.nulls.count - self.blanks.count - self.token_rows.count

    def distinct(self) -> tuple[int, bool]:
        """(distinct non-null values, exact?)."""
        if self.values is not None:
            return len(self.values), True
        return self.hll.estimate(), False


@dataclass
class RuleTally:
    """Violations of one rule (or built-in constraint)."""

    rule: Rule
    builtin: bool
    tally: Tally = field(default_factory=Tally)
    repeats: RepeatCounter | None = None
    missing_columns: list[str] = field(default_factory=list)


@dataclass
class Profile:
    """The result of one pass: per-column profiles, row-level counts, a row sample."""

    rows: int
    columns: dict[str, ColumnProfile]
    duplicate_rows: int
    duplicate_rows_sample: list[int]
    keys: dict[str, tuple[int, list[int]]]
    rules: list[RuleTally]
    sample: RowSample
    batches: int
    spilled: bool


class Profiler:
    """Feed record batches in order; `finish` returns the Profile."""

    def __init__(self, schema: pa.Schema, *, rules: QualityRules | None = None) -> None:
        self.schema = schema
        self.names = list(schema.names)
        self.columns = {f.name: _new_column(f) for f in schema}
        self.rows = 0
        self.batches = 0
        self.duplicates = RepeatCounter()
        self.key_columns = [n for n in self.names if patterns.looks_like_id(n)]
        self.keys = {n: RepeatCounter() for n in self.key_columns}
        self.sample = RowSample()
        self.rules: list[RuleTally] = []
        self._user_rules = rules.rules if rules else []
        self._rules_ready = False

    def feed(self, batch: pa.RecordBatch) -> None:
        """Fold one batch (rows numbered after the previous batches) into the profile."""
        offset = self.rows
        if not self._rules_ready:
            self._prepare_rules(batch)
        for name in self.names:
            _feed_column(self.columns[name], batch.column(batch.schema.get_field_index(name)), offset)
        row_numbers = np.arange(offset, offset + batch.num_rows, dtype=np.int64)
        if self.names:
            self.duplicates.add(hash_rows(batch, self.names), row_numbers)
        for name, counter in self.keys.items():
            column = batch.column(batch.schema.get_field_index(name))
            present = ~np.asarray(column.is_null().to_numpy(zero_copy_only=False))
            counter.add(hash_rows(batch, [name])[present], row_numbers[present])
        for rt in self.rules:
            _feed_rule(rt, batch, offset, row_numbers)
        self.sample.add(batch, offset)
        self.rows += batch.num_rows
        self.batches += 1

    def _prepare_rules(self, batch: pa.RecordBatch) -> None:
        """User rules, then built-in constraints inferred from names and the first batch."""
        self._rules_ready = True
        for rule in self._user_rules:
            missing = [c for c in rule.columns() if c not in self.names]
            repeats = RepeatCounter() if rule.kind == "unique" else None
            self.rules.append(RuleTally(rule, False, repeats=repeats, missing_columns=missing))
        for rule in builtin_rules(batch, self.columns):
            self.rules.append(RuleTally(rule, True))

    def finish(self) -> Profile:
        """Close every counter and return the profile."""
        dup = self.duplicates.finish()
        keys = {}
        spilled = dup.spilled
        for name, counter in self.keys.items():
            result = counter.finish()
            keys[name] = (result.repeats, result.sample_rows)
            spilled = spilled or result.spilled
        for rt in self.rules:
            if rt.repeats is not None:
                result = rt.repeats.finish()
                rt.tally.count, rt.tally.rows = result.repeats, result.sample_rows
        return Profile(
            rows=self.rows,
            columns=self.columns,
            duplicate_rows=dup.repeats if self.rows else 0,
            duplicate_rows_sample=dup.sample_rows,
            keys=keys,
            rules=self.rules,
            sample=self.sample,
            batches=self.batches,
            spilled=spilled,
        )


def profile_batches(
    schema: pa.Schema, batches: Iterable[pa.RecordBatch], *, rules: QualityRules | None = None
) -> Profile:
    """Run the pass over `batches` (all with `schema`)."""
    profiler = Profiler(schema, rules=rules)
    for batch in batches:
        if batch.num_rows:
            profiler.feed(batch)
    return profiler.finish()


def table_batches(table: pa.Table, rows: int) -> Iterator[pa.RecordBatch]:
    """A table as batches of at most `rows` rows."""
    yield from table.to_batches(max_chunksize=rows)


# ---- columns -----------------------------------------------------------------------------------


def _new_column(f: pa.Field) -> ColumnProfile:
    t = f.type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        kind = "numeric"
    elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        kind = "text"
    elif pa.types.is_boolean(t):
        kind = "boolean"
    elif pa.types.is_timestamp(t) or pa.types.is_date(t):
        kind = "temporal"
    else:
        kind = "other"
    return ColumnProfile(name=f.name, arrow_type=str(t), kind=kind, integer=pa.types.is_integer(t))


def _feed_column(col: ColumnProfile, array: pa.Array | pa.ChunkedArray, offset: int) -> None:
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if col.kind == "text" and not pa.types.is_string(array.type):
        array = pc.cast(array, pa.string())  # one batch: never near the 2 GiB limit of string
    col.rows += len(array)
    null = array.is_null(nan_is_null=True) if col.kind == "numeric" else array.is_null()
    col.nulls.add(null, offset)
    if col.kind == "text":
        _feed_text(col, array, offset)
    elif col.kind == "numeric":
        _feed_numeric(col, array, offset)
    elif col.kind == "temporal":
        _feed_temporal(col, array)
    if col.kind != "text":
        _count_values(col, pc.drop_null(array) if col.kind != "numeric" else pc.drop_null(_no_nan(array)))


def _no_nan(array: pa.Array) -> pa.Array:
    if pa.types.is_floating(array.type):
        return pc.if_else(pc.is_nan(array), pa.scalar(None, array.type), array)
    return array


def _count_values(col: ColumnProfile, present: pa.Array) -> None:
    """Exact value counts while the column has few distinct values, then a HyperLogLog."""
    if len(present) == 0:
        return
    if col.values is not None:
        counts = pc.value_counts(present)
        values, freq = counts.field("values").to_pylist(), counts.field("counts").to_pylist()
        if len(col.values) + len(values) <= VALUE_COUNT_CAP or all(v in col.values for v in values):
            col.values.update(dict(zip(values, freq, strict=True)))
            return
        # Too many distinct values: move what was counted into the sketch and stop counting.
        seen = np.array(list(col.values), dtype=object)
        col.hll.add(hash_values(_hashable(seen, col)))
        col.values = None
    unique = pc.unique(present).to_numpy(zero_copy_only=False)
    col.hll.add(hash_values(_hashable(unique, col)))


def _hashable(values: np.ndarray, col: ColumnProfile) -> np.ndarray:
    if col.kind == "numeric" and values.dtype == object:
        return values.astype(np.float64)
    if col.kind == "temporal" and values.dtype == object:
        return values.astype(str)
    return values


def _feed_numeric(col: ColumnProfile, array: pa.Array, offset: int) -> None:
    present = pc.drop_null(_no_nan(array))
    if len(present) == 0:
        return
    bounds = pc.min_max(present).as_py()
    low, high = bounds["min"], bounds["max"]
    col.minimum = low if col.minimum is None else min(col.minimum, low)
    col.maximum = high if col.maximum is None else max(col.maximum, high)
    col.total += float(pc.sum(pc.cast(present, pa.float64())).as_py() or 0.0)
    hits = pc.is_in(array, value_set=pa.array(patterns.SENTINELS, pa.float64()).cast(array.type, safe=False))
    if count_true(hits):
        for value in pc.unique(pc.filter(array, pc.fill_null(hits, False))).to_pylist():
            col.sentinels.setdefault(float(value), Tally()).add(pc.equal(array, value), offset)


def _feed_text(col: ColumnProfile, array: pa.Array, offset: int) -> None:
    trimmed = pc.utf8_trim_whitespace(array)
    blank = pc.equal(trimmed, "")
    col.blanks.add(blank, offset)
    lowered = pc.utf8_lower(trimmed)
    token = pc.is_in(lowered, value_set=patterns.MISSING_TOKENS_ARRAY)
    token = pc.and_(token, pc.invert(blank))
    if count_true(token):
        col.token_rows.add(token, offset, array)
        col.tokens.update(pc.filter(array, pc.fill_null(token, False)).to_pylist())
    present_mask = pc.and_(pc.invert(pc.fill_null(blank, True)), pc.invert(pc.fill_null(token, True)))
    present = pc.filter(array, present_mask)
    present_rows = pc.indices_nonzero(present_mask)
    # Offsets of present values map back to row numbers through present_rows.
    is_number = pc.match_substring_regex(present, patterns.NUMBER_RE)
    n_number = count_true(is_number)
    col.numeric_like += n_number
    col.not_numeric.count += len(present) - n_number
    _first_rows_via(pc.invert(is_number), present_rows, offset, col.not_numeric, present)
    is_date = pc.match_substring_regex(present, patterns.DATE_RE)
    col.date_like += count_true(is_date)
    if col.fmt is None and len(present):
        col.fmt = patterns.choose_format(col.name, present, is_number, is_date)
    if col.fmt:
        bad = pc.invert(patterns.format_ok(col.fmt, present))
        col.fmt_bad.count += count_true(bad)
        _first_rows_via(bad, present_rows, offset, col.fmt_bad, present)
    for kind, mask in patterns.pii_masks(present, col.fmt).items():
        tally = col.pii.setdefault(kind, Tally())
        tally.count += count_true(mask)
        _first_rows_via(mask, present_rows, offset, tally, None)
    damaged = pc.match_substring_regex(present, patterns.DAMAGE_RE)
    col.damaged.count += count_true(damaged)
    _first_rows_via(damaged, present_rows, offset, col.damaged, present)
    padded = pc.not_equal(pc.utf8_length(present), pc.utf8_length(pc.utf8_trim_whitespace(present)))
    col.padded.count += count_true(padded)
    _first_rows_via(padded, present_rows, offset, col.padded, present)
    _count_values(col, present)


def _first_rows_via(
    mask: pa.Array, positions: pa.Array, offset: int, tally: Tally, values: pa.Array | None
) -> None:
    if len(tally.rows) >= FIRST_ROWS and (values is None or len(tally.examples) >= 5):
        return
    hits = pc.indices_nonzero(pc.fill_null(mask, False))
    if len(hits) == 0:
        return
    rows = pc.take(positions, hits.slice(0, FIRST_ROWS)).to_numpy()
    for r in rows:
        if len(tally.rows) < FIRST_ROWS:
            tally.rows.append(int(r) + offset)
    if values is not None:
        for v in pc.take(values, hits.slice(0, 20)).to_pylist():
            if v not in tally.examples and len(tally.examples) < 5:
                tally.examples.append(v)


def _feed_temporal(col: ColumnProfile, array: pa.Array) -> None:
    present = pc.drop_null(array)
    if len(present) == 0:
        return
    bounds = pc.min_max(present).as_py()
    col.minimum = bounds["min"] if col.minimum is None else min(col.minimum, bounds["min"])
    col.maximum = bounds["max"] if col.maximum is None else max(col.maximum, bounds["max"])
    if col.days is not None:
        days = pc.unique(pc.cast(pc.cast(present, pa.date32()), pa.int32())).to_numpy()
        col.days.update(int(d) for d in days)
        if len(col.days) > MAX_DAYS:
            col.days = None


# ---- rules -----------------------------------------------------------------------------------


def _feed_rule(rt: RuleTally, batch: pa.RecordBatch, offset: int, row_numbers: np.ndarray) -> None:
    if rt.missing_columns:
        return
    rule = rt.rule
    if rule.kind == "expression":
        rt.tally.add(violations(str(rule.expression), batch), offset)
        return
    column = batch.column(batch.schema.get_field_index(str(rule.column)))
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if rule.kind == "not_null":
        rt.tally.add(rule_missing(column), offset)
    elif rule.kind == "unique":
        present = ~np.asarray(column.is_null().to_numpy(zero_copy_only=False))
        assert rt.repeats is not None
        rt.repeats.add(hash_rows(batch, [str(rule.column)])[present], row_numbers[present])
    elif rule.kind == "between":
        rt.tally.add(outside_between(column, rule.between), offset, column)
    elif rule.kind == "in_set":
        allowed = pa.array(rule.in_set)
        if not allowed.type.equals(column.type):
            column, allowed = pc.cast(column, pa.string()), pc.cast(allowed, pa.string())
        bad = pc.and_(pc.invert(pc.is_in(column, value_set=allowed)), column.is_valid())
        rt.tally.add(bad, offset, column)
    elif rule.kind == "matches":
        text = column if pa.types.is_string(column.type) else pc.cast(column, pa.string())
        bad = pc.invert(pc.match_substring_regex(text, f"^(?:{rule.matches})$"))
        rt.tally.add(pc.fill_null(bad, False), offset, column)


def rule_missing(column: pa.Array) -> pa.Array:
    """Null (or NaN), or an empty/blank string."""
    mask = column.is_null(nan_is_null=True) if pa.types.is_floating(column.type) else column.is_null()
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        mask = pc.or_(mask, pc.fill_null(pc.equal(pc.utf8_trim_whitespace(column), ""), False))
    return mask


def outside_between(column: pa.Array, bounds: tuple[float | None, float | None] | None) -> pa.Array:
    """True for values outside [low, high] (nulls are not counted)."""
    assert bounds is not None
    low, high = bounds
    values = column if pa.types.is_integer(column.type) or pa.types.is_floating(column.type) else None
    if values is None:
        values = pc.cast(column, pa.float64(), safe=False)
    mask = pa.array([False] * len(values))
    if low is not None:
        mask = pc.or_(mask, pc.fill_null(pc.less(values, low), False))
    if high is not None:
        mask = pc.or_(mask, pc.fill_null(pc.greater(values, high), False))
    return mask


def builtin_rules(batch: pa.RecordBatch, columns: dict[str, ColumnProfile]) -> list[Rule]:
    """Range constraints implied by column names, and cross-column rules found in the first batch."""
    rules: list[Rule] = []
    numeric = [n for n, c in columns.items() if c.kind == "numeric"]
    for name in numeric:
        bounds = patterns.implied_range(name)
        if bounds is not None:
            rules.append(Rule(name=f"range:{name}", column=name, between=bounds))
    for start, end in patterns.start_end_pairs(
        [n for n, c in columns.items() if c.kind in ("numeric", "temporal")]
    ):
        rules.append(Rule(name=f"order:{start}:{end}", expression=f"{end} >= {start}"))
    for total in [n for n in numeric if re.search(r"(^|_)(total|sum)($|_)", n.lower())]:
        parts = _parts_of_total(batch, total, [n for n in numeric if n != total])
        if parts:
            rules.append(Rule(name=f"sum:{total}", expression=f"{total} == {' + '.join(parts)}"))
    return rules


def _parts_of_total(batch: pa.RecordBatch, total: str, candidates: list[str]) -> list[str] | None:
    """The smallest set of other numeric columns that sums to `total` on most first-batch rows."""
    from itertools import combinations

    candidates = [c for c in candidates if not patterns.looks_like_id(c)][:10]
    target = batch.column(batch.schema.get_field_index(total)).to_numpy(zero_copy_only=False)
    target = np.asarray(target, dtype=np.float64)
    values = {
        c: np.asarray(
            batch.column(batch.schema.get_field_index(c)).to_numpy(zero_copy_only=False), np.float64
        )
        for c in candidates
    }
    for size in (2, 3, 4):
        for combo in combinations(candidates, size):
            summed = np.sum([values[c] for c in combo], axis=0)
            ok = np.isfinite(summed) & np.isfinite(target)
            if ok.sum() < 10:
                continue
            close = np.isclose(summed[ok], target[ok], rtol=1e-9, atol=1e-6)
            if close.mean() >= TOTAL_MATCH_SHARE:
                return list(combo)
    return None


def to_date(value: Any) -> date | None:
    """A temporal min/max as a date."""
    if value is None:
        return None
    return value.date() if hasattr(value, "date") else value  # type: ignore[no-any-return]
