"""Which pending stage attempts are overdue, and what to do about each: pure, attempts + now in.

A worker marks its attempt when it starts it (heartbeat_at, and a new deadline_at) and every few
seconds while it runs. An attempt is overdue when
- its heartbeat is older than the heartbeat timeout: the worker died mid-attempt (a crash, an
  out-of-memory kill, a restart) -> sent again, at most `max_dispatches` times in all;
- no worker started it before its deadline: nobody consumes the stage's commands -> sent again,
  at most `max_dispatches` times in all;
- a worker started it and it is still running past its deadline (the worker stops an attempt at
  its own timeout, so this means the worker is stuck) -> the run fails: the same input would time
  out again.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal


@dataclass(frozen=True)
class AttemptClock:
    """The times of one pending attempt, as the sweep sees them."""

    id: str
    run_id: str
    step: str
    requested_at: datetime
    heartbeat_at: datetime | None
    deadline_at: datetime | None
    dispatches: int


@dataclass(frozen=True)
class LivenessPolicy:
    """How long an attempt may be silent or pending, and how often it is sent."""

    heartbeat_timeout: timedelta
    stage_timeout: timedelta
    max_dispatches: int


@dataclass(frozen=True)
class Overdue:
    """What the sweep does with one overdue attempt, and why (the words a person reads)."""

    attempt_id: str
    run_id: str
    step: str
    action: Literal["redispatch", "fail"]
    reason: str


def overdue_attempts(attempts: list[AttemptClock], now: datetime, policy: LivenessPolicy) -> list[Overdue]:
    """The decisions for every overdue attempt; attempts on time are left out."""
    found = []
    for attempt in attempts:
        decision = _judge(attempt, _aware(now), policy)
        if decision is not None:
            found.append(decision)
    return found


def _judge(attempt: AttemptClock, now: datetime, policy: LivenessPolicy) -> Overdue | None:
    heartbeat = _aware(attempt.heartbeat_at) if attempt.heartbeat_at else None
    deadline = (
        _aware(attempt.deadline_at)
        if attempt.deadline_at
        else _aware(attempt.requested_at) + policy.stage_timeout
    )
    if heartbeat is not None and now - heartbeat > policy.heartbeat_timeout:
        silent = int(policy.heartbeat_timeout.total_seconds())
        return _retry_or_fail(attempt, policy, f"the worker stopped responding (no heartbeat for {silent}s)")
    if now <= deadline:
        return None
    if heartbeat is None:
        waited = int(policy.stage_timeout.total_seconds())
        return _retry_or_fail(attempt, policy, f"no worker picked the attempt up within {waited}s")
    limit = int(policy.stage_timeout.total_seconds())
    return Overdue(
        attempt.id,
        attempt.run_id,
        attempt.step,
        "fail",
        f"the attempt ran past its deadline ({limit}s, LOCKFLOW_STAGE_TIMEOUT_SECONDS)",
    )


def _retry_or_fail(attempt: AttemptClock, policy: LivenessPolicy, why: str) -> Overdue:
    if attempt.dispatches < policy.max_dispatches:
        return Overdue(attempt.id, attempt.run_id, attempt.step, "redispatch", why)
    times = "once" if attempt.dispatches == 1 else f"{attempt.dispatches} times"
    return Overdue(
        attempt.id,
        attempt.run_id,
        attempt.step,
        "fail",
        f"{why}; the step was sent {times} (LOCKFLOW_MAX_DISPATCHES={policy.max_dispatches})",
    )


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every stored time is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)
