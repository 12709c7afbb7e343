"""A per-user sliding-window rate limit (uploads), with an injectable clock for tests."""

import threading
import time
from collections import deque
from collections.abc import Callable

from lockflow.common.errors import LockflowError


class RateLimited(LockflowError):
    """Too many requests from one user; `retry_after` says when the next one will be accepted."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimiter:
    """At most `limit` events per user in any `window` seconds."""

    def __init__(
        self, *, limit: int, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, user: str) -> None:
        """Count one event for the user, or raise RateLimited when the window is full."""
        now = self.clock()
        with self._lock:
            events = self._events.setdefault(user, deque())
            while events and now - events[0] >= self.window:
                events.popleft()
            if len(events) >= self.limit:
                wait = self.window - (now - events[0])
                raise RateLimited(
                    f"{user} has made {len(events)} uploads in the last {self.window:.0f} s "
                    f"(limit {self.limit}); try again in {wait:.0f} s",
                    retry_after=wait,
                )
            events.append(now)
