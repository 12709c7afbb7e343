"""The source registry: create, list, get, update, delete and test sources; their approved contracts.

Configs are stored as public JSON plus one Fernet token holding the secrets. Views only ever
return the public part with each secret replaced by ********; secrets are never logged.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lockflow.common.db import Database, SourceContractRow, SourceRow
from lockflow.common.errors import Conflict, InvalidInput, NotFound
from lockflow.common.ids import new_id
from lockflow.common.logging import get_logger
from lockflow.common.models import SourceHealth, SourceSpec
from lockflow.ingest.configs import (
    ApiConfig,
    Config,
    ConfigInvalid,
    DatabaseConfig,
    FileConfig,
    S3Config,
    join_secrets,
    kind_of,
    masked,
    merge_update,
    parse_config,
    split_secrets,
)
from lockflow.ingest.conn_db import DatabaseConnector
from lockflow.ingest.conn_file import FileConnector
from lockflow.ingest.conn_http import HttpApiConnector
from lockflow.ingest.conn_s3 import S3Connector
from lockflow.ingest.connector import Connector
from lockflow.ingest.netguard import NetPolicy, Unresolvable
from lockflow.ingest.secrets import SecretBox
from lockflow.ingest.settings import SourceSettings

log = get_logger(__name__)
NAME_MAX = 64
# A name is used in URL paths (/sources/{name}) and CLI arguments: no slashes, spaces or controls.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def secret_box(settings: SourceSettings) -> SecretBox:
    """The box that seals and opens source secrets with this server's key."""
    return SecretBox(sources_key=settings.sources_key, secret_key=settings.secret_key)


def build_connector(config: Config, settings: SourceSettings, **extra: Any) -> Connector:
    """The connector for a config; constructing it runs the local checks (paths, dialects, URL form).

    Hosts are checked by `checked_connector` when a source is stored, and by the connector itself at
    every connection (a health check or a read), because DNS answers may change in between.
    """
    policy = NetPolicy.from_list(settings.allow_hosts)
    if isinstance(config, FileConfig):
        connector = FileConnector(config, allowed=settings.source_dirs(), limits=settings.file_limits())
        connector.path()
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
    raise InvalidInput(f"no connector for {type(config).__name__}")


def checked_connector(config: Config, settings: SourceSettings) -> Connector:
    """The connector, with its hosts checked now: a forbidden host is refused before the source is stored."""
    connector = build_connector(config, settings)
    try:
        connector.check_network()  # no connection is made
    except Unresolvable:
        pass  # a name that does not resolve now may later; every connection checks again
    return connector


def _view(row: SourceRow, secret_fields: list[str], contract: SourceContractRow | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "type": row.type,
        "config": masked(row.type, row.config, secret_fields),
        "secret_fields": sorted(secret_fields),
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        "last_health": row.last_health,
        "contract": None
        if contract is None
        else {
            "columns": contract.columns,
            "run_id": contract.run_id,
            "approved_by": contract.approved_by,
            "approved_at": contract.approved_at.isoformat(),
        },
    }


def _secret_fields(row: SourceRow, settings: SourceSettings) -> list[str]:
    return list(secret_box(settings).open(row.secrets))


def _find(session: Session, ref: str) -> SourceRow:
    row = session.get(SourceRow, ref) or session.scalar(select(SourceRow).where(SourceRow.name == ref))
    if row is None:
        raise NotFound(f"no source {ref!r}")
    return row


def check_name(name: str) -> str:
    """The source name if it is safe to use in a URL path: 1 to 64 letters, digits, '_', '.', '-'."""
    if not NAME_PATTERN.fullmatch(name):
        message = (
            f"must be 1 to {NAME_MAX} characters: letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
        raise ConfigInvalid(
            f"invalid source name {name[:80]!r}: {message}", [{"field": "name", "message": message}]
        )
    return name


def safe_name(text: str, suffix: str = "") -> str:
    """A valid source name made from free text (e.g. an uploaded file's name), keeping its readable part."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("_.-")[: NAME_MAX - len(suffix)].rstrip("_.-")
    return check_name((stem or "source") + suffix)


def create_source(
    db: Database, *, name: str, kind: str, config: dict[str, Any], actor: str, settings: SourceSettings
) -> dict[str, Any]:
    """Validate the config (field-level errors), run its safety checks, store it with secrets sealed."""
    name = check_name(name)
    parsed = parse_config(kind, config)
    checked_connector(parsed, settings)
    public, secrets = split_secrets(parsed)
    row = SourceRow(
        id=new_id(),
        name=name,
        type=kind,
        config=public,
        secrets=secret_box(settings).seal(secrets),
        created_by=actor,
    )
    try:
        with db.transaction() as session:
            session.add(row)
            session.flush()
            view = _view(row, list(secrets), None)
    except IntegrityError as exc:
        raise Conflict(f"a source named {name!r} already exists") from exc
    log.info("source_created", source_id=row.id, type=kind, by=actor)  # never the config: it may hold secrets
    return view


def list_sources(db: Database, *, settings: SourceSettings) -> list[dict[str, Any]]:
    """Every source, by name, secrets masked."""
    with db.transaction() as session:
        rows = session.scalars(select(SourceRow).order_by(SourceRow.name)).all()
        return [_view(r, _secret_fields(r, settings), session.get(SourceContractRow, r.id)) for r in rows]


def get_source(db: Database, *, ref: str, settings: SourceSettings) -> dict[str, Any]:
    """One source by id or name, secrets masked."""
    with db.transaction() as session:
        row = _find(session, ref)
        return _view(row, _secret_fields(row, settings), session.get(SourceContractRow, row.id))


def update_source(
    db: Database,
    *,
    ref: str,
    changes: dict[str, Any],
    name: str | None,
    actor: str,
    settings: SourceSettings,
) -> dict[str, Any]:
    """Merge changes into the config (secrets sent as ******** or left out keep their value), re-check it."""
    box = secret_box(settings)
    try:
        with db.transaction() as session:
            row = _find(session, ref)
            parsed = merge_update(row.type, row.config, box.open(row.secrets), changes)
            checked_connector(parsed, settings)
            public, secrets = split_secrets(parsed)
            row.config, row.secrets = public, box.seal(secrets)
            if name is not None:
                row.name = check_name(name)
            row.last_health = None  # the old check says nothing about the new config
            session.flush()
            view = _view(row, list(secrets), session.get(SourceContractRow, row.id))
    except IntegrityError as exc:
        raise Conflict(f"a source named {name!r} already exists") from exc
    log.info("source_updated", source_id=view["id"], by=actor)
    return view


def delete_source(db: Database, *, ref: str, actor: str) -> None:
    """Remove a source and its contract."""
    with db.transaction() as session:
        row = _find(session, ref)
        contract = session.get(SourceContractRow, row.id)
        if contract is not None:
            session.delete(contract)
        session.delete(row)
    log.info("source_deleted", source_id=ref, by=actor)


def load_source_config(db: Database, *, ref: str, settings: SourceSettings) -> tuple[SourceRow, Config]:
    """The stored row and its full config (secrets decrypted) for a connector."""
    with db.transaction() as session:
        row = _find(session, ref)
        session.expunge(row)
    return row, join_secrets(row.type, row.config, secret_box(settings).open(row.secrets))


def test_source(db: Database, *, ref: str, settings: SourceSettings) -> SourceHealth:
    """Run the source's health check, store the result, and return it."""
    row, config = load_source_config(db, ref=ref, settings=settings)
    health = build_connector(config, settings).health()
    with db.transaction() as session:
        stored = session.get(SourceRow, row.id)
        if stored is not None:
            stored.last_health = health.model_dump(mode="json")
    log.info("source_tested", source_id=row.id, ok=health.ok, seconds=health.seconds)
    return health


def masked_config(row: SourceRow, settings: SourceSettings) -> dict[str, Any]:
    """The row's config as shown to people."""
    return masked(row.type, row.config, _secret_fields(row, settings))


def spec_for(db: Database, *, ref: str, settings: SourceSettings) -> SourceSpec:
    """The run's SourceSpec for a registered source (a label for people, the id for the reader)."""
    row, config = load_source_config(db, ref=ref, settings=settings)
    label = build_connector(config, settings).label()
    fmt = getattr(config, "format", None)
    return SourceSpec(kind=kind_of(row.type), path=label, format=fmt, source_id=row.id)
