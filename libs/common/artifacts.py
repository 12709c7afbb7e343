"""Content-addressed, immutable artifacts (the claim-check store): Parquet datasets and reports."""

import hashlib
import os
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lockflow.common.errors import NotFound
from lockflow.common.models import ColumnSchema, DatasetRef


class ArtifactStore:
    """Local-folder store: `<root>/<sha[:2]>/<sha>.<ext>`, written atomically, never overwritten."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def put_bytes(self, data: bytes, *, suffix: str) -> tuple[str, str]:
        """Store bytes under their SHA-256; return (uri, fingerprint)."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.root / digest[:2] / f"{digest}{suffix}"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
        return target.resolve().as_uri(), digest

    def put_table(self, table: pa.Table, *, columns: list[ColumnSchema]) -> DatasetRef:
        """Write a dataset as Parquet and return its claim check."""
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        uri, digest = self.put_bytes(sink.getvalue().to_pybytes(), suffix=".parquet")
        return DatasetRef(uri=uri, fingerprint=digest, rows=table.num_rows, columns=columns)

    def put_frame(self, frame: pd.DataFrame, *, columns: list[ColumnSchema]) -> DatasetRef:
        """Write a DataFrame (index dropped) as a dataset artifact."""
        return self.put_table(pa.Table.from_pandas(frame, preserve_index=False), columns=columns)

    def path_of(self, uri: str) -> Path:
        """The local path of a stored artifact, refusing anything outside the store."""
        path = Path(urlparse(uri).path).resolve()
        if self.root.resolve() not in path.parents:
            raise NotFound(f"artifact {uri} is not in this store")
        if not path.exists():
            raise NotFound(f"artifact {uri} is missing")
        return path

    def read_bytes(self, uri: str) -> bytes:
        """The stored bytes."""
        return self.path_of(uri).read_bytes()

    def read_frame(self, ref: DatasetRef) -> pd.DataFrame:
        """Load a dataset artifact into pandas."""
        return pq.read_table(self.path_of(ref.uri)).to_pandas()
