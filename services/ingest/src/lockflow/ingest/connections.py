"""Sources as connectors: the connector for a stored config, and the health check that connects to it."""

from typing import Any

from lockflow.common.artifacts import ArtifactStore
from lockflow.common.db import Database, SourceRow
from lockflow.common.errors import InvalidInput
from lockflow.common.logging import get_logger
from lockflow.common.models import SourceHealth
from lockflow.ingest.conn_db import DatabaseConnector
from lockflow.ingest.conn_file import FileConnector
from lockflow.ingest.conn_http import HttpApiConnector
from lockflow.ingest.conn_kafka import KafkaConnector
from lockflow.ingest.conn_s3 import S3Connector
from lockflow.ingest.connector import Connector
from lockflow.ingest.uploaded import Spool
from lockflow.sources.configs import ApiConfig, Config, DatabaseConfig, FileConfig, S3Config, StreamConfig
from lockflow.sources.netguard import NetPolicy
from lockflow.sources.registry import load_source_config
from lockflow.sources.settings import SourceSettings

log = get_logger(__name__)


def build_connector(
    config: Config, settings: SourceSettings, *, spool: Spool | None = None, **extra: Any
) -> Connector:
    """The connector for a config; constructing it runs the local checks (paths, dialects, URL form).

    Hosts are checked by `lockflow.sources.checks.check_config` when a source is stored, and by the
    connector itself at every connection (a health check or a read): DNS answers may change between.
    """
    policy = NetPolicy.from_list(settings.allow_hosts)
    if isinstance(config, FileConfig):
        connector = FileConnector(
            config, allowed=settings.source_dirs(), limits=settings.file_limits(), spool=spool
        )
        connector.check()
        return connector
    if isinstance(config, ApiConfig):
        return HttpApiConnector(config, policy=policy, **extra)
    if isinstance(config, DatabaseConfig):
        return DatabaseConnector(
            config,
            policy=policy,
            allowed_dialects=settings.allowed_dialects,
            allowed_dirs=settings.source_dirs(),
        )
    if isinstance(config, S3Config):
        return S3Connector(config, policy=policy, limits=settings.file_limits())
    if isinstance(config, StreamConfig):
        return KafkaConnector(config, policy=policy)
    raise InvalidInput(f"no connector for {type(config).__name__}")


def test_source(
    db: Database, *, ref: str, settings: SourceSettings, artifacts: ArtifactStore | None = None
) -> SourceHealth:
    """Run the source's health check, store the result, and return it (an upload read from `artifacts`)."""
    row, config = load_source_config(db, ref=ref, settings=settings)
    spool = Spool(artifacts) if artifacts is not None else None
    try:
        health = build_connector(config, settings, spool=spool).health()
    finally:
        if spool is not None:
            spool.close()
    with db.transaction() as session:
        stored = session.get(SourceRow, row.id)
        if stored is not None:
            stored.last_health = health.model_dump(mode="json")
    log.info("source_tested", source_id=row.id, ok=health.ok, seconds=health.seconds)
    return health
