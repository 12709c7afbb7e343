"""One streaming pass over record batches that gathers everything the detectors need.

Exact per-column counts (nulls, blanks, missing tokens, sentinels, numbers and dates stored as
text, format mismatches, personal data, damaged text, padded whitespace, min/max, rule and
range violations, repeated rows and keys) are taken batch by batch with pyarrow compute.
What is not cheap to do exactly in bounded memory uses a sketch (see sketches.py): value
counts are kept only while a column has at most VALUE_COUNT_CAP distinct values (then a
HyperLogLog takes over), and quantiles come from a uniform row sample. Memory depends on the
columns and the caps, not on the number of rows.
"""

import os
import queue
import re
import threading
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lockflow.quality import patterns
from lockflow.quality.sketches import (
    HyperLogLog,
    RepeatCounter,
    RowSample,
    combine_hashes,
    hash_array,
    hash_rows,
)
from lockflow.qualityrules.rules import QualityRules, Rule, violations

VALUE_COUNT_CAP = 5_000
FIRST_ROWS = 5
MAX_DAYS = 200_000
TOTAL_MATCH_SHARE = 0.95
FEED_THREADS = min(4, os.cpu_count() or 1)
# Batches the ordered lane may be behind the columns (each one waiting is held in memory).
LANE_DEPTH = 2
_POOL: ThreadPoolExecutor | None = None


def first_rows(mask: pa.Array, offset: int, have: list[int]) -> None:
    """Append the first row numbers where `mask` is true, up to FIRST_ROWS in all."""
    if len(have) >= FIRST_ROWS:
        return
    hits = pc.indices_nonzero(pc.fill_null(mask, False)).to_numpy()[: FIRST_ROWS - len(have)]
    have.extend(int(i) + offset for i in hits)


def count_true(mask: pa.Array | pa.ChunkedArray) -> int:
    """Number of true values (nulls count as false)."""
    if isinstance(mask, pa.BooleanArray):
        return int(mask.true_count)  # from the bitmaps: no array is made
    return int(pc.sum(pc.cast(pc.fill_null(mask, False), pa.int64())).as_py() or 0)


@dataclass
class Tally:
    """An exact count with the first few row numbers it was seen at, and a few examples."""

    count: int = 0
    rows: list[int] = field(default_factory=list)
    examples: list[Any] = field(default_factory=list)

    def add_at(self, positions: np.ndarray, offset: int, values: pa.Array) -> None:
        """Count the rows at `positions` (ascending) holding `values`; remember first rows and examples."""
        if len(positions) == 0:
            return
        self.count += len(positions)
        self.rows.extend(int(i) + offset for i in positions[: max(0, FIRST_ROWS - len(self.rows))])
        for v in values.slice(0, 20).to_pylist():
            if v not in self.examples and len(self.examples) < 5:
                self.examples.append(v)

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
    encode: bool = True
    fmt_checked: bool = False

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
    # For built-in ranges: the violations that are not a sentinel number (-999, ...), so values
    # later judged to be disguised missing values are not also counted as out of range.
    beside_sentinels: Tally | None = None


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
        # The work that must see the batches in order runs on one lane thread, beside the next
        # batch's columns: the pass's wall time is the slower of the two, not their sum.
        self._lane = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lockflow-quality-lane")
        self._lane_work: deque[Future[None]] = deque()

    def feed(self, batch: pa.RecordBatch) -> None:
        """Fold one batch (rows numbered after the previous batches) into the profile."""
        offset = self.rows
        if not self._rules_ready:
            self._prepare_rules(batch)
        # Columns are independent and the work is in Arrow/numpy kernels that release the GIL,
        # so they are fed on a small thread pool.
        arrays = [batch.column(batch.schema.get_field_index(n)) for n in self.names]
        fed = feed_pool().map(
            _feed_column, [self.columns[n] for n in self.names], arrays, [offset] * len(arrays)
        )
        hashes = dict(zip(self.names, fed, strict=True))
        while len(self._lane_work) >= LANE_DEPTH:  # bounded: each waiting batch is held in memory
            self._lane_work.popleft().result()
        self._lane_work.append(self._lane.submit(self._feed_in_order, batch, offset, hashes))
        self.rows += batch.num_rows
        self.batches += 1

    def _feed_in_order(self, batch: pa.RecordBatch, offset: int, hashes: dict[str, np.ndarray]) -> None:
        """The row counters, the rules and the sample: each sees the batches in row order."""
        row_numbers = np.arange(offset, offset + batch.num_rows, dtype=np.int64)
        if self.names:
            self.duplicates.add(combine_hashes([hashes[n] for n in self.names]), row_numbers)
        for name, counter in self.keys.items():
            column = batch.column(batch.schema.get_field_index(name))
            if column.null_count == 0:
                counter.add(hashes[name], row_numbers)
                continue
            present = ~np.asarray(column.is_null().to_numpy(zero_copy_only=False))
            counter.add(hashes[name][present], row_numbers[present])
        for rt in self.rules:
            _feed_rule(rt, batch, offset, row_numbers)
        self.sample.add(batch, offset)

    def close(self) -> None:
        """Wait for the lane's work (raising its first error) and end its thread."""
        try:
            while self._lane_work:
                self._lane_work.popleft().result()
        finally:
            self._lane.shutdown(wait=True, cancel_futures=True)

    def _prepare_rules(self, batch: pa.RecordBatch) -> None:
        """User rules, then built-in constraints inferred from names and the first batch."""
        self._rules_ready = True
        for rule in self._user_rules:
            missing = [c for c in rule.columns() if c not in self.names]
            repeats = RepeatCounter() if rule.kind == "unique" else None
            self.rules.append(RuleTally(rule, False, repeats=repeats, missing_columns=missing))
        for rule in builtin_rules(batch, self.columns):
            beside = Tally() if rule.kind == "between" else None
            self.rules.append(RuleTally(rule, True, beside_sentinels=beside))

    def finish(self) -> Profile:
        """Close every counter and return the profile."""
        self.close()
        # The counters are independent and their sorts release the GIL: finish them side by side.
        unique_rules = [rt for rt in self.rules if rt.repeats is not None]
        counters = [self.duplicates, *self.keys.values(), *(rt.repeats for rt in unique_rules)]
        results = list(feed_pool().map(lambda counter: counter.finish(), counters))
        dup, key_results, rule_results = (
            results[0],
            results[1 : 1 + len(self.keys)],
            results[1 + len(self.keys) :],
        )
        keys = {name: (r.repeats, r.sample_rows) for name, r in zip(self.keys, key_results, strict=True)}
        spilled = any(r.spilled for r in results[: 1 + len(self.keys)])
        for rt, result in zip(unique_rules, rule_results, strict=True):
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


def feed_pool() -> ThreadPoolExecutor:
    """The quality pass's small thread pool (for work in kernels that release the GIL)."""
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=FEED_THREADS, thread_name_prefix="lockflow-quality")
    return _POOL


def prefetch(batches: Iterable[pa.RecordBatch], depth: int = 2) -> Iterator[pa.RecordBatch]:
    """Read `batches` on a background thread, up to `depth` ahead, so parsing overlaps profiling.

    Errors raised while reading are raised here, in the consumer's thread.
    """
    box: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for batch in batches:
                if not put(("batch", batch)):
                    return
            put(("end", None))
        except BaseException as exc:  # handed to the consumer, which raises it
            put(("error", exc))

    reader = threading.Thread(target=read, name="lockflow-quality-read", daemon=True)
    reader.start()
    try:
        while True:
            kind, item = box.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        reader.join(timeout=5)


def profile_batches(
    schema: pa.Schema, batches: Iterable[pa.RecordBatch], *, rules: QualityRules | None = None
) -> Profile:
    """Run the pass over `batches` (all with `schema`)."""
    profiler = Profiler(schema, rules=rules)
    try:
        for batch in prefetch(batches):
            if batch.num_rows:
                profiler.feed(batch)
    finally:
        profiler.close()
    return profiler.finish()


def rebatch(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """Join small consecutive batches into batches of at least `rows` rows (the last may be smaller).

    Lets a reader use small blocks (its read-ahead, and so its memory, scales with the block)
    while the pass still pays its per-batch cost on large batches.
    """
    held: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        held.append(batch)
        count += batch.num_rows
        if count >= rows:
            yield _joined(held)
            held, count = [], 0
    if count:
        yield _joined(held)


def _joined(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(batches) == 1:
        return batches[0]
    return pa.Table.from_batches(batches).combine_chunks().to_batches()[0]


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


def _feed_column(col: ColumnProfile, array: pa.Array | pa.ChunkedArray, offset: int) -> np.ndarray:
    """Fold one batch of a column into its profile; return the 64-bit hash of each row's value."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if col.kind == "text" and not pa.types.is_string(array.type):
        array = pc.cast(array, pa.string())  # one batch: never near the 2 GiB limit of string
    col.rows += len(array)
    if col.kind == "text":
        # Low-cardinality text is dictionary-encoded once, for hashing and for the text checks.
        encoded = pc.dictionary_encode(array) if col.encode else None
        hashes = hash_array(encoded if encoded is not None else array)
        col.nulls.add(array.is_null(), offset)
        _feed_text(col, array, offset, hashes, encoded)
        return hashes
    hashes = hash_array(array)
    null = array.is_null(nan_is_null=True) if col.kind == "numeric" else array.is_null()
    missing = count_true(null)
    if missing:
        col.nulls.add(null, offset)
    present = _present(array, null) if missing else array
    if col.kind == "numeric":
        _feed_numeric(col, array, present, offset)
    elif col.kind == "temporal":
        _feed_temporal(col, present)
    present_hashes = hashes[~null.to_numpy(zero_copy_only=False)] if missing else hashes
    _count_values(col, present, present_hashes)
    return hashes


def _present(array: pa.Array, null: pa.Array) -> pa.Array:
    """The values that are neither null nor NaN (`null` marks both)."""
    return pc.filter(array, pc.invert(null))


def _count_values(col: ColumnProfile, present: pa.Array, hashes: np.ndarray) -> None:
    """Exact value counts while the column has few distinct values, then a HyperLogLog.

    `hashes` are the hashes of `present` (from `hash_array`), so the sketch costs no extra hashing.
    """
    if len(present) == 0:
        return
    if col.values is not None:
        counts = pc.value_counts(present)
        if _merge_counts(col, counts.field("values"), counts.field("counts").to_numpy()):
            return
    col.hll.add(hashes)


def _merge_counts(col: ColumnProfile, values: pa.Array, freq: np.ndarray) -> bool:
    """Add exact counts; past VALUE_COUNT_CAP distinct values move to the sketch (False)."""
    assert col.values is not None
    keys = values.to_pylist()
    if len(col.values) + len(keys) <= VALUE_COUNT_CAP or all(v in col.values for v in keys):
        col.values.update(dict(zip(keys, (int(f) for f in freq), strict=True)))
        return True
    # Too many distinct values: hash what was counted into the sketch and stop counting.
    col.hll.add(hash_array(pa.array(list(col.values), type=values.type)))
    col.values = None
    return False


def _feed_numeric(col: ColumnProfile, array: pa.Array, present: pa.Array, offset: int) -> None:
    if len(present) == 0:
        return
    bounds = pc.min_max(present).as_py()
    low, high = bounds["min"], bounds["max"]
    col.minimum = low if col.minimum is None else min(col.minimum, low)
    col.maximum = high if col.maximum is None else max(col.maximum, high)
    col.total += float(pc.sum(pc.cast(present, pa.float64())).as_py() or 0.0)
    # Only sentinels inside the batch's [min, max] can occur in it (usually none or a few): one
    # look-up of them all over the batch, then the few hits are told apart.
    inside = [s for s in patterns.SENTINELS if low <= s <= high]
    if not inside:
        return
    wanted = pa.array(inside, pa.float64()).cast(array.type, safe=False)
    at = pc.indices_nonzero(pc.fill_null(pc.is_in(array, value_set=wanted), False)).to_numpy()
    if len(at) == 0:
        return
    found = np.asarray(array.take(pa.array(at)).to_numpy(zero_copy_only=False), dtype=np.float64)
    for sentinel in inside:
        positions = at[found == sentinel]
        if len(positions):
            tally = col.sentinels.setdefault(sentinel, Tally())
            tally.count += len(positions)
            tally.rows.extend(int(i) + offset for i in positions[: max(0, FIRST_ROWS - len(tally.rows))])


class _RowView:
    """Maps masks over a batch's distinct text values (or its rows) to row counts and row masks.

    Low-cardinality text is dictionary-encoded so every regular expression runs once per
    distinct value, not once per row; counts then come from how often each value occurs.
    """

    def __init__(self, indices: np.ndarray | None, counts: np.ndarray | None) -> None:
        self.indices, self.counts = indices, counts

    def count(self, mask: np.ndarray) -> int:
        """Rows where the value's mask is true."""
        if self.counts is None:
            return int(np.count_nonzero(mask))
        return int(self.counts[: len(mask)][mask].sum())

    def rows(self, mask: np.ndarray) -> np.ndarray:
        """The mask per row (the extra last slot stands for null rows)."""
        if self.indices is None:
            return mask
        return np.append(mask, False)[self.indices]


def _tally(tally: Tally, view: _RowView, mask: np.ndarray, offset: int, values: pa.Array | None) -> None:
    """Count `mask` into `tally`; remember the first rows and up to 5 distinct examples."""
    n = view.count(mask)
    if n == 0:
        return
    tally.count += n
    need_examples = values is not None and len(tally.examples) < 5
    if len(tally.rows) >= FIRST_ROWS and not need_examples:
        return
    hits = np.flatnonzero(view.rows(mask))[:20]
    for r in hits[: max(0, FIRST_ROWS - len(tally.rows))]:
        tally.rows.append(int(r) + offset)
    if need_examples and values is not None:
        for v in values.take(pa.array(hits)).to_pylist():
            if v not in tally.examples and len(tally.examples) < 5:
                tally.examples.append(v)


def _bool(mask: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)


def _feed_text(
    col: ColumnProfile, array: pa.Array, offset: int, hashes: np.ndarray, encoded: pa.DictionaryArray | None
) -> None:
    values, view = array, _RowView(None, None)
    if encoded is not None:
        values = encoded.dictionary
        indices = pc.fill_null(encoded.indices, len(values)).to_numpy(zero_copy_only=False)
        view = _RowView(indices, np.bincount(indices, minlength=len(values) + 1))
        # Mostly distinct values gain nothing from encoding: later batches skip it.
        col.encode = len(values) * 2 <= len(array)
    trimmed = pc.utf8_trim_whitespace(values)
    null = _bool(values.is_null())
    blank = _bool(pc.equal(trimmed, ""))
    # Only short values can be a missing token: lower-case and look up those alone.
    short = np.flatnonzero(_bool(pc.less_equal(pc.utf8_length(trimmed), patterns.MAX_TOKEN_CHARS)))
    token = np.zeros(len(values), dtype=bool)
    if len(short):
        lowered = pc.utf8_lower(trimmed.take(pa.array(short)))
        token[short] = _bool(pc.is_in(lowered, value_set=patterns.MISSING_TOKENS_ARRAY))
    token &= ~blank
    present = ~null & ~blank & ~token
    _tally(col.blanks, view, blank, offset, None)
    if token.any():
        _tally(col.token_rows, view, token, offset, array)
        found = values.filter(pa.array(token)).to_pylist()
        if view.counts is None:
            col.tokens.update(found)
        else:
            weights = view.counts[: len(token)][token]
            col.tokens.update(dict(zip(found, (int(w) for w in weights), strict=True)))
    may_number = present & patterns.first_byte_in(values, patterns.NUMBER_START)
    number = patterns.match_where(values, patterns.NUMBER_RE, may_number)
    n_present, n_number = view.count(present), view.count(number)
    col.numeric_like += n_number
    _tally(col.not_numeric, view, present & ~number, offset, array)
    date = patterns.match_where(
        values, patterns.DATE_RE, present & patterns.first_byte_in(values, patterns.DATE_START)
    )
    col.date_like += view.count(date)
    if not col.fmt_checked and n_present:
        # Judged once, on the first batch with values, from row shares (not distinct values).
        col.fmt_checked = True
        rows_present = pa.array(view.rows(present))
        col.fmt = patterns.choose_format(
            col.name,
            array.filter(rows_present),
            pa.array(view.rows(number)).filter(rows_present),
            pa.array(view.rows(date)).filter(rows_present),
        )
    fits = None
    if col.fmt:
        fits = _bool(patterns.format_ok(col.fmt, values, trimmed=trimmed))
        _tally(col.fmt_bad, view, ~fits & present, offset, array)
    for kind, mask in patterns.pii_masks(values, col.fmt, format_fits=fits).items():
        _tally(col.pii.setdefault(kind, Tally()), view, _bool(mask) & present, offset, None)
    damaged = np.zeros(len(values), dtype=bool)
    if patterns.any_byte_in(values, patterns.DAMAGE_BYTES):
        damaged = _bool(pc.match_substring_regex(values, patterns.DAMAGE_RE)) & present
    _tally(col.damaged, view, damaged, offset, array)
    padded = _bool(pc.not_equal(pc.binary_length(values), pc.binary_length(trimmed))) & present
    _tally(col.padded, view, padded, offset, array)
    if not n_present:
        return
    if view.counts is None:
        present_values = values.filter(pa.array(present))
        _count_values(col, present_values, hashes[present])
        return
    if col.values is not None:
        seen = present & (view.counts[: len(present)] > 0)
        if _merge_counts(col, values.filter(pa.array(seen)), view.counts[: len(seen)][seen]):
            return
    col.hll.add(hash_array(values.filter(pa.array(present))))


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
        outside = outside_between(column, rule.between)
        rt.tally.add(outside, offset, column)
        if rt.beside_sentinels is not None and count_true(outside):
            # Violations are few: look at those values alone for sentinels.
            at = pc.indices_nonzero(pc.fill_null(outside, False))
            values = pc.take(column, at)
            sentinels = pa.array(patterns.SENTINELS, pa.float64())
            keep = pc.invert(pc.is_in(pc.cast(values, pa.float64(), safe=False), value_set=sentinels))
            rt.beside_sentinels.add_at(pc.filter(at, keep).to_numpy(), offset, pc.filter(values, keep))
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
    below = pc.fill_null(pc.less(values, low), False) if low is not None else None
    above = pc.fill_null(pc.greater(values, high), False) if high is not None else None
    if below is not None and above is not None:
        return pc.or_(below, above)
    mask = below if below is not None else above
    assert mask is not None  # a rule has at least one bound
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
