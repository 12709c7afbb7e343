"""Uploads belong to their uploader: the owner of each stored file, and the check before a path is read.

A file in the upload folder is named by the server (`upload-<random>.<ext>`); the `uploads` table
records who sent it. A path under that folder may be read (by `POST /runs`, or as a file source's
path) only by its uploader and admins; anyone else gets the same 404 as for a file that does not exist.
"""

from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from lockflow.access.deps import Principal
from lockflow.access.policy import Role
from lockflow.common.db import Database, UploadRow
from lockflow.common.errors import NotFound


def record_upload(db: Database, *, stored: Path, owner: str, original_name: str | None) -> None:
    """Remember who uploaded the stored file."""
    with db.transaction() as session:
        session.add(
            UploadRow(
                name=stored.name,
                owner=owner,
                original_name=(original_name or "")[:255] or None,
                size_bytes=stored.stat().st_size,
            )
        )


def forget_upload(db: Database, *, stored: Path) -> None:
    """Drop the record of an upload that was not kept (its run or source was refused)."""
    with db.transaction() as session:
        row = session.get(UploadRow, stored.name)
        if row is not None:
            session.delete(row)


def check_upload_path(db: Database, principal: Principal, *, path: Path, upload_dir: Path) -> None:
    """404 when the resolved path lies in the upload folder and is not the caller's upload (admins: any)."""
    folder = upload_dir.resolve()
    if folder not in path.parents:
        return
    relative = path.relative_to(folder)
    if Role.ADMIN in principal.roles:
        return
    with db.transaction() as session:
        row = session.get(UploadRow, str(relative)) if len(relative.parts) == 1 else None
        owner = row.owner if row is not None else None
    if owner != principal.username:
        # The same answer whether the file exists or not: another user's upload is not revealed.
        raise NotFound(f"no upload {relative}")


def check_config_path(
    db: Database, principal: Principal, *, config: dict[str, Any], upload_dir: Path
) -> None:
    """A source's file (`path`, or a SQLite `url`'s file) may name an upload only of the caller's (404)."""
    for named in (config.get("path"), _sqlite_file(config.get("url"))):
        if not isinstance(named, str) or not named:
            continue
        try:
            resolved = Path(named).expanduser().resolve()
        except (RuntimeError, ValueError, OSError):
            continue  # the registry's own check names what is wrong with it
        check_upload_path(db, principal, path=resolved, upload_dir=upload_dir)


def _sqlite_file(url: object) -> str | None:
    """The database file of a SQLite URL, else None (other URLs name no local file)."""
    if not isinstance(url, str) or not url.startswith("sqlite"):
        return None
    try:
        return make_url(url).database
    except Exception:  # not a URL: the registry refuses it with its own message
        return None
