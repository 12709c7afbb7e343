"""Test support: gateway settings for serving in process with embedded adapters, and a served app."""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from lockflow.gateway.serving import server_config
from lockflow.gateway.settings import GatewaySettings


def embedded_settings(folder: Path, **overrides: Any) -> GatewaySettings:
    """Settings on SQLite and in-process adapters under folder, with folder/data as the allowed folder.

    The adapters are explicit because `make test` exports the real services' endpoints to the environment.
    """
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    values: dict[str, Any] = {
        "mode": "embedded",
        "database_url": f"sqlite:///{folder / 'lockflow.db'}",
        "redis_url": None,
        "home": folder / "home",
        "allowed_dirs": [data],
        "start_workers": True,
        "environment": "test",
        **overrides,
    }
    return GatewaySettings(**values)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(app: FastAPI, *, start_timeout: float = 30.0) -> Iterator[tuple[str, int]]:
    """The app on a free loopback port with the same uvicorn settings as `lockflow up`: (base URL, port)."""
    port = _free_port()
    server = uvicorn.Server(server_config(app, host="127.0.0.1", port=port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the gateway did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", port
    finally:
        server.should_exit = True
        thread.join(timeout=20)
