"""File sources: a path under the allowed folders (CSV/TSV, JSON, JSON lines, Parquet, Excel, .gz, .zip)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from lockflow.common.errors import InvalidInput
from lockflow.common.models import SourceOptions
from lockflow.ingest.connector import Connector, Probe, sha256_file
from lockflow.ingest.read import detect_format, read_chunks, unpack
from lockflow.ingest.uploaded import Spool, digest_of
from lockflow.sources.checks import file_label, resolve_inside
from lockflow.sources.configs import FileConfig
from lockflow.sources.settings import FileLimits

_COMPRESSED = (".gz", ".zip")


class FileConnector(Connector):
    """A local file, checked to lie inside the allowed folders every time it is opened; or an upload.

    An upload (the config's `uri`, set by the server) is an artifact: it is fetched through the spool
    into this process's own temp folder, and its path is only its name.
    """

    kind = "file"

    def __init__(
        self, config: FileConfig, *, allowed: list[Path], limits: FileLimits, spool: Spool | None = None
    ) -> None:
        self.config = config
        self.allowed = allowed
        self.limits = limits
        self.spool = spool
        self._size = 0

    def path(self) -> Path:
        """The checked path (an upload: its local copy)."""
        if self.config.uri is not None:
            if self.spool is None:
                raise InvalidInput(
                    f"{self.display_name()} is an upload, and this reader has no artifact store"
                )
            return self.spool.local(self.config.uri, name=self.config.path)
        return resolve_inside(self.config.path, self.allowed)

    def check(self) -> None:
        """The local checks: a path inside the allowed folders (an upload is checked by the store)."""
        if self.config.uri is None:
            self.path()

    def label(self) -> str:
        """The file's path."""
        return file_label(self.config)

    def display_name(self) -> str:
        """The file's name."""
        return Path(self.config.path).name

    def probe(self, found: Probe) -> None:
        """Exists, inside the allowed folders, a readable non-empty file."""
        path = self.path()
        if not path.is_file():
            raise InvalidInput(f"no such file: {self.config.path}")
        found.reachable = True
        found.authorised = True
        with path.open("rb") as handle:
            if not handle.read(1):
                raise InvalidInput(f"{path.name} is empty (0 bytes)")
        found.readable = True

    def options(self, base: SourceOptions) -> SourceOptions:
        """The run's options completed with the config's (the run's win)."""
        update = {
            k: v
            for k, v in {
                "delimiter": self.config.delimiter,
                "encoding": self.config.encoding,
                "header": self.config.header,
                "sheet": self.config.sheet,
            }.items()
            if getattr(base, k) is None and v is not None
        }
        return base.model_copy(update=update)

    def _opened(self) -> Path:
        """The checked path of an existing file within the size limit (its size noted for bytes_read)."""
        path = self.path()
        if not path.is_file():
            raise InvalidInput(f"no such file: {self.config.path}")
        self._size = path.stat().st_size
        if self._size > self.limits.max_file_bytes:
            raise InvalidInput(f"{path.name} is larger than the limit of {self.limits.max_file_bytes} bytes")
        return path

    def chunks(self, *, options: SourceOptions, workdir: Path) -> Iterator[pa.Table]:
        """Unpack if compressed, then read in chunks."""
        path = self._opened()
        data, fmt = unpack(path, self.config.format, workdir, self.limits, entry=self.config.entry)
        return read_chunks(data, fmt, self.options(options), self.limits)

    def parquet_file(self) -> Path | None:
        """The file, if it is Parquet and not inside a .gz or .zip."""
        path = self._opened()
        if path.suffix.lower() in _COMPRESSED:
            return None
        return path if detect_format(path, self.config.format) == "parquet" else None

    def content_hash(self) -> str | None:
        """SHA-256 of the file (an upload's is its artifact's name: nothing is fetched to know it)."""
        if self.config.uri is not None:
            return digest_of(self.config.uri)
        return sha256_file(self.path())

    def bytes_read(self) -> int:
        """The file's size."""
        return self._size
