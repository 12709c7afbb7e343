"""Signing in as a person would, for tests and bench scripts: users, a password login, Bearer headers.

In-process apps: `sign_in(client, name, roles)` adds the user through the app's AuthService and logs
in over HTTP. A served gateway: `admin_headers(client, home)` logs in as the first admin (its password
file under LOCKFLOW_HOME) and `create_users(...)` adds people through the admin API.
"""

from pathlib import Path
from typing import Any

import httpx

from lockflow.auth.service import AuthService
from lockflow.common.errors import Conflict

PASSWORD = "correct horse battery staple"


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for an access token."""
    return {"Authorization": f"Bearer {token}"}


def login(client: httpx.Client, username: str, password: str = PASSWORD) -> dict[str, str]:
    """Log in with a password and return the Bearer header (fails loudly on anything but 200)."""
    answer = client.post("/auth/login", json={"username": username, "password": password})
    if answer.status_code != 200:
        raise AssertionError(f"login as {username} failed: {answer.status_code} {answer.text}")
    return bearer(answer.json()["access_token"])


def add_user(service: AuthService, username: str, roles: list[str], password: str = PASSWORD) -> None:
    """Create the user unless one of that name exists."""
    try:
        service.create_user(username=username, password=password, roles=roles, actor="test")
    except Conflict:
        pass


def sign_in(client: Any, username: str, roles: list[str], password: str = PASSWORD) -> dict[str, str]:
    """Add a user to an in-process app (a TestClient whose lifespan runs) and log in as them."""
    add_user(client.app.state.auth, username, roles, password)
    return login(client, username, password)


def initial_admin_password(home: Path) -> str:
    """The first admin's password that `lockflow up`/`serve` wrote under LOCKFLOW_HOME."""
    return (home / "auth" / "initial-admin-password").read_text().strip()


def admin_headers(client: httpx.Client, home: Path) -> dict[str, str]:
    """Log in as the first admin of a served gateway."""
    return login(client, "admin", initial_admin_password(home))


def create_users(
    client: httpx.Client, admin: dict[str, str], users: dict[str, list[str]], password: str = PASSWORD
) -> dict[str, dict[str, str]]:
    """Create users through the admin API (an existing name is kept) and log each in."""
    signed = {}
    for username, roles in users.items():
        answer = client.post(
            "/auth/users", json={"username": username, "password": password, "roles": roles}, headers=admin
        )
        if answer.status_code not in (201, 409):
            raise AssertionError(f"creating {username} failed: {answer.status_code} {answer.text}")
        signed[username] = login(client, username, password)
    return signed


def share_run(client: httpx.Client, owner: dict[str, str], run_id: str, username: str) -> None:
    """Share a run with another user (as its owner)."""
    answer = client.post(
        "/shares", json={"object_type": "run", "object_id": run_id, "username": username}, headers=owner
    )
    if answer.status_code != 204:
        raise AssertionError(f"sharing run {run_id} failed: {answer.status_code} {answer.text}")
