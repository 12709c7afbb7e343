"""Which alerts a fact raises, and how one is told to a webhook: pure rules, no database, no HTTP.

Four kinds: a stage failed; a gate waited past its deadline; a run's quality score fell below the
threshold or sharply below the mean of its source's previous runs; a stream's window reopened its
quality policy's gate (stream_rules.py says when). The webhook message is Slack's
incoming-webhook JSON (`text` plus `blocks`), signed like Slack's own requests: HMAC-SHA256 of
`v0:<timestamp>:<body>` with the shared secret, so a receiver can refuse a forged or replayed call.
"""

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

SIGNATURE_VERSION = "v0"


@dataclass(frozen=True)
class AlertRules:
    """The thresholds: a score below `quality_min`, or `quality_drop` below the mean of the source's last
    `history` runs; a gate open longer than `gate_deadline`. Scores are on the quality stage's 0-100
    scale, the one people see at gate 2 and in the report."""

    quality_min: float = 60.0
    quality_drop: float = 15.0
    history: int = 5
    gate_deadline: timedelta = timedelta(hours=24)


@dataclass(frozen=True)
class AlertDraft:
    """An alert to store (once per dedup key) and to deliver."""

    kind: str
    severity: str
    run_id: str | None
    subject: str | None
    title: str
    detail: str
    dedup_key: str


@dataclass(frozen=True)
class OpenGate:
    """A decision request still waiting, as the deadline rule sees it."""

    request_id: str
    run_id: str
    gate: str
    asked_at: datetime


def stage_failed(run_id: str, *, stage: str, attempt_id: str, error: str) -> AlertDraft:
    """A stage ended its attempt with StageFailed: the run stopped at that step."""
    return AlertDraft(
        kind="stage_failed",
        severity="critical",
        run_id=run_id,
        subject=stage,
        title=f"Stage {stage} failed",
        detail=error[:2000],
        dedup_key=f"stage_failed:{attempt_id}",
    )


def quality_alerts(
    run_id: str, *, source: str, score: float, previous: Sequence[float], rules: AlertRules
) -> list[AlertDraft]:
    """A low score and a sharp drop against the source's previous runs (most recent first)."""
    drafts = []
    if score < rules.quality_min:
        drafts.append(
            AlertDraft(
                kind="quality_low",
                severity="warning",
                run_id=run_id,
                subject=source,
                title=f"Quality score {score:.1f} is below {rules.quality_min:.1f}",
                detail=f"The data of {source} scored {score:.1f}; the threshold is {rules.quality_min:.1f}.",
                dedup_key=f"quality_low:{run_id}",
            )
        )
    earlier = list(previous)[: rules.history]
    if earlier:
        mean = sum(earlier) / len(earlier)
        if mean - score > rules.quality_drop:
            drafts.append(
                AlertDraft(
                    kind="quality_drop",
                    severity="warning",
                    run_id=run_id,
                    subject=source,
                    title=f"Quality score fell to {score:.1f} from a mean of {mean:.1f}",
                    detail=f"{source}: {score:.1f} against {mean:.1f} over its last {len(earlier)} runs "
                    f"(more than {rules.quality_drop:.1f} lower).",
                    dedup_key=f"quality_drop:{run_id}",
                )
            )
    return drafts


def stream_gate_reopened(
    stream_id: str, *, topic: str, window_start: datetime, reasons: Sequence[str]
) -> AlertDraft:
    """A stream's window reopened its gate 2 (the stream goes on under the policy in force)."""
    return AlertDraft(
        kind="stream_gate_reopened",
        severity="warning",
        run_id=stream_id,
        subject=topic,
        title=f"Stream {topic}: the quality policy needs a decision again",
        detail=f"The window from {window_start.isoformat()} showed " + "; ".join(reasons) + ".",
        dedup_key=f"stream_gate_reopened:{stream_id}:{window_start.isoformat()}",
    )


def overdue_gates(open_gates: Sequence[OpenGate], *, now: datetime, rules: AlertRules) -> list[AlertDraft]:
    """One alert per decision request waiting longer than the deadline."""
    return [
        AlertDraft(
            kind="gate_overdue",
            severity="warning",
            run_id=gate.run_id,
            subject=gate.gate,
            title=f"Decision {gate.gate} waits past its deadline",
            detail=f"Asked {gate.asked_at.isoformat()}; the deadline is {rules.gate_deadline} after asking.",
            dedup_key=f"gate_overdue:{gate.request_id}",
        )
        for gate in open_gates
        if now - gate.asked_at > rules.gate_deadline
    ]


def slack_message(alert: dict[str, Any], *, run_url: str | None) -> dict[str, Any]:
    """The alert as Slack incoming-webhook JSON: a plain `text` fallback and blocks with the run's link."""
    icon = ":red_circle:" if alert["severity"] == "critical" else ":warning:"
    link = f" <{run_url}|Open the run>" if run_url else ""
    text = f"{icon} {alert['title']}{link}"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{alert['title']}*\n{alert['detail']}"}},
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"lockflow alert {alert['id']} · {alert['kind']}"}],
        },
    ]
    if run_url:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Open the run"}, "url": run_url}
                ],
            }
        )
    return {"text": text, "blocks": blocks, "lockflow": {**alert, "run_url": run_url}}


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`v0=<hex>`: HMAC-SHA256 of `v0:<timestamp>:<body>` (Slack's signing scheme)."""
    base = f"{SIGNATURE_VERSION}:{timestamp}:".encode() + body
    return f"{SIGNATURE_VERSION}=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def backoff(attempts: int, *, base_seconds: float = 2.0, cap_seconds: float = 300.0) -> timedelta:
    """Wait before the next delivery after `attempts` failed ones: doubling, capped."""
    return timedelta(seconds=min(cap_seconds, base_seconds * 2 ** max(0, attempts - 1)))
