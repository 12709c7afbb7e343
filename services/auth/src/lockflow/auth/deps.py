"""The caller's identity as FastAPI dependencies: the one place authentication plugs in.

`authenticated`, `require_role` and `authorize_route` verify a bearer token locally (public keys,
no call to another service) and apply the role matrix of `lockflow.auth.policy`.
"""

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from lockflow.auth.policy import Role, Verdict, endpoint_verdict, parse_roles
from lockflow.auth.tokens import Claims, InvalidToken

REALM = 'Bearer realm="lockflow"'


@dataclass(frozen=True)
class Principal:
    """The verified caller."""

    user_id: str
    username: str
    roles: frozenset[Role]
    claims: Claims


_bearer = HTTPBearer(auto_error=False, description="An access token from POST /auth/login")


def unauthorized(reason: str) -> HTTPException:
    """401 with the WWW-Authenticate challenge RFC 6750 asks for."""
    challenge = f'{REALM}, error="invalid_token", error_description="{reason.replace(chr(34), chr(39))}"'
    return HTTPException(status_code=401, detail=reason, headers={"WWW-Authenticate": challenge})


def authenticated(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The caller of a valid, unrevoked access token; 401 otherwise (sync: FastAPI runs it in a thread)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status_code=401,
            detail="log in and send the access token as a Bearer token",
            headers={"WWW-Authenticate": REALM},
        )
    try:
        claims = request.app.state.auth.verify_access(credentials.credentials)
    except InvalidToken as exc:
        raise unauthorized(str(exc)) from exc
    return Principal(claims.subject, claims.username, parse_roles(claims.roles), claims)


Authenticated = Annotated[Principal, Depends(authenticated)]


def require_role(*roles: Role) -> Any:
    """A dependency that lets through callers holding one of the roles (403 otherwise)."""
    wanted = frozenset(roles)

    def check(principal: Authenticated) -> Principal:
        if not principal.roles & wanted:
            names = " or ".join(sorted(r.value for r in wanted))
            raise HTTPException(status_code=403, detail=f"this needs the role {names}")
        return principal

    return Depends(check)


async def authorize_route(request: Request, principal: Authenticated) -> Principal:
    """Applies the role x endpoint matrix to the matched route (a route not in the matrix is refused).

    Async because it only reads memory: a sync dependency would cost a thread hop on every request.
    """
    route = request.scope.get("route")
    template = getattr(route, "path", request.url.path)
    if endpoint_verdict(principal.roles, request.method, template) is not Verdict.ALLOW:
        raise HTTPException(status_code=403, detail=f"your roles may not call {request.method} {template}")
    return principal


Authorized = Annotated[Principal, Depends(authorize_route)]
