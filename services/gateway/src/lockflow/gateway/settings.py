"""Gateway settings: its own, what it reads sources with, and how it verifies tokens (lockflow.access)."""

from pathlib import Path

from pydantic import Field

from lockflow.access.settings import AccessSettings
from lockflow.sources.settings import SourceSettings


class GatewaySettings(SourceSettings, AccessSettings):
    """Where the API listens and what it accepts."""

    host: str = "127.0.0.1"
    port: int = 8000
    max_upload_bytes: int = 200 * 1024 * 1024
    # Every other request body (JSON, forms): refused with 413 past this before any handler reads it.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    allowed_dirs: list[Path] = Field(default_factory=list)
    # `lockflow up`: the composition root runs every worker in the gateway's process (embedded).
    start_workers: bool = False
    # Per user, counted across every gateway replica when a Redis URL is set.
    decisions_per_minute: int = 60
    # A live stream (run events, alerts) ends after this long; the browser reconnects with Last-Event-ID.
    stream_max_seconds: float = Field(default=900.0, gt=0, le=86_400)
    # A decision's deadline: the orchestrator alerts on a gate open longer than this (the same variable,
    # LOCKFLOW_ALERT_GATE_DEADLINE_SECONDS, it reads); the inbox and the monitoring page show it.
    alert_gate_deadline_seconds: float = Field(default=86_400, gt=0)
    # `lockflow serve` only: this many server processes share the port (uvicorn workers), so the API
    # uses more than one core. Every per-process state is safe to multiply (see docs/architecture.md).
    gateway_workers: int = Field(default=1, ge=1, le=64)
    # Distributed mode: the auth service's base URL. Its routes (/auth/*, /shares, /audit, /.well-known)
    # are then forwarded there, so the web UI and clients need the gateway's address only.
    auth_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(/[^\s]*)?$")

    def source_dirs(self) -> list[Path]:
        """Folders a run may read a registered path from: the configured ones, the upload folder."""
        return [p.resolve() for p in (*self.allowed_dirs, self.upload_dir())]

    def upload_dir(self) -> Path:
        """Where uploaded files are stored."""
        return (self.home / "uploads").resolve()
