"""What the auth routes share: the service on the app's state, the client address, the error mapping."""

from collections.abc import Callable
from typing import Annotated, Any

import anyio
from fastapi import Depends, HTTPException, Request

from lockflow.access.address import client_address
from lockflow.access.deps import unauthorized
from lockflow.access.tokens import InvalidToken
from lockflow.auth.service import AuthService, Forbidden, LoginFailed, LoginThrottled
from lockflow.common.errors import Conflict, InvalidInput, NotFound

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


def client_of(request: Request) -> str:
    """The caller's address (behind trusted proxies, the forwarded one)."""
    return client_address(request)


def _service(request: Request) -> AuthService:
    service: AuthService = request.app.state.auth
    return service


Service = Annotated[AuthService, Depends(_service)]


async def call(fn: Callable[[], Any]) -> Any:
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
