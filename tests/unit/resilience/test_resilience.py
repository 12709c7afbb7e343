"""lockflow.resilience's wrappers: retry waits and limits, circuits by name, moving-window rate limits."""

import threading
import time
from collections.abc import Callable

import pytest

from lockflow.common.errors import LockflowError
from lockflow.resilience import CircuitBreakers, CircuitOpen, RateLimited, RateLimiter, retrying


class Flaky(Exception):
    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__("flaky")
        self.retry_after = retry_after


def failing(times: int, *, retry_after: float | None = None) -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise Flaky(retry_after)
        return "ok"

    return calls, call


def test_retry_backs_off_exponentially_and_returns_the_result() -> None:
    slept: list[float] = []
    calls, call = failing(3)
    result = retrying(attempts=4, backoff=0.5, retry_on=Flaky, sleep=slept.append)(call)
    assert result == "ok" and len(calls) == 4
    assert slept == [0.5, 1.0, 2.0]  # backoff * 2**n, and no wait after the last attempt


def test_retry_waits_what_the_failure_says_and_reraises_the_last_failure_itself() -> None:
    slept: list[float] = []
    calls, call = failing(5, retry_after=7.0)
    with pytest.raises(Flaky):  # the failure itself, not tenacity's RetryError
        retrying(attempts=3, backoff=0.5, retry_on=Flaky, sleep=slept.append)(call)
    assert len(calls) == 3 and slept == [7.0, 7.0]


def test_retry_stops_at_once_on_any_other_error() -> None:
    slept: list[float] = []
    calls: list[int] = []

    def call() -> None:
        calls.append(1)
        raise ValueError("final")

    with pytest.raises(ValueError, match="final"):
        retrying(attempts=5, backoff=0.1, retry_on=Flaky, sleep=slept.append)(call)
    assert calls == [1] and slept == []


def test_circuits_are_per_name_and_ignored_errors_do_not_count() -> None:
    breakers = CircuitBreakers(threshold=2, cooldown=60, ignore=(KeyError,))
    for _ in range(5):
        with pytest.raises(KeyError), breakers.guard("a"):
            raise KeyError("the caller's fault")
    assert breakers.state("a") == "closed"
    for _ in range(2):
        with pytest.raises(OSError), breakers.guard("a"):
            raise OSError("down")
    with pytest.raises(CircuitOpen) as refused, breakers.guard("a"):
        pytest.fail("an open circuit must not run the block")
    assert isinstance(refused.value, LockflowError) and 59 <= refused.value.retry_in <= 60
    assert "not calling it for another 60 s" in str(refused.value)
    with breakers.guard("b"):  # another host has a circuit of its own
        pass


def test_a_success_resets_the_failure_count() -> None:
    breakers = CircuitBreakers(threshold=2, cooldown=60)
    for _ in range(3):
        with pytest.raises(OSError), breakers.guard("h"):
            raise OSError("down")
        with breakers.guard("h"):
            pass
    assert breakers.state("h") == "closed"


def test_a_failed_trial_opens_the_circuit_again() -> None:
    breakers = CircuitBreakers(threshold=1, cooldown=1)
    with pytest.raises(OSError), breakers.guard("h"):
        raise OSError("down")
    time.sleep(1.05)
    with pytest.raises(OSError), breakers.guard("h"):  # the half-open trial fails
        raise OSError("still down")
    with pytest.raises(CircuitOpen), breakers.guard("h"):
        pass


def test_calls_through_one_circuit_run_concurrently() -> None:
    # The reason for purgatory over pybreaker: the breaker's lock is not held during the call.
    breakers = CircuitBreakers()
    inside = threading.Barrier(2, timeout=5)

    def call() -> None:
        with breakers.guard("h"):
            inside.wait()  # both calls must be inside the block at once, or this times out

    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not inside.broken


def test_rate_limit_is_a_moving_window_per_user_and_refusals_do_not_count() -> None:
    limiter = RateLimiter(limit=2, window=1, name="decisions")
    limiter.hit("ann")
    time.sleep(0.5)
    limiter.hit("ann")
    for _ in range(3):
        with pytest.raises(RateLimited, match=r"ann has made 2 decisions in the last 1 s \(limit 2\)") as r:
            limiter.hit("ann")
        assert 0.3 < r.value.retry_after <= 0.55  # until the first hit leaves the window
    limiter.hit("bob")
    time.sleep(0.55)
    limiter.hit("ann")  # the first hit left the window; refused attempts were never counted
    with pytest.raises(RateLimited):
        limiter.hit("ann")


@pytest.mark.parametrize("window", [0, 0.5, 1.5])
def test_rate_limit_window_is_whole_seconds(window: float) -> None:
    with pytest.raises(ValueError, match="whole seconds"):
        RateLimiter(limit=1, window=window)
