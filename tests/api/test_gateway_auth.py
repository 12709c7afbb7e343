"""The gateway enforces authentication, the role x endpoint x gate matrix and object access (embedded).

Every cell of `lockflow.access.policy.ENDPOINTS` is called on the REAL gateway app with a real token.
The request bodies are deliberately minimal: the role check runs before the body is read, so an
allowed role gets past it (any status but 401/403) and a refused one gets 403.
"""

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from lockflow.access.policy import ENDPOINTS, Role, is_public
from lockflow.auth.testing import login, share_run, sign_in
from lockflow.embedded import create_app
from lockflow.gateway.testing import embedded_settings

USERS = {Role.VIEWER: "vic", Role.ANALYST: "ana", Role.APPROVER: "apo", Role.ADMIN: "adm"}


def _sales(folder: Path) -> Path:
    rng = np.random.default_rng(3)
    spend = rng.uniform(0, 100, 300)
    frame = pd.DataFrame(
        {
            "region": rng.choice(["a", "b"], 300),
            "spend": spend,
            "revenue": 10 + 3 * spend + rng.normal(0, 5, 300),
        }
    )
    path = folder / "data" / "sales.csv"
    frame.to_csv(path, index=False)
    return path


def wait_open(client: TestClient, run_id: str, gate: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for request in client.get("/decisions", params={"run_id": run_id}, headers=headers).json():
            if request["gate"] == gate:
                return request
        run = client.get(f"/runs/{run_id}", headers=headers).json()
        assert run["status"] not in ("failed", "aborted"), run
        time.sleep(0.05)
    raise AssertionError(f"no {gate} request")


class World:
    """A gateway with one user per role, a run waiting at gate 1, an aborted run and a source."""

    def __init__(self, client: TestClient, data: Path) -> None:
        self.client = client
        self.headers = {role: sign_in(client, name, [role.value]) for role, name in USERS.items()}
        ana = self.headers[Role.ANALYST]
        source = _sales(data)
        self.waiting = client.post("/runs", json={"path": str(source), "goal": {}}, headers=ana).json()["id"]
        self.request = wait_open(client, self.waiting, "source_review", ana)
        self.ended = client.post("/runs", json={"path": str(source), "goal": {}}, headers=ana).json()["id"]
        first = wait_open(client, self.ended, "source_review", ana)
        assert (
            client.post(f"/decisions/{first['id']}", json={"option": "abort"}, headers=ana).status_code == 200
        )
        self.source = client.post(
            "/sources", json={"name": "sales", "type": "file", "config": {"path": str(source)}}, headers=ana
        ).json()["id"]
        # Shared with everyone, so the object check lets the role check decide the cell.
        for name in ("vic", "apo"):
            share_run(client, ana, self.waiting, name)
            share_run(client, ana, self.ended, name)
            shared = client.post(
                "/shares",
                json={"object_type": "source", "object_id": self.source, "username": name},
                headers=ana,
            )
            assert shared.status_code == 204, shared.text
        self.path = source


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("gateway-auth")
    # Live streams (run events, alerts) end after 1 s here, so every cell's answer can be read whole.
    with TestClient(create_app(embedded_settings(tmp, stream_max_seconds=1.0))) as client:
        yield World(client, tmp)


def _url(world: World, route: str) -> str:
    return (
        route.replace("{run_id}", world.ended)
        .replace("{request_id}", world.request["id"])
        .replace("{ref}", world.source)
        .replace("{username}", "nobody")
    )


def _call(world: World, method: str, route: str, headers: dict[str, str]) -> Any:
    client = world.client
    url = _url(world, route)
    if route == "/runs/{run_id}/events":
        with client.stream("GET", url, headers=headers) as stream:
            stream.read()
            return stream
    if (method, route) in (("DELETE", "/sources/{ref}"), ("PATCH", "/sources/{ref}"), ("POST", "/shares")):
        # Owner-only routes act on a throwaway source of the caller's own (when they may create one).
        made = client.post(
            "/sources",
            json={"name": f"tmp-{time.monotonic_ns()}", "type": "file", "config": {"path": str(world.path)}},
            headers=headers,
        )
        ref = made.json()["id"] if made.status_code == 201 else world.source
        if route == "/shares":
            body = {"object_type": "source", "object_id": ref, "username": "vic"}
            return client.post(url, json=body, headers=headers)
        return client.request(
            method, f"/sources/{ref}", headers=headers, json={} if method == "PATCH" else None
        )
    if route == "/sources/{ref}/runs":
        return client.post(url, json={"goal": "not a goal"}, headers=headers)  # 422 after the checks
    return client.request(method, url, headers=headers, json={} if method in ("POST", "PUT") else None)


CELLS = [(method, route, role) for (method, route) in ENDPOINTS for role in Role]


@pytest.mark.parametrize(("method", "route", "role"), CELLS, ids=[f"{m} {r} {o.value}" for m, r, o in CELLS])
def test_every_cell_of_the_role_endpoint_matrix(world: World, method: str, route: str, role: Role) -> None:
    headers = world.headers[role]
    if route == "/auth/logout":
        headers = login(world.client, USERS[role])  # logging out ends only this fresh session
    answer = _call(world, method, route, headers)
    allowed = is_public(method, route) or role in (ENDPOINTS[(method, route)].roles or frozenset())
    if allowed:
        assert answer.status_code not in (401, 403), (answer.status_code, getattr(answer, "text", ""))
    else:
        assert answer.status_code == 403, answer.status_code


def test_the_matrix_covers_exactly_the_gateways_routes(world: World) -> None:
    paths = world.client.get("/openapi.json").json()["paths"]
    routes = {(method.upper(), path) for path, operations in paths.items() for method in operations}
    assert routes == set(ENDPOINTS)


@pytest.mark.parametrize(("method", "route"), [k for k in ENDPOINTS if not is_public(*k)])
def test_no_or_a_bad_token_is_401_with_a_challenge(world: World, method: str, route: str) -> None:
    url = _url(world, route)
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic YTpi"}):
        answer = world.client.request(method, url, headers=headers)
        assert answer.status_code == 401, (headers, answer.text)
        assert answer.headers["WWW-Authenticate"].startswith('Bearer realm="lockflow"')


def test_public_routes_and_docs_need_no_token(world: World) -> None:
    client = world.client
    for path in ("/healthz", "/.well-known/jwks.json", "/openapi.json", "/docs"):
        assert client.get(path).status_code == 200, path


def test_the_event_stream_takes_a_header_or_the_query_token_only(world: World) -> None:
    client, url = world.client, f"/runs/{world.ended}/events"
    assert client.get(url).status_code == 401
    assert client.get(url, params={"access_token": "forged"}).status_code == 401
    token = world.headers[Role.VIEWER]["Authorization"].removeprefix("Bearer ")
    with client.stream("GET", url, params={"access_token": token}) as stream:
        kinds = [json.loads(line[5:])["type"] for line in stream.iter_lines() if line.startswith("data:")]
    assert kinds[0] == "RunRequested" and kinds[-1] == "RunAborted"
    # Only the stream accepts a token in the URL.
    assert client.get(f"/runs/{world.ended}", params={"access_token": token}).status_code == 401


def test_another_users_objects_are_404_and_lists_hide_them(world: World) -> None:
    client = world.client
    zed = sign_in(client, "zed", ["analyst", "approver"])
    for path in (
        f"/runs/{world.ended}",
        f"/runs/{world.ended}/timeline",
        f"/runs/{world.ended}/events",
        f"/runs/{world.ended}/report",
        f"/runs/{world.ended}/plan",
        f"/decisions/{world.request['id']}",
        f"/sources/{world.source}",
        "/sources/sales",
    ):
        assert client.get(path, headers=zed).status_code == 404, path
    assert (
        client.post(f"/decisions/{world.request['id']}", json={"option": "approve"}, headers=zed).status_code
        == 404
    )
    assert client.post(f"/sources/{world.source}/runs", json={}, headers=zed).status_code == 404
    assert client.patch(f"/sources/{world.source}", json={}, headers=zed).status_code == 404
    assert client.delete(f"/sources/{world.source}", headers=zed).status_code == 404
    assert client.get("/runs", headers=zed).json() == []
    assert client.get("/decisions", params={"status": "all"}, headers=zed).json() == []
    assert client.get("/sources", headers=zed).json() == []
    # The owner and those it is shared with see them; an admin sees everything.
    mine = {r["id"] for r in client.get("/runs", headers=world.headers[Role.ANALYST]).json()}
    assert {world.waiting, world.ended} <= mine
    assert {r["id"] for r in client.get("/runs", headers=world.headers[Role.VIEWER]).json()} == mine
    assert {r["id"] for r in client.get("/runs", headers=world.headers[Role.ADMIN]).json()} >= mine
    assert client.get(f"/runs/{world.ended}", headers=world.headers[Role.ADMIN]).status_code == 200
    assert world.source in [
        s["id"] for s in client.get("/sources", headers=world.headers[Role.VIEWER]).json()
    ]
    # Shared-with may read a source but not change it.
    assert (
        client.patch(f"/sources/{world.source}", json={}, headers=world.headers[Role.APPROVER]).status_code
        == 403
    )


def test_a_role_downgrade_is_refused_at_once(world: World) -> None:
    client = world.client
    headers = sign_in(client, "dora", ["analyst"])
    assert client.get("/runs", headers=headers).status_code == 200
    changed = client.put(
        "/auth/users/dora/roles", json={"roles": ["viewer"]}, headers=world.headers[Role.ADMIN]
    )
    assert changed.status_code == 200
    assert client.get("/runs", headers=headers).status_code == 401
    assert client.post("/runs", json={}, headers=login(client, "dora")).status_code == 403


def _drive_to_gate_5(client: TestClient, run_id: str, headers: dict[str, str]) -> dict[str, Any]:
    for gate, option in [
        ("source_review", "approve"),
        ("quality_review", "accept_as_is"),
        ("analytics_review", "accept"),
        ("insight_review", "accept"),
    ]:
        request = wait_open(client, run_id, gate, headers)
        body = {"option": option, "rationale": f"ok at {gate}\r\nFAKE line"}
        assert client.post(f"/decisions/{request['id']}", json=body, headers=headers).status_code == 200
    return wait_open(client, run_id, "action_selection", headers)


def test_gates_follow_the_role_gate_matrix_separation_of_duties_and_are_audited(world: World) -> None:
    client = world.client
    both = sign_in(client, "bea", ["analyst", "approver"])
    ana, apo, vic = world.headers[Role.ANALYST], world.headers[Role.APPROVER], world.headers[Role.VIEWER]
    goal = {"target": "revenue"}
    run_id = client.post("/runs", json={"path": str(world.path), "goal": goal}, headers=both).json()["id"]
    for name in ("ana", "apo", "vic"):
        share_run(client, both, run_id, name)
    first = wait_open(client, run_id, "source_review", both)
    assert (
        client.post(f"/decisions/{first['id']}", json={"option": "approve"}, headers=vic).status_code == 403
    )
    gate5 = _drive_to_gate_5(client, run_id, both)
    selected = {"selected": [gate5["context"]["items"][0]["id"]]}
    starter = client.post(
        f"/decisions/{gate5['id']}", json={"option": "choose", "params": selected}, headers=both
    )
    assert starter.status_code == 403 and "started a run" in starter.json()["detail"]
    analyst = client.post(
        f"/decisions/{gate5['id']}", json={"option": "choose", "params": selected}, headers=ana
    )
    assert analyst.status_code == 403 and "approver" in analyst.json()["detail"]
    body = {"option": "choose", "params": selected, "rationale": "best value"}
    decided = client.post(f"/decisions/{gate5['id']}", json=body, headers=apo)
    assert decided.status_code == 200 and decided.json()["decided_by"] == "apo"

    admin = world.headers[Role.ADMIN]
    rows = client.get("/audit", params={"limit": 1000}, headers=admin).json()
    decisions = [r for r in rows if r["action"] == "decision" and r["run_id"] == run_id]
    assert [(r["actor"], r["gate"], r["choice"]) for r in decisions] == [
        ("bea", "source_review", "approve"),
        ("bea", "quality_review", "accept_as_is"),
        ("bea", "analytics_review", "accept"),
        ("bea", "insight_review", "accept"),
        ("apo", "action_selection", "choose"),
    ]
    assert decisions[-1]["rationale"] == "best value" and decisions[-1]["at"].endswith("Z")
    # User text cannot forge a second line in the record.
    assert decisions[0]["rationale"] == "ok at source_review\\r\\nFAKE line"
    assert any(r["action"] == "source_created" and r["subject"] == "sales" for r in rows)
    verified = client.get("/audit/verify", headers=admin).json()
    assert verified["ok"] and verified["rows"] == len(
        client.get("/audit", params={"limit": 1000}, headers=admin).json()
    )


def test_source_changes_are_audited(world: World) -> None:
    client, ana = world.client, world.headers[Role.ANALYST]
    made = client.post(
        "/sources", json={"name": "audited", "type": "file", "config": {"path": str(world.path)}}, headers=ana
    ).json()
    assert client.patch(f"/sources/{made['id']}", json={"name": "audited2"}, headers=ana).status_code == 200
    assert client.delete(f"/sources/{made['id']}", headers=ana).status_code == 204
    rows = client.get("/audit", params={"limit": 1000}, headers=world.headers[Role.ADMIN]).json()
    changes = [(r["action"], r["actor"], r["subject"]) for r in rows if r["detail"].get("id") == made["id"]]
    assert changes == [
        ("source_created", "ana", "audited"),
        ("source_updated", "ana", "audited2"),
        ("source_deleted", "ana", "audited2"),
    ]


def test_the_upload_limit_is_shared_by_two_gateway_replicas(tmp_path: Path, redis_url: str) -> None:
    extra = {"redis_url": redis_url, "topic_prefix": f"t{time.monotonic_ns()}", "uploads_per_minute": 2}
    first = create_app(embedded_settings(tmp_path, start_workers=False, **extra))
    second = create_app(embedded_settings(tmp_path, start_workers=False, **extra))
    with TestClient(first) as a, TestClient(second) as b:
        headers = sign_in(a, "ana", ["analyst"])
        empty = {"file": ("e.csv", b"", "text/csv")}
        assert (
            a.post("/runs/upload", files=empty, headers=headers).status_code == 422
        )  # counted, then refused
        assert b.post("/sources/upload", files=empty, headers=headers).status_code == 422
        limited = b.post("/runs/upload", files=empty, headers=headers)
        assert limited.status_code == 429 and "limit 2" in limited.json()["detail"]
        assert int(limited.headers["Retry-After"]) in range(1, 61)
        assert a.post("/runs/upload", files=empty, headers=headers).status_code == 429
        other = sign_in(b, "bo", ["analyst"])
        assert a.post("/runs/upload", files=empty, headers=other).status_code == 422  # a separate count


def test_a_live_stream_ends_at_its_time_limit_with_a_reason(world: World) -> None:
    started = time.monotonic()
    answer = world.client.get("/alerts/stream", headers=world.headers[Role.ADMIN])
    assert answer.status_code == 200
    assert "event: error" in answer.text and "time limit" in answer.text
    assert time.monotonic() - started < 30
