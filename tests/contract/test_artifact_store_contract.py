"""One contract, two adapters: the same tests run on the local folder and on a real S3-compatible server.

The S3 server is the SeaweedFS that `scripts/services.sh up` starts (LOCKFLOW_TEST_S3_URL); each test
gets a prefix of its own in one bucket, and the S3-only checks at the end look at the bucket itself.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lockflow.common.artifacts import ArtifactStore, LocalArtifactStore, store_for
from lockflow.common.artifacts_s3 import ArtifactStoreUnavailable, S3ArtifactStore
from lockflow.common.errors import NotFound
from lockflow.common.settings import CommonSettings

BUCKET = "lockflow-contract"
MiB = 2**20


@dataclass
class Adapter:
    """A store under test and what the test needs to look behind it."""

    store: ArtifactStore
    spool: Path
    stamp: Callable[[str], object]  # something that changes when the artifact is written again
    plant: Callable[[str, bytes], None]  # put bytes at a uri behind the store's back
    stored: Callable[[], list[str]]  # every artifact uri in the store


def _local(tmp_path: Path) -> Adapter:
    store = LocalArtifactStore(tmp_path / "store")

    def plant(uri: str, data: bytes) -> None:
        path = Path(uri.removeprefix("file://"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def stored() -> list[str]:
        root = tmp_path / "store"
        return sorted(p.resolve().as_uri() for p in root.rglob("*") if p.is_file()) if root.exists() else []

    return Adapter(store, store.root, lambda uri: store.path_of(uri).stat().st_mtime_ns, plant, stored)


def _s3(server: Any, tmp_path: Path, part_bytes: int) -> Adapter:
    prefix = f"t-{uuid.uuid4().hex[:12]}/artifacts"
    spool = tmp_path / "spool"
    store = S3ArtifactStore(
        bucket=BUCKET,
        prefix=prefix,
        endpoint=server.endpoint,
        access_key_id=server.access_key_id,
        secret_access_key=server.secret_access_key,
        part_bytes=part_bytes,
        spool=spool,
    )
    server.bucket(BUCKET)
    client = server.client()

    def stamp(uri: str) -> object:
        head = client.head_object(Bucket=BUCKET, Key=store.key_of(uri))
        return head["LastModified"], head["ETag"]

    def plant(uri: str, data: bytes) -> None:
        client.put_object(Bucket=BUCKET, Key=store.key_of(uri), Body=data)

    def stored() -> list[str]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return sorted(f"s3://{BUCKET}/{o['Key']}" for page in pages for o in page.get("Contents", []))

    return Adapter(store, spool, stamp, plant, stored)


@pytest.fixture(params=["local", "s3"])
def adapter(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Adapter]:
    if request.param == "local":
        yield _local(tmp_path)
        return
    # The smallest part S3 allows, so a test file of a few MiB goes through a real multipart upload.
    server = request.getfixturevalue("s3_server")
    made = _s3(server, tmp_path, part_bytes=5 * MiB)
    yield made
    assert isinstance(made.store, S3ArtifactStore)
    server.remove(BUCKET, made.store.prefix + "/")


def _table(rows: int, start: int = 0) -> pa.Table:
    ids = np.arange(start, start + rows)
    return pa.table(
        {"id": ids, "half": ids / 2, "tag": pa.array([f"t{i % 7}" for i in ids], pa.large_string())}
    )


def _no_spool_files(adapter: Adapter) -> bool:
    return not adapter.spool.exists() or not [p for p in adapter.spool.rglob(".tmp-*")]


def test_bytes_are_stored_under_their_sha256_and_read_back(adapter: Adapter) -> None:
    store = adapter.store
    uri, digest = store.put_bytes(b"# Report\n", suffix=".md")
    assert digest == hashlib.sha256(b"# Report\n").hexdigest()
    assert uri.endswith(f"/{digest[:2]}/{digest}.md")
    assert store.read_bytes(uri) == b"# Report\n"
    with store.open_input(uri) as handle:
        assert handle.read() == b"# Report\n"
    assert store.exists(uri)
    assert store.put_bytes(b"# Report\n", suffix=".md") == (uri, digest)
    assert adapter.stored() == [uri]


def test_a_streamed_dataset_is_content_addressed_and_reads_back(adapter: Adapter) -> None:
    store = adapter.store
    whole = _table(20_000)
    ref = store.put_batches(whole.to_batches(max_chunksize=1_500), columns=[])
    assert ref.rows == 20_000
    assert hashlib.sha256(store.read_bytes(ref.uri)).hexdigest() == ref.fingerprint
    with store.open_input(ref.uri) as source:
        assert pq.read_table(source).equals(whole)
    assert store.read_frame(ref).equals(whole.to_pandas())
    assert adapter.stored() == [ref.uri]
    assert _no_spool_files(adapter)


def test_a_reader_seeks_within_the_artifact(adapter: Adapter) -> None:
    store = adapter.store
    ref = store.put_batches([_table(5_000)], columns=[])
    with store.open_input(ref.uri) as source:
        size = source.size()
        source.seek(size - 4)
        assert source.read(4) == b"PAR1"  # Parquet's footer magic: readers start at the end
        parquet = pq.ParquetFile(source)
        assert parquet.read_row_group(0).num_rows == 5_000


def test_the_same_content_is_the_same_artifact_and_is_not_written_again(adapter: Adapter) -> None:
    store = adapter.store
    first = store.put_batches(_table(5_000).to_batches(max_chunksize=1_000), columns=[])
    stamp = adapter.stamp(first.uri)
    second = store.put_batches(_table(5_000).to_batches(max_chunksize=1_000), columns=[])
    assert second == first
    assert adapter.stamp(first.uri) == stamp
    uri, _ = store.put_bytes(b"same", suffix=".json")
    stamp = adapter.stamp(uri)
    assert store.put_bytes(b"same", suffix=".json")[0] == uri
    assert adapter.stamp(uri) == stamp
    assert len(adapter.stored()) == 2
    assert _no_spool_files(adapter)


def test_an_existing_key_is_never_overwritten(adapter: Adapter) -> None:
    store = adapter.store
    data = b'{"report": 1}'
    digest = hashlib.sha256(data).hexdigest()
    uri, _ = store.put_bytes(b"placeholder", suffix=".json")  # learn how this store spells a uri
    placeholder = hashlib.sha256(b"placeholder").hexdigest()
    target = uri.replace(f"/{placeholder[:2]}/{placeholder}", f"/{digest[:2]}/{digest}")
    adapter.plant(target, b"planted")
    assert store.put_bytes(data, suffix=".json") == (target, digest)
    assert store.read_bytes(target) == b"planted"  # what was there stays


def test_a_file_larger_than_a_part_is_copied_whole(adapter: Adapter, tmp_path: Path) -> None:
    data = np.random.default_rng(5).bytes(12 * MiB + 17)  # three parts, the last one short
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    store = adapter.store
    with store.open_copy(source, suffix=".bin") as copy:
        assert copy.path is not None and copy.path.read_bytes() == data  # checkable before the commit
        uri = copy.commit()
    assert copy.digest == hashlib.sha256(data).hexdigest()
    assert store.read_bytes(uri) == data
    with store.open_input(uri) as handle:
        handle.seek(7 * MiB)
        assert handle.read(1024) == data[7 * MiB : 7 * MiB + 1024]
    with store.open_copy(source, suffix=".bin") as again:
        assert again.commit() == uri
    assert adapter.stored() == [uri]
    assert _no_spool_files(adapter)


def test_a_writer_left_uncommitted_or_failing_leaves_nothing(adapter: Adapter, tmp_path: Path) -> None:
    store = adapter.store
    with pytest.raises(RuntimeError), store.open_dataset() as writer:
        writer.write(_table(1_000))
        raise RuntimeError("the source broke")
    source = tmp_path / "src.bin"
    source.write_bytes(b"x" * 1000)
    with store.open_copy(source, suffix=".parquet"):
        pass  # not committed
    assert adapter.stored() == []
    assert _no_spool_files(adapter)


def test_a_copy_and_a_writer_of_the_same_bytes_share_one_address(adapter: Adapter, tmp_path: Path) -> None:
    store = adapter.store
    ref = store.put_batches([_table(3_000)], columns=[])
    source = tmp_path / "same.parquet"
    source.write_bytes(store.read_bytes(ref.uri))
    with store.open_copy(source, suffix=".parquet") as copy:
        assert copy.commit() == ref.uri


def test_writers_racing_with_the_same_content_store_one_artifact(adapter: Adapter) -> None:
    store = adapter.store
    uris: list[str] = []
    errors: list[BaseException] = []

    def write() -> None:
        try:
            uris.append(store.put_batches([_table(4_000)], columns=[]).uri)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(uris)) == 1
    assert adapter.stored() == uris[:1]


def test_missing_and_foreign_artifacts_are_not_found(adapter: Adapter) -> None:
    store = adapter.store
    uri, digest = store.put_bytes(b"here", suffix=".md")
    missing = uri.replace(digest, "0" * 64)
    assert not store.exists(missing)
    with pytest.raises(NotFound, match="missing"):
        store.open_input(missing)
    with pytest.raises(NotFound):
        store.read_bytes(missing)
    for foreign in ("s3://another-bucket/ab/abc.md", "file:///etc/passwd", "https://example.com/x.md"):
        assert not store.exists(foreign)
        with pytest.raises(NotFound, match="not in this store"):
            store.open_input(foreign)


# ---------------------------------------------------------------- S3 only


def test_a_racing_writer_never_overwrites_what_another_stored(s3_server: Any, tmp_path: Path) -> None:
    """The write itself is conditional (If-None-Match): a writer that looked before the other wrote
    still leaves the first object as it was, in one PUT and in a multipart upload."""

    class LateLooker(S3ArtifactStore):
        def _head(self, key: str) -> bool:
            return False  # as if it looked just before the other writer's object appeared

    adapter = _s3(s3_server, tmp_path, part_bytes=5 * MiB)
    assert isinstance(adapter.store, S3ArtifactStore)
    late = LateLooker(
        bucket=BUCKET,
        prefix=adapter.store.prefix,
        endpoint=s3_server.endpoint,
        access_key_id=s3_server.access_key_id,
        secret_access_key=s3_server.secret_access_key,
        part_bytes=5 * MiB,
        spool=tmp_path / "late-spool",
    )
    small = b"small"
    uri, _ = adapter.store.put_bytes(small, suffix=".md")
    adapter.plant(uri, b"first")
    assert late.put_bytes(small, suffix=".md")[0] == uri
    assert late.read_bytes(uri) == b"first"

    big = np.random.default_rng(9).bytes(11 * MiB)
    source = tmp_path / "big.bin"
    source.write_bytes(big)
    with adapter.store.open_copy(source, suffix=".bin") as copy:
        big_uri = copy.commit()
    adapter.plant(big_uri, b"first")
    with late.open_copy(source, suffix=".bin") as copy:
        assert copy.commit() == big_uri
    assert late.read_bytes(big_uri) == b"first"
    s3_server.remove(BUCKET, late.prefix + "/")


def test_the_settings_choose_the_store(s3_server: Any, tmp_path: Path) -> None:
    settings = CommonSettings(
        artifact_url=f"s3://{BUCKET}/from-settings/",
        artifact_s3_endpoint=s3_server.endpoint,
        artifact_s3_access_key_id=s3_server.access_key_id,
        artifact_s3_secret_access_key=s3_server.secret_access_key,
        artifact_spool_dir=tmp_path / "spool",
    )
    s3_server.bucket(BUCKET)
    store = store_for(settings)
    assert isinstance(store, S3ArtifactStore)
    assert (store.bucket, store.prefix) == (BUCKET, "from-settings")
    uri, _ = store.put_bytes(b"chosen", suffix=".md")
    assert uri.startswith(f"s3://{BUCKET}/from-settings/")
    s3_server.remove(BUCKET, "from-settings/")
    assert s3_server.secret_access_key not in repr(store) and s3_server.secret_access_key not in repr(
        settings
    )
    local = store_for(CommonSettings(home=tmp_path / "home"))
    assert isinstance(local, LocalArtifactStore) and local.root == tmp_path / "home" / "artifacts"


def test_a_store_that_refuses_says_so_in_one_line(s3_server: Any, tmp_path: Path) -> None:
    wrong = S3ArtifactStore(
        bucket=BUCKET,
        endpoint=s3_server.endpoint,
        access_key_id=s3_server.access_key_id,
        secret_access_key="not-the-secret",
        spool=tmp_path / "spool",
    )
    with pytest.raises(ArtifactStoreUnavailable) as caught:
        wrong.put_bytes(b"x", suffix=".md")
    message = str(caught.value)
    assert "\n" not in message and f"s3://{BUCKET}/" in message and "not-the-secret" not in message
    missing_bucket = S3ArtifactStore(
        bucket=f"nope-{uuid.uuid4().hex[:8]}",
        endpoint=s3_server.endpoint,
        access_key_id=s3_server.access_key_id,
        secret_access_key=s3_server.secret_access_key,
        spool=tmp_path / "spool",
    )
    with pytest.raises(ArtifactStoreUnavailable, match="NoSuchBucket"):
        missing_bucket.put_bytes(b"x", suffix=".md")


def test_streamed_bytes_are_content_addressed_and_an_unreferenced_artifact_is_removed(
    adapter: Adapter,
) -> None:
    store = adapter.store
    data = b"a,b\n" + b"1,2\n" * (3 * MiB // 4)  # 3 MiB, written in 1 MiB chunks
    digest = hashlib.sha256(data).hexdigest()
    with store.open_bytes(suffix=".csv") as sink:
        for at in range(0, len(data), MiB):
            sink.write(data[at : at + MiB])
        uri, fingerprint, created = sink.commit()
    assert (fingerprint, created, sink.size) == (digest, True, len(data))
    assert uri == store.uri_for(digest, suffix=".csv") and uri.endswith(f"/{digest[:2]}/{digest}.csv")
    assert store.read_bytes(uri) == data
    # The same bytes again: the same artifact, not created by this sink (so not its to remove).
    with store.open_bytes(suffix=".csv") as again:
        again.write(data)
        assert again.commit() == (uri, digest, False)
    # A sink left without commit leaves nothing; a removed artifact is gone (removing again is a no-op).
    with store.open_bytes(suffix=".csv") as dropped:
        dropped.write(b"never kept")
    assert adapter.stored() == [uri] and _no_spool_files(adapter)
    store.remove(uri)
    store.remove(uri)
    assert adapter.stored() == [] and not store.exists(uri)
