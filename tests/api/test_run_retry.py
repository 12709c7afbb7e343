"""POST /runs/{id}/retry: a run whose report step failed is retried and completes, its decisions kept.

The failure is real: the reporting stage's handler table is the real one except that its first call
raises, as a full disk or a lost artifact folder would.
"""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from lockflow.auth.testing import share_run, sign_in
from lockflow.bootstrap import build_system
from lockflow.common.errors import StageError
from lockflow.common.events import Command, Event
from lockflow.common.worker import StageDeps
from lockflow.embedded import create_app
from lockflow.gateway.testing import embedded_settings
from lockflow.reporting.handlers import compile_report


class FailsFirst:
    """The real report handler, except that its first call fails."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, command: Command, deps: StageDeps) -> Event:
        self.calls += 1
        if self.calls == 1:
            raise StageError("the report folder is not writable (no space left on device)")
        return compile_report(command, deps)


@pytest.fixture
def reporting() -> FailsFirst:
    return FailsFirst()


@pytest.fixture
def client(tmp_path: Path, data_dir: Path, reporting: FailsFirst) -> Iterator[TestClient]:
    settings = embedded_settings(tmp_path)
    system = build_system(settings, handlers={"reporting": {"CompileReport": reporting}})
    with TestClient(create_app(settings, system=system)) as test_client:
        test_client.headers.update(sign_in(test_client, "ana", ["analyst"]))
        yield test_client


def sales(rows: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    spend = rng.uniform(0, 100, rows)
    return pd.DataFrame(
        {
            "order_id": np.arange(rows),
            "region": rng.choice(["a", "b"], rows),
            "spend": spend,
            "revenue": 10 + 3 * spend + rng.normal(0, 5, rows),
        }
    )


def wait_open(client: TestClient, run_id: str, gate: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for request in client.get("/decisions", params={"run_id": run_id}).json():
            if request["gate"] == gate:
                return request
        time.sleep(0.05)
    raise AssertionError(f"no {gate} request")


def wait_status(client: TestClient, run_id: str, status: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (run := client.get(f"/runs/{run_id}").json())["status"] != status:
        assert time.monotonic() < deadline, run
        time.sleep(0.05)
    return run


def test_a_failed_report_step_is_retried_and_the_run_completes_with_its_decisions(
    client: TestClient, data_dir: Path, reporting: FailsFirst
) -> None:
    sales().to_csv(data_dir / "s.csv", index=False)
    created = client.post("/runs", json={"path": str(data_dir / "s.csv"), "goal": {"target": "revenue"}})
    run_id = created.json()["id"]
    request = wait_open(client, run_id, "source_review")
    running = client.post(f"/runs/{run_id}/retry")
    assert running.status_code == 409 and "waiting" in running.json()["detail"]

    for gate, option in [
        ("source_review", "approve"),
        ("quality_review", "accept_as_is"),
        ("analytics_review", "accept"),
        ("insight_review", "accept"),
    ]:
        request = wait_open(client, run_id, gate)
        assert client.post(f"/decisions/{request['id']}", json={"option": option}).status_code == 200
    request = wait_open(client, run_id, "action_selection")
    lee = sign_in(client, "lee", ["approver"])
    share_run(client, dict(client.headers), run_id, "lee")
    chosen = client.post(
        f"/decisions/{request['id']}",
        json={"option": "choose", "params": {"selected": [i["id"] for i in request["context"]["items"][:2]]}},
        headers=lee,
    )
    assert chosen.status_code == 200, chosen.text

    failed = wait_status(client, run_id, "failed")
    assert failed["current_step"] == "report" and "not writable" in failed["error"]
    assert client.get(f"/runs/{run_id}/report").status_code == 404

    # Who may retry: those who may decide on the run. A viewer it is shared with may not; an analyst
    # it is not shared with does not see it.
    viewer = sign_in(client, "vic", ["viewer"])
    share_run(client, dict(client.headers), run_id, "vic")
    assert client.post(f"/runs/{run_id}/retry", headers=viewer).status_code == 403
    stranger = sign_in(client, "sam", ["analyst"])
    assert client.post(f"/runs/{run_id}/retry", headers=stranger).status_code == 404

    retried = client.post(f"/runs/{run_id}/retry")
    assert retried.status_code == 202, retried.text
    assert retried.json() == {"id": run_id, "status": "running", "step": "report"}
    done = wait_status(client, run_id, "completed")
    assert reporting.calls == 2
    assert [d["gate"] for d in done["decisions"]] == [
        "source_review",
        "quality_review",
        "analytics_review",
        "insight_review",
        "action_selection",
    ]
    assert [(a["step"], a["status"]) for a in done["attempts"]][-2:] == [
        ("report", "failed"),
        ("report", "succeeded"),
    ]
    report = client.get(f"/runs/{run_id}/report").json()
    assert [d["option"] for d in report["decisions"]] == [
        "approve",
        "accept_as_is",
        "accept",
        "accept",
        "choose",
    ]
    assert len(report["plan"]) == 2
    kinds = [e["type"] for e in client.get(f"/runs/{run_id}/timeline").json()]
    assert kinds.index("RunFailed") < kinds.index("RetryRequested") < kinds.index("RunCompleted")

    again = client.post(f"/runs/{run_id}/retry")
    assert again.status_code == 409 and "completed" in again.json()["detail"]
    audit = client.get("/audit", headers=sign_in(client, "root", ["admin"])).json()
    assert any(row["action"] == "run_retried" and row["actor"] == "ana" for row in audit)


def test_an_unknown_run_is_404(client: TestClient) -> None:
    answer = client.post("/runs/no-such-run/retry")
    assert answer.status_code == 404 and "no run" in answer.json()["detail"]


def test_a_run_without_a_goal_gets_a_target_that_is_not_an_id(client: TestClient, data_dir: Path) -> None:
    sales().to_csv(data_dir / "s.csv", index=False)
    created = client.post("/runs", json={"path": str(data_dir / "s.csv")})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["goal"]["target"] == "revenue" and "outcome" in body["target_picked"]
    run = client.get(f"/runs/{body['id']}").json()
    assert run["results"]["goal"]["target"] == "revenue"
    assert "picked by lockflow" in run["results"]["goal"]["description"]


def test_a_run_without_a_goal_and_no_usable_target_goes_on_without_one_and_says_why(
    client: TestClient, data_dir: Path
) -> None:
    pd.DataFrame({"tuple_id": range(40), "name": ["x"] * 40}).to_csv(data_dir / "ids.csv", index=False)
    created = client.post("/runs", json={"path": str(data_dir / "ids.csv")})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["goal"]["target"] is None and body["target_picked"] is None
    assert "tuple_id (its name says it identifies rows)" in body["goal"]["description"]
    assert "insights toward a target are skipped" in body["goal"]["description"]
