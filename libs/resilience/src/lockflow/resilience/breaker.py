"""Circuit breakers by name (one per host, say) on purgatory's state machine.

A circuit opens after `threshold` consecutive failures and refuses calls at once (CircuitOpen)
until `cooldown` seconds pass; then it is half-open: the next call is a trial that closes it
on success or opens it again on failure. An exception listed in `ignore` passes through
without counting as a failure (a refusal of the caller's own input is not the service failing).

purgatory rather than pybreaker: pybreaker holds one lock across the guarded call, so every call
through a breaker (every request to one host, from every run) would wait for the one before it.
Here the lock covers the state changes only, before and after the call, never the call itself.
"""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from purgatory import SyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

from lockflow.common.errors import LockflowError


class CircuitOpen(LockflowError):
    """A call was refused because its circuit is open; `retry_in` says for how much longer."""

    def __init__(self, message: str, *, name: str, retry_in: float) -> None:
        super().__init__(message)
        self.name = name
        self.retry_in = retry_in


class CircuitBreakers:
    """Named circuits sharing one threshold and cool-down; `guard(name)` wraps one call."""

    def __init__(
        self,
        *,
        threshold: int = 5,
        cooldown: float = 30.0,
        ignore: tuple[type[BaseException], ...] = (),
    ) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._factory = SyncCircuitBreakerFactory(
            default_threshold=threshold, default_ttl=cooldown, exclude=list(ignore)
        )
        self._lock = threading.Lock()

    @contextmanager
    def guard(self, name: str) -> Iterator[None]:
        """Run the block through the named circuit: CircuitOpen if open, a failure counted if it raises."""
        with self._lock:
            breaker = self._factory.get_breaker(name)
            try:
                breaker.__enter__()
            except OpenedState as opened:
                left = max(0.0, opened.opened_at + self.cooldown - time.time())
                raise CircuitOpen(
                    f"the circuit for {name} is open after {self.threshold} consecutive failures; "
                    f"not calling it for another {left:.0f} s",
                    name=name,
                    retry_in=left,
                ) from None
        try:
            yield
        except BaseException as exc:
            with self._lock:
                breaker.__exit__(type(exc), exc, exc.__traceback__)
            raise
        with self._lock:
            breaker.__exit__(None, None, None)

    def state(self, name: str) -> str:
        """The named circuit's state: closed, opened or half-opened."""
        with self._lock:
            return self._factory.get_breaker(name).context.state
