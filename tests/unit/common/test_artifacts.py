"""The artifact store's streaming dataset writer: content-addressed, hashed while written, atomic."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from lockflow.common.artifacts import DatasetWriter, LocalArtifactStore


def _table(rows: int, start: int = 0) -> pa.Table:
    ids = np.arange(start, start + rows)
    return pa.table(
        {"id": ids, "half": ids / 2, "tag": pa.array([f"t{i % 7}" for i in ids], pa.large_string())}
    )


def _temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob(".tmp-*")]


def test_batches_are_stored_under_the_sha256_of_their_bytes(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    whole = _table(10_000)
    ref = store.put_batches(whole.to_batches(max_chunksize=1_500), columns=[])
    path = store.path_of(ref.uri)
    assert path == (tmp_path / ref.fingerprint[:2] / f"{ref.fingerprint}.parquet").resolve()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == ref.fingerprint
    assert ref.rows == 10_000
    assert pq.read_table(path).equals(whole)
    assert _temp_files(tmp_path) == []


def test_row_groups_are_bounded_by_rows_and_bytes(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    with DatasetWriter(store, row_group_rows=4_000, row_group_bytes=2**40) as writer:
        for start in range(0, 10_000, 1_000):
            writer.write(_table(1_000, start))
        ref = writer.commit(columns=[])
    sizes = [
        g.num_rows for g in (pq.ParquetFile(store.path_of(ref.uri)).metadata.row_group(i) for i in range(3))
    ]
    assert sizes == [4_000, 4_000, 2_000]
    with DatasetWriter(store, row_group_rows=10**9, row_group_bytes=1) as writer:
        for start in range(0, 3_000, 1_000):
            writer.write(_table(1_000, start))
        ref = writer.commit(columns=[])
    assert pq.ParquetFile(store.path_of(ref.uri)).metadata.num_row_groups == 3


def test_same_rows_give_the_same_artifact_and_nothing_is_overwritten(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    first = store.put_batches(_table(5_000).to_batches(max_chunksize=1_000), columns=[])
    mtime = store.path_of(first.uri).stat().st_mtime_ns
    second = store.put_batches(_table(5_000).to_batches(max_chunksize=1_000), columns=[])
    assert second == first
    assert store.path_of(first.uri).stat().st_mtime_ns == mtime
    assert _temp_files(tmp_path) == []


def test_rewrite_widens_what_was_written(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    with store.open_dataset() as writer:
        writer.write(pa.table({"x": pa.array([1, 2], pa.int64())}))
        writer.write(pa.table({"x": pa.array([3], pa.int64())}))
        wide = pa.schema([("x", pa.float64()), ("y", pa.large_string())])
        writer.rewrite(
            wide,
            lambda t: pa.table(
                {"x": pc.cast(t.column("x"), pa.float64()), "y": pa.nulls(t.num_rows, pa.large_string())}
            ),
        )
        writer.write(pa.table({"x": [4.5], "y": pa.array(["z"], pa.large_string())}))
        ref = writer.commit(columns=[])
    table = pq.read_table(store.path_of(ref.uri))
    assert table.schema == wide
    assert table.column("x").to_pylist() == [1.0, 2.0, 3.0, 4.5]
    assert table.column("y").to_pylist() == [None, None, None, "z"]
    assert ref.rows == 4
    assert hashlib.sha256(store.path_of(ref.uri).read_bytes()).hexdigest() == ref.fingerprint
    assert _temp_files(tmp_path) == []


def test_a_failure_mid_stream_leaves_no_file(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    with pytest.raises(RuntimeError), store.open_dataset() as writer:
        writer.write(_table(1_000))
        raise RuntimeError("the source broke")
    assert list(tmp_path.rglob("*")) == []


def test_a_file_copied_as_it_is_gets_the_address_of_its_bytes(tmp_path: Path) -> None:
    source = tmp_path / "src.bin"
    data = np.random.default_rng(1).bytes(3 * 2**20 + 17)  # more than one copy block, and a partial one
    source.write_bytes(data)
    store = LocalArtifactStore(tmp_path / "store")
    with store.open_copy(source, suffix=".parquet") as copy:
        assert copy.path is not None and copy.path.read_bytes() == data  # checkable before the commit
        uri = copy.commit()
    digest = hashlib.sha256(data).hexdigest()
    assert copy.digest == digest and copy.size == len(data)
    assert store.path_of(uri) == (tmp_path / "store" / digest[:2] / f"{digest}.parquet").resolve()
    assert store.read_bytes(uri) == data
    with store.open_copy(source, suffix=".parquet") as again:  # the same bytes: the same artifact, kept
        assert again.commit() == uri
    assert _temp_files(tmp_path / "store") == []


def test_a_copy_left_uncommitted_or_failing_leaves_nothing(tmp_path: Path) -> None:
    source = tmp_path / "src.bin"
    source.write_bytes(b"x" * 1000)
    store = LocalArtifactStore(tmp_path / "store")
    with pytest.raises(RuntimeError), store.open_copy(source, suffix=".parquet"):
        raise RuntimeError("the check failed")
    with store.open_copy(source, suffix=".parquet"):
        pass  # not committed
    with pytest.raises(FileNotFoundError):
        store.open_copy(tmp_path / "missing.bin", suffix=".parquet")
    assert list((tmp_path / "store").rglob("*")) == []
