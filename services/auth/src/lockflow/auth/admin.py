"""The first admin: created on first start (password in a 0600 file), or by `lockflow admin create`."""

import os

from lockflow.access.policy import Role
from lockflow.auth.router import build_auth_service
from lockflow.auth.service import AuthService
from lockflow.auth.settings import AuthSettings
from lockflow.common.db import Database
from lockflow.common.errors import Conflict


def create_admin(*, settings: AuthSettings, username: str, password: str) -> dict[str, object]:
    """Add a user with the admin role to the configured database (409 if the name is taken)."""
    db = Database(settings.resolved_database_url())
    try:
        service = build_auth_service(settings, db=db)
        return service.create_user(
            username=username, password=password, roles=[Role.ADMIN.value], actor="cli"
        )
    finally:
        db.dispose()


def ensure_first_admin(service: AuthService, settings: AuthSettings) -> None:
    """On first start (no user at all) create `admin` with a random password in a 0600 file under home."""
    try:
        password = service.ensure_first_admin()
    except Conflict:  # another replica created it a moment ago
        return
    if password is None:
        return
    path = settings.home / "auth" / "initial-admin-password"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    # Printed, not logged: the password itself never reaches a log, only where to find it.
    print(
        f"lockflow: created the first user 'admin' (role admin); its password is in {path} (mode 0600).\n"
        f'  Log in: POST /auth/login {{"username": "admin", "password": "<that password>"}}, '
        "then create users with POST /auth/users.",
        flush=True,
    )
