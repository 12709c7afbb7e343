"""Resilience for calls that cross a process boundary: retry with backoff, circuit breakers, rate limits.

Thin wrappers over well-kept libraries, so every caller gets the same behaviour and messages:
retries are tenacity's, circuit breakers purgatory's, rate limits the `limits` package's moving
window (in memory or in Redis, shared by every replica).
"""

from lockflow.resilience.breaker import CircuitBreakers, CircuitOpen
from lockflow.resilience.ratelimit import RateLimited, RateLimiter, RedisRateLimiter
from lockflow.resilience.retry import retrying, wait_retry_after_or

__all__ = [
    "CircuitBreakers",
    "CircuitOpen",
    "RateLimited",
    "RateLimiter",
    "RedisRateLimiter",
    "retrying",
    "wait_retry_after_or",
]
