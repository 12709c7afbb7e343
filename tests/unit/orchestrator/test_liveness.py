"""The sweep's decisions: an attempt whose worker died is sent again at most N times, then fails."""

from datetime import UTC, datetime, timedelta

from lockflow.orchestrator.liveness import AttemptClock, LivenessPolicy, overdue_attempts

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
POLICY = LivenessPolicy(
    heartbeat_timeout=timedelta(seconds=60), stage_timeout=timedelta(seconds=600), max_dispatches=3
)


def attempt(
    *, heartbeat: datetime | None = None, deadline: datetime | None = None, dispatches: int = 1
) -> AttemptClock:
    return AttemptClock("a1", "r1", "analyse", T0, heartbeat, deadline, dispatches)


def test_a_beating_attempt_within_its_deadline_is_left_alone() -> None:
    beating = attempt(heartbeat=T0 + timedelta(seconds=100), deadline=T0 + timedelta(seconds=700))
    assert overdue_attempts([beating], T0 + timedelta(seconds=150), POLICY) == []


def test_a_waiting_attempt_is_left_alone_until_its_deadline() -> None:
    assert overdue_attempts([attempt()], T0 + timedelta(seconds=599), POLICY) == []


def test_a_silent_heartbeat_is_sent_again() -> None:
    (decision,) = overdue_attempts([attempt(heartbeat=T0)], T0 + timedelta(seconds=61), POLICY)
    assert decision.action == "redispatch"
    assert "stopped responding (no heartbeat for 60s)" in decision.reason


def test_the_third_silent_dispatch_fails_the_run_with_a_message() -> None:
    (decision,) = overdue_attempts([attempt(heartbeat=T0, dispatches=3)], T0 + timedelta(seconds=61), POLICY)
    assert decision.action == "fail"
    assert "sent 3 times (LOCKFLOW_MAX_DISPATCHES=3)" in decision.reason


def test_an_attempt_no_worker_picked_up_is_sent_again_after_the_stage_timeout() -> None:
    # An attempt from before heartbeats existed (no deadline) is judged from when it was requested.
    (decision,) = overdue_attempts([attempt()], T0 + timedelta(seconds=601), POLICY)
    assert decision.action == "redispatch"
    assert "no worker picked the attempt up within 600s" in decision.reason


def test_a_running_attempt_past_its_deadline_fails_without_another_dispatch() -> None:
    late = attempt(heartbeat=T0 + timedelta(seconds=650), deadline=T0 + timedelta(seconds=630))
    (decision,) = overdue_attempts([late], T0 + timedelta(seconds=660), POLICY)
    assert decision.action == "fail"
    assert "past its deadline" in decision.reason and "LOCKFLOW_STAGE_TIMEOUT_SECONDS" in decision.reason


def test_naive_database_times_count_as_utc() -> None:
    naive = AttemptClock("a1", "r1", "ingest", T0.replace(tzinfo=None), T0.replace(tzinfo=None), None, 1)
    (decision,) = overdue_attempts([naive], T0 + timedelta(seconds=61), POLICY)
    assert decision.action == "redispatch"
