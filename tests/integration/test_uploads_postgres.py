"""Upload ownership on the real PostgreSQL: migration 0004's table, recorded and checked."""

from pathlib import Path

import pytest

from lockflow.access.deps import Principal
from lockflow.access.policy import Role
from lockflow.common.db import Database
from lockflow.common.errors import NotFound
from lockflow.gateway.uploads import StoredUpload, check_upload_path, record_upload


def _principal(name: str, *roles: Role) -> Principal:
    return Principal(name, name, frozenset(roles), None)  # type: ignore[arg-type]


def test_an_upload_is_readable_by_its_uploader_and_admins_only(fresh_postgres: str, tmp_path: Path) -> None:
    db = Database(fresh_postgres)
    # The bytes are an artifact; the upload folder holds none: its name is only how users refer to it.
    folder = tmp_path / "uploads"
    stored = folder / "upload-abc123.csv"
    uri = "s3://lockflow/ab/abc.csv"
    upload = StoredUpload(stored.name, uri, "abc", 8, created=True)
    record_upload(db, upload=upload, owner="ana", original_name="sales.csv")

    assert check_upload_path(db, _principal("ana", Role.ANALYST), path=stored, upload_dir=folder) == uri
    assert check_upload_path(db, _principal("root", Role.ADMIN), path=stored, upload_dir=folder) == uri
    with pytest.raises(NotFound, match=r"no upload upload-abc123\.csv"):
        check_upload_path(db, _principal("bob", Role.ANALYST), path=stored, upload_dir=folder)
    with pytest.raises(NotFound, match=r"no upload upload-missing\.csv"):
        check_upload_path(
            db, _principal("bob", Role.ANALYST), path=folder / "upload-missing.csv", upload_dir=folder
        )
    # Outside the upload folder the rule does not apply (the allowed folders decide).
    other = tmp_path / "other.csv"
    assert check_upload_path(db, _principal("bob", Role.ANALYST), path=other, upload_dir=folder) is None
    db.dispose()
