"""Every cell of the role x endpoint and role x gate matrices through real tokens and the dependencies.

A small app mounts `authorize_route` on a stub of every route in the matrix (the gateway's own
wiring comes later); a stub decision route applies `gate_verdict` with the run's owner and shares.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from pydantic import SecretStr

from lockflow.access.deps import Authorized, install_access
from lockflow.access.policy import ENDPOINTS, Role, Verdict, gate_verdict, is_public
from lockflow.auth.keys import generate_private_pem
from lockflow.auth.router import access_for, build_auth_service
from lockflow.auth.settings import AuthSettings
from lockflow.common.db import Database
from lockflow.common.pipeline import Gate

PASSWORD = "correct horse battery staple"
USERS = {Role.VIEWER: "vic", Role.ANALYST: "ana", Role.APPROVER: "apo", Role.ADMIN: "adm"}
PUBLIC = {"/healthz", "/readyz", "/metrics", "/auth/login", "/auth/refresh", "/.well-known/jwks.json"}


def _stub(app: FastAPI, method: str, route: str) -> None:
    if route == "/decisions/{request_id}" and method == "POST":
        return

    if is_public(method, route):

        async def public() -> dict[str, str]:
            return {"ok": "public"}

        app.add_api_route(route, public, methods=[method])
        return

    async def protected(principal: Authorized) -> dict[str, str]:
        return {"ok": principal.username}

    app.add_api_route(route, protected, methods=[method])


def _decision_route(app: FastAPI) -> None:
    async def decide(request_id: str, principal: Authorized) -> dict[str, Any]:
        gate, relation = request_id.split("~")
        owner = principal.username if relation == "owner" else "zed"
        shared = frozenset({principal.username}) if relation == "shared" else frozenset()
        verdict, reason = gate_verdict(
            roles=principal.roles,
            gate=Gate(gate),
            user=principal.username,
            run_owner=owner,
            shared_with=shared,
            separation_of_duties=True,
        )
        if verdict is Verdict.NOT_FOUND:
            raise HTTPException(404, reason)
        if verdict is Verdict.FORBIDDEN:
            raise HTTPException(403, reason)
        return {"decided": gate}

    app.add_api_route("/decisions/{request_id}", decide, methods=["POST"])


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[Role, str]]]:
    home: Path = tmp_path_factory.mktemp("matrix")
    settings = AuthSettings(home=home, redis_url=None, signing_key=SecretStr(generate_private_pem().decode()))
    db = Database(f"sqlite:///{home / 'auth.db'}")
    app = FastAPI()
    app.state.auth = service = build_auth_service(settings, db=db)
    install_access(app, access_for(service))  # what `authorize_route` verifies tokens with
    for method, route in ENDPOINTS:
        _stub(app, method, route)
    _decision_route(app)
    tokens = {}
    for role, username in USERS.items():
        service.create_user(username=username, password=PASSWORD, roles=[role.value], actor="test")
        tokens[role] = service.login(username=username, password=PASSWORD, client="test").access_token
    with TestClient(app) as client:
        yield client, tokens
    db.dispose()


def _intended(method: str, route: str, role: Role) -> bool:
    """The issue's intent, written apart from the policy module."""
    if route in PUBLIC or route in ("/auth/me", "/auth/logout", "/auth/password"):
        return True
    if route.startswith(("/auth/users", "/audit")):
        return role is Role.ADMIN
    return method == "GET" or role in (Role.ANALYST, Role.APPROVER)


def _path(route: str) -> str:
    return (
        route.replace("{run_id}", "r1")
        .replace("{ref}", "s1")
        .replace("{username}", "ana")
        .replace("{request_id}", "x")
    )


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize(
    ("method", "route"), [k for k in ENDPOINTS if k != ("POST", "/decisions/{request_id}")]
)
def test_endpoint_cell(
    matrix: tuple[TestClient, dict[Role, str]], method: str, route: str, role: Role
) -> None:
    client, tokens = matrix
    response = client.request(method, _path(route), headers={"Authorization": f"Bearer {tokens[role]}"})
    assert response.status_code == (200 if _intended(method, route, role) else 403), response.text


@pytest.mark.parametrize(("method", "route"), list(ENDPOINTS))
def test_no_token_cell(matrix: tuple[TestClient, dict[Role, str]], method: str, route: str) -> None:
    client, _ = matrix
    path = _path(route).replace("/decisions/x", "/decisions/source_review~owner")
    response = client.request(method, path)
    if route in PUBLIC:
        assert response.status_code == 200
    else:
        assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("relation", ["owner", "shared", "stranger"])
@pytest.mark.parametrize("gate", list(Gate))
@pytest.mark.parametrize("role", list(Role))
def test_gate_cell(matrix: tuple[TestClient, dict[Role, str]], role: Role, gate: Gate, relation: str) -> None:
    client, tokens = matrix
    response = client.post(
        f"/decisions/{gate.value}~{relation}", headers={"Authorization": f"Bearer {tokens[role]}"}
    )
    if role in (Role.VIEWER, Role.ADMIN):
        expected = 403  # refused by the endpoint matrix before any object is looked at
    elif relation == "stranger":
        expected = 404  # someone else's run is not revealed
    elif gate is Gate.ACTION_SELECTION and (role is Role.ANALYST or relation == "owner"):
        expected = 403  # gate 5 is for approvers, and never the run's own starter
    else:
        expected = 200
    assert response.status_code == expected, response.text
