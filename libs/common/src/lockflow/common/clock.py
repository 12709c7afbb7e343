"""The one clock that judges data against "now": staleness, time gaps, due dates.

Built once per process in the composition root (`lockflow.bootstrap.build_system`) from
`LOCKFLOW_AS_OF` (unset: the system clock) and handed to what compares data with today, so a run
can be repeated "as of" a date and tests can freeze time. Timestamps that record when something
happened (an event's `occurred_at`, a decision's `decided_at`, a report's `generated_at`) and
security times (token expiry, login throttles, rate-limit windows) stay on the real clock: a frozen
clock there would let a token outlive its expiry or a limit never reset.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Protocol


class Clock(Protocol):
    """What "now" is for judging data."""

    def now(self) -> datetime:
        """The current instant, timezone-aware in UTC."""
        ...

    def today(self) -> date:
        """The current date in UTC."""
        ...


@dataclass(frozen=True)
class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        """The current instant in UTC."""
        return datetime.now(UTC)

    def today(self) -> date:
        """Today's date in UTC."""
        return self.now().date()


@dataclass(frozen=True)
class FixedClock:
    """A clock stopped at one instant (a naive `at` is read as UTC)."""

    at: datetime

    def __post_init__(self) -> None:
        at = self.at.replace(tzinfo=UTC) if self.at.tzinfo is None else self.at.astimezone(UTC)
        object.__setattr__(self, "at", at)  # frozen: normalised once, here

    def now(self) -> datetime:
        """The frozen instant in UTC."""
        return self.at

    def today(self) -> date:
        """The frozen instant's date in UTC."""
        return self.at.date()


def clock_as_of(as_of: datetime | date | None) -> Clock:
    """A clock frozen at `as_of` (a date means its midnight UTC), or the system clock when None."""
    if as_of is None:
        return SystemClock()
    if not isinstance(as_of, datetime):
        as_of = datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC)
    return FixedClock(as_of)
