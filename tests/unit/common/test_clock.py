"""The one clock data is judged by: system or frozen, from LOCKFLOW_AS_OF, built once per process."""

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from lockflow import cli_run
from lockflow.bootstrap import build_system
from lockflow.common.clock import FixedClock, SystemClock, clock_as_of
from lockflow.common.settings import CommonSettings


def test_system_clock_is_utc_aware_and_now() -> None:
    clock = SystemClock()
    before = datetime.now(UTC)
    now = clock.now()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)
    assert before <= now <= datetime.now(UTC)
    assert clock.today() in (before.date(), datetime.now(UTC).date())


def test_fixed_clock_stays_put_and_reads_offsets_and_naive_times_as_utc() -> None:
    clock = FixedClock(datetime(2027, 6, 1, 1, 30, tzinfo=timezone(timedelta(hours=3))))
    assert clock.now() == datetime(2027, 5, 31, 22, 30, tzinfo=UTC) and clock.now().tzinfo is UTC
    assert clock.today() == date(2027, 5, 31)  # the UTC date, not the one at +03:00
    assert clock.now() == clock.now()
    assert FixedClock(datetime(2027, 6, 1, 12)).now() == datetime(2027, 6, 1, 12, tzinfo=UTC)


def test_clock_as_of_a_date_is_its_midnight_utc_and_none_is_the_system_clock() -> None:
    assert clock_as_of(date(2027, 6, 1)).now() == datetime(2027, 6, 1, tzinfo=UTC)
    assert isinstance(clock_as_of(None), SystemClock)


@pytest.mark.parametrize(
    ("value", "today"),
    [("2027-06-01", date(2027, 6, 1)), ("2027-06-01T23:30:00-02:00", date(2027, 6, 2))],
)
def test_setting_freezes_the_clock(monkeypatch: pytest.MonkeyPatch, value: str, today: date) -> None:
    monkeypatch.setenv("LOCKFLOW_AS_OF", value)
    clock = CommonSettings().clock()
    assert isinstance(clock, FixedClock) and clock.today() == today


def test_unset_setting_is_the_system_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOCKFLOW_AS_OF", raising=False)
    assert CommonSettings().as_of is None and isinstance(CommonSettings().clock(), SystemClock)


def test_a_bad_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCKFLOW_AS_OF", "2027-02-30")
    with pytest.raises(ValueError, match="as_of"):
        CommonSettings()


def test_composition_root_builds_the_clock_once_and_hands_it_to_the_stages(tmp_path: Path) -> None:
    system = build_system(CommonSettings(home=tmp_path, as_of=datetime(2030, 1, 2)))
    frozen = FixedClock(datetime(2031, 5, 5, tzinfo=UTC))
    overridden = build_system(CommonSettings(home=tmp_path), clock=frozen)
    try:
        assert system.clock.today() == date(2030, 1, 2)
        assert system.deps.clock is system.clock
        assert overridden.deps.clock is frozen
    finally:
        system.db.dispose()
        overridden.db.dispose()


def test_gate5_due_dates_are_judged_by_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """2029-06-01 is in the future today, but in the past for a run judged as of 2030-01-01."""
    answers = iter(["choose", "1=ana@2029-06-01", "1=ana@2030-02-01", ""])
    monkeypatch.setattr(cli_run.Prompt, "ask", lambda *a, **k: next(answers))
    request: dict[str, Any] = {
        "gate": "action_selection",
        "options": [{"name": "choose"}, {"name": "abort"}],
        "context": {"items": [{"id": "act-1"}, {"id": "act-2"}]},
    }
    console = Console(record=True, width=200)
    decision = cli_run.ask(request, console, clock=FixedClock(datetime(2030, 1, 1, tzinfo=UTC)))
    assert "due date 2029-06-01 is in the past (today is 2030-01-01)" in console.export_text()
    assert decision.params == {
        "selected": ["act-1"],
        "owners": {"act-1": "ana"},
        "due": {"act-1": "2030-02-01"},
    }
