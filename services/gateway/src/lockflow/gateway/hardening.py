"""What every gateway answer carries or leaves out: security headers, no server paths, a right `Allow`.

- Security headers on every response: a Content-Security-Policy (nothing may load, no framing; the
  HTML report gets one allowing exactly its own inline style by hash, the API docs their CDN assets),
  `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY` and `Referrer-Policy: no-referrer`.
- Server paths: the absolute locations of the server's folders (home, uploads, allowed folders) are
  cut out of every buffered answer (JSON, text, HTML), so a caller sees `upload-x.csv` or
  `sub/sales.csv`, never where the server keeps them. Event streams pass untouched.
- 405: `Allow` lists every method the path has, not only those of the first route that matched it.
- A query parameter given twice is a 422: every one of them takes a single value, and taking the last
  one silently would answer a request that the OpenAPI calls invalid.
"""

import base64
import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Swagger UI and ReDoc pages (FastAPI's) load their script and style from jsDelivr and start inline.
DOCS_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com; "
    "connect-src 'self'; worker-src blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc")
FIXED_HEADERS = {
    b"x-content-type-options": b"nosniff",
    b"x-frame-options": b"DENY",
    b"referrer-policy": b"no-referrer",
}
STYLE_BLOCK = re.compile(r"<style>(.*?)</style>", re.DOTALL)


def single_query_values(request: Request) -> None:
    """Refuse (422) a request that gives any query parameter more than once."""
    counts = Counter(key for key, _ in request.query_params.multi_items())
    repeated = sorted(key for key, n in counts.items() if n > 1)
    if repeated:
        first = repeated[0]
        raise HTTPException(
            status_code=422,
            detail=f"query parameter {first!r} was given {counts[first]} times; give it once",
        )


def html_policy(body: str) -> str:
    """A CSP for a self-contained HTML page: only its own <style> blocks (by hash), nothing else."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()}'"
        for block in STYLE_BLOCK.findall(body)
    )
    styles = f"style-src {hashes}; " if hashes else ""
    return f"default-src 'none'; {styles}frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


class SecurityHeaders:
    """ASGI middleware: the fixed security headers, and the API's CSP unless the route set its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = (DOCS_POLICY if scope["path"] in DOCS_PATHS else API_POLICY).encode()

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in FIXED_HEADERS.items() if k not in present]
                if b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", policy))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


class NoServerPaths:
    """ASGI middleware: cut the server's folder locations out of every buffered text answer."""

    def __init__(self, app: ASGIApp, *, folders: Iterable[Path]) -> None:
        self.app = app
        self.pattern = _pattern(folders)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []
        passing = False

        async def scrubbing(message: Message) -> None:
            nonlocal start, passing
            if passing:
                await send(message)
            elif message["type"] == "http.response.start":
                start = message
                passing = not _is_text(message)
                if passing:
                    await send(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    assert start is not None
                    await _send_scrubbed(send, start, self.scrub(b"".join(chunks)))
            else:
                await send(message)

        await self.app(scope, receive, scrubbing)

    def scrub(self, body: bytes) -> bytes:
        """The body with each server folder's location removed (its files keep their relative names)."""
        if self.pattern is None:
            return body
        return self.pattern.sub(lambda m: b"" if m.group(2) == b"/" else b".", body)


def _pattern(folders: Iterable[Path]) -> re.Pattern[bytes] | None:
    """One pattern for every spelling of the folders, longest first (uploads before the home holding them).

    A folder counts only as a whole path (or a `file://` URI of it): not inside a longer name or
    another URL (`x.com/data/...`), so data that merely contains the same letters is left alone.
    """
    spelled: set[str] = set()
    for folder in folders:
        for form in (str(folder), str(folder.resolve())):
            form = form.rstrip("/")
            if form.count("/") >= 1 and len(form) > 1:  # never "/" itself
                spelled |= {form, json.dumps(form)[1:-1]}
    if not spelled:
        return None
    choices = b"|".join(re.escape(f.encode()) for f in sorted(spelled, key=len, reverse=True))
    return re.compile(rb"(?<![\w./-])(?:file://)?(" + choices + rb")(/|(?=[^\w./-]|$))")


def _is_text(start: Message) -> bool:
    for name, value in start.get("headers", []):
        if name.lower() == b"content-type":
            kind = value.decode("latin-1").lower()
            return kind.startswith(("application/json", "text/")) and "event-stream" not in kind
    return False


async def _send_scrubbed(send: Send, start: Message, body: bytes) -> None:
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({**start, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def install_allow_header(app: FastAPI) -> None:
    """405 answers list in `Allow` every method the path documents (the OpenAPI is the contract)."""
    table: list[tuple[re.Pattern[str], list[str]]] = []

    async def handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 405:
            if not table:
                table.extend(_method_table(app))
            methods = next((m for pattern, m in table if pattern.match(request.url.path)), None)
            if methods:
                exc.headers = {**(exc.headers or {}), "Allow": ", ".join(methods)}
        return await http_exception_handler(request, exc)

    app.add_exception_handler(StarletteHTTPException, handler)


def _method_table(app: FastAPI) -> list[tuple[re.Pattern[str], list[str]]]:
    """Each documented path as a pattern with its methods (HEAD with GET); static paths match first."""
    table = []
    paths: dict[str, Any] = app.openapi()["paths"]
    for template, operations in sorted(paths.items(), key=lambda item: item[0].count("{")):
        methods = {m.upper() for m in operations}
        if "GET" in methods:
            methods.add("HEAD")
        table.append((compile_path(template)[0], sorted(methods)))
    return table
