"""Timeliness: gaps in a time series and stale data."""

from datetime import UTC, date, datetime, timedelta

import numpy as np

from lockflow.common.models import (
    Finding,
    Resolution,
)
from lockflow.quality.detectors.base import (
    GAP_COVERAGE,
    STALE_AFTER_DAYS,
    Context,
    finding,
    flag,
    severity,
)
from lockflow.quality.profile import Profile, to_date

# ---- timeliness -----------------------------------------------------------------------------------


def detect_time_gaps(p: Profile, ctx: Context) -> list[Finding]:
    """Missing days inside a daily time column's range, and data that stopped long before today."""
    out = []
    as_of = ctx.as_of or datetime.now(UTC).date()
    for col in p.columns.values():
        if col.kind != "temporal" or col.minimum is None:
            continue
        first, last = to_date(col.minimum), to_date(col.maximum)
        assert first is not None and last is not None
        if col.days:
            present = np.array(sorted(col.days))
            # A calendar of weekdays only (markets, offices): weekends are not gaps.
            weekdays = len(present) >= 5 and not bool((((present + 3) % 7) >= 5).any())
            day = "weekday" if weekdays else "day"
            as_days = present.astype("datetime64[D]")
            span = (
                int(np.busday_count(first, last + timedelta(days=1))) if weekdays else (last - first).days + 1
            )
            coverage = len(col.days) / span if span else 1.0
            if span > 2 and GAP_COVERAGE <= coverage < 1.0:
                steps = np.busday_count(as_days[:-1], as_days[1:]) if weekdays else np.diff(present)
                worst = int(steps.argmax())
                missing_days = span - len(col.days)
                after = np.busday_offset(as_days[worst], 1) if weekdays else as_days[worst] + 1
                gap_from = date.fromordinal(date(1970, 1, 1).toordinal() + int(after.astype("int64")))
                out.append(
                    finding(
                        id=f"time_gaps:{col.name}",
                        category="time_gaps",
                        dimension="timeliness",
                        columns=[col.name],
                        count=0,
                        rows=col.rows,
                        sample_rows=[],
                        level=severity(missing_days / span),
                        explanation=f"Column '{col.name}' covers {len(col.days)} of the {span} {day}s "
                        f"from {first} to "
                        f"{last}; {missing_days} {day}s have no rows, the longest gap is "
                        f"{int(steps.max()) - 1} {day}s from {gap_from}.",
                        details={"missing_days": missing_days, "span_days": span, "calendar": day},
                        resolutions=[flag(col.name, "after_gap", 0)],
                    )
                )
        age = (as_of - last).days
        if age > STALE_AFTER_DAYS:
            out.append(
                finding(
                    id=f"staleness:{col.name}",
                    category="staleness",
                    dimension="timeliness",
                    columns=[col.name],
                    count=0,
                    rows=col.rows,
                    sample_rows=[],
                    # Old data is not wrong data (historical tables are old by design): a question
                    # for the reviewer, never high.
                    level="medium",
                    explanation=f"The newest '{col.name}' is {last}, {age} days before {as_of}: the "
                    f"data may be stale.",
                    details={"newest": str(last), "age_days": age},
                    resolutions=[
                        Resolution(
                            strategy="flag_only",
                            rationale="nothing to change in the data; refresh the source",
                        )
                    ],
                )
            )
    return out
