"""Uploads: streamed into the artifact store, owned by their uploader, named to users by a server name.

An upload's bytes are streamed (1 MiB at a time, the size limit enforced as they arrive) into the
artifact store's spool file and committed under their SHA-256, so every process reads them from the
store (S3 in distributed mode: no process shares the gateway's folder). The server names each upload
`upload-<random>.<ext>`; the `uploads` table records who sent it and its artifact's uri. That name,
as a path under the upload folder, is how a run (`POST /runs`) or a file source refers to an upload:
only its uploader and admins may; anyone else gets the same 404 as for an upload that does not exist.
The uri never comes from a user: the gateway puts it in the run's SourceSpec or the source's config.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from fastapi import UploadFile
from sqlalchemy import select
from sqlalchemy.engine import make_url

from lockflow.access.deps import Principal
from lockflow.access.policy import Role
from lockflow.common.artifacts import ArtifactStore
from lockflow.common.db import Database, UploadRow
from lockflow.common.errors import LockflowError, NotFound, TooLarge
from lockflow.common.logging import get_logger
from lockflow.common.models import SourceSpec

CHUNK_BYTES = 1024 * 1024
log = get_logger(__name__)


@dataclass(frozen=True)
class StoredUpload:
    """An upload's bytes in the artifact store: the server's name for it, its uri, hash and size."""

    name: str
    uri: str
    digest: str
    size: int
    created: bool  # this upload stored the artifact (the same bytes were not stored before)

    def spec(self) -> SourceSpec:
        """The run's source: the upload's name for people, its uri for the reader."""
        return SourceSpec(path=self.name, uri=self.uri)


async def store_upload(
    file: UploadFile, artifacts: ArtifactStore, *, limit: int, suffix: str
) -> StoredUpload:
    """Stream an upload into the artifact store, hashing it; refuse it past `limit` bytes (413)."""
    with artifacts.open_bytes(suffix=suffix) as sink:
        while chunk := await file.read(CHUNK_BYTES):
            if sink.size + len(chunk) > limit:
                raise TooLarge(f"upload exceeds {limit} bytes")
            sink.write(chunk)
        uri, digest, created = await anyio.to_thread.run_sync(sink.commit)
        size = sink.size
    return StoredUpload(f"upload-{secrets.token_hex(8)}{suffix}", uri, digest, size, created)


def record_upload(db: Database, *, upload: StoredUpload, owner: str, original_name: str | None) -> None:
    """Remember who uploaded the stored file, and where its bytes are."""
    with db.transaction() as session:
        session.add(
            UploadRow(
                name=upload.name,
                uri=upload.uri,
                owner=owner,
                original_name=(original_name or "")[:255] or None,
                size_bytes=upload.size,
            )
        )


def forget_upload(db: Database, artifacts: ArtifactStore, *, upload: StoredUpload) -> None:
    """Drop an upload that was not kept (its run or source was refused), and its bytes if only it had them."""
    with db.transaction() as session:
        row = session.get(UploadRow, upload.name)
        if row is not None:
            session.delete(row)
    if upload.created:
        with db.transaction() as session:
            others = session.scalars(
                select(UploadRow.name).where(UploadRow.uri == upload.uri).limit(1)
            ).first()
        if others is None:
            try:
                artifacts.remove(upload.uri)
            except LockflowError as exc:  # the refusal is the answer; an orphan artifact is only space
                log.warning("upload_not_removed", upload=upload.name, error=str(exc))


def check_upload_path(db: Database, principal: Principal, *, path: Path, upload_dir: Path) -> str | None:
    """The uri of the caller's upload the path names (admins: anyone's); None outside the upload folder.

    404 when the path lies in the upload folder and is not the caller's upload.
    """
    folder = upload_dir.resolve()
    if folder not in path.parents:
        return None
    relative = path.relative_to(folder)
    with db.transaction() as session:
        row = session.get(UploadRow, str(relative)) if len(relative.parts) == 1 else None
        owner, uri = (row.owner, row.uri) if row is not None else (None, None)
    if owner != principal.username and Role.ADMIN not in principal.roles:
        # The same answer whether the file exists or not: another user's upload is not revealed.
        raise NotFound(f"no upload {relative}")
    # None for a file stored in the folder before uploads went to the artifact store: read by path.
    return uri


def check_config_path(
    db: Database, principal: Principal, *, config: dict[str, Any], upload_dir: Path
) -> None:
    """A source's file (`path`, or a SQLite `url`'s file) may name an upload only of the caller's (404).

    A file `path` naming an upload gets that upload's `uri` (the reader's address of its bytes). A
    `uri` sent by the user is dropped: only the server sets it, else a source could read any artifact.
    """
    config.pop("uri", None)
    for key, named in (("path", config.get("path")), ("url", _sqlite_file(config.get("url")))):
        if not isinstance(named, str) or not named:
            continue
        try:
            resolved = Path(named).expanduser().resolve()
        except (RuntimeError, ValueError, OSError):
            continue  # the registry's own check names what is wrong with it
        uri = check_upload_path(db, principal, path=resolved, upload_dir=upload_dir)
        if key == "path":
            config["uri"] = uri  # None for a path outside the upload folder: an update drops an old uri


def _sqlite_file(url: object) -> str | None:
    """The database file of a SQLite URL, else None (other URLs name no local file)."""
    if not isinstance(url, str) or not url.startswith("sqlite"):
        return None
    try:
        return make_url(url).database
    except Exception:  # not a URL: the registry refuses it with its own message
        return None
