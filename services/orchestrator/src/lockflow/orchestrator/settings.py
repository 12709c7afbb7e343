"""The orchestrator's settings: the common ones and its alerts (thresholds, deadline, webhook)."""

from pydantic import Field, SecretStr

from lockflow.common.settings import CommonSettings


class OrchestratorSettings(CommonSettings):
    """LOCKFLOW_* variables the orchestrator reads."""

    alert_webhook_url: str | None = Field(
        default=None,
        description="Where alerts are POSTed (Slack-compatible JSON); unset: stored and shown only",
    )
    alert_webhook_secret: SecretStr | None = Field(
        default=None,
        description="Signs each webhook call (X-Lockflow-Signature, HMAC-SHA256); unset: unsigned",
    )
    alert_webhook_attempts: int = Field(
        default=8, ge=1, le=50, description="Deliveries tried before giving up"
    )
    # On the quality score's own 0-100 scale (gate 2, the report, the monitoring page).
    alert_quality_min: float = Field(
        default=60.0, ge=0, le=100, description="A quality score (0-100) below this alerts"
    )
    alert_quality_drop: float = Field(
        default=15.0,
        ge=0,
        le=100,
        description="A score this many points below the source's recent mean alerts",
    )
    alert_gate_deadline_seconds: float = Field(
        default=86_400, gt=0, description="A decision waiting longer than this alerts"
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000", description="The gateway's address people open (links in alerts)"
    )
