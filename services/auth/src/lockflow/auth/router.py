"""The auth HTTP API (login, refresh, logout, password, JWKS, users, audit, shares) and `install_auth`."""

from collections.abc import Callable
from typing import Annotated, Any, Literal

import anyio
import redis
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from starlette.types import ASGIApp, Receive, Scope, Send

from lockflow.access.address import client_address
from lockflow.access.build import token_state
from lockflow.access.deps import Access, Authorized, install_access, unauthorized
from lockflow.access.policy import Role
from lockflow.access.tokens import InvalidToken
from lockflow.audit import chain as audit
from lockflow.auth.keys import keyring_from_settings
from lockflow.auth.passwords import Passwords
from lockflow.auth.service import AuthService, Forbidden, LoginFailed, LoginThrottled
from lockflow.auth.settings import AuthSettings
from lockflow.auth.throttle import LoginThrottle, MemoryFailures, RedisFailures
from lockflow.common.asgi import read_at_most, refuse_too_large, replay
from lockflow.common.auth_tables import AuditRow
from lockflow.common.db import Database
from lockflow.common.errors import Conflict, InvalidInput, NotFound

LIMITED_PATHS = ("/auth/login", "/auth/refresh", "/auth/password")


class Login(BaseModel):
    """Username and password."""

    username: str = Field(min_length=1, max_length=256)
    password: str = Field(min_length=1, max_length=1024)


class Refresh(BaseModel):
    """A refresh token from login or an earlier refresh."""

    refresh_token: str = Field(min_length=1, max_length=4096)


# Documented so that a schema-valid value is one the service accepts: the role names, and the
# default password length policy (LOCKFLOW_PASSWORD_MIN/MAX_LENGTH may differ; then 422 says so).
RoleName = Annotated[str, Field(json_schema_extra={"enum": [r.value for r in Role]})]
NEW_PASSWORD = {
    "minLength": AuthSettings.model_fields["password_min_length"].default,
    "maxLength": AuthSettings.model_fields["password_max_length"].default,
}


class PasswordChange(BaseModel):
    """The current password and the new one."""

    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024, json_schema_extra=NEW_PASSWORD)


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


class ShareCreate(BaseModel):
    """Share a run or source you own with another user."""

    object_type: Literal["run", "source"]
    object_id: str = Field(min_length=1, max_length=200)
    username: str = Field(min_length=1, max_length=64)


class TokenResponse(BaseModel):
    """Tokens after login or refresh."""

    access_token: str
    token_type: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing, invalid or revoked token, or wrong credentials"},
    403: {"description": "the caller's roles may not do this"},
    404: {"description": "no such object (or not visible to the caller)"},
    409: {"description": "conflicts with the current state"},
    413: {"description": "request body too large"},
    422: {"description": "invalid input"},
    429: {"description": "too many failed logins"},
}


TOTAL_HEADER = "X-Total-Count"
USERS_LISTED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": f"One page of the users; how many there are in all is in {TOTAL_HEADER}",
        "headers": {TOTAL_HEADER: {"description": "How many users there are", "schema": {"type": "integer"}}},
    }
}

AUDIT_LISTED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": f"Records after the cursor; how many follow it in all is in {TOTAL_HEADER}",
        "headers": {TOTAL_HEADER: {"description": "Records after the cursor", "schema": {"type": "integer"}}},
    }
}


def _client(request: Request) -> str:
    return client_address(request)


def _service(request: Request) -> AuthService:
    service: AuthService = request.app.state.auth
    return service


Service = Annotated[AuthService, Depends(_service)]


async def _call(fn: Callable[[], Any]) -> Any:
    """Run a blocking use case in a thread and translate its errors into HTTP answers."""
    try:
        return await anyio.to_thread.run_sync(fn)
    except LoginThrottled as exc:
        raise HTTPException(429, str(exc), headers={"Retry-After": str(int(exc.retry_after) + 1)}) from exc
    except (LoginFailed, InvalidToken) as exc:
        raise unauthorized(str(exc)) from exc
    except Forbidden as exc:
        raise HTTPException(403, str(exc)) from exc
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except Conflict as exc:
        raise HTTPException(409, str(exc)) from exc
    except InvalidInput as exc:
        raise HTTPException(422, str(exc)) from exc


def auth_router() -> APIRouter:
    """The auth routes; the service is read from app.state.auth."""
    router = APIRouter(tags=["auth"], responses=ERRORS)

    @router.post("/auth/login", response_model=TokenResponse)
    async def login(body: Login, request: Request, service: Service) -> Any:
        """Password login: an access token (minutes) and a refresh token (rotated on every use)."""
        pair = await _call(
            lambda: service.login(username=body.username, password=body.password, client=_client(request))
        )
        return pair.as_dict()

    @router.post("/auth/refresh", response_model=TokenResponse)
    async def refresh(body: Refresh, request: Request, service: Service) -> Any:
        """A new token pair for a refresh token; reusing an old one ends the session."""
        pair = await _call(lambda: service.refresh(refresh_token=body.refresh_token, client=_client(request)))
        return pair.as_dict()

    @router.post("/auth/logout", status_code=204)
    async def logout(request: Request, principal: Authorized, service: Service) -> Response:
        """End this session: its access and refresh tokens stop working at once."""
        await _call(lambda: service.logout(claims=principal.claims, client=_client(request)))
        return Response(status_code=204)

    @router.post("/auth/password", status_code=204)
    async def change_password(
        body: PasswordChange, request: Request, principal: Authorized, service: Service
    ) -> Response:
        """Change your password; every other session of yours ends."""
        await _call(
            lambda: service.change_password(
                claims=principal.claims,
                current=body.current_password,
                new=body.new_password,
                client=_client(request),
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

    @router.get("/auth/users", responses=USERS_LISTED)
    async def users(
        _admin: Authorized,
        response: Response,
        service: Service,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    ) -> list[dict[str, Any]]:
        """Users and their roles by name, paged (`offset`, `limit`); the total is in X-Total-Count."""
        every: list[dict[str, Any]] = await _call(service.list_users)
        response.headers[TOTAL_HEADER] = str(len(every))
        return every[offset : offset + limit]

    @router.post("/auth/users", status_code=201)
    async def create_user(body: UserCreate, admin: Authorized, service: Service) -> dict[str, Any]:
        """Add a user with roles."""
        return await _call(  # type: ignore[no-any-return]
            lambda: service.create_user(
                username=body.username, password=body.password, roles=body.roles, actor=admin.username
            )
        )

    @router.put("/auth/users/{username}/roles")
    async def set_roles(username: str, body: RolesSet, admin: Authorized, service: Service) -> dict[str, Any]:
        """Replace a user's roles; their older tokens are refused at once."""
        return await _call(  # type: ignore[no-any-return]
            lambda: service.set_roles(username=username, roles=body.roles, actor=admin.username)
        )

    @router.post("/auth/users/{username}/disable")
    async def disable(username: str, admin: Authorized, service: Service) -> dict[str, Any]:
        """Disable a user and end their sessions."""
        return await _call(lambda: service.disable(username=username, actor=admin.username))  # type: ignore[no-any-return]

    @router.get("/audit", responses=AUDIT_LISTED)
    async def audit_log(
        _admin: Authorized,
        response: Response,
        service: Service,
        after: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        """Audit records after an id (the cursor), oldest first; X-Total-Count: how many follow the cursor."""

        def read() -> tuple[list[dict[str, Any]], int]:
            with service.db.transaction() as s:
                rows = s.scalars(
                    select(AuditRow).where(AuditRow.id > after).order_by(AuditRow.id).limit(limit)
                )
                total = s.scalar(select(func.count()).select_from(AuditRow).where(AuditRow.id > after))
                return [audit.record_to_dict(r) for r in rows], total or 0

        records, total = await _call(read)
        response.headers[TOTAL_HEADER] = str(total)
        return records  # type: ignore[no-any-return]

    @router.get("/audit/verify")
    async def audit_verify(_admin: Authorized, service: Service) -> dict[str, Any]:
        """Recompute the hash chain; `ok` false names the first row that does not match."""

        def check() -> dict[str, Any]:
            with service.db.transaction() as s:
                report = audit.verify_chain(s)
            return {
                "ok": report.ok,
                "rows": report.rows,
                "broken_at": report.broken_at,
                "reason": report.reason,
            }

        return await _call(check)  # type: ignore[no-any-return]

    @router.post("/shares", status_code=204)
    async def share(body: ShareCreate, request: Request, principal: Authorized, service: Service) -> Response:
        """Share a run or source you own with another user (they may then see it and decide its gates)."""
        await _call(
            lambda: service.share(
                object_type=body.object_type,
                object_id=body.object_id,
                username=body.username,
                actor=principal.username,
                client=_client(request),
            )
        )
        return Response(status_code=204)

    return router


class BodyLimit:
    """Refuses request bodies over `max_bytes` on the given paths with 413, before parsing them."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, paths: tuple[str, ...] = LIMITED_PATHS) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        body = await read_at_most(receive, self.max_bytes)
        if body is None:
            await self._refuse(send)
            return
        await self.app(scope, replay(body, receive), send)

    async def _refuse(self, send: Send) -> None:
        await refuse_too_large(
            send, self.max_bytes, detail=f"the request body is over the {self.max_bytes}-byte limit"
        )


def build_auth_service(
    settings: AuthSettings, *, db: Database, redis_client: "redis.Redis | None" = None
) -> AuthService:
    """The auth service over Redis when there is one (shared by replicas), else in-process state."""
    failures: Any = (
        RedisFailures(redis_client, prefix=f"{settings.topic_prefix}:auth:fail:")
        if redis_client is not None
        else MemoryFailures()
    )
    return AuthService(
        settings=settings,
        db=db,
        ring=keyring_from_settings(settings),
        passwords=Passwords.from_settings(settings),
        throttle=LoginThrottle(
            failures,
            per_account=settings.failures_per_account_per_hour,
            per_address=settings.failures_per_address_per_hour,
        ),
        state=token_state(settings, db=db, redis_client=redis_client),
    )


def access_for(service: AuthService) -> Access:
    """The Access of an app the auth service is in: its own key ring and token state, no JWKS fetch."""
    settings = service.settings
    return Access(
        verifier=service.verifier,
        db=service.db,
        separation_of_duties=settings.separation_of_duties,
        proxies=settings.proxy_networks(),
    )


def install_auth(
    app: FastAPI,
    settings: AuthSettings,
    *,
    db: Database | None = None,
    redis_client: "redis.Redis | None" = None,
    service: AuthService | None = None,
) -> AuthService:
    """Mount the auth routes and the login body limit on an app; the service lives on app.state.auth.

    Unless the app checks callers already (app.state.access), it checks them with this service's keys.
    """
    if service is None:
        if redis_client is None and settings.redis_url:
            redis_client = redis.Redis.from_url(settings.redis_url)
        service = build_auth_service(
            settings, db=db or Database(settings.resolved_database_url()), redis_client=redis_client
        )
    app.state.auth = service
    if getattr(app.state, "access", None) is None:
        install_access(app, access_for(service))
    app.include_router(auth_router())
    app.add_middleware(BodyLimit, max_bytes=settings.login_body_max_bytes)  # type: ignore[arg-type]
    return service
