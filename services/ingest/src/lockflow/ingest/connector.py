"""The one connector interface every source type implements, and the health-check timing around it.

A connector yields the source's rows as Arrow tables of bounded size (`chunks`), so the reader
never needs the whole source as Python objects. A streaming source (Kafka, a later issue) fits the
same interface: `chunks` reads a bounded window (up to max_rows or an end offset) and returns.
"""

from __future__ import annotations

import abc
import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from lockflow.common.errors import LockflowError
from lockflow.common.logging import get_logger
from lockflow.common.models import SourceHealth, SourceOptions

log = get_logger(__name__)


@dataclass
class Probe:
    """What a health check found so far; each connector fills the steps it can check."""

    reachable: bool = False
    authorised: bool = False
    readable: bool = False


class Connector(abc.ABC):
    """Reads one source in chunks; knows how to check that it is reachable, authorised and readable."""

    kind: str = ""

    @abc.abstractmethod
    def label(self) -> str:
        """A display name of the source without secrets (shown in runs and reports)."""

    @abc.abstractmethod
    def probe(self, found: Probe) -> None:
        """Check the source, setting each step of `found` as it passes; raise on the first failure."""

    @abc.abstractmethod
    def chunks(self, *, options: SourceOptions, workdir: Path) -> Iterator[pa.Table]:
        """The source's rows as Arrow tables; temporary files go in workdir."""

    def check_network(self) -> object:
        """Check the hosts this source connects to against the network policy, connecting to none.

        Sources that reach no network have nothing to check; the others raise ForbiddenDestination.
        """
        return None

    def display_name(self) -> str:
        """The short name used in messages about the data (a file's name, else the label)."""
        return self.label()

    def parquet_file(self) -> Path | None:
        """The source as one local Parquet file, when it is one (a plain .parquet file source), else None.

        Stage 1 may then store that file as it is instead of re-encoding its rows (see passthrough.py).
        """
        return None

    def content_hash(self) -> str | None:
        """A hash of the source's bytes when it is cheap to know (files), for the schema cache."""
        return None

    def contract(self) -> dict[str, Any] | None:
        """A stream's JSON Schema contract inferred from what was read (None for batch sources)."""
        return None

    def bytes_read(self) -> int:
        """Bytes read from the source by the last `chunks` call (0 if unknown)."""
        return 0

    def health(self) -> SourceHealth:
        """Run the probe and time it; a failure is reported, never raised."""
        found = Probe()
        started = time.perf_counter()
        message = "reachable, authorised and readable"
        try:
            self.probe(found)
        except LockflowError as exc:
            message = str(exc)
        except Exception as exc:  # a driver's own error type: report it instead of failing the request
            # Its text may tell what answered on the other side, so it goes to the log only.
            log.warning("source_check_failed", source=self.label(), error=f"{type(exc).__name__}: {exc}")
            message = "the check failed with an unexpected error (the server log has the details)"
        ok = found.reachable and found.authorised and found.readable
        return SourceHealth(
            ok=ok,
            reachable=found.reachable,
            authorised=found.authorised,
            readable=found.readable,
            seconds=round(time.perf_counter() - started, 4),
            message=message,
            checked_at=datetime.now(UTC),
        )


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()
