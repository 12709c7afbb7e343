"""Issue 11, found by an attacker against `lockflow up`: lists paged after authorisation, uploads owned.

The gateway runs in process (embedded adapters, SQLite). Without stage workers runs are created and
stay at ingest, which is all a list needs; the decision list test starts the workers so gate 1 opens.
"""

import base64
import hashlib
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from lockflow.auth.testing import share_run, sign_in
from lockflow.common.db import RunRow, SourceRow, UploadRow
from lockflow.embedded import create_app
from lockflow.gateway.pages import TOTAL_HEADER
from lockflow.gateway.testing import embedded_settings

SALES = pd.DataFrame({"region": ["a", "b", "a", "b"] * 10, "spend": range(40), "revenue": range(100, 140)})


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(embedded_settings(tmp_path, start_workers=False))) as test_client:
        yield test_client


def _sales(data_dir: Path, name: str = "sales.csv") -> Path:
    path = data_dir / name
    SALES.to_csv(path, index=False)
    return path


def _start(client: TestClient, path: Path, headers: dict[str, str]) -> str:
    answer = client.post("/runs", json={"path": str(path), "goal": {"target": "revenue"}}, headers=headers)
    assert answer.status_code == 201, answer.text
    run_id: str = answer.json()["id"]
    return run_id


def _page(client: TestClient, route: str, headers: dict[str, str], **params: object) -> tuple[list, int]:
    answer = client.get(route, params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json(), int(answer.headers[TOTAL_HEADER])


def test_an_analyst_owning_25_of_36_runs_gets_full_pages_and_the_total_25(
    client: TestClient, data_dir: Path
) -> None:
    path = _sales(data_dir)
    ana = sign_in(client, "ana", ["analyst"])
    bob = sign_in(client, "bob", ["analyst"])
    admin = sign_in(client, "root", ["admin"])
    # Interleaved, so a page of everyone's newest runs holds both people's runs.
    mine, theirs = [], []
    for number in range(36):
        if number % 3 == 2 and len(theirs) < 11:
            theirs.append(_start(client, path, bob))
        else:
            mine.append(_start(client, path, ana))
    assert (len(mine), len(theirs)) == (25, 11)

    for limit in (1, 5, 10):
        rows, total = _page(client, "/runs", ana, limit=limit)
        assert (len(rows), total) == (limit, 25)
        assert {r["requested_by"] for r in rows} == {"ana"}
    pages = [_page(client, "/runs", ana, limit=10, offset=offset)[0] for offset in (0, 10, 20)]
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [r["id"] for p in pages for r in p] == list(reversed(mine))  # newest first, none twice
    assert _page(client, "/runs", ana, limit=10, offset=25) == ([], 25)

    share_run(client, bob, theirs[0], "ana")
    rows, total = _page(client, "/runs", ana, limit=100)
    assert total == 26 and theirs[0] in {r["id"] for r in rows}
    assert _page(client, "/runs", admin, limit=5)[1] == 36
    assert _page(client, "/runs", sign_in(client, "zed", ["viewer"])) == ([], 0)


def test_lists_of_sources_and_users_page_after_filtering_with_totals(
    client: TestClient, data_dir: Path
) -> None:
    path = _sales(data_dir)
    ana = sign_in(client, "ana", ["analyst"])
    bob = sign_in(client, "bob", ["analyst"])
    admin = sign_in(client, "root", ["admin"])
    for owner, names in ((bob, ["a1", "a2"]), (ana, ["b1", "b2", "b3"]), (bob, ["c1"])):
        for name in names:
            body = {"name": name, "type": "file", "config": {"path": str(path)}}
            assert client.post("/sources", json=body, headers=owner).status_code == 201

    rows, total = _page(client, "/sources", ana, limit=2)
    assert ([r["name"] for r in rows], total) == (["b1", "b2"], 3)
    assert _page(client, "/sources", ana, limit=2, offset=2)[0][0]["name"] == "b3"
    assert _page(client, "/sources", admin, limit=1)[1] == 6

    users, total = _page(client, "/auth/users", admin, limit=2, offset=1)
    assert [u["username"] for u in users] == ["ana", "bob"] and total == 4  # admin, ana, bob, root

    every = client.get("/audit", params={"limit": 1000}, headers=admin).json()
    assert len(every) >= 6  # the source changes at least
    first, total = _page(client, "/audit", admin, limit=1)
    assert len(first) == 1 and total == len(every)
    assert _page(client, "/audit", admin, after=first[0]["id"], limit=2)[1] == len(every) - 1


def test_decision_requests_page_after_the_callers_runs_are_picked(tmp_path: Path, data_dir: Path) -> None:
    path = _sales(data_dir)
    with TestClient(create_app(embedded_settings(tmp_path))) as client:
        ana = sign_in(client, "ana", ["analyst"])
        bob = sign_in(client, "bob", ["analyst"])
        admin = sign_in(client, "root", ["admin"])
        mine = [_start(client, path, who) for who in (bob, ana, bob, ana, bob, ana)][1::2]
        deadline = time.monotonic() + 90
        while _page(client, "/decisions", admin)[1] < 6:
            assert time.monotonic() < deadline, "gate 1 did not open on every run"
            time.sleep(0.1)

        for limit in (1, 2):
            rows, total = _page(client, "/decisions", ana, limit=limit)
            assert (len(rows), total) == (limit, 3)
        every = [_page(client, "/decisions", ana, limit=1, offset=n)[0][0]["run_id"] for n in range(3)]
        assert sorted(every) == sorted(mine)
        rows, total = _page(client, "/decisions", ana, run_id=mine[0])
        assert total == 1 and rows[0]["run_id"] == mine[0]
        theirs = next(r["run_id"] for r in _page(client, "/decisions", bob)[0])
        assert _page(client, "/decisions", ana, run_id=theirs) == ([], 0)
        assert _page(client, "/decisions", bob, limit=1, offset=3) == ([], 3)


def _upload(client: TestClient, headers: dict[str, str], content: bytes, name: str = "sales.csv") -> str:
    answer = client.post(
        "/runs/upload",
        files={"file": (name, content, "text/csv")},
        data={"target": "revenue"},
        headers=headers,
    )
    assert answer.status_code == 201, answer.text
    run_id: str = answer.json()["id"]
    return run_id


def test_an_upload_belongs_to_its_uploader_and_no_answer_shows_a_server_path(
    client: TestClient, tmp_path: Path, data_dir: Path
) -> None:
    ana = sign_in(client, "ana", ["analyst"])
    bob = sign_in(client, "bob", ["analyst"])
    admin = sign_in(client, "root", ["admin", "analyst"])  # an admin who may also start runs
    content = SALES.to_csv(index=False).encode()
    run_id = _upload(client, ana, content)
    uploads = tmp_path / "home" / "uploads"
    # The bytes are an artifact (content-addressed) in the store, not a file in an upload folder;
    # the upload's server name, as a path under the upload folder, is how users refer to it.
    (row,) = _upload_rows(client)
    stored = uploads / row.name
    assert not uploads.exists()
    assert row.uri is not None and hashlib.sha256(content).hexdigest() in row.uri
    assert client.app.state.system.artifacts.read_bytes(row.uri) == content  # type: ignore[attr-defined]

    # The run shows the stored file's name, never where the server keeps it.
    run = client.get(f"/runs/{run_id}", headers=ana)
    assert run.json()["results"]["source"]["path"] == stored.name
    assert str(tmp_path) not in run.text

    # Another analyst may not read it by path: the same 404 as for an upload that does not exist.
    theirs = client.post("/runs", json={"path": str(stored), "goal": {"target": "revenue"}}, headers=bob)
    missing = client.post(
        "/runs", json={"path": str(uploads / "upload-nothere.csv"), "goal": {}}, headers=bob
    )
    assert (theirs.status_code, missing.status_code) == (404, 404)
    assert theirs.json()["detail"] == f"no upload {stored.name}"
    assert missing.json()["detail"] == "no upload upload-nothere.csv"
    source = {"name": "stolen", "type": "file", "config": {"path": str(stored)}}
    assert client.post("/sources", json=source, headers=bob).status_code == 404
    as_sqlite = {"name": "stolen", "type": "database", "config": {"url": f"sqlite:///{stored}", "table": "t"}}
    assert client.post("/sources", json=as_sqlite, headers=bob).status_code == 404
    assert _page(client, "/runs", bob) == ([], 0)

    # Its uploader and admins may.
    assert (
        client.post(
            "/runs", json={"path": str(stored), "goal": {"target": "revenue"}}, headers=ana
        ).status_code
        == 201
    )
    assert (
        client.post(
            "/runs", json={"path": str(stored), "goal": {"target": "revenue"}}, headers=admin
        ).status_code
        == 201
    )

    # Errors name the file, not the folder: an empty upload, a missing file under the allowed folder.
    empty = client.post("/runs/upload", files={"file": ("empty.csv", b"", "text/csv")}, headers=ana)
    assert empty.status_code == 422 and "is empty" in empty.json()["detail"]
    kept = [r.name for r in _upload_rows(client)]
    assert kept == [stored.name] and not uploads.exists()
    nope = client.post("/runs", json={"path": str(data_dir / "sub" / "nope.csv"), "goal": {}}, headers=ana)
    assert nope.status_code == 422 and nope.json()["detail"] == "no such file: sub/nope.csv"
    for answer in (empty, nope):
        assert str(tmp_path) not in answer.text


def test_a_source_upload_is_owned_too(client: TestClient, tmp_path: Path) -> None:
    ana = sign_in(client, "ana", ["analyst"])
    bob = sign_in(client, "bob", ["analyst"])
    files = {"file": ("shop.csv", SALES.to_csv(index=False).encode(), "text/csv")}
    created = client.post("/sources/upload", files=files, headers=ana)
    assert created.status_code == 201 and str(tmp_path) not in created.text
    (row,) = _upload_rows(client)
    stored = tmp_path / "home" / "uploads" / row.name
    # The config names the upload; the artifact's uri is the server's and is not shown.
    assert created.json()["config"]["path"] == stored.name and "uri" not in created.json()["config"]
    refused = client.post("/runs", json={"path": str(stored), "goal": {"target": "revenue"}}, headers=bob)
    assert refused.status_code == 404


def _upload_rows(client: TestClient) -> list[UploadRow]:
    with client.app.state.system.db.transaction() as session:  # type: ignore[attr-defined]
        rows = list(session.scalars(select(UploadRow).order_by(UploadRow.created_at)).all())
        session.expunge_all()
    return rows


def _wait_open(client: TestClient, run_id: str, gate: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        for request in _page(client, "/decisions", headers, run_id=run_id)[0]:
            if request["gate"] == gate:
                found: dict[str, Any] = request
                return found
        run = client.get(f"/runs/{run_id}", headers=headers).json()
        assert run["status"] not in ("failed", "aborted"), run
        time.sleep(0.05)
    raise AssertionError(f"no {gate} request")


def test_the_html_report_is_served_under_a_csp_that_admits_only_its_own_style(
    tmp_path: Path, data_dir: Path
) -> None:
    path = _sales(data_dir)
    with TestClient(create_app(embedded_settings(tmp_path))) as client:
        ana = sign_in(client, "ana", ["analyst"])
        lee = sign_in(client, "lee", ["approver"])
        run_id = _start(client, path, ana)
        for gate, option in [
            ("source_review", "approve"),
            ("quality_review", "accept_as_is"),
            ("analytics_review", "accept"),
            ("insight_review", "accept"),
        ]:
            request = _wait_open(client, run_id, gate, ana)
            assert (
                client.post(f"/decisions/{request['id']}", json={"option": option}, headers=ana).status_code
                == 200
            )
        share_run(client, ana, run_id, "lee")
        request = _wait_open(client, run_id, "action_selection", lee)
        first = request["context"]["items"][0]["id"]
        choice = {"option": "choose", "params": {"selected": [first]}}
        assert client.post(f"/decisions/{request['id']}", json=choice, headers=lee).status_code == 200
        deadline = time.monotonic() + 60
        while client.get(f"/runs/{run_id}", headers=ana).json()["status"] != "completed":
            assert time.monotonic() < deadline
            time.sleep(0.05)

        page = client.get(f"/runs/{run_id}/report", params={"format": "html"}, headers=ana)
        policy = page.headers["content-security-policy"]
        (style,) = re.findall(r"<style>(.*?)</style>", page.text, re.DOTALL)
        digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
        assert f"style-src 'sha256-{digest}'" in policy
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy and "script-src" not in policy
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["x-frame-options"] == "DENY"
        for fmt in ("html", "json", "markdown"):
            report = client.get(f"/runs/{run_id}/report", params={"format": fmt}, headers=ana)
            assert report.status_code == 200 and str(tmp_path) not in report.text
        assert str(tmp_path) not in client.get(f"/runs/{run_id}", headers=ana).text


def test_an_upload_uri_comes_only_from_the_server_and_shared_bytes_outlive_a_refused_upload(
    client: TestClient, data_dir: Path
) -> None:
    ana = sign_in(client, "ana", ["analyst"])
    bob = sign_in(client, "bob", ["analyst"])
    content = SALES.to_csv(index=False).encode()
    files = {"file": ("shop.csv", content, "text/csv")}
    assert client.post("/sources/upload", files=files, headers=ana).status_code == 201
    (anas,) = _upload_rows(client)
    assert anas.uri is not None

    # A uri sent by a user is dropped: bob's source reads his own file, not ana's artifact.
    mine = {"path": str(_sales(data_dir, "bob.csv")), "uri": anas.uri}
    created = client.post("/sources", json={"name": "bobs", "type": "file", "config": mine}, headers=bob)
    assert created.status_code == 201, created.text
    assert "uri" not in created.json()["config"]
    with client.app.state.system.db.transaction() as session:  # type: ignore[attr-defined]
        stored = session.scalars(select(SourceRow.config).where(SourceRow.name == "bobs")).one()
    assert stored.get("uri") is None

    # The same bytes uploaded again are the same artifact; a refused upload of them (no such target)
    # forgets its own row but leaves the artifact ana's upload still names.
    refused = client.post("/runs/upload", files=files, data={"target": "no_such_column"}, headers=bob)
    assert refused.status_code == 422 and "no_such_column" in refused.json()["detail"]
    assert [(r.name, r.uri) for r in _upload_rows(client)] == [(anas.name, anas.uri)]
    assert client.app.state.system.artifacts.read_bytes(anas.uri) == content  # type: ignore[attr-defined]


def test_runs_filter_by_state_and_search_in_the_query_after_the_callers_runs_are_picked(
    client: TestClient, data_dir: Path
) -> None:
    path = _sales(data_dir)
    ana = sign_in(client, "ana", ["analyst"])
    bob = sign_in(client, "bob", ["analyst"])

    def start(headers: dict[str, str], name: str) -> str:
        body = {"path": str(path), "goal": {"target": "revenue"}, "name": name}
        answer = client.post("/runs", json=body, headers=headers)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    # (name, status, open findings): as the orchestrator leaves them; bob's runs share every state.
    planted = [
        ("weekly 100% sales", "completed", 3),
        ("weekly sales", "completed", 0),
        ("march import", "completed", None),
        ("returns", "failed", 2),
        ("Weekly churn", "waiting", 1),
        ("daily", "running", None),
    ]
    ids = {name: start(ana, name) for name, _, _ in planted}
    for name, _, _ in planted:
        start(bob, name)
    with client.app.state.system.db.transaction() as session:  # type: ignore[attr-defined]
        for row in session.scalars(select(RunRow)):
            name, status, open_findings = next(p for p in planted if p[0] == row.name)
            row.status, row.open_findings = status, open_findings

    def names(**params: object) -> tuple[set[str], int]:
        rows, total = _page(client, "/runs", ana, **params)
        assert {r["requested_by"] for r in rows} <= {"ana"}
        return {r["name"] for r in rows}, total

    assert names(status="completed_with_findings") == ({"weekly 100% sales"}, 1)
    assert names(status="completed") == ({"weekly sales", "march import"}, 2)
    assert names(status="failed") == ({"returns"}, 1)
    assert names(status="waiting") == ({"Weekly churn"}, 1)
    assert names(status="running") == ({"daily"}, 1)
    assert names(q="WEEKLY") == ({"weekly 100% sales", "weekly sales", "Weekly churn"}, 3)
    assert names(q="100%") == ({"weekly 100% sales"}, 1)  # % is a character here, not a wildcard
    assert names(q="weekly", status="completed", limit=1)[1] == 1
    assert names(q=ids["returns"]) == ({"returns"}, 1)  # ids are time-ordered: a short prefix is shared
    assert names(q="ana") == (set(ids), 6)  # who started it
    refused = client.get("/runs", params={"status": "done"}, headers=ana)
    assert refused.status_code == 422 and "status" in refused.json()["detail"]
    assert client.get("/runs", params={"q": "x" * 201}, headers=ana).status_code == 422
