"""Content-addressed, immutable artifacts (the claim-check store): Parquet datasets and reports.

One port (ArtifactStore), two adapters: a local folder (embedded mode) and an S3-compatible object
store (distributed mode, artifacts_s3.py), chosen by `store_for(settings)`. Both address an artifact
by the SHA-256 of its bytes and never overwrite one. A dataset is written to a temp file the process
owns (inside the folder for the local store, so the final rename is atomic; in the process's own temp
dir for S3, then uploaded in parts), hashed while written; readers open an artifact by its uri as a
seekable file, so no process needs another's folder.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.parquet as pq

from lockflow.common.errors import NotFound
from lockflow.common.models import ColumnSchema, DatasetRef

if TYPE_CHECKING:
    import pandas as pd  # only named in signatures: a process that never reads a frame skips pandas

    from lockflow.common.settings import CommonSettings

DATASET_COMPRESSION = "zstd"
# Row groups of ~250k rows write faster than one per small batch; the byte cap keeps the buffer bounded.
ROW_GROUP_ROWS = 256 * 1024
ROW_GROUP_BYTES = 32 * 2**20
COPY_BLOCK_BYTES = 2**20


class ArtifactStore(ABC):
    """The port: put and read immutable artifacts named by the SHA-256 of their bytes."""

    @abstractmethod
    def put_bytes(self, data: bytes, *, suffix: str) -> tuple[str, str]:
        """Store bytes under their SHA-256 (kept as they are if already stored); return (uri, fingerprint)."""

    @abstractmethod
    def exists(self, uri: str) -> bool:
        """Whether the artifact is stored (False for a uri outside this store)."""

    @abstractmethod
    def open_input(self, uri: str) -> pa.NativeFile:
        """The artifact as a seekable binary file (close it, or use it as a context manager)."""

    @abstractmethod
    def location(self, uri: str) -> str:
        """Where a person finds the artifact: a local path, or the object's uri."""

    @abstractmethod
    def spool_dir(self) -> Path:
        """The folder this process writes an artifact's bytes into before `commit_file` stores them."""

    @abstractmethod
    def commit_file(self, tmp: Path, digest: str, *, suffix: str) -> str:
        """Store a finished temp file under its content address (dropping it if that exists); its uri."""

    @abstractmethod
    def uri_for(self, digest: str, *, suffix: str) -> str:
        """The uri the artifact with this SHA-256 and suffix has (or would have) in this store."""

    @abstractmethod
    def remove(self, uri: str) -> None:
        """Delete an artifact nothing refers to (a refused upload); a no-op when it is not stored."""

    def read_bytes(self, uri: str) -> bytes:
        """The stored bytes (for small artifacts: reports)."""
        with self.open_input(uri) as handle:
            return bytes(handle.read())

    def put_table(self, table: pa.Table, *, columns: list[ColumnSchema]) -> DatasetRef:
        """Write a dataset as Parquet and return its claim check."""
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression=DATASET_COMPRESSION)
        uri, digest = self.put_bytes(sink.getvalue().to_pybytes(), suffix=".parquet")
        return DatasetRef(uri=uri, fingerprint=digest, rows=table.num_rows, columns=columns)

    def put_frame(self, frame: pd.DataFrame, *, columns: list[ColumnSchema]) -> DatasetRef:
        """Write a DataFrame (index dropped) as a dataset artifact."""
        return self.put_table(pa.Table.from_pandas(frame, preserve_index=False), columns=columns)

    def open_dataset(self) -> DatasetWriter:
        """A writer that streams a dataset into the store batch by batch (see DatasetWriter)."""
        return DatasetWriter(self)

    def open_copy(self, source: Path, *, suffix: str) -> FileCopy:
        """A file copied into the store as it is, hashed while copied, not yet committed (see FileCopy)."""
        return FileCopy(self, source, suffix=suffix)

    def open_bytes(self, *, suffix: str) -> ByteSink:
        """A file written chunk by chunk into the spool folder, hashed as written (see ByteSink)."""
        return ByteSink(self, suffix=suffix)

    def put_batches(
        self, batches: Iterable[pa.RecordBatch | pa.Table], *, columns: list[ColumnSchema]
    ) -> DatasetRef:
        """Write a dataset from batches that share one schema, never holding more than one batch."""
        with self.open_dataset() as writer:
            for batch in batches:
                writer.write(batch)
            return writer.commit(columns=columns)

    def read_frame(self, ref: DatasetRef) -> pd.DataFrame:
        """Load a dataset artifact into pandas."""
        with self.open_input(ref.uri) as source:
            return pq.read_table(source).to_pandas()

    def temp_file(self, *, suffix: str) -> Path:
        """A new empty temp file in the spool folder (named so a listing tells it from an artifact)."""
        folder = self.spool_dir()
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=suffix)
        os.close(fd)
        return Path(name)


class LocalArtifactStore(ArtifactStore):
    """Local-folder store: `<root>/<sha[:2]>/<sha>.<ext>`, written atomically, never overwritten."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def put_bytes(self, data: bytes, *, suffix: str) -> tuple[str, str]:
        """Store bytes under their SHA-256; return (uri, fingerprint)."""
        digest = hashlib.sha256(data).hexdigest()
        target = self._target(digest, suffix)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
        return target.resolve().as_uri(), digest

    def _target(self, digest: str, suffix: str) -> Path:
        return self.root / digest[:2] / f"{digest}{suffix}"

    def uri_for(self, digest: str, *, suffix: str) -> str:
        """The file uri of `<root>/<sha[:2]>/<sha><suffix>`."""
        return self._target(digest, suffix).resolve().as_uri()

    def spool_dir(self) -> Path:
        """The store's own folder: a rename within one file system is atomic."""
        return self.root

    def commit_file(self, tmp: Path, digest: str, *, suffix: str) -> str:
        """Move a finished temp file to its content address (dropping it if that exists); return the uri."""
        target = self._target(digest, suffix)
        if target.exists():
            tmp.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
        return target.resolve().as_uri()

    def path_of(self, uri: str) -> Path:
        """The local path of a stored artifact, refusing anything outside the store."""
        parsed = urlparse(uri)
        if parsed.scheme != "file":
            raise NotFound(f"artifact {uri} is not in this store")
        path = Path(parsed.path).resolve()
        if self.root.resolve() not in path.parents:
            raise NotFound(f"artifact {uri} is not in this store")
        if not path.exists():
            raise NotFound(f"artifact {uri} is missing")
        return path

    def exists(self, uri: str) -> bool:
        """Whether the artifact is in this folder."""
        try:
            self.path_of(uri)
        except NotFound:
            return False
        return True

    def open_input(self, uri: str) -> pa.NativeFile:
        """The artifact's file, opened for reading."""
        return pa.OSFile(str(self.path_of(uri)), mode="r")

    def location(self, uri: str) -> str:
        """The artifact's local path."""
        return str(self.path_of(uri))

    def remove(self, uri: str) -> None:
        """Delete the artifact's file (a no-op when it is not in this store)."""
        try:
            self.path_of(uri).unlink(missing_ok=True)
        except NotFound:
            pass


def store_for(settings: CommonSettings) -> ArtifactStore:
    """The store the settings name: S3 when LOCKFLOW_ARTIFACT_URL is s3://..., else the local folder."""
    url = settings.artifact_url
    if url is not None and url.startswith("s3://"):
        from lockflow.common.artifacts_s3 import S3ArtifactStore  # boto3 only where S3 is used

        return S3ArtifactStore.from_settings(settings)
    if url is not None:
        return LocalArtifactStore(Path(urlparse(url).path))
    return LocalArtifactStore(settings.resolved_artifact_dir())


class _HashingFile:
    """A write-only binary file feeding every byte written to SHA-256: nothing is read back to hash it."""

    def __init__(self, path: Path) -> None:
        self._handle = path.open("wb")
        self.sha256 = hashlib.sha256()
        self._position = 0

    def write(self, data: Any) -> int:
        """Hash and write a buffer."""
        view = memoryview(data)
        self.sha256.update(view)
        self._position += view.nbytes
        return self._handle.write(view)

    def tell(self) -> int:
        """Bytes written so far."""
        return self._position

    def flush(self) -> None:
        """Flush the underlying file."""
        self._handle.flush()

    def close(self) -> None:
        """Close the underlying file."""
        self._handle.close()

    @property
    def closed(self) -> bool:
        """Whether the file is closed."""
        return self._handle.closed

    def writable(self) -> bool:
        """Always: the file is write-only."""
        return True

    def readable(self) -> bool:
        """Never: the file is write-only."""
        return False

    def seekable(self) -> bool:
        """Never: bytes are hashed in order."""
        return False


class DatasetWriter:
    """Streams one Parquet dataset into the store's spool file, hashing the bytes as they are written.

    The schema is fixed by the first write; `rewrite` re-encodes what was written so far under a wider
    schema (a reader that discovers, say, a float in a column it has been writing as integers), reading
    the temp file back row group by row group. `commit` stores the file as `<sha[:2]>/<sha>.parquet`
    (a rename locally, an upload on S3): content-addressed, never overwritten; leaving the context
    without committing removes the temp file.
    """

    def __init__(
        self,
        store: ArtifactStore,
        *,
        compression: str = DATASET_COMPRESSION,
        row_group_rows: int = ROW_GROUP_ROWS,
        row_group_bytes: int = ROW_GROUP_BYTES,
    ) -> None:
        self.store = store
        self.compression = compression
        self.row_group_rows = row_group_rows
        self.row_group_bytes = row_group_bytes
        self.rows = 0
        self._pending: list[pa.Table] = []
        self._pending_rows = self._pending_bytes = 0
        self.schema: pa.Schema | None = None
        self._path: Path | None = None
        self._file: _HashingFile | None = None
        self._writer: pq.ParquetWriter | None = None

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.abort()

    def _open(self, schema: pa.Schema) -> None:
        self._path = self.store.temp_file(suffix=".parquet")
        self._file = _HashingFile(self._path)
        # Measured on stage 1's 2M-row bench file, these two cut the writer's CPU by about a quarter
        # (it was the slowest part of a CSV read): a column with many distinct values (ids, amounts)
        # gives up its dictionary after 256 KiB instead of 1 MiB (files came out no larger), and text
        # columns get no min/max statistics, which nothing here reads and which cost the most to compute.
        text = {f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)}
        self._writer = pq.ParquetWriter(
            self._file,
            schema,
            compression=self.compression,
            dictionary_pagesize_limit=256 * 1024,
            write_statistics=[f.name for f in schema if f.name not in text] or False,
        )
        self.schema = schema

    def write(self, data: pa.RecordBatch | pa.Table) -> None:
        """Append rows (buffered up to a row group's worth); the first call fixes the schema."""
        if self._writer is None:
            self._open(data.schema)
        table = data if isinstance(data, pa.Table) else pa.Table.from_batches([data])
        self._pending.append(table)
        self._pending_rows += table.num_rows
        self._pending_bytes += table.nbytes
        self.rows += table.num_rows
        if self._pending_rows >= self.row_group_rows or self._pending_bytes >= self.row_group_bytes:
            self._flush()

    def _flush(self) -> None:
        if self._pending and self._writer is not None:
            self._writer.write_table(pa.concat_tables(self._pending), row_group_size=self._pending_rows)
        self._pending, self._pending_rows, self._pending_bytes = [], 0, 0

    def stored(self) -> Iterator[pa.Table]:
        """The rows written so far, one row group at a time (finishes the current file: no more writes)."""
        if self._writer is None or self._path is None:
            return iter(())
        self._close()
        return _row_groups(self._path)

    def rewrite(self, schema: pa.Schema, convert: Callable[[pa.Table], pa.Table]) -> None:
        """Re-encode the rows written so far under `schema`, each row group passed through `convert`."""
        if self._writer is None:
            self.schema = None
            return
        old = self._path
        assert old is not None
        pieces = self.stored()
        self._open(schema)
        self.rows = 0
        for piece in pieces:
            self.write(convert(piece).cast(schema))
        old.unlink()

    def _close(self) -> None:
        if self._writer is not None and self._file is not None and not self._file.closed:
            self._flush()
            self._writer.close()
            self._file.close()

    def commit(self, *, columns: list[ColumnSchema]) -> DatasetRef:
        """Finish the file and store it under its SHA-256; return its claim check."""
        if self._writer is None:
            raise ValueError("nothing was written: a dataset needs a schema")
        self._close()
        assert self._file is not None and self._path is not None
        digest = self._file.sha256.hexdigest()
        uri = self.store.commit_file(self._path, digest, suffix=".parquet")
        self._path = None
        return DatasetRef(uri=uri, fingerprint=digest, rows=self.rows, columns=columns)

    def abort(self) -> None:
        """Drop an uncommitted temp file (a no-op after commit)."""
        if self._path is None:
            return
        self._pending, self._pending_rows, self._pending_bytes = [], 0, 0
        if self._writer is not None and self._file is not None and not self._file.closed:
            try:
                self._writer.close()
            finally:
                self._file.close()
        self._path.unlink(missing_ok=True)
        self._path = None


class FileCopy:
    """A file copied byte for byte into the store's spool folder, SHA-256 computed as it is copied.

    The copy can be checked (opened and read at `path`, a local file) before `commit` stores it as
    `<sha[:2]>/<sha><suffix>`, the same content address a DatasetWriter gives the same bytes. Leaving the
    context without committing removes it, so a copy that fails its checks leaves nothing in the store.
    Checking the copy rather than the source means what was checked is exactly what is stored, even if
    the source file changes meanwhile.
    """

    def __init__(self, store: ArtifactStore, source: Path, *, suffix: str) -> None:
        self.store = store
        self.suffix = suffix
        self.path: Path | None = store.temp_file(suffix=suffix)
        digest = hashlib.sha256()
        size = 0
        block = bytearray(COPY_BLOCK_BYTES)
        view = memoryview(block)
        try:
            with self.path.open("wb") as out, Path(source).open("rb") as src:
                while count := src.readinto(block):
                    digest.update(view[:count])
                    out.write(view[:count])
                    size += count
        except BaseException:
            self.path.unlink(missing_ok=True)
            self.path = None
            raise
        self.digest = digest.hexdigest()
        self.size = size

    def __enter__(self) -> FileCopy:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.abort()

    def commit(self) -> str:
        """Store the copy under its SHA-256 (dropping it if that artifact exists); return its uri."""
        if self.path is None:
            raise ValueError("this copy was already committed or removed")
        uri = self.store.commit_file(self.path, self.digest, suffix=self.suffix)
        self.path = None
        return uri

    def abort(self) -> None:
        """Remove an uncommitted copy (a no-op after commit)."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None


class ByteSink:
    """Bytes streamed into the store's spool folder as they arrive (an upload), SHA-256 computed on the way.

    Nothing is held in memory but the chunk being written; `commit` stores the file under its content
    address (a rename locally, an upload on S3) and says whether this call created the artifact, so a
    caller that is refused afterwards may remove what only it stored. Leaving the context without
    committing removes the temp file.
    """

    def __init__(self, store: ArtifactStore, *, suffix: str) -> None:
        self.store = store
        self.suffix = suffix
        self.size = 0
        self._digest = hashlib.sha256()
        self.path: Path | None = store.temp_file(suffix=suffix)
        self._handle = self.path.open("wb")

    def __enter__(self) -> ByteSink:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.abort()

    def write(self, chunk: bytes) -> None:
        """Append a chunk."""
        self._digest.update(chunk)
        self._handle.write(chunk)
        self.size += len(chunk)

    def commit(self) -> tuple[str, str, bool]:
        """Store the bytes under their SHA-256: (uri, fingerprint, whether this call stored them)."""
        if self.path is None:
            raise ValueError("these bytes were already committed or removed")
        self._handle.close()
        digest = self._digest.hexdigest()
        existed = self.store.exists(self.store.uri_for(digest, suffix=self.suffix))
        uri = self.store.commit_file(self.path, digest, suffix=self.suffix)
        self.path = None
        return uri, digest, not existed

    def abort(self) -> None:
        """Remove uncommitted bytes (a no-op after commit)."""
        if self.path is not None:
            self._handle.close()
            self.path.unlink(missing_ok=True)
            self.path = None


def _row_groups(path: Path) -> Iterator[pa.Table]:
    parquet = pq.ParquetFile(path)
    for index in range(parquet.num_row_groups):
        yield parquet.read_row_group(index)
