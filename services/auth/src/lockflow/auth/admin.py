"""Creating the first admin from the command line (`lockflow admin create`)."""

from lockflow.auth.policy import Role
from lockflow.auth.router import build_auth_service
from lockflow.auth.settings import AuthSettings
from lockflow.common.db import Database


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
