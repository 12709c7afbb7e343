"""Stage 1 stores a Parquet source already in canonical form as it is; anything else is normalised.

Either way the result must be what normalisation gives: the same table, schema, null counts, examples
and sample (`load_source` is the normalising read, kept in memory, to compare with).
"""

from __future__ import annotations

import gzip
import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lockflow.common.artifacts import LocalArtifactStore
from lockflow.common.cache import MemoryCache
from lockflow.common.errors import InvalidInput
from lockflow.common.models import DatasetRef, LogicalType, SourceOptions, SourceSpec
from lockflow.ingest.conn_file import FileConnector
from lockflow.ingest.ingest import ingest, read_into_artifact
from lockflow.ingest.read import load_source
from lockflow.sources.configs import FileConfig
from lockflow.sources.settings import FileLimits, SourceSettings

S = pa.large_string()
UTC_US = pa.timestamp("us", tz="UTC")


def canonical_table(rows: int = 5_000) -> pa.Table:
    """Every canonical type, with nulls (a column null in the whole first row group, too)."""
    rng = np.random.default_rng(11)
    ids = np.arange(rows)
    late = [None if i < 2_500 else int(i) for i in ids]
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "amount": pa.array(
                [None if i % 97 == 0 else float(v) for i, v in enumerate(rng.normal(50, 9, rows))]
            ),
            "flag": pa.array([None if i % 13 == 0 else bool(i % 3) for i in ids], pa.bool_()),
            "seen": pa.array(
                [datetime(2024, 1, 1 + int(i) % 28, int(i) % 24) for i in ids], pa.timestamp("us")
            ),
            "seen_utc": pa.array([datetime(2024, 2, 1, int(i) % 24, tzinfo=UTC) for i in ids], UTC_US),
            "city": pa.array([None if i % 7 == 0 else ["Oslo", "Lima", "Pune"][i % 3] for i in ids], S),
            "late": pa.array(late, pa.int64()),
            "empty_text": pa.nulls(rows, S),
            # ISO-shaped text in the first row groups only: it stays text (normalisation restores it)
            "when": pa.array(["2024-01-05" if i < 4_000 else "soon" for i in ids], S),
        }
    )


def run_ingest(
    tmp_path: Path, path: Path, column_types: dict[str, LogicalType] | None = None
) -> tuple[LocalArtifactStore, DatasetRef, list[dict[str, Any]]]:
    store = LocalArtifactStore(tmp_path / "store")
    connector = FileConnector(FileConfig(path=str(path)), allowed=[tmp_path], limits=FileLimits())
    spec = SourceSpec(path=str(path), options=SourceOptions(column_types=column_types or {}))
    ref, sample = read_into_artifact(connector, spec=spec, artifacts=store)
    return store, ref, sample


def normalised(path: Path, column_types: dict[str, LogicalType] | None = None):  # type: ignore[no-untyped-def]
    options = SourceOptions(chunk_rows=1_000, column_types=column_types or {})
    return load_source(spec=SourceSpec(path=str(path), options=options))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stored_files(store: LocalArtifactStore) -> list[Path]:
    return [p for p in store.root.rglob("*") if p.is_file()] if store.root.exists() else []


def no_temp_files(store: LocalArtifactStore) -> bool:
    return not [p for p in stored_files(store) if p.name.startswith(".tmp-")]


def test_a_canonical_parquet_file_is_stored_as_it_is(tmp_path: Path) -> None:
    table = canonical_table()
    path = tmp_path / "canon.parquet"
    pq.write_table(table, path, row_group_size=1_500)

    store, ref, sample = run_ingest(tmp_path, path)

    stored = store.path_of(ref.uri)
    assert ref.fingerprint == sha256(path) == sha256(stored)
    assert stored.read_bytes() == path.read_bytes()
    assert pq.read_table(stored).equals(table)
    # ... and it is exactly what normalisation would have written and reported.
    expected = normalised(path)
    assert pq.read_table(stored).equals(expected.table)
    assert pq.read_table(stored).schema == expected.table.schema
    assert ref.columns == expected.columns
    assert sample == expected.sample
    assert ref.rows == 5_000
    by_name = {c.name: c for c in ref.columns}
    assert by_name["late"].null_count == 2_500 and by_name["late"].dtype == "integer"
    assert by_name["when"].dtype == "string" and by_name["when"].examples == ["2024-01-05", "soon"]
    assert by_name["empty_text"].null_count == 5_000
    assert no_temp_files(store)


def test_a_pandas_written_file_with_a_plain_index_is_stored_as_it_is(tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": np.arange(3_000), "v": np.linspace(0, 1, 3_000)})
    frame["s"] = ["a", "b", "c"] * 1_000  # pandas' default text dtype, stored as large_string
    path = tmp_path / "frame.parquet"
    frame.to_parquet(path)
    assert pq.read_schema(path).field("s").type == S

    store, ref, _ = run_ingest(tmp_path, path)

    assert ref.fingerprint == sha256(path)
    stored = pq.read_table(store.path_of(ref.uri))
    assert stored.equals(normalised(path).table)
    # The pandas metadata kept in the file changes nothing for stages that read it with pandas.
    pd.testing.assert_frame_equal(stored.to_pandas(), normalised(path).table.to_pandas())


def _written(tmp_path: Path, table: pa.Table, name: str = "t.parquet") -> Path:
    path = tmp_path / name
    pq.write_table(table, path, row_group_size=700)
    return path


def _pandas_file(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "p.parquet"
    frame.to_parquet(path)
    return path


NEEDS_NORMALISING = {
    "int32": lambda tmp: _written(tmp, pa.table({"a": pa.array(range(2_000), pa.int32())})),
    "small text type": lambda tmp: _written(tmp, pa.table({"a": pa.array(["x", "y"] * 1_000, pa.string())})),
    "dictionary": lambda tmp: _written(
        tmp, pa.table({"a": pa.array(["x", "y"] * 1_000, S).dictionary_encode()})
    ),
    "milliseconds": lambda tmp: _written(
        tmp, pa.table({"a": pa.array([datetime(2024, 1, 1)] * 2_000, pa.timestamp("ms"))})
    ),
    "other time zone": lambda tmp: _written(
        tmp,
        pa.table({"a": pa.array([datetime(2024, 1, 1, tzinfo=UTC)] * 2_000, pa.timestamp("us", "+01:00"))}),
    ),
    "ISO dates as text": lambda tmp: _written(
        tmp, pa.table({"a": pa.array(["2024-01-05", None, "2024-03-07T10:00:00"] * 700, S)})
    ),
    "all-null integers": lambda tmp: _written(
        tmp, pa.table({"k": pa.array(range(2_000), pa.int64()), "n": pa.nulls(2_000, pa.int64())})
    ),
    "required field": lambda tmp: _written(
        tmp,
        pa.table(
            {"a": pa.array(range(2_000), pa.int64())}, schema=pa.schema([pa.field("a", pa.int64(), False)])
        ),
    ),
    "pandas index stored as a column": lambda tmp: _pandas_file(
        tmp, pd.DataFrame({"v": np.arange(2_000)}, index=pd.Index(np.arange(2_000) * 3, name="key"))
    ),
    "pandas range index not from 0": lambda tmp: _pandas_file(
        tmp, pd.DataFrame({"v": np.arange(2_000)}, index=pd.RangeIndex(5, 2_005))
    ),
    "pandas string[pyarrow] (pd.NA, not NaN, when read back)": lambda tmp: _pandas_file(
        tmp, pd.DataFrame({"s": pd.array(["a", None] * 1_000, dtype=pd.StringDtype("pyarrow"))})
    ),
    "pandas nullable integers": lambda tmp: _pandas_file(
        tmp, pd.DataFrame({"v": pd.array([1, None] * 1_000, dtype="Int64")})
    ),
}


@pytest.mark.parametrize("case", list(NEEDS_NORMALISING))
def test_a_parquet_file_needing_normalisation_goes_through_it(tmp_path: Path, case: str) -> None:
    path = NEEDS_NORMALISING[case](tmp_path)

    store, ref, sample = run_ingest(tmp_path, path)

    assert ref.fingerprint != sha256(path)
    expected = normalised(path)
    stored = pq.read_table(store.path_of(ref.uri))
    assert stored.equals(expected.table)
    assert ref.columns == expected.columns
    assert sample == expected.sample
    assert no_temp_files(store)
    assert len(stored_files(store)) == 1  # a dropped copy leaves nothing behind


def test_type_overrides_keep_a_file_as_it_is_only_when_they_change_nothing(tmp_path: Path) -> None:
    table = pa.table(
        {
            "day": pa.array(["2024-01-05", "2024-02-06"] * 1_000, S),
            "n": pa.nulls(2_000, pa.int64()),
            "x": pa.array(range(2_000), pa.int64()),
        }
    )
    path = _written(tmp_path, table)
    pinned: dict[str, LogicalType] = {"day": "string", "n": "integer"}  # no date parsing; keeps its type

    store, ref, _ = run_ingest(tmp_path, path, pinned)

    assert ref.fingerprint == sha256(path)
    assert pq.read_table(store.path_of(ref.uri)).equals(normalised(path, pinned).table)
    assert ref.columns == normalised(path, pinned).columns

    changing: dict[str, LogicalType] = {"x": "float"}
    store, ref, _ = run_ingest(tmp_path, path, changing)
    assert ref.fingerprint != sha256(path)
    assert pq.read_table(store.path_of(ref.uri)).schema.field("x").type == pa.float64()
    with pytest.raises(InvalidInput, match=r"not in t\.parquet: nope"):
        run_ingest(tmp_path, path, {"nope": "integer"})


def test_an_empty_parquet_file_is_refused_as_before(tmp_path: Path) -> None:
    path = _written(tmp_path, pa.table({"a": pa.array([], pa.int64())}))
    with pytest.raises(InvalidInput, match="no data rows"):
        run_ingest(tmp_path, path)


def _corrupt_a_data_page(path: Path) -> None:
    data = bytearray(path.read_bytes())
    column = pq.ParquetFile(path).metadata.row_group(1).column(0)
    start = column.dictionary_page_offset if column.has_dictionary_page else column.data_page_offset
    middle = (column.data_page_offset + start + column.total_compressed_size) // 2  # inside the data page
    data[middle : middle + 64] = bytes(range(64))
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("canonical", [True, False], ids=["stored as it is", "normalised"])
@pytest.mark.parametrize(
    "write",
    [
        {"compression": "zstd"},  # the codec notices
        {"compression": "none", "write_page_checksum": True},  # only the page's CRC can tell
    ],
    ids=["zstd", "crc"],
)
def test_a_corrupt_page_is_refused_and_nothing_is_stored(
    tmp_path: Path, write: dict[str, object], canonical: bool
) -> None:
    table = canonical_table()
    if not canonical:
        table = table.set_column(0, "id", table.column("id").cast(pa.int32()))
    path = tmp_path / "broken.parquet"
    pq.write_table(table, path, row_group_size=1_500, **write)  # type: ignore[arg-type]
    _corrupt_a_data_page(path)
    store = LocalArtifactStore(tmp_path / "store")
    connector = FileConnector(FileConfig(path=str(path)), allowed=[tmp_path], limits=FileLimits())

    with pytest.raises(InvalidInput, match=r"broken\.parquet is not a readable Parquet file"):
        read_into_artifact(connector, spec=SourceSpec(path=str(path)), artifacts=store)

    assert stored_files(store) == []


def test_a_file_that_is_not_parquet_is_refused_before_any_copy(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not really parquet PAR1")
    store = LocalArtifactStore(tmp_path / "store")
    truncated = tmp_path / "cut.parquet"
    pq.write_table(canonical_table(), truncated)
    truncated.write_bytes(truncated.read_bytes()[:-100])
    for bad in (path, truncated):
        connector = FileConnector(FileConfig(path=str(bad)), allowed=[tmp_path], limits=FileLimits())
        with pytest.raises(InvalidInput, match=rf"{bad.name} is not a readable Parquet file"):
            read_into_artifact(connector, spec=SourceSpec(path=str(bad)), artifacts=store)
    assert stored_files(store) == []


def test_a_compressed_parquet_file_is_normalised(tmp_path: Path) -> None:
    inner = _written(tmp_path, canonical_table(), "canon.parquet")
    packed = tmp_path / "canon.parquet.gz"
    packed.write_bytes(gzip.compress(inner.read_bytes()))

    store, ref, sample = run_ingest(tmp_path, packed)

    assert ref.fingerprint not in (sha256(inner), sha256(packed))
    assert pq.read_table(store.path_of(ref.uri)).equals(canonical_table())
    assert ref.columns == normalised(inner).columns and sample == normalised(inner).sample


def test_the_content_cache_works_for_a_file_stored_as_it_is(tmp_path: Path) -> None:
    path = _written(tmp_path, canonical_table(), "canon.parquet")
    settings = SourceSettings(allowed_dirs=[tmp_path], home=tmp_path / "home")
    store, cache = LocalArtifactStore(tmp_path / "store"), MemoryCache()
    spec = SourceSpec(path=str(path))

    first = ingest(spec, artifacts=store, cache=cache, db=None, settings=settings)
    again = ingest(spec, artifacts=store, cache=cache, db=None, settings=settings)

    assert not first.cached and again.cached
    assert first.dataset == again.dataset and first.sample == again.sample
    assert first.dataset.fingerprint == sha256(path)
    assert first.bytes_read == again.bytes_read == path.stat().st_size
