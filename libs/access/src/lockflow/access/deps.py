"""The caller's identity as FastAPI dependencies: the one place authentication plugs in.

`authenticated`, `require_role` and `authorize_route` verify a bearer token locally (public keys,
no call to another service) and apply the role matrix of `lockflow.access.policy`. Every app that
serves people (the gateway, the auth service, or both in one embedded app) puts an `Access` on
`app.state.access`: its verifier, the database the ownership lookups read, and its trusted proxies.
"""

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from lockflow.access import shares
from lockflow.access.address import Network
from lockflow.access.policy import Role, Verdict, endpoint_verdict, parse_roles
from lockflow.access.tokens import Claims, InvalidToken
from lockflow.access.verifier import AccessVerifier
from lockflow.common.db import Database

REALM = 'Bearer realm="lockflow"'


@dataclass(frozen=True)
class Principal:
    """The verified caller."""

    user_id: str
    username: str
    roles: frozenset[Role]
    claims: Claims


@dataclass
class Access:
    """What an app checks callers with: tokens, owners and shares, and who its trusted proxies are."""

    verifier: AccessVerifier
    db: Database  # the one database: owners (runs, sources), shares, and the audit chain
    separation_of_duties: bool = True
    proxies: tuple[Network, ...] = field(default=())

    def verify_access(self, token: str) -> Claims:
        """A valid, unrevoked access token's claims; InvalidToken otherwise."""
        return self.verifier.verify_access(token)

    def owner_of(self, *, object_type: str, object_id: str) -> str:
        """Who owns a run or a source; NotFound if there is none."""
        return shares.owner_of(self.db, object_type=object_type, object_id=object_id)

    def shared_with(self, *, object_type: str, object_id: str) -> frozenset[str]:
        """Usernames the object is shared with."""
        return shares.shared_with(self.db, object_type=object_type, object_id=object_id)

    def shared_ids(self, *, object_type: str, username: str) -> frozenset[str]:
        """Ids of the objects of a type shared with the user."""
        return shares.shared_ids(self.db, object_type=object_type, username=username)


def install_access(app: FastAPI, access: Access) -> Access:
    """Make the app check callers with this Access (the dependencies below read it from app.state)."""
    app.state.access = access
    return access


def access_of(connection: HTTPConnection) -> Access:
    """The Access installed on the app serving this request."""
    access: Access = connection.app.state.access
    return access


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
        claims = access_of(request).verify_access(credentials.credentials)
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
