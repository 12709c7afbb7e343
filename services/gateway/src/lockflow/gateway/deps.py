"""The gateway's request dependencies: the process's adapters and its settings, built at startup."""

from typing import Annotated

from fastapi import Depends, Request

from lockflow.gateway.bootstrap import Runtime
from lockflow.gateway.settings import GatewaySettings


async def get_system(request: Request) -> Runtime:
    """The process's adapters (async: no thread hop for a lookup)."""
    system: Runtime = request.app.state.system
    return system


async def get_settings(request: Request) -> GatewaySettings:
    """The settings the app was built with."""
    settings: GatewaySettings = request.app.state.settings
    return settings


SystemDep = Annotated[Runtime, Depends(get_system)]
SettingsDep = Annotated[GatewaySettings, Depends(get_settings)]
