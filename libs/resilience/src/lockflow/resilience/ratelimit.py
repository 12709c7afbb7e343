"""Per-user moving-window rate limits (`limits`), in memory or in Redis (one count for every replica)."""

import time

import redis
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

from lockflow.common.errors import LockflowError
from lockflow.common.logging import get_logger

log = get_logger(__name__)


class RateLimited(LockflowError):
    """Too many requests from one user; `retry_after` says when the next one will be accepted."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimiter:
    """At most `limit` events per user in any `window` seconds (a moving window: no burst at a boundary).

    A refused attempt is not counted, so a client that waits gets through. The window is whole
    seconds (the `limits` package's granularity).
    """

    def __init__(
        self, *, limit: int, window: float = 60.0, name: str = "uploads", storage: Storage | None = None
    ) -> None:
        if limit < 1 or window < 1 or window != int(window):
            raise ValueError(f"a rate limit needs limit >= 1 and a window of whole seconds, not {window}")
        self.limit = limit
        self.window = window
        self.name = name
        self.storage = storage if storage is not None else MemoryStorage()
        self._item = RateLimitItemPerSecond(limit, int(window))
        self._limiter = MovingWindowRateLimiter(self.storage)

    def hit(self, user: str) -> None:
        """Count one event for the user, or raise RateLimited when the window is full."""
        if self._limiter.hit(self._item, self.name, user):
            return
        reset_at, _ = self._limiter.get_window_stats(self._item, self.name, user)
        wait = min(max(reset_at - time.time(), 0.0), self.window)
        raise RateLimited(
            f"{user} has made {self.limit} {self.name} in the last {self.window:.0f} s "
            f"(limit {self.limit}); try again in {wait:.0f} s",
            retry_after=wait,
        )


class RedisRateLimiter(RateLimiter):
    """A RateLimiter counting in Redis (keys under `<prefix>:rate`): one limit for every replica.

    While Redis does not answer, this process counts by itself (the limit then holds per replica)
    rather than refusing or failing every request.
    """

    def __init__(
        self,
        client: "redis.Redis",
        *,
        name: str,
        limit: int,
        window: float = 60.0,
        prefix: str = "lockflow",
    ) -> None:
        # The caller's connection pool, so the limiter adds no connections of its own.
        pool = client.connection_pool
        storage = RedisStorage("redis://", connection_pool=pool, key_prefix=f"{prefix}:rate")
        super().__init__(limit=limit, window=window, name=name, storage=storage)
        self.fallback = RateLimiter(limit=limit, window=window, name=name)

    def hit(self, user: str) -> None:
        """Count one event for the user in Redis (in this process while Redis is away)."""
        try:
            super().hit(user)
        except redis.RedisError as exc:
            log.warning("rate_counted_locally", limit=self.name, error=repr(exc))
            self.fallback.hit(user)
