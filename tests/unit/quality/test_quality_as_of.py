"""Staleness and time gaps are judged against the clock given, not the machine's date."""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from lockflow.common.artifacts import LocalArtifactStore
from lockflow.common.cache import MemoryCache
from lockflow.common.clock import FixedClock
from lockflow.common.events import (
    ApplyResolutions,
    ApplyResolutionsPayload,
    AssessQuality,
    AssessQualityPayload,
    QualityAssessed,
    ResolutionsApplied,
)
from lockflow.common.models import DatasetRef
from lockflow.common.worker import StageDeps
from lockflow.datasets.canonical import infer_schema
from lockflow.quality.detect import assess
from lockflow.quality.detectors.base import STALE_AFTER_DAYS
from lockflow.quality.handlers import apply_chosen_resolutions, assess_quality

NEWEST = date(2025, 11, 30)


def daily(days: int = 200, gap: tuple[int, int] | None = None) -> pd.DataFrame:
    """One row a day up to NEWEST, optionally with a run of missing days."""
    dates = [NEWEST - timedelta(days=n) for n in range(days)][::-1]
    if gap is not None:
        dates = [d for i, d in enumerate(dates) if not gap[0] <= i < gap[1]]
    rng = np.random.default_rng(1)
    return pd.DataFrame({"day": pd.to_datetime(dates), "sales": rng.uniform(10, 20, len(dates))})


def by_category(frame: pd.DataFrame, as_of: date) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for f in assess(frame=frame, as_of=as_of).findings:
        found.setdefault(f.category, []).append(f.id)
    return found


def test_the_same_data_is_fresh_a_month_on_and_stale_two_years_later() -> None:
    frame = daily()
    month_on = NEWEST + timedelta(days=30)
    assert "staleness" not in by_category(frame, month_on)
    two_years = month_on + timedelta(days=730)
    stale = next(f for f in assess(frame=frame, as_of=two_years).findings if f.category == "staleness")
    assert stale.details["age_days"] == (two_years - NEWEST).days == 760
    assert stale.severity == "medium" and f"760 days before {two_years}" in stale.explanation
    three_years = NEWEST + timedelta(days=3 * STALE_AFTER_DAYS + 1)
    again = next(f for f in assess(frame=frame, as_of=three_years).findings if f.category == "staleness")
    # Old data is not wrong data: staleness stays medium however old (no high-severity false alarm).
    assert again.severity == "medium" and again.details["age_days"] == 3 * STALE_AFTER_DAYS + 1


def test_the_boundary_is_exactly_the_threshold() -> None:
    frame = daily()
    assert "staleness" not in by_category(frame, NEWEST + timedelta(days=STALE_AFTER_DAYS))
    assert "staleness" in by_category(frame, NEWEST + timedelta(days=STALE_AFTER_DAYS + 1))


def test_time_gaps_do_not_depend_on_the_date_judged_at() -> None:
    frame = daily(gap=(100, 104))
    soon, late = NEWEST + timedelta(days=1), NEWEST + timedelta(days=5000)
    assert by_category(frame, soon)["time_gaps"] == by_category(frame, late)["time_gaps"] == ["time_gaps:day"]


def _stored(tmp_path: Path, frame: pd.DataFrame, clock: FixedClock) -> tuple[StageDeps, DatasetRef]:
    deps = StageDeps(artifacts=LocalArtifactStore(tmp_path), cache=MemoryCache(), clock=clock)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return deps, deps.artifacts.put_table(table, columns=infer_schema(table))


def test_the_quality_handler_judges_by_the_clock_it_is_given(tmp_path: Path) -> None:
    frame = daily()
    for at, stale in (
        (datetime(2025, 12, 30, tzinfo=UTC), False),
        (datetime(2027, 12, 30, tzinfo=UTC), True),
    ):
        deps, dataset = _stored(tmp_path / str(at.year), frame, FixedClock(at))
        command = AssessQuality(run_id="r", payload=AssessQualityPayload(attempt_id="a", dataset=dataset))
        assessed = assess_quality(command, deps)
        assert isinstance(assessed, QualityAssessed)
        assert assessed.payload.as_of == at.date()
        assert ("staleness:day" in {f.id for f in assessed.payload.findings}) is stale

        # Applying re-assesses the data before and after; both are judged by the same clock.
        apply = ApplyResolutions(
            run_id="r",
            payload=ApplyResolutionsPayload(
                attempt_id="b", dataset=dataset, findings=assessed.payload.findings, choices=[]
            ),
        )
        applied = apply_chosen_resolutions(apply, deps)
        assert isinstance(applied, ResolutionsApplied)
        assert applied.payload.as_of == at.date()
        assert ("staleness:day" in {f.id for f in applied.payload.findings_after}) is stale
