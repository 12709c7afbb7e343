"""monitoring/alerts.yml: valid Prometheus rules, and each alert fires (or not) as its promtool test says."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "monitoring" / "alerts.yml"
ALERTS = {
    "LockflowTargetDown",
    "LockflowStageErrorRatioHigh",
    "LockflowConsumerLagGrowing",
    "LockflowDeadLettersGrowing",
    "LockflowDecisionPastSla",
    "LockflowRunsStuck",
    "LockflowWorkerHeartbeatStale",
}


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(
            "promtool is missing: `bash scripts/services.sh up` installs Debian's prometheus", pytrace=False
        )
    return found


def test_rules_are_valid() -> None:
    result = subprocess.run([_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


def test_every_alert_has_a_promtool_test_and_they_pass() -> None:
    tests = ROOT / "monitoring" / "tests" / "alerts_test.yml"
    text = tests.read_text()
    assert {name for name in ALERTS if f"alertname: {name}" in text} == ALERTS
    result = subprocess.run([_promtool(), "test", "rules", str(tests)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
