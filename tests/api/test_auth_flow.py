"""The auth API in-process (embedded: SQLite, in-process throttle): login, refresh, logout, abuse cases."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from lockflow.auth.keys import generate_private_pem
from lockflow.auth.router import install_auth
from lockflow.auth.service import AuthService
from lockflow.auth.settings import AuthSettings
from lockflow.common.auth_tables import AuditRow
from lockflow.common.db import Database, RunRow

PASSWORD = "correct horse battery staple"


@pytest.fixture
def app_and_service(tmp_path: Path) -> Iterator[tuple[TestClient, AuthService]]:
    settings = AuthSettings(
        home=tmp_path, redis_url=None, signing_key=SecretStr(generate_private_pem().decode())
    )
    db = Database(f"sqlite:///{tmp_path / 'auth.db'}")
    app = FastAPI()
    service = install_auth(app, settings, db=db)
    service.create_user(username="root", password=PASSWORD, roles=["admin"], actor="test")
    service.create_user(username="ana", password=PASSWORD, roles=["analyst"], actor="test")
    with TestClient(app) as client:
        yield client, service
    db.dispose()


def _login(client: TestClient, username: str = "ana", password: str = PASSWORD) -> dict[str, str]:
    response = client.post("/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _actions(service: AuthService) -> list[str]:
    with service.db.transaction() as s:
        return list(s.scalars(select(AuditRow.action).order_by(AuditRow.id)))


def test_login_me_refresh_and_logout(app_and_service: tuple[TestClient, AuthService]) -> None:
    client, service = app_and_service
    tokens = _login(client)
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 300
    me = client.get("/auth/me", headers=_bearer(tokens["access_token"]))
    assert me.json()["username"] == "ana" and me.json()["roles"] == ["analyst"]
    rotated = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).json()
    assert rotated["refresh_token"] != tokens["refresh_token"]
    assert client.post("/auth/logout", headers=_bearer(rotated["access_token"])).status_code == 204
    after = client.get("/auth/me", headers=_bearer(rotated["access_token"]))
    assert after.status_code == 401 and 'error="invalid_token"' in after.headers["WWW-Authenticate"]
    assert client.post("/auth/refresh", json={"refresh_token": rotated["refresh_token"]}).status_code == 401
    assert _actions(service)[-2:] == ["login", "logout"]


def test_missing_token_is_401_with_a_challenge(app_and_service: tuple[TestClient, AuthService]) -> None:
    client, _ = app_and_service
    response = client.get("/auth/me")
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    response = client.get("/auth/me", headers={"Authorization": "Basic YW5hOnB3"})
    assert response.status_code == 401


def test_refresh_reuse_ends_the_whole_family(app_and_service: tuple[TestClient, AuthService]) -> None:
    client, service = app_and_service
    first = _login(client)
    second = client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
    reuse = client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401 and "reuse" in reuse.json()["detail"]
    # The thief's replay killed the legitimate newer tokens of the same family too.
    assert client.post("/auth/refresh", json={"refresh_token": second["refresh_token"]}).status_code == 401
    assert client.get("/auth/me", headers=_bearer(second["access_token"])).status_code == 401
    assert "token_reuse" in _actions(service)


def test_password_change_ends_other_sessions(app_and_service: tuple[TestClient, AuthService]) -> None:
    client, _ = app_and_service
    laptop, phone = _login(client), _login(client)
    new = "a much longer new passphrase"
    body = {"current_password": PASSWORD, "new_password": new}
    assert (
        client.post("/auth/password", json=body, headers=_bearer(laptop["access_token"])).status_code == 204
    )
    assert client.get("/auth/me", headers=_bearer(laptop["access_token"])).status_code == 200
    assert client.get("/auth/me", headers=_bearer(phone["access_token"])).status_code == 401
    assert client.post("/auth/refresh", json={"refresh_token": phone["refresh_token"]}).status_code == 401
    assert client.post("/auth/login", json={"username": "ana", "password": PASSWORD}).status_code == 401
    _login(client, password=new)
    wrong = {"current_password": "not it at all", "new_password": "another long passphrase"}
    assert (
        client.post("/auth/password", json=wrong, headers=_bearer(laptop["access_token"])).status_code == 401
    )
    short = {"current_password": new, "new_password": "short"}
    assert (
        client.post("/auth/password", json=short, headers=_bearer(laptop["access_token"])).status_code == 422
    )


def test_role_downgrade_is_refused_at_once(app_and_service: tuple[TestClient, AuthService]) -> None:
    client, _ = app_and_service
    admin = _login(client, "root")["access_token"]
    ana = _login(client)["access_token"]
    assert client.get("/auth/me", headers=_bearer(ana)).status_code == 200
    changed = client.put("/auth/users/ana/roles", json={"roles": ["viewer"]}, headers=_bearer(admin))
    assert changed.status_code == 200 and changed.json()["roles"] == ["viewer"]
    assert client.get("/auth/me", headers=_bearer(ana)).status_code == 401
    assert _login(client)["access_token"]  # a new login carries the new role
    last_admin = client.put("/auth/users/root/roles", json={"roles": ["viewer"]}, headers=_bearer(admin))
    assert last_admin.status_code == 409


def test_admin_endpoints_refuse_other_roles(app_and_service: tuple[TestClient, AuthService]) -> None:
    client, _ = app_and_service
    ana = _bearer(_login(client)["access_token"])
    admin = _bearer(_login(client, "root")["access_token"])
    assert client.get("/auth/users", headers=ana).status_code == 403
    body = {"username": "val", "password": PASSWORD, "roles": ["viewer"]}
    assert client.post("/auth/users", json=body, headers=ana).status_code == 403
    assert client.post("/auth/users", json=body, headers=admin).status_code == 201
    assert client.post("/auth/users", json=body, headers=admin).status_code == 409
    bad = {"username": "wes", "password": PASSWORD, "roles": ["superuser"]}
    assert client.post("/auth/users", json=bad, headers=admin).status_code == 422
    assert [u["username"] for u in client.get("/auth/users", headers=admin).json()] == ["ana", "root", "val"]
    assert client.post("/auth/users/val/disable", headers=admin).status_code == 200
    assert client.post("/auth/login", json={"username": "val", "password": PASSWORD}).status_code == 401


def test_unknown_user_and_wrong_password_look_the_same(
    app_and_service: tuple[TestClient, AuthService],
) -> None:
    client, service = app_and_service
    unknown = client.post("/auth/login", json={"username": "nobody", "password": PASSWORD})
    wrong = client.post("/auth/login", json={"username": "ana", "password": PASSWORD + "x"})
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.content == wrong.content
    assert dict(unknown.headers) == dict(wrong.headers)
    # Both paths run one argon2id verification; bench/auth.py prints the two timings side by side.
    assert _actions(service)[-2:] == ["login_failed", "login_failed"]


def test_a_megabyte_password_is_refused_fast(app_and_service: tuple[TestClient, AuthService]) -> None:
    client, service = app_and_service
    before = len(_actions(service))
    start = time.perf_counter()
    response = client.post("/auth/login", json={"username": "ana", "password": "x" * 1024 * 1024})
    assert response.status_code == 413 and "limit" in response.json()["detail"]
    assert time.perf_counter() - start < 2.0  # nowhere near an argon2id of 1 MB; no hashing happened
    assert len(_actions(service)) == before
    chunked = client.post(
        "/auth/login", content=iter([b'{"username": "ana", "password": "', b"x" * 20000, b'"}'])
    )
    assert chunked.status_code == 413


def test_a_crlf_username_cannot_forge_records(app_and_service: tuple[TestClient, AuthService]) -> None:
    client, service = app_and_service
    forged = "ana\r\n2026-01-01T00:00:00Z login ok user=root"
    response = client.post("/auth/login", json={"username": forged, "password": PASSWORD})
    assert response.status_code == 401
    with service.db.transaction() as s:
        row = s.scalars(select(AuditRow).order_by(AuditRow.id.desc()).limit(1)).one()
    assert row.action == "login_failed"
    assert "\n" not in row.subject and "\r" not in row.subject and "\\r\\n" in row.subject
    create = {"username": "eve\r\nroot", "password": PASSWORD, "roles": ["viewer"]}
    admin = _bearer(_login(client, "root")["access_token"])
    assert client.post("/auth/users", json=create, headers=admin).status_code == 422


def test_jwks_and_audit_chain_endpoints(app_and_service: tuple[TestClient, AuthService]) -> None:
    client, service = app_and_service
    jwks = client.get("/.well-known/jwks.json")
    assert jwks.status_code == 200 and jwks.json()["keys"][0]["kid"] == service.ring.kid
    admin = _bearer(_login(client, "root")["access_token"])
    records = client.get("/audit", headers=admin).json()
    assert [r["action"] for r in records][:3] == ["user_created", "user_created", "login"]
    verified = client.get("/audit/verify", headers=admin).json()
    assert verified == {"ok": True, "rows": len(records), "broken_at": None, "reason": None}
    ana = _bearer(_login(client)["access_token"])
    assert client.get("/audit/verify", headers=ana).status_code == 403


def test_sharing_a_run(app_and_service: tuple[TestClient, AuthService]) -> None:
    client, service = app_and_service
    with service.db.transaction() as s:
        s.add(RunRow(id="run-1", name="r", status="waiting", requested_by="ana", state={}))
    service.create_user(username="bob", password=PASSWORD, roles=["approver"], actor="test")
    ana, bob = (_bearer(_login(client, u)["access_token"]) for u in ("ana", "bob"))
    share = {"object_type": "run", "object_id": "run-1", "username": "bob"}
    assert client.post("/shares", json=share, headers=bob).status_code == 404  # not his to see
    assert client.post("/shares", json=share, headers=ana).status_code == 204
    assert service.shared_with(object_type="run", object_id="run-1") == {"bob"}
    assert service.shared_ids(object_type="run", username="bob") == {"run-1"}
    assert client.post("/shares", json={**share, "username": "root"}, headers=bob).status_code == 403
    assert client.post("/shares", json={**share, "object_id": "nope"}, headers=ana).status_code == 404


def test_sqlite_refuses_audit_update_and_delete(app_and_service: tuple[TestClient, AuthService]) -> None:
    _, service = app_and_service
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    for statement in ("UPDATE audit_log SET actor = 'eve'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), service.db.transaction() as s:
            s.execute(text(statement))
    assert _actions(service) == ["user_created", "user_created"]


def test_the_cli_creates_the_first_admin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from lockflow.cli import app

    monkeypatch.setenv("LOCKFLOW_HOME", str(tmp_path))
    monkeypatch.delenv("LOCKFLOW_DATABASE_URL", raising=False)
    monkeypatch.delenv("LOCKFLOW_REDIS_URL", raising=False)
    runner = CliRunner()
    args = ["admin", "create", "--username", "Boss", "--password-stdin"]
    created = runner.invoke(app, args, input=PASSWORD + "\n")
    assert created.exit_code == 0 and "admin boss created" in created.output
    again = runner.invoke(app, args, input=PASSWORD + "\n")
    assert again.exit_code == 2 and "already exists" in again.output
    weak = runner.invoke(app, ["admin", "create", "--username", "b2", "--password-stdin"], input="short\n")
    assert weak.exit_code == 2 and "at least 12" in weak.output
    settings = AuthSettings(home=tmp_path, redis_url=None, database_url=None)
    db = Database(settings.resolved_database_url())
    from lockflow.auth.router import build_auth_service

    service = build_auth_service(settings, db=db)
    assert service.login(username="boss", password=PASSWORD, client="cli").access_token
    db.dispose()
