"""Request limits: per-user rates on uploads and decisions (Redis or in-process), and body sizes."""

import time
import uuid
from typing import Protocol

import redis
from starlette.types import ASGIApp, Receive, Scope, Send

from lockflow.common.asgi import read_at_most, refuse_too_large, replay
from lockflow.common.logging import get_logger
from lockflow.ingest.ratelimit import RateLimited, RateLimiter

log = get_logger(__name__)


class Limiter(Protocol):
    """Counts one event for a user or raises RateLimited."""

    def hit(self, user: str) -> None:
        """Count one event for the user, or raise RateLimited when the window is full."""


class RedisRateLimiter:
    """At most `limit` events per user in any `window` seconds, in a Redis sorted set per user.

    Every replica counts into the same set, so the limit holds for the whole deployment. While Redis
    does not answer, this process counts by itself (the limit then holds per replica).
    """

    def __init__(
        self, client: "redis.Redis", *, name: str, limit: int, window: float = 60.0, prefix: str = "lockflow"
    ) -> None:
        self.client = client
        self.name = name
        self.limit = limit
        self.window = window
        self.prefix = f"{prefix}:rate:{name}:"
        self.fallback = RateLimiter(limit=limit, window=window)

    def hit(self, user: str) -> None:
        """Count one event for the user, or raise RateLimited when the window is full."""
        try:
            self._hit(user)
        except redis.RedisError as exc:
            log.warning("rate_counted_locally", limit=self.name, error=repr(exc))
            self.fallback.hit(user)

    def _hit(self, user: str) -> None:
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


# Multipart framing around an upload's bytes (boundaries, part headers, the form's small fields).
MULTIPART_ALLOWANCE = 64 * 1024


class BodyLimit:
    """ASGI middleware: 413 for a request body over the route's limit, before any handler reads it.

    Every route gets `max_body_bytes` (JSON and form bodies); the upload routes get their own, larger
    limit, checked here against the declared Content-Length and by the handler while it streams to disk.
    A declared Content-Length over the limit is refused at once; a body without one (chunked) is
    counted as it arrives and refused as soon as it passes the limit, so nobody waits for 100 MB.
    """

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, max_upload_bytes: int, upload_paths: tuple[str, ...]
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes
        self.upload_paths = upload_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = scope["path"] in self.upload_paths
        limit = self.max_upload_bytes + MULTIPART_ALLOWANCE if upload else self.max_body_bytes
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            what = f"upload exceeds {self.max_upload_bytes} bytes" if upload else None
            await refuse_too_large(send, self.max_body_bytes, detail=what)
            return
        if upload:  # streamed to disk by the handler, which stops at the upload limit itself
            await self.app(scope, receive, send)
            return
        body = await read_at_most(receive, limit)
        if body is None:
            await refuse_too_large(send, limit)
            return
        await self.app(scope, replay(body, receive), send)
