"""Server folders cut out of answers (whole paths only) and the HTML report's CSP by hash."""

import base64
import hashlib
from pathlib import Path

from lockflow.gateway.hardening import NoServerPaths, html_policy


def _scrubber(*folders: str) -> NoServerPaths:
    return NoServerPaths(app=None, folders=[Path(f) for f in folders])  # type: ignore[arg-type]


def test_a_server_folder_becomes_the_files_relative_name() -> None:
    scrub = _scrubber("/srv/lockflow/home/uploads", "/srv/lockflow/home", "/data").scrub
    body = b'{"path": "/srv/lockflow/home/uploads/upload-x.csv", "detail": "/data/sub/a.csv is empty"}'
    assert scrub(body) == b'{"path": "upload-x.csv", "detail": "sub/a.csv is empty"}'
    assert scrub(b"no such file: /srv/lockflow/home") == b"no such file: ."
    assert (
        scrub(b'"uri": "file:///srv/lockflow/home/artifacts/ab/c.parquet"')
        == b'"uri": "artifacts/ab/c.parquet"'
    )


def test_data_that_only_contains_the_letters_is_left_alone() -> None:
    scrub = _scrubber("/data").scrub
    for text in (b"https://x.com/data/a.csv", b"/database/x", b"/data2/x", b"s3://b/data/x", b"./data/x"):
        assert scrub(text) == text


def test_json_escaped_spellings_are_cut_too() -> None:
    scrub = _scrubber('/tmp/we"ird').scrub
    assert scrub(b'{"p": "/tmp/we\\"ird/f.csv"}') == b'{"p": "f.csv"}'


def test_the_report_policy_admits_each_style_block_by_hash_and_nothing_else() -> None:
    page = "<html><head><style>body{color:red}</style><style>h1{margin:0}</style></head></html>"
    policy = html_policy(page)
    for block in ("body{color:red}", "h1{margin:0}"):
        digest = base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy
    assert "unsafe-inline" not in policy and "script-src" not in policy
    assert policy.startswith("default-src 'none'") and "frame-ancestors 'none'" in policy
    assert "style-src" not in html_policy("<html><body>plain</body></html>")
