"""The ingest service reads an upload from the artifact store through a spool in its own temp folder."""

from pathlib import Path

import pytest

from lockflow.common.artifacts import LocalArtifactStore
from lockflow.common.errors import InvalidInput
from lockflow.common.models import Goal, SourceSpec
from lockflow.ingest.preflight import preflight
from lockflow.ingest.uploaded import Spool, digest_of


def _upload(store: LocalArtifactStore, data: bytes, suffix: str = ".csv") -> str:
    with store.open_bytes(suffix=suffix) as sink:
        sink.write(data)
        return sink.commit()[0]


def test_an_upload_is_fetched_under_its_name_and_removed_after(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts")
    uri = _upload(store, b"region,revenue\nNorth,1.5\nSouth,2.5\n")
    with Spool(store) as spool:
        local = spool.local(uri, name="upload-abc.csv")
        assert local.name == "upload-abc.csv" and local.read_bytes().startswith(b"region,")
        checked = preflight(spec=SourceSpec(path="upload-abc.csv", uri=uri), goal=Goal(), local=local)
        assert checked.columns == ["region", "revenue"]
        assert checked.suggested_target() is not None and checked.suggested_target().target == "revenue"
    assert not local.exists() and not local.parent.exists()
    assert digest_of(uri) == Path(uri).name.split(".")[0]
    assert store.exists(uri)  # the artifact itself stays


def test_an_empty_upload_is_named_by_its_upload_name_and_a_missing_one_is_refused(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts")
    uri = _upload(store, b"")
    with Spool(store) as spool:
        local = spool.local(uri, name="upload-e.csv")
        with pytest.raises(InvalidInput, match=r"^upload-e\.csv is empty$"):
            preflight(spec=SourceSpec(path="upload-e.csv", uri=uri), goal=Goal(), local=local)
        store.remove(uri)
        with pytest.raises(InvalidInput, match=r"no such file: upload-f\.csv"):
            spool.local(uri, name="upload-f.csv")
