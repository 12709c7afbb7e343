"""Upload ownership on the real PostgreSQL: migration 0004's table, recorded and checked."""

from pathlib import Path

import pytest

from lockflow.access.deps import Principal
from lockflow.access.policy import Role
from lockflow.common.db import Database
from lockflow.common.errors import NotFound
from lockflow.gateway.uploads import check_upload_path, record_upload


def _principal(name: str, *roles: Role) -> Principal:
    return Principal(name, name, frozenset(roles), None)  # type: ignore[arg-type]


def test_an_upload_is_readable_by_its_uploader_and_admins_only(fresh_postgres: str, tmp_path: Path) -> None:
    db = Database(fresh_postgres)
    folder = tmp_path / "uploads"
    folder.mkdir()
    stored = folder / "upload-abc123.csv"
    stored.write_text("a,b\n1,2\n")
    record_upload(db, stored=stored, owner="ana", original_name="sales.csv")

    check_upload_path(db, _principal("ana", Role.ANALYST), path=stored, upload_dir=folder)
    check_upload_path(db, _principal("root", Role.ADMIN), path=stored, upload_dir=folder)
    with pytest.raises(NotFound, match=r"no upload upload-abc123\.csv"):
        check_upload_path(db, _principal("bob", Role.ANALYST), path=stored, upload_dir=folder)
    with pytest.raises(NotFound, match=r"no upload upload-missing\.csv"):
        check_upload_path(
            db, _principal("bob", Role.ANALYST), path=folder / "upload-missing.csv", upload_dir=folder
        )
    # Outside the upload folder the rule does not apply (the allowed folders decide).
    check_upload_path(db, _principal("bob", Role.ANALYST), path=tmp_path / "other.csv", upload_dir=folder)
    db.dispose()
