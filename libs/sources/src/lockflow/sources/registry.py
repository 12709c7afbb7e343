"""The source registry: create, list, get, update and delete sources (the gateway and the CLI manage
them; the ingest service reads them). Testing a source is a connection: the ingest service's.

Configs are stored as public JSON plus one Fernet token holding the secrets. Views only ever
return the public part with each secret replaced by ********; secrets are never logged.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lockflow.common.db import Database, SourceContractRow, SourceRow
from lockflow.common.errors import Conflict, NotFound
from lockflow.common.ids import new_id
from lockflow.common.logging import get_logger
from lockflow.common.models import SourceSpec
from lockflow.sources.checks import check_config, label_of
from lockflow.sources.configs import (
    Config,
    ConfigInvalid,
    join_secrets,
    kind_of,
    masked,
    merge_update,
    parse_config,
    split_secrets,
)
from lockflow.sources.secrets import SecretBox
from lockflow.sources.settings import SourceSettings

log = get_logger(__name__)
NAME_MAX = 64
# A name is used in URL paths (/sources/{name}) and CLI arguments: no slashes, spaces or controls.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def secret_box(settings: SourceSettings) -> SecretBox:
    """The box that seals and opens source secrets with this server's key."""
    return SecretBox(sources_key=settings.sources_key, secret_key=settings.secret_key)


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
    check_config(parsed, settings)
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


def sources_page(
    db: Database,
    *,
    settings: SourceSettings,
    owner: str | None,
    shared: Collection[str] = (),
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Sources by name, secrets masked: `owner`'s own and those shared with them (by id or name; every
    source when owner is None), filtered in the query, then paged; with the total the filter lets through."""
    visible = None
    if owner is not None:
        visible = SourceRow.created_by == owner
        if shared:
            visible = or_(visible, SourceRow.id.in_(list(shared)), SourceRow.name.in_(list(shared)))
    query, count = select(SourceRow), select(func.count()).select_from(SourceRow)
    if visible is not None:
        query, count = query.where(visible), count.where(visible)
    with db.transaction() as session:
        rows = session.scalars(query.order_by(SourceRow.name).limit(limit).offset(offset)).all()
        views = [_view(r, _secret_fields(r, settings), session.get(SourceContractRow, r.id)) for r in rows]
        return views, session.scalar(count) or 0


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
            check_config(parsed, settings)
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


def masked_config(row: SourceRow, settings: SourceSettings) -> dict[str, Any]:
    """The row's config as shown to people."""
    return masked(row.type, row.config, _secret_fields(row, settings))


def spec_for(db: Database, *, ref: str, settings: SourceSettings) -> SourceSpec:
    """The run's SourceSpec for a registered source (a label for people, the id for the reader)."""
    row, config = load_source_config(db, ref=ref, settings=settings)
    label = label_of(config, settings)
    fmt = None if row.type == "stream" else getattr(config, "format", None)  # a stream's is its records'
    return SourceSpec(kind=kind_of(row.type), path=label, format=fmt, source_id=row.id)
