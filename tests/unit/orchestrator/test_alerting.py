"""Alert rules (stage failed, quality low or dropping against the source's history, gate overdue), the
Slack-compatible message with the run's link, the HMAC signature and the delivery backoff."""

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

from lockflow.orchestrator.alerting import (
    AlertRules,
    OpenGate,
    backoff,
    overdue_gates,
    quality_alerts,
    signature,
    slack_message,
    stage_failed,
)

RULES = AlertRules(quality_min=60, quality_drop=15, history=3, gate_deadline=timedelta(hours=1))


def test_a_failed_stage_raises_one_critical_alert_per_attempt() -> None:
    alert = stage_failed("r1", stage="ingest", attempt_id="a1", error="the file has no rows")
    assert (alert.kind, alert.severity, alert.subject, alert.run_id) == (
        "stage_failed",
        "critical",
        "ingest",
        "r1",
    )
    assert alert.dedup_key == "stage_failed:a1"
    assert "no rows" in alert.detail


def test_quality_below_the_threshold_alerts() -> None:
    kinds = [a.kind for a in quality_alerts("r1", source="sales.csv", score=55, previous=[], rules=RULES)]
    assert kinds == ["quality_low"]
    assert quality_alerts("r1", source="sales.csv", score=60, previous=[], rules=RULES) == []


def test_a_sharp_drop_against_the_last_runs_alerts_and_older_runs_do_not_count() -> None:
    # The mean of the last three is 90; 74 is 16 below it; the fourth (20) is past the history.
    drops = quality_alerts("r9", source="s", score=74, previous=[90, 92, 88, 20], rules=RULES)
    assert [a.kind for a in drops] == ["quality_drop"]
    assert "90.0" in drops[0].title
    assert quality_alerts("r9", source="s", score=76, previous=[90, 92, 88, 20], rules=RULES) == []
    both = quality_alerts("r9", source="s", score=30, previous=[90], rules=RULES)
    assert sorted(a.kind for a in both) == ["quality_drop", "quality_low"]


def test_only_gates_open_past_the_deadline_alert() -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    gates = [
        OpenGate("q1", "r1", "source_review", now - timedelta(minutes=61)),
        OpenGate("q2", "r2", "quality_review", now - timedelta(minutes=59)),
    ]
    alerts = overdue_gates(gates, now=now, rules=RULES)
    assert [(a.run_id, a.subject, a.dedup_key) for a in alerts] == [
        ("r1", "source_review", "gate_overdue:q1")
    ]


def test_slack_message_has_text_blocks_and_the_run_link() -> None:
    alert = {"id": 7, "kind": "stage_failed", "severity": "critical", "title": "Stage ingest failed",
             "detail": "no rows", "run_id": "r1"}  # fmt: skip
    message = slack_message(alert, run_url="https://lockflow.example/runs/r1")
    assert message["text"].startswith(":red_circle: Stage ingest failed")
    assert "<https://lockflow.example/runs/r1|Open the run>" in message["text"]
    assert {b["type"] for b in message["blocks"]} == {"section", "context", "actions"}
    assert message["blocks"][2]["elements"][0]["url"] == "https://lockflow.example/runs/r1"
    json.dumps(message)  # serialisable as it is


def test_signature_is_hmac_sha256_of_version_timestamp_and_body() -> None:
    body = b'{"text":"x"}'
    expected = hmac.new(b"s3cret", b"v0:1700000000:" + body, hashlib.sha256).hexdigest()
    assert signature("s3cret", 1700000000, body) == f"v0={expected}"
    assert signature("other", 1700000000, body) != signature("s3cret", 1700000000, body)


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [2, 4, 8, 16]
    assert backoff(30).total_seconds() == 300


def test_the_default_thresholds_are_on_the_scale_of_the_quality_stages_score() -> None:
    """The rules once took 0-1 thresholds for a 0-100 score: `quality_low` could never fire."""
    import numpy as np
    from sklearn.datasets import load_iris

    from lockflow.quality.detect import assess

    iris = load_iris(as_frame=True).frame
    clean = assess(frame=iris).score
    rules = AlertRules()
    assert 60 < clean <= 100
    assert [a.kind for a in quality_alerts("r1", source="iris", score=clean, previous=[], rules=rules)] == []
    # Most of its cells blanked: the score falls well below the threshold, and against the clean runs.
    damaged = iris.mask(np.random.default_rng(3).random(iris.shape) < 0.8)
    low = assess(frame=damaged).score
    raised = quality_alerts("r2", source="iris", score=low, previous=[clean, clean], rules=rules)
    assert low < rules.quality_min and sorted(a.kind for a in raised) == ["quality_drop", "quality_low"]
