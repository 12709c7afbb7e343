"""The last line of the gateway: an unexpected error becomes one plain JSON answer, never a traceback.

Errors lockflow raises on purpose are mapped to 4xx by the app's exception handlers; anything that
reaches this middleware is a fault of the server. The caller gets what failed, the request id (and
the run id when the route names one) and where the full traceback is; the traceback goes to the log.
"""

import json
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lockflow.common.ids import new_id
from lockflow.common.logging import get_logger

log = get_logger(__name__)
REQUEST_ID_HEADER = b"x-request-id"
# A caller's own request id is echoed only when it is short and plain (it ends up in logs).
SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class UnexpectedErrors:
    """ASGI middleware: answer 500 with a plain message when a request fails unexpectedly."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER, request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            run_id = (scope.get("path_params") or {}).get("run_id")
            what = f"{scope.get('method', '')} {scope.get('path', '')}"
            log.exception("request_failed", request_id=request_id, run_id=run_id, request=what)
            if started:  # the answer is already on its way (a stream); nothing more can be said
                return
            await _answer(send, request_id, _message(what, exc, request_id, run_id))


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == REQUEST_ID_HEADER:
            text = value.decode("latin-1")
            if SAFE_REQUEST_ID.match(text):
                return text
    return new_id()


def _message(what: str, exc: Exception, request_id: str, run_id: str | None) -> dict[str, Any]:
    run = f" for run {run_id}" if run_id else ""
    return {
        "detail": (
            f"{what} failed{run} with an unexpected server error ({type(exc).__name__}). Nothing you sent "
            f"caused it; try again, and if it persists give the operator the request id {request_id}: "
            f"the full traceback is in the gateway's log under request_id={request_id}."
        ),
        "request_id": request_id,
        "run_id": run_id,
    }


async def _answer(send: Send, request_id: str, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (REQUEST_ID_HEADER, request_id.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
