"""Sign-in routes: login, refresh, logout, password change, who am I, and the public keys (JWKS)."""

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from lockflow.access.deps import Authorized
from lockflow.auth.http import ERRORS, Service, call, client_of
from lockflow.auth.settings import AuthSettings

router = APIRouter(tags=["auth"], responses=ERRORS)


class Login(BaseModel):
    """Username and password."""

    username: str = Field(min_length=1, max_length=256)
    password: str = Field(min_length=1, max_length=1024)


class Refresh(BaseModel):
    """A refresh token from login or an earlier refresh."""

    refresh_token: str = Field(min_length=1, max_length=4096)


NEW_PASSWORD = {
    "minLength": AuthSettings.model_fields["password_min_length"].default,
    "maxLength": AuthSettings.model_fields["password_max_length"].default,
}


class PasswordChange(BaseModel):
    """The current password and the new one."""

    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024, json_schema_extra=NEW_PASSWORD)


class TokenResponse(BaseModel):
    """Tokens after login or refresh."""

    access_token: str
    token_type: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int


@router.post("/auth/login", response_model=TokenResponse)
async def login(body: Login, request: Request, service: Service) -> Any:
    """Password login: an access token (minutes) and a refresh token (rotated on every use)."""
    pair = await call(
        lambda: service.login(username=body.username, password=body.password, client=client_of(request))
    )
    return pair.as_dict()


@router.post("/auth/refresh", response_model=TokenResponse)
async def refresh(body: Refresh, request: Request, service: Service) -> Any:
    """A new token pair for a refresh token; reusing an old one ends the session."""
    pair = await call(lambda: service.refresh(refresh_token=body.refresh_token, client=client_of(request)))
    return pair.as_dict()


@router.post("/auth/logout", status_code=204)
async def logout(request: Request, principal: Authorized, service: Service) -> Response:
    """End this session: its access and refresh tokens stop working at once."""
    await call(lambda: service.logout(claims=principal.claims, client=client_of(request)))
    return Response(status_code=204)


@router.post("/auth/password", status_code=204)
async def change_password(
    body: PasswordChange, request: Request, principal: Authorized, service: Service
) -> Response:
    """Change your password; every other session of yours ends."""
    await call(
        lambda: service.change_password(
            claims=principal.claims,
            current=body.current_password,
            new=body.new_password,
            client=client_of(request),
        )
    )
    return Response(status_code=204)


@router.get("/auth/me")
async def me(principal: Authorized) -> dict[str, Any]:
    """Who the token belongs to and what it may do."""
    return {"id": principal.user_id, "username": principal.username, "roles": sorted(principal.roles)}


@router.get("/.well-known/jwks.json")
async def jwks(response: Response, service: Service) -> dict[str, Any]:
    """The public keys that verify lockflow tokens (cache for 5 minutes; refetch on an unknown kid)."""
    response.headers["Cache-Control"] = "public, max-age=300"
    return service.ring.jwks()
