"""Retry with backoff (tenacity), honouring a server's Retry-After when the failure carries one."""

import time
from collections.abc import Callable
from typing import Any

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_base, wait_exponential


def wait_retry_after_or(fallback: wait_base) -> Callable[[RetryCallState], float]:
    """Wait the failure's `retry_after` (seconds) when it has one, else what `fallback` says."""

    def wait(state: RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome is not None else None
        told = getattr(failure, "retry_after", None)
        return float(told) if told is not None else fallback(state)

    return wait


def retrying(
    *,
    attempts: int,
    backoff: float,
    retry_on: type[BaseException] | tuple[type[BaseException], ...],
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[RetryCallState], None] | None = None,
) -> Retrying:
    """Up to `attempts` tries of a block; after a `retry_on` failure wait Retry-After or backoff*2**n.

    Any other exception ends at once; the last failure is raised as itself (not a RetryError).
    Use as `for attempt in retrying(...): with attempt: ...`, or `retrying(...)(fn, *args)`.
    """
    options: dict[str, Any] = {"before_sleep": on_retry} if on_retry is not None else {}
    return Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait_retry_after_or(wait_exponential(multiplier=backoff, exp_base=2, min=0)),
        retry=retry_if_exception_type(retry_on),
        sleep=sleep,
        reraise=True,
        **options,
    )
