"""The gateway on its own, as `lockflow serve` builds it: no auth routes, tokens verified with the
auth service's JWKS fetched over HTTP from the auth service's own app (`lockflow serve-auth`).

Both apps are real and served on loopback; they share one SQLite database (runs, users, sessions),
as the processes of a deployment share PostgreSQL.
"""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from lockflow.auth.app import create_auth_app
from lockflow.auth.keys import generate_private_pem
from lockflow.auth.settings import AuthSettings
from lockflow.auth.testing import admin_headers, create_users
from lockflow.gateway.app import create_app
from lockflow.gateway.testing import embedded_settings, served


@pytest.fixture
def apps(tmp_path: Path) -> Iterator[tuple[httpx.Client, TestClient]]:
    """(a client of the served auth service, a client of the gateway that verifies with its JWKS)."""
    gateway_settings = embedded_settings(tmp_path, start_workers=False)
    auth_settings = AuthSettings(
        environment="test",
        mode="embedded",
        home=gateway_settings.home,
        database_url=gateway_settings.database_url,
        redis_url=None,
        signing_key=SecretStr(generate_private_pem().decode()),
    )
    with served(create_auth_app(auth_settings)) as (auth_url, _port):
        settings = gateway_settings.model_copy(update={"jwks_url": f"{auth_url}/.well-known/jwks.json"})
        with (
            httpx.Client(base_url=auth_url, timeout=30) as auth,
            TestClient(create_app(settings)) as gateway,
        ):
            yield auth, gateway


def test_a_token_from_the_auth_service_opens_the_gateway_and_a_logout_closes_it_at_once(
    apps: tuple[httpx.Client, TestClient], tmp_path: Path
) -> None:
    auth, gateway = apps
    people = create_users(auth, admin_headers(auth, tmp_path / "home"), {"ana": ["analyst"]})
    ana = people["ana"]
    assert gateway.get("/runs", headers=ana).status_code == 200
    assert gateway.get("/runs").status_code == 401
    forged = {"Authorization": ana["Authorization"][:-4] + "AAAA"}
    assert gateway.get("/runs", headers=forged).status_code == 401

    assert auth.post("/auth/logout", headers=ana).status_code == 204
    refused = gateway.get("/runs", headers=ana)
    assert refused.status_code == 401 and "session has ended" in refused.json()["detail"]


def test_the_gateway_alone_serves_no_auth_route(apps: tuple[httpx.Client, TestClient]) -> None:
    _auth, gateway = apps
    paths = gateway.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith(("/auth", "/shares", "/audit", "/.well-known"))]
    assert gateway.post("/auth/login", json={"username": "admin", "password": "x"}).status_code == 404
    assert gateway.get("/healthz").status_code == 200
