"""Stage 1's streaming pass: widening chunk by chunk gives the table a read of everything at once gives."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lockflow.common.artifacts import LocalArtifactStore
from lockflow.common.errors import InvalidInput, StageError
from lockflow.common.models import SourceOptions, SourceSpec
from lockflow.datasets.canonical import STRING
from lockflow.ingest.read import load_chunks, load_source
from lockflow.ingest.stream import stream_chunks


def _chunks(*frames: pd.DataFrame) -> list[pa.Table]:
    return [pa.Table.from_pandas(f, preserve_index=False) for f in frames]


def _stored(tmp_path: Path, chunks: list[pa.Table], **kwargs: object) -> tuple[pa.Table, object]:
    """Stream the chunks into a real artifact store; return the stored table and the Streamed result."""
    store = LocalArtifactStore(tmp_path / "store")
    with store.open_dataset() as writer:
        streamed = stream_chunks(chunks, name="t", column_types=kwargs.get("column_types", {}), sink=writer)  # type: ignore[arg-type]
        ref = writer.commit(columns=streamed.columns)
    path = store.path_of(ref.uri)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == ref.fingerprint
    assert ref.rows == streamed.rows
    assert not [p for p in (tmp_path / "store").iterdir() if p.name.startswith(".tmp-")]
    return pq.read_table(path), streamed


@pytest.fixture(params=["memory", "artifact"])
def read_back(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Both sinks must give the same table."""

    def run(chunks: list[pa.Table], column_types: dict | None = None) -> tuple[pa.Table, object]:
        if request.param == "memory":
            loaded = load_chunks(chunks, name="t", column_types=column_types or {}, bytes_read=0)
            return loaded.table, loaded
        return _stored(tmp_path, chunks, column_types=column_types or {})

    return run


def test_int_then_float_widens_earlier_rows(read_back) -> None:  # type: ignore[no-untyped-def]
    a = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    b = pd.DataFrame({"x": [4.5, np.nan], "y": ["d", "e"]})
    table, result = read_back(_chunks(a, b))
    expected = pd.concat([a, b], ignore_index=True)
    assert table.schema.field("x").type == pa.float64()
    assert table.column("x").to_pylist()[:4] == expected["x"].tolist()[:4]
    assert table.column("x").null_count == 1
    by_name = {c.name: c for c in result.columns}
    assert by_name["x"].dtype == "float" and by_name["x"].null_count == 1
    assert result.sample[0] == {"x": 1.0, "y": "a"}


@pytest.mark.parametrize("first_chunk_big", [True, False])
def test_integers_past_2_53_widen_to_the_nearest_float(read_back, first_chunk_big: bool) -> None:  # type: ignore[no-untyped-def]
    big = 2**60 + 1
    a = pd.DataFrame({"x": [big, 2] if first_chunk_big else [1, 2]})
    b = pd.DataFrame({"x": [4.5, np.nan] if first_chunk_big else [float(big), np.nan]})
    c = pd.DataFrame({"x": [big, 7]})  # an int chunk after the column became float
    table, _ = read_back(_chunks(a, b, c))
    assert table.schema.field("x").type == pa.float64()
    expected = pd.concat([a, b, c], ignore_index=True)["x"].astype("float64")
    assert table.column("x").to_pylist()[:2] + table.column("x").to_pylist()[4:] == (
        expected.tolist()[:2] + expected.tolist()[4:]
    )


def test_integers_past_64_bits_in_a_csv_are_kept_as_text(tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    path.write_text("id,amount\n1234567890123456789012345,1.5\n98765432109876543210987,2.5\n")
    loaded = load_source(spec=SourceSpec(path=str(path)))
    assert loaded.table.schema.field("id").type == STRING
    assert loaded.table.column("id").to_pylist() == ["1234567890123456789012345", "98765432109876543210987"]


def test_non_date_in_a_later_chunk_restores_the_original_text(read_back) -> None:  # type: ignore[no-untyped-def]
    a = pd.DataFrame({"d": ["2024-01-05", "2024-02-06"]})
    b = pd.DataFrame({"d": ["2024-03-07", None]})
    c = pd.DataFrame({"d": ["soon"]})
    table, result = read_back(_chunks(a, b, c))
    assert table.schema.field("d").type == pa.large_string()
    assert table.column("d").to_pylist() == ["2024-01-05", "2024-02-06", "2024-03-07", None, "soon"]
    assert result.columns[0].dtype == "string"
    assert result.columns[0].examples == ["2024-01-05", "2024-02-06", "2024-03-07"]


def test_dates_in_every_chunk_stay_timestamps(read_back) -> None:  # type: ignore[no-untyped-def]
    a = pd.DataFrame({"d": ["2024-01-05", None]})
    b = pd.DataFrame({"d": ["2024-03-07T10:00:00"]})
    table, _ = read_back(_chunks(a, b))
    assert pa.types.is_timestamp(table.schema.field("d").type)
    expected = pd.to_datetime(pd.Series(["2024-01-05", None, "2024-03-07T10:00:00"]), format="ISO8601")
    got = table.column("d").to_pandas()
    pd.testing.assert_series_equal(got, expected.astype("datetime64[us]"), check_names=False)


def test_late_column_and_late_type(read_back) -> None:  # type: ignore[no-untyped-def]
    a = pd.DataFrame({"k": [1, 2], "n": [None, None]}).astype({"n": object})
    b = pd.DataFrame({"k": [3], "n": [7], "extra": ["z"]})
    table, result = read_back(_chunks(a, b))
    assert table.column_names == ["k", "n", "extra"]
    assert table.column("n").to_pylist() == [None, None, 7]
    assert table.schema.field("n").type == pa.int64()
    assert table.column("extra").to_pylist() == [None, None, "z"]
    assert [c.null_count for c in result.columns] == [0, 2, 2]
    assert result.sample[0] == {"k": 1, "n": None, "extra": None}


def test_mixed_kinds_become_text(read_back) -> None:  # type: ignore[no-untyped-def]
    a = pd.DataFrame({"v": [1, 2]})
    b = pd.DataFrame({"v": ["x", None]})
    table, _ = read_back(_chunks(a, b))
    assert table.column("v").to_pylist() == ["1", "2", "x", None]


def test_override_error_names_the_row_across_chunks(read_back) -> None:  # type: ignore[no-untyped-def]
    a = pd.DataFrame({"q": ["1", "2", "3"]})
    b = pd.DataFrame({"q": ["4", "four"]})
    with pytest.raises(StageError, match=r"'four' in row 5"):
        read_back(_chunks(a, b), {"q": "integer"})


def test_empty_and_missing_override_column(read_back) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match="no data rows"):
        read_back([pa.table({"a": pa.array([], pa.int64())})])
    with pytest.raises(InvalidInput, match="not in t: nope"):
        read_back(_chunks(pd.DataFrame({"a": [1]})), {"nope": "integer"})


def test_failed_stream_leaves_nothing_in_the_store(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    a = pd.DataFrame({"q": ["1"] * 10})
    b = pd.DataFrame({"q": ["x"]})
    with pytest.raises(StageError), store.open_dataset() as writer:
        stream_chunks(_chunks(a, b), name="t", column_types={"q": "integer"}, sink=writer)
    assert list((tmp_path / "store").rglob("*")) == []


def test_csv_in_small_chunks_matches_pandas(tmp_path: Path) -> None:
    """Chunks of 1,000 rows with a column that gains NaNs late: the same values as one pandas read."""
    rng = np.random.default_rng(3)
    rows = 5_000
    frame = pd.DataFrame(
        {"id": np.arange(rows), "v": rng.integers(0, 9, rows), "s": rng.choice(["a", "b"], rows)}
    )
    frame["v"] = frame["v"].astype(object)
    frame.loc[4_500, "v"] = None  # the last chunk turns an integer column into floats
    path = tmp_path / "f.csv"
    frame.to_csv(path, index=False)
    loaded = load_source(spec=SourceSpec(path=str(path), options=SourceOptions(chunk_rows=1_000)))
    expected = pd.read_csv(path)
    got = loaded.table.to_pandas()
    assert loaded.table.schema.field("v").type == pa.float64()
    pd.testing.assert_series_equal(got["v"], expected["v"], check_names=False)
    assert got["id"].tolist() == expected["id"].tolist()
    assert {c.name: c.null_count for c in loaded.columns} == expected.isna().sum().to_dict()


def test_a_bad_byte_deep_in_a_csv_is_named_by_offset(tmp_path: Path) -> None:
    """Only the head is checked before reading; a bad byte later still gets its exact offset."""
    body = b"a,b\n" + b"1,x\n" * 5_000
    path = tmp_path / "late.csv"
    path.write_bytes(body + b"2,\xc3(\n")
    with pytest.raises(InvalidInput, match=f"binary content at byte {len(body) + 2}"):
        load_source(spec=SourceSpec(path=str(path), options=SourceOptions(chunk_rows=1_000)))
    wide = tmp_path / "wide.csv"
    wide.write_bytes(b"a" * 9_000 + b"\xff,b\n1,2\n")  # in the header, past the 8 KiB head
    with pytest.raises(InvalidInput, match="binary content at byte 9000"):
        load_source(spec=SourceSpec(path=str(wide)))
