"""GET /alerts and POST /alerts/{id}/ack: only alerts of runs the caller may see (own, shared; an admin
all), filtered in the query, then paged, with the total; acknowledged once, by whom it is recorded."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lockflow.auth.testing import share_run, sign_in
from lockflow.common.db import Database, RunRow
from lockflow.embedded import create_app
from lockflow.gateway.testing import embedded_settings
from lockflow.orchestrator.alerting import AlertRules, quality_alerts, stage_failed
from lockflow.orchestrator.alerts import store


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(embedded_settings(tmp_path))) as test_client:
        yield test_client


def _runs_and_alerts(db: Database) -> None:
    with db.transaction() as session:
        for run_id, owner in (("ra", "ana"), ("rb", "bob")):
            session.add(RunRow(id=run_id, name=run_id, status="failed", requested_by=owner, state={}))
    drafts = [
        stage_failed(r, stage="ingest", attempt_id=f"{r}-{i}", error="boom")
        for r in ("ra", "rb")
        for i in range(3)
    ]
    drafts += quality_alerts("ra", source="s.csv", score=10.0, previous=[], rules=AlertRules())
    assert store(db, drafts) == 7
    assert store(db, drafts) == 0  # a redelivered fact raises nothing new


def test_list_is_filtered_by_the_caller_then_paged_with_the_total(client: TestClient) -> None:
    ana = sign_in(client, "ana", ["analyst"])
    bob = sign_in(client, "bob", ["analyst"])
    admin = sign_in(client, "ada", ["admin"])
    _runs_and_alerts(client.app.state.system.db)  # type: ignore[attr-defined]

    page = client.get("/alerts", params={"limit": 2}, headers=ana)
    assert page.status_code == 200
    assert page.headers["X-Total-Count"] == "4" and len(page.json()) == 2
    assert {a["run_id"] for a in client.get("/alerts", headers=ana).json()} == {"ra"}
    second = client.get("/alerts", params={"limit": 2, "offset": 2}, headers=ana).json()
    assert not {a["id"] for a in second} & {a["id"] for a in page.json()}
    kinds = client.get("/alerts", params={"kind": "quality_low"}, headers=ana)
    assert kinds.headers["X-Total-Count"] == "1" and kinds.json()[0]["severity"] == "warning"
    assert client.get("/alerts", headers=bob).headers["X-Total-Count"] == "3"
    assert client.get("/alerts", headers=admin).headers["X-Total-Count"] == "7"
    assert client.get("/alerts", params={"kind": "no_such_kind"}, headers=ana).status_code == 422
    assert client.get("/alerts").status_code == 401

    share_run(client, ana, "ra", "bob")  # type: ignore[arg-type]
    assert client.get("/alerts", headers=bob).headers["X-Total-Count"] == "7"


def test_acknowledge_once_by_someone_who_may_see_it(client: TestClient) -> None:
    ana = sign_in(client, "ana", ["analyst"])
    bob = sign_in(client, "bob", ["analyst"])
    viewer = sign_in(client, "vic", ["viewer"])
    _runs_and_alerts(client.app.state.system.db)  # type: ignore[attr-defined]
    alert = client.get("/alerts", headers=ana).json()[0]

    assert client.post(f"/alerts/{alert['id']}/ack", headers=bob).status_code == 404
    assert client.post(f"/alerts/{alert['id']}/ack", headers=viewer).status_code == 403
    done = client.post(f"/alerts/{alert['id']}/ack", headers=ana)
    assert done.status_code == 200 and done.json()["acknowledged_by"] == "ana"
    again = client.post(f"/alerts/{alert['id']}/ack", headers=ana)
    assert again.status_code == 409 and "ana" in again.json()["detail"]
    assert client.post("/alerts/999999/ack", headers=ana).status_code == 404
    assert client.post("/alerts/not-a-number/ack", headers=ana).status_code == 422
    open_now = client.get("/alerts", params={"status": "open"}, headers=ana)
    assert open_now.headers["X-Total-Count"] == "3"
    assert (
        client.get("/alerts", params={"status": "acknowledged"}, headers=ana).json()[0]["id"] == alert["id"]
    )
