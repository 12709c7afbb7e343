"""The auth service's routes through the gateway's address (distributed mode, `LOCKFLOW_AUTH_URL` set).

The web UI and a client then need one address: login, refresh, users, shares and the audit log are
forwarded to the auth service as they came (method, path, query, body, headers but the hop-by-hop
ones), and its answer is sent back as it is. The client's address travels in X-Forwarded-For, which the
auth service's server believes from a trusted proxy only (uvicorn's forwarded_allow_ips), so its
failed-login limit per address still counts the real client. Bodies are bounded (the login and every
other body the gateway accepts are small); an unreachable auth service is a 503 naming it.
"""

import json

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lockflow.common.asgi import read_at_most, refuse_too_large
from lockflow.common.logging import get_logger

PREFIXES = ("/auth/", "/shares", "/audit", "/.well-known/")
HOP_BY_HOP = {
    b"connection",
    b"keep-alive",
    b"proxy-authenticate",
    b"proxy-authorization",
    b"te",
    b"trailer",
    b"transfer-encoding",
    b"upgrade",
    b"host",
    b"content-length",
}
log = get_logger(__name__)


def forwarded(path: str) -> bool:
    """Whether a path is the auth service's."""
    return path.startswith(PREFIXES)


class AuthProxy:
    """Forwards the auth service's paths to `auth_url`; everything else goes to the gateway's app."""

    def __init__(self, app: ASGIApp, *, auth_url: str, max_body_bytes: int, timeout: float = 30.0) -> None:
        self.app = app
        self.auth_url = auth_url.rstrip("/")
        self.max_body_bytes = max_body_bytes
        self.client = httpx.AsyncClient(base_url=self.auth_url, timeout=timeout)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not forwarded(scope["path"]):
            await self.app(scope, receive, send)
            return
        body = await read_at_most(receive, self.max_body_bytes)
        if body is None:
            await refuse_too_large(send, self.max_body_bytes)
            return
        target = scope.get("raw_path") or scope["path"].encode()
        if scope["query_string"]:
            target += b"?" + scope["query_string"]
        try:
            answer = await self.client.request(
                scope["method"], target.decode("latin-1"), content=body, headers=_forward_headers(scope)
            )
        except httpx.HTTPError as exc:
            log.warning("auth_service_unreachable", url=self.auth_url, error=type(exc).__name__)
            detail = json.dumps({"detail": "the auth service is not answering; try again"}).encode()
            await _send(send, 503, [(b"content-type", b"application/json"), (b"retry-after", b"5")], detail)
            return
        headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1"))
            for k, v in answer.headers.multi_items()
            if k.lower().encode("latin-1") not in HOP_BY_HOP and k.lower() != "content-encoding"
        ]
        await _send(send, answer.status_code, headers, answer.content)


def _forward_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    """The request's headers without the hop-by-hop ones, with the client's address appended."""
    headers = [(k, v) for k, v in scope["headers"] if k.lower() not in HOP_BY_HOP]
    client = scope.get("client")
    if client:
        earlier = [v for k, v in headers if k.lower() == b"x-forwarded-for"]
        headers = [(k, v) for k, v in headers if k.lower() != b"x-forwarded-for"]
        chain = b", ".join([*earlier, client[0].encode("latin-1")])
        headers.append((b"x-forwarded-for", chain))
    return headers


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})
