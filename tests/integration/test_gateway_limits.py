"""The gateway's per-user rate limit in real Redis: two replicas (two clients) share one count."""

import time
import uuid

import pytest
import redis

from lockflow.gateway.limits import make_limiter
from lockflow.resilience import RateLimited, RateLimiter, RedisRateLimiter


def test_two_replicas_share_the_decision_limit(redis_url: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    one, two = (
        RedisRateLimiter(
            redis.Redis.from_url(redis_url), name="decisions", limit=3, window=1.0, prefix=prefix
        )
        for _ in range(2)
    )
    one.hit("ana")
    two.hit("ana")
    one.hit("ana")
    with pytest.raises(RateLimited) as refused:
        two.hit("ana")
    assert 0 < refused.value.retry_after <= 1.0 and "limit 3" in str(refused.value)
    two.hit("bo")  # each user has a count of their own
    time.sleep(1.05)
    one.hit("ana")  # the window slid past; refused attempts did not count


def test_without_redis_the_limit_is_in_process() -> None:
    assert isinstance(make_limiter(None, name="uploads", limit=2, prefix="x"), RateLimiter)
