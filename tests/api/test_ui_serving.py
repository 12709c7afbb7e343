"""The gateway serves the built web UI under /ui/ on the API's port; the UI's client and build are current."""

import json
import runpy
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lockflow.embedded import create_app
from lockflow.gateway.testing import embedded_settings
from lockflow.gateway.ui import UI_DIR, UI_POLICY

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(embedded_settings(tmp_path, start_workers=False))) as test_client:
        yield test_client


def test_the_root_sends_people_to_the_ui(client: TestClient) -> None:
    answer = client.get("/", follow_redirects=False)
    assert answer.status_code == 307 and answer.headers["location"] == "/ui/"


def test_client_routes_deep_link_to_the_app_with_its_own_policy(client: TestClient) -> None:
    for path in ("/ui/", "/ui/runs/0192-abc", "/ui/inbox", "/ui/admin/audit?actor=ana"):
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert '<div id="root"></div>' in answer.text
        assert answer.headers["content-security-policy"] == UI_POLICY
        assert answer.headers["cache-control"] == "no-cache"


def test_assets_are_served_immutable_and_a_missing_one_is_404(client: TestClient) -> None:
    index = (UI_DIR / "index.html").read_text()
    script = index.split('src="/ui/', 1)[1].split('"', 1)[0]
    answer = client.get(f"/ui/{script}")
    assert answer.status_code == 200 and "javascript" in answer.headers["content-type"]
    assert "immutable" in answer.headers["cache-control"]
    missing = client.get("/ui/assets/nope-123.js")
    assert missing.status_code == 404 and missing.json() == {"detail": "no UI asset assets/nope-123.js"}


def test_api_routes_win_over_the_app_and_keep_their_json_errors(client: TestClient) -> None:
    assert client.get("/runs/any").status_code == 401  # not the app's index
    assert client.get("/no-such-route").status_code == 404
    assert client.get("/healthz").json()["status"] == "ok"


def test_nothing_outside_the_ui_folder_is_served(client: TestClient) -> None:
    for path in ("/ui/../app.py", "/ui/%2e%2e/app.py", "/ui/assets/../../ui.py"):
        answer = client.get(path)
        assert "def install_ui" not in answer.text and "create_app" not in answer.text, path


def test_only_reads_are_allowed_on_the_ui(client: TestClient) -> None:
    answer = client.post("/ui/runs/x")
    assert answer.status_code == 405


def test_the_ui_learns_the_upload_limit(client: TestClient) -> None:
    limit = client.app.state.settings.max_upload_bytes  # type: ignore[attr-defined]
    assert client.get("/ui/config.json").json() == {"max_upload_bytes": limit}


def test_the_ui_routes_stay_out_of_the_api_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p == "/" or p.startswith("/ui")]


def test_the_uis_openapi_json_is_the_apps_schema() -> None:
    """frontend/openapi.json (the typed client's source; vitest checks the client against it) is current."""
    document = runpy.run_path(str(SCRIPTS / "ui_openapi.py"))["openapi_document"]()
    committed = json.loads((ROOT / "frontend" / "openapi.json").read_text())
    assert committed == json.loads(json.dumps(document)), "the API changed: run `make client`, then `make ui`"


def test_the_committed_ui_build_is_of_the_current_sources() -> None:
    source_hash = runpy.run_path(str(SCRIPTS / "ui_source_hash.py"))["source_hash"]
    recorded = (UI_DIR / "SOURCE.sha256").read_text().strip()
    assert recorded == source_hash(), "frontend/ changed since the UI was built: run `make ui` and commit it"
