"""Object-level access for the gateway: who may see or change which run, decision and source.

The rules are `lockflow.access.policy` data; this module only looks owners and shares up (through the
app's `lockflow.access` Access) and maps the verdict to NotFound (404: existence is not revealed) or
HTTP 403. Admins see every object.
"""

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials

from lockflow.access.deps import REALM, Access, Principal, _bearer, access_of, unauthorized
from lockflow.access.policy import Role, Scope, Verdict, endpoint_verdict, object_verdict, parse_roles
from lockflow.access.tokens import InvalidToken
from lockflow.common.errors import NotFound
from lockflow.runstore.views import Reader


def auth_of(request: Request) -> Access:
    """The caller checks installed on the app (its verifier, owners and shares)."""
    return access_of(request)


def _check(
    auth: Access,
    principal: Principal,
    *,
    object_type: str,
    object_ids: tuple[str, ...],
    scope: Scope,
    owner: str | None = None,
) -> None:
    if Role.ADMIN in principal.roles:
        return
    owner = owner if owner is not None else auth.owner_of(object_type=object_type, object_id=object_ids[0])
    shared: frozenset[str] = frozenset()
    for object_id in object_ids:
        shared |= auth.shared_with(object_type=object_type, object_id=object_id)
    verdict = object_verdict(scope=scope, user=principal.username, owner=owner, shared_with=shared)
    if verdict is Verdict.NOT_FOUND:
        raise NotFound(f"no {object_type} {object_ids[-1]}")
    if verdict is Verdict.FORBIDDEN:
        raise HTTPException(status_code=403, detail=f"only the {object_type}'s owner may do this")


def check_run(
    auth: Access, principal: Principal, *, run_id: str, scope: Scope = Scope.VISIBLE, owner: str | None = None
) -> None:
    """404 unless the caller owns the run, it is shared with them, or they are an admin.

    `owner`: the run's starter when the caller has just read the run (saves looking it up again).
    """
    _check(auth, principal, object_type="run", object_ids=(run_id,), scope=scope, owner=owner)


def check_source(auth: Access, principal: Principal, *, source: dict[str, Any], scope: Scope) -> None:
    """404 unless the caller may see the source; 403 when the scope needs its owner and they are not."""
    _check(auth, principal, object_type="source", object_ids=(source["id"], source["name"]), scope=scope)


def run_reader(auth: Access, principal: Principal) -> Reader | None:
    """Whose runs the caller's lists show: their own and those shared with them; None (all) for an admin."""
    if Role.ADMIN in principal.roles:
        return None
    return Reader(principal.username, auth.shared_ids(object_type="run", username=principal.username))


def stream_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    access_token: Annotated[
        str | None,
        Query(
            max_length=4096,
            description="The access token, for EventSource clients that cannot send an Authorization header",
        ),
    ] = None,
) -> Principal:
    """The caller of the live-updates stream: a Bearer header or, for browsers, `?access_token=`."""
    token = credentials.credentials if credentials is not None else access_token
    if not token:
        raise HTTPException(
            status_code=401,
            detail="log in and send the access token as a Bearer token or the access_token parameter",
            headers={"WWW-Authenticate": REALM},
        )
    try:
        claims = auth_of(request).verify_access(token)
    except InvalidToken as exc:
        raise unauthorized(str(exc)) from exc
    principal = Principal(claims.subject, claims.username, parse_roles(claims.roles), claims)
    route = request.scope.get("route")
    template = getattr(route, "path", request.url.path)
    if endpoint_verdict(principal.roles, request.method, template) is not Verdict.ALLOW:
        raise HTTPException(status_code=403, detail=f"your roles may not call {request.method} {template}")
    return principal


StreamPrincipal = Annotated[Principal, Depends(stream_principal)]
