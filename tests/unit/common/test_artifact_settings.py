"""LOCKFLOW_ARTIFACT_URL chooses the artifact store; a value it cannot use is refused in one line."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from lockflow.common.artifacts import LocalArtifactStore, store_for
from lockflow.common.settings import CommonSettings


@pytest.mark.parametrize(
    "url",
    [
        "s3://",
        "s3:///prefix",
        "http://bucket/prefix",
        "file://relative/folder",
        "bucket/prefix",
        "s3://b/p?x=1",
    ],
)
def test_an_unusable_artifact_url_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match=r"s3://bucket\[/prefix\]"):
        CommonSettings(artifact_url=url)


def test_an_s3_url_keeps_no_trailing_slash_and_the_secret_stays_hidden() -> None:
    settings = CommonSettings(
        artifact_url="s3://lake/runs/", artifact_s3_secret_access_key="hush", artifact_s3_endpoint=None
    )
    assert settings.artifact_url == "s3://lake/runs"
    assert "hush" not in repr(settings) and "hush" not in str(settings.model_dump())


def test_an_endpoint_must_be_http_or_https() -> None:
    with pytest.raises(ValidationError, match="http:// or https://"):
        CommonSettings(artifact_s3_endpoint="127.0.0.1:8333")


def test_no_url_or_a_file_url_is_the_local_folder(tmp_path: Path) -> None:
    default = store_for(CommonSettings(home=tmp_path))
    assert isinstance(default, LocalArtifactStore) and default.root == tmp_path / "artifacts"
    chosen = store_for(CommonSettings(artifact_url=(tmp_path / "elsewhere").as_uri()))
    assert isinstance(chosen, LocalArtifactStore) and chosen.root == tmp_path / "elsewhere"
