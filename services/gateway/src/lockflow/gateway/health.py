"""Liveness of the gateway and its database."""

import anyio
from fastapi import APIRouter

from lockflow.gateway.deps import SettingsDep, SystemDep
from lockflow.runstore import views

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(system: SystemDep, settings: SettingsDep) -> dict[str, str]:
    """Liveness and database reachability."""
    await anyio.to_thread.run_sync(lambda: views.list_runs(system.db, limit=1))
    return {"status": "ok", "mode": settings.mode}
