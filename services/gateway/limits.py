"""Per-user rate limits on uploads and decisions: in Redis (shared by every gateway replica) or in-process."""

import time
import uuid
from typing import Protocol

import redis

from lockflow.ingest.ratelimit import RateLimited, RateLimiter


class Limiter(Protocol):
    """Counts one event for a user or raises RateLimited."""

    def hit(self, user: str) -> None:
        """Count one event for the user, or raise RateLimited when the window is full."""


class RedisRateLimiter:
    """At most `limit` events per user in any `window` seconds, in a Redis sorted set per user.

    Every replica counts into the same set, so the limit holds for the whole deployment.
    """

    def __init__(
        self, client: "redis.Redis", *, name: str, limit: int, window: float = 60.0, prefix: str = "lockflow"
    ) -> None:
        self.client = client
        self.name = name
        self.limit = limit
        self.window = window
        self.prefix = f"{prefix}:rate:{name}:"

    def hit(self, user: str) -> None:
        """Count one event for the user, or raise RateLimited when the window is full."""
        now, key, member = time.time(), self.prefix + user, uuid.uuid4().hex
        pipe = self.client.pipeline(transaction=True)
        pipe.zremrangebyscore(key, "-inf", now - self.window)
        pipe.zadd(key, {member: now})
        pipe.zcard(key)
        pipe.zrange(key, 0, 0, withscores=True)
        pipe.expire(key, int(self.window) + 1)
        _, _, count, oldest, _ = pipe.execute()
        if int(count) <= self.limit:
            return
        # Over the limit: this attempt does not count, so a client that waits gets through.
        self.client.zrem(key, member)
        wait = max(self.window - (now - oldest[0][1]), 0.0) if oldest else self.window
        raise RateLimited(
            f"{user} has made {self.limit} {self.name} in the last {self.window:.0f} s "
            f"(limit {self.limit}); try again in {wait:.0f} s",
            retry_after=wait,
        )


def make_limiter(client: "redis.Redis | None", *, name: str, limit: int, prefix: str) -> Limiter:
    """A Redis-backed limiter when there is a Redis client, else an in-process one."""
    if client is not None:
        return RedisRateLimiter(client, name=name, limit=limit, prefix=prefix)
    return RateLimiter(limit=limit, window=60.0)
