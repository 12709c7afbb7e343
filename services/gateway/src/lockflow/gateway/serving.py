"""How the gateway is served by uvicorn (used by `lockflow up`/`serve` and by tests serving it)."""

from typing import Any

import uvicorn


def server_config(app: Any, *, host: str, port: int) -> uvicorn.Config:
    """uvicorn settings; it never takes the client address from X-Forwarded-For itself.

    uvicorn would believe that header from 127.0.0.1 by default, so any local process could pose as any
    address; the app reads it only from LOCKFLOW_TRUSTED_PROXIES (lockflow.access.address). uvicorn keeps
    its hands off logging (no log_config): its records reach the process's JSON handler
    (`lockflow.common.logging`) like every other library's.
    """
    return uvicorn.Config(
        app, host=host, port=port, log_level="warning", proxy_headers=False, log_config=None
    )
