"""Stage 1's flow for one source: health check, read (or reuse by content hash), contract drift."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lockflow.common.artifacts import ArtifactStore
from lockflow.common.cache import Cache, cache_key
from lockflow.common.contracts import contract_of
from lockflow.common.db import Database
from lockflow.common.errors import NotFound, StageError
from lockflow.common.models import DatasetRef, SchemaChange, SourceHealth, SourceSpec
from lockflow.ingest.conn_file import FileConnector
from lockflow.ingest.connections import build_connector
from lockflow.ingest.connector import Connector
from lockflow.ingest.drift import schema_drift
from lockflow.ingest.passthrough import keep_parquet
from lockflow.ingest.stream import stream_chunks
from lockflow.ingest.uploaded import Spool
from lockflow.sources.configs import FileConfig
from lockflow.sources.registry import load_source_config, masked_config
from lockflow.sources.settings import SourceSettings


@dataclass(frozen=True)
class Ingested:
    """What stage 1 reports about one read of a source."""

    dataset: DatasetRef
    sample: list[dict[str, Any]]
    bytes_read: int
    config: dict[str, Any]
    health: SourceHealth | None
    drift: list[SchemaChange] | None
    cached: bool
    contract: dict[str, Any] | None = None  # a stream's JSON Schema inferred from its sample


def connector_for(
    spec: SourceSpec, *, db: Database | None, settings: SourceSettings, spool: Spool | None = None
) -> tuple[Connector, dict[str, Any]]:
    """The connector of a registered source (and its masked config), of an upload, or of a plain path."""
    if spec.source_id is None and spec.uri is not None:
        upload = FileConfig(path=spec.path, format=spec.format, uri=spec.uri)
        return FileConnector(upload, allowed=[], limits=settings.file_limits(), spool=spool), {
            "path": spec.path
        }
    if spec.source_id is None:
        file_config = FileConfig(path=spec.path, format=spec.format)
        # A plain path was checked against the allowed folders by whoever created the run.
        connector = FileConnector(file_config, allowed=[Path("/")], limits=settings.file_limits())
        return connector, {"path": spec.path}
    if db is None:
        raise StageError("this ingest worker has no database, so it cannot read registered sources")
    row, config = load_source_config(db, ref=spec.source_id, settings=settings)
    return build_connector(config, settings, spool=spool), masked_config(row, settings)


def ingest(
    spec: SourceSpec, *, artifacts: ArtifactStore, cache: Cache, db: Database | None, settings: SourceSettings
) -> Ingested:
    """Check the source, read it into a Parquet artifact (or reuse a cached one), compare to its contract."""
    with Spool(artifacts) as spool:  # an upload fetched from the store is removed when the read is done
        return _ingest(spec, artifacts=artifacts, cache=cache, db=db, settings=settings, spool=spool)


def _ingest(
    spec: SourceSpec,
    *,
    artifacts: ArtifactStore,
    cache: Cache,
    db: Database | None,
    settings: SourceSettings,
    spool: Spool,
) -> Ingested:
    try:
        connector, shown = connector_for(spec, db=db, settings=settings, spool=spool)
    except NotFound as exc:
        raise StageError(f"the run's source is gone: {exc}") from exc
    health = connector.health() if spec.source_id else None
    if health is not None and not health.ok:
        raise StageError(f"source {connector.label()} failed its health check: {health.message}")
    content = connector.content_hash()
    key = cache_key("ingest", content, spec.options.model_dump(mode="json"), spec.format) if content else None
    hit = _cached(cache, artifacts, key)
    if hit is not None:
        dataset, sample, size = hit
        cached = True
    else:
        dataset, sample = read_into_artifact(connector, spec=spec, artifacts=artifacts)
        size, cached = connector.bytes_read(), False
        if key is not None:
            entry = {"dataset": dataset.model_dump(mode="json"), "sample": sample, "bytes_read": size}
            cache.set(key, json.dumps(entry))
    drift = None
    if spec.source_id is not None and db is not None:
        contract = contract_of(db, source_id=spec.source_id)
        drift = schema_drift(contract, dataset.columns) if contract is not None else None
    return Ingested(dataset, sample, size, shown, health, drift, cached, connector.contract())


def read_into_artifact(
    connector: Connector, *, spec: SourceSpec, artifacts: ArtifactStore
) -> tuple[DatasetRef, list[dict[str, Any]]]:
    """Stream the source chunk by chunk into a content-addressed Parquet artifact (bounded memory).

    A Parquet file that normalisation would leave unchanged is stored as it is (passthrough.py).
    """
    parquet = connector.parquet_file()
    if parquet is not None:
        kept = keep_parquet(parquet, column_types=spec.options.column_types, artifacts=artifacts)
        if kept is not None:
            return kept
    with (
        tempfile.TemporaryDirectory(prefix="lockflow-ingest-") as workdir,
        artifacts.open_dataset() as writer,
    ):
        chunks = connector.chunks(options=spec.options, workdir=Path(workdir))
        streamed = stream_chunks(
            chunks, name=connector.display_name(), column_types=spec.options.column_types, sink=writer
        )
        return writer.commit(columns=streamed.columns), streamed.sample


def _cached(
    cache: Cache, artifacts: ArtifactStore, key: str | None
) -> tuple[DatasetRef, list[dict[str, Any]], int] | None:
    """A cached result whose artifact still exists."""
    if key is None:
        return None
    raw = cache.get(key)
    if raw is None:
        return None
    entry = json.loads(raw)
    dataset = DatasetRef.model_validate(entry["dataset"])
    if not artifacts.exists(dataset.uri):
        return None  # the artifact was removed (or lives in another store): read again
    return dataset, entry["sample"], int(entry["bytes_read"])
