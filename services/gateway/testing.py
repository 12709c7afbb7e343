"""Test support: gateway settings for serving in process with embedded adapters."""

from pathlib import Path
from typing import Any

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
