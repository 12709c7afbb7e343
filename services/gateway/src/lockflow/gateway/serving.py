"""How the gateway is served by uvicorn (used by `lockflow up`/`serve` and by tests serving it)."""

from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

# Each worker process builds its own app from the environment (uvicorn imports this by name).
GATEWAY_FACTORY = "lockflow.gateway.serving:gateway_app"
# An idle keep-alive connection is closed after this long. Longer than a client's own idle expiry
# (httpx: 5 s, a load balancer's: 60 s), so the client drops it first: with uvicorn's 5 s both ends
# let go together and a request sent on a connection at that moment failed (ReadError under load).
KEEP_ALIVE_SECONDS = 75


def server_config(app: Any, *, host: str, port: int, workers: int = 1) -> uvicorn.Config:
    """uvicorn settings; it never takes the client address from X-Forwarded-For itself.

    uvicorn would believe that header from 127.0.0.1 by default, so any local process could pose as any
    address; the app reads it only from LOCKFLOW_TRUSTED_PROXIES (lockflow.access.address). uvicorn keeps
    its hands off logging (no log_config): its records reach the process's JSON handler
    (`lockflow.common.logging`) like every other library's.
    """
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        proxy_headers=False,
        log_config=None,
        workers=workers,
        factory=isinstance(app, str),
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )


def gateway_app() -> Any:
    """The distributed gateway's app from the environment's settings (one per worker process)."""
    from lockflow.gateway.app import create_app
    from lockflow.gateway.settings import GatewaySettings

    return create_app(GatewaySettings())


def serve_workers(*, host: str, port: int, workers: int) -> None:
    """Serve the distributed gateway from `workers` processes sharing one listening socket.

    uvicorn's supervisor binds the port once, starts each worker (a fresh interpreter that builds its
    own app through `gateway_app`), restarts one that dies and stops them all on SIGINT/SIGTERM. The
    kernel hands each new connection to whichever worker accepts it first.
    """
    config = server_config(GATEWAY_FACTORY, host=host, port=port, workers=workers)
    Multiprocess(config, sockets=[config.bind_socket()]).run()
