"""When a running stream's gate 2 opens again, and what it shows: pure rules over window results.

Gate 2 first opens when the stream's first window closes. Once a policy is in force, a window reopens
it (a new decision request and an alert; the stream goes on under the policy in force) for:
- a finding kind the policy has no rule for (`new_kind:<kind>`);
- a contract violation rate above the policy's `reopen_violation_rate` (`violation_rate`);
- a quality score more than `reopen_score_drop` points below the mean of the last windows (`score_drop`).
A reason a person has decided on is acknowledged and does not reopen the gate again while it holds:
a new kind stays acknowledged, a rate or a drop only until a window is back within bounds (so it
reopens the next time it happens, not at every window while it lasts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lockflow.common.streams import (
    STREAM_FINDING_KINDS,
    StreamPolicy,
    WindowResult,
    counted,
    stream_finding_facts,
)

RECENT_WINDOWS = 5  # the score drop is measured against the mean of this many windows before


@dataclass(frozen=True)
class Reopen:
    """One reason to ask a person again."""

    key: str
    reason: str


def violation_rate(window: WindowResult) -> float:
    """Contract violations per record in the window."""
    return window.findings.get("contract_violation", 0) / window.records if window.records else 0.0


def reopen_reasons(
    window: WindowResult, policy: StreamPolicy, recent_scores: Sequence[float]
) -> list[Reopen]:
    """Why this window, under this policy, should reopen gate 2 (empty: it should not)."""
    reasons = []
    covered = {rule.kind for rule in policy.rules}
    for kind in STREAM_FINDING_KINDS:
        if window.findings.get(kind, 0) > 0 and kind not in covered:
            said = f"{counted(kind, window.findings[kind])}, which policy v{policy.version} has no rule for"
            reasons.append(Reopen(f"new_kind:{kind}", said))
    rate = violation_rate(window)
    if rate > policy.reopen_violation_rate:
        reasons.append(
            Reopen(
                "violation_rate",
                f"contract violations in {rate:.1%} of records, above the policy's "
                f"{policy.reopen_violation_rate:.1%}",
            )
        )
    earlier = list(recent_scores)[-RECENT_WINDOWS:]
    if earlier:
        mean = sum(earlier) / len(earlier)
        drop = mean - window.quality_score
        if drop > policy.reopen_score_drop:
            said = (
                f"quality score {window.quality_score:.1f}, {drop:.1f} points below the last {len(earlier)} "
                f"windows' mean of {mean:.1f} (more than {policy.reopen_score_drop:g})"
            )
            reasons.append(Reopen("score_drop", said))
    return reasons


def still_acknowledged(acknowledged: Sequence[str], reasons: Sequence[Reopen]) -> list[str]:
    """The acknowledged reasons that still hold: new kinds always, a rate or a drop while it lasts."""
    now = {r.key for r in reasons}
    return [key for key in acknowledged if key.startswith("new_kind:") or key in now]


def to_ask(reasons: Sequence[Reopen], acknowledged: Sequence[str]) -> list[Reopen]:
    """The reasons no person has decided on yet."""
    return [r for r in reasons if r.key not in set(acknowledged)]


def kinds_seen(windows: Sequence[WindowResult]) -> list[str]:
    """The finding kinds with at least one record in any of the windows, in the table's order."""
    return [k for k in STREAM_FINDING_KINDS if any(w.findings.get(k, 0) > 0 for w in windows)]


def gate_two_context(
    windows: Sequence[WindowResult],
    *,
    policy: StreamPolicy | None,
    contract: dict[str, Any],
    reasons: Sequence[Reopen] = (),
) -> dict[str, Any]:
    """What gate 2 of a stream shows: per finding kind, how often it was seen and the actions it allows."""
    seen = set(kinds_seen(windows))
    rules = {r.kind: r.model_dump(mode="json") for r in policy.rules} if policy else {}
    kinds = []
    for kind in STREAM_FINDING_KINDS:
        facts = stream_finding_facts(kind)
        kinds.append(
            {
                "kind": kind,
                "label": facts.label,
                "words": facts.words,
                "seen": kind in seen,
                "records": sum(w.findings.get(kind, 0) for w in windows),
                "default_action": facts.default_action,
                "actions": list(facts.actions),
                "rule": rules.get(kind),
            }
        )
    records = sum(w.records for w in windows)
    return {
        "stream": True,
        "windows": [
            {
                "window_start": w.window_start.isoformat(),
                "window_end": w.window_end.isoformat(),
                "records": w.records,
                "quality_score": w.quality_score,
                "findings": dict(w.findings),
                "policy_version": w.policy_version,
                "mode": w.mode,
            }
            for w in windows
        ],
        "records": records,
        "score": windows[-1].quality_score if windows else None,
        "kinds": kinds,
        "required_kinds": [k for k in STREAM_FINDING_KINDS if k in seen],
        "fields": sorted((contract.get("properties") or {}).keys()),
        "policy": policy.model_dump(mode="json") if policy else None,
        "reasons": [r.reason for r in reasons],
        "reopen_violation_rate": policy.reopen_violation_rate if policy else 0.05,
        "reopen_score_drop": policy.reopen_score_drop if policy else 15.0,
    }
