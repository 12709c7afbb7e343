"""Uploaded files, read from the artifact store: no process shares the gateway's folder.

An upload's bytes are an artifact (its uri travels in the run's SourceSpec or the file source's
config). The readers here need a local file (Excel and .zip seek; CSV goes through the same checks),
so the artifact is fetched into this process's own temp folder under the upload's name, so messages
name the file the user knows, and removed when the read is done. With the local store (embedded mode)
the artifact is hard-linked there instead of copied.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from urllib.parse import urlparse

from lockflow.common.artifacts import COPY_BLOCK_BYTES, ArtifactStore, LocalArtifactStore
from lockflow.common.errors import InvalidInput, NotFound


def digest_of(uri: str) -> str:
    """The SHA-256 an artifact's uri is named by (`<sha>.<ext>`): its content hash without reading it."""
    return Path(urlparse(uri).path).name.split(".", 1)[0]


class Spool:
    """Uploads fetched from the store into one temp folder of this process, removed on close."""

    def __init__(self, artifacts: ArtifactStore) -> None:
        self.artifacts = artifacts
        self._folder: Path | None = None

    def __enter__(self) -> Spool:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def local(self, uri: str, *, name: str) -> Path:
        """A local file holding the artifact's bytes, named `name` (fetched once per spool)."""
        target = self._dir() / (Path(name).name or "upload")
        if target.exists():
            return target
        try:
            if not self._link(uri, target):
                self._copy(uri, target)
        except NotFound as exc:
            target.unlink(missing_ok=True)
            raise InvalidInput(f"no such file: {Path(name).name} (the upload is no longer stored)") from exc
        return target

    def _dir(self) -> Path:
        if self._folder is None:
            base = self.artifacts.spool_dir()
            base.mkdir(parents=True, exist_ok=True)
            self._folder = Path(tempfile.mkdtemp(prefix=".tmp-upload-", dir=base))
        return self._folder

    def _link(self, uri: str, target: Path) -> bool:
        """Hard-link a local artifact (same folder tree, so the same file system); False if it cannot."""
        if not isinstance(self.artifacts, LocalArtifactStore):
            return False
        try:
            os.link(self.artifacts.path_of(uri), target)
        except OSError:
            return False
        return True

    def _copy(self, uri: str, target: Path) -> None:
        """Stream the artifact into the target one block at a time (never the whole file in memory)."""
        with self.artifacts.open_input(uri) as source, target.open("wb") as out:
            while block := source.read(COPY_BLOCK_BYTES):
                out.write(block)

    def close(self) -> None:
        """Remove every fetched file."""
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
