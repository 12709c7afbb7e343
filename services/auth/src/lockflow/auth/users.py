"""User routes (admins): list, create, set roles, disable."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from lockflow.access.deps import Authorized
from lockflow.access.policy import Role
from lockflow.auth.http import ERRORS, TOTAL_HEADER, Service, call
from lockflow.auth.sessions import NEW_PASSWORD

router = APIRouter(prefix="/auth/users", tags=["auth"], responses=ERRORS)


# Documented so that a schema-valid value is one the service accepts: the role names, and the
# default password length policy (LOCKFLOW_PASSWORD_MIN/MAX_LENGTH may differ; then 422 says so).
RoleName = Annotated[str, Field(json_schema_extra={"enum": [r.value for r in Role]})]


# The names `AuthService.create_user` accepts, published so that the schema and the service agree.
USERNAME_PATTERN = r"^[A-Za-z0-9_.@-]{1,64}$"


class UserCreate(BaseModel):
    """A new user."""

    username: str = Field(min_length=1, max_length=64, pattern=USERNAME_PATTERN)
    password: str = Field(min_length=1, max_length=1024, json_schema_extra=NEW_PASSWORD)
    roles: list[RoleName] = Field(min_length=1)


class RolesSet(BaseModel):
    """The user's new roles (replacing the old)."""

    roles: list[RoleName] = Field(min_length=1)


USERS_LISTED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": f"One page of the users; how many there are in all is in {TOTAL_HEADER}",
        "headers": {TOTAL_HEADER: {"description": "How many users there are", "schema": {"type": "integer"}}},
    }
}


@router.get("", responses=USERS_LISTED)
async def users(
    _admin: Authorized,
    response: Response,
    service: Service,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> list[dict[str, Any]]:
    """Users and their roles by name, paged (`offset`, `limit`); the total is in X-Total-Count."""
    rows, total = await call(lambda: service.users_page(limit=limit, offset=offset))
    response.headers[TOTAL_HEADER] = str(total)
    return rows  # type: ignore[no-any-return]


@router.post("", status_code=201)
async def create_user(body: UserCreate, admin: Authorized, service: Service) -> dict[str, Any]:
    """Add a user with roles."""
    return await call(  # type: ignore[no-any-return]
        lambda: service.create_user(
            username=body.username, password=body.password, roles=body.roles, actor=admin.username
        )
    )


@router.put("/{username}/roles")
async def set_roles(username: str, body: RolesSet, admin: Authorized, service: Service) -> dict[str, Any]:
    """Replace a user's roles; their older tokens are refused at once."""
    return await call(  # type: ignore[no-any-return]
        lambda: service.set_roles(username=username, roles=body.roles, actor=admin.username)
    )


@router.post("/{username}/disable")
async def disable(username: str, admin: Authorized, service: Service) -> dict[str, Any]:
    """Disable a user and end their sessions."""
    return await call(lambda: service.disable(username=username, actor=admin.username))  # type: ignore[no-any-return]
