"""The web UI on the API's port: the built single-page app under /ui/, deep links answered by its index.

The assets are built from frontend/ (`make ui`) into this package's ui_dist/ folder and committed, so an
installed lockflow serves the UI without Node. They live under /ui/ and never at the root, so every API
route keeps its path and its JSON 404s: only paths under /ui/ fall back to index.html (the app routes
them in the browser). Each answer carries a CSP allowing the app's own scripts, and no framing.
"""

from pathlib import Path

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

UI_DIR = Path(__file__).parent / "ui_dist"
PREFIX = "/ui"
# Vega-Embed adds its own <style> element; scripts only from the app itself (Vega runs its expressions
# with the CSP-safe interpreter, so no 'unsafe-eval').
UI_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; "
    "form-action 'self'"
)
# Hashed file names (Vite's assets/) never change content: cache for a year; index.html always revalidates.
IMMUTABLE = "public, max-age=31536000, immutable"


class SinglePageApp:
    """ASGI app: a file of the built UI if the path names one, else index.html (a client-side route)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            raise HTTPException(status_code=405, headers={"Allow": "GET, HEAD"})
        response = self.answer(scope.get("path_params", {}).get("path", "") or scope["path"])
        await response(scope, receive, send)

    def answer(self, path: str) -> Response:
        """The file under the UI folder that `path` names, or the index for any other path."""
        relative = path.removeprefix(PREFIX).lstrip("/")
        index = self.folder / "index.html"
        if not index.is_file():
            raise HTTPException(status_code=404, detail="the web UI is not built here: run `make ui`")
        candidate = (self.folder / relative).resolve()
        if relative and candidate.is_file() and candidate.is_relative_to(self.folder):
            cache = IMMUTABLE if relative.startswith("assets/") else "no-cache"
            return FileResponse(
                candidate, headers={"Cache-Control": cache, "Content-Security-Policy": UI_POLICY}
            )
        if relative.startswith("assets/"):
            raise HTTPException(status_code=404, detail=f"no UI asset {relative}")
        return FileResponse(
            index, headers={"Cache-Control": "no-cache", "Content-Security-Policy": UI_POLICY}
        )


async def _to_ui(_request: Request) -> Response:
    return RedirectResponse(f"{PREFIX}/", status_code=307)


async def _config(request: Request) -> Response:
    """What the UI shows before it asks: the upload size limit (no secret; the API enforces it)."""
    settings = request.app.state.settings
    return JSONResponse(
        {"max_upload_bytes": settings.max_upload_bytes}, headers={"Cache-Control": "no-cache"}
    )


def install_ui(app: FastAPI, folder: Path = UI_DIR) -> None:
    """Serve the built UI under /ui/ (and send / there): after the API routes, outside the schema."""
    app.router.routes.append(Route("/", _to_ui, methods=["GET", "HEAD"], include_in_schema=False))
    app.router.routes.append(
        Route(f"{PREFIX}/config.json", _config, methods=["GET"], include_in_schema=False)
    )
    app.router.routes.append(Mount(PREFIX, app=SinglePageApp(folder)))
