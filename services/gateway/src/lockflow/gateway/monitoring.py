"""The gateway's monitoring: /metrics (this process's registry), /readyz, HTTP request metrics, and the
monitoring page's overview (/monitoring/overview: runs by state, stage durations, failures, open
decisions with their age and deadline, quality over runs; only the caller's runs).

Requests are labelled by the route's template (`/runs/{run_id}`), never the path itself: a path holds
a run id, and one time series per run is what blows Prometheus up. A request no route matched is
labelled "unmatched".
"""

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lockflow.access.deps import Authorized
from lockflow.common import metrics
from lockflow.common.health import readiness
from lockflow.common.pipeline import STAGES
from lockflow.gateway.access import auth_of, run_reader
from lockflow.gateway.deps import SettingsDep, SystemDep
from lockflow.gateway.schemas import ErrorBody
from lockflow.runstore.overview import monitoring_overview

UNMATCHED = "unmatched"


router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response, include_in_schema=True)
async def prometheus_metrics() -> Response:
    """This process's metrics in the Prometheus text format (scraped by Prometheus)."""
    body, content_type = metrics.exposition()
    return Response(content=body, media_type=content_type)


@router.get("/readyz", responses={503: {"description": "a dependency is not reachable; `failed` names it"}})
async def readyz(system: SystemDep) -> JSONResponse:
    """Whether Kafka, the database, Redis and the object store are reachable (503 naming those not)."""
    checks = readiness(system.settings, system.db, system.artifacts)
    results = await anyio.to_thread.run_sync(checks)
    failed = sorted(name for name, result in results.items() if result != "ok")
    body = {"status": "ok" if not failed else "unavailable", "checks": results, "failed": failed}
    return JSONResponse(body, status_code=503 if failed else 200)


@router.get(
    "/monitoring/overview",
    tags=["monitoring"],
    responses={401: {"model": ErrorBody, "description": "missing, invalid or revoked access token"}},
)
async def overview(
    request: Request, system: SystemDep, settings: SettingsDep, principal: Authorized
) -> dict[str, Any]:
    """What the monitoring page shows, over the runs the caller may see (admins: all): runs by state, the
    active ones, stage durations (over the latest attempts), failed attempts, open decisions oldest first
    with their age and deadline, and quality scores over runs. Each list is bounded, with its total."""
    reader = run_reader(auth_of(request), principal)
    deadline = timedelta(seconds=settings.alert_gate_deadline_seconds)
    return await anyio.to_thread.run_sync(
        lambda: monitoring_overview(
            system.db, reader=reader, now=datetime.now(UTC), gate_deadline=deadline, stages=STAGES
        )
    )


class HttpMetrics:
    """Counts and times every HTTP request by method, route template and status (pure ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on and record it when the response started (or failed)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def recording(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording)
        finally:
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            method = metrics.bounded(scope.get("method"), ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"))
            metrics.HTTP_REQUESTS.labels(method=method, route=route, status=str(status[0])).inc()
            metrics.HTTP_DURATION.labels(method=method, route=route).observe(time.perf_counter() - started)
