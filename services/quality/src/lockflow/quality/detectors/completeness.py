"""Completeness: missing values and what to do about them."""

import numpy as np

from lockflow.common.models import (
    Finding,
    Resolution,
)
from lockflow.quality.detectors.base import (
    DEFAULT_CONSTANT,
    Context,
    disguised_sentinels,
    drop,
    finding,
    flag,
    numeric_sample,
    pct,
)
from lockflow.quality.profile import ColumnProfile, Profile
from lockflow.quality.risk import OVERWHELMING_MODE, Evidence, rate_mode_fill

# ---- completeness ---------------------------------------------------------------------------------


def detect_missing_values(p: Profile, ctx: Context) -> list[Finding]:
    """Nulls, blank strings, missing-value tokens ('N/A', '?', ...) and sentinel numbers (-999)."""
    out = []
    for col in p.columns.values():
        sentinels = disguised_sentinels(p, col) if col.kind == "numeric" else []
        sentinel_count = sum(col.sentinels[s].count for s in sentinels)
        count = col.nulls.count + col.blanks.count + col.token_rows.count + sentinel_count
        if count == 0:
            continue
        rows = col.rows
        parts = []
        if col.blanks.count:
            parts.append(f"{col.blanks.count} are empty or blank strings")
        if col.token_rows.count:
            tokens = ", ".join(f"'{t}' x{n}" for t, n in col.tokens.most_common(5))
            parts.append(f"{col.token_rows.count} are placeholder text ({tokens})")
        if sentinel_count:
            parts.append(
                f"{sentinel_count} are sentinel numbers ({', '.join(f'{s:g}' for s in sentinels)}) "
                "far outside the other values"
            )
        note = f", of which {'; '.join(parts)}" if parts else ""
        samples = col.nulls.rows + col.blanks.rows + col.token_rows.rows
        for s in sentinels:
            samples += col.sentinels[s].rows
        out.append(
            finding(
                id=f"missing_values:{col.name}",
                category="missing_values",
                dimension="completeness",
                columns=[col.name],
                count=count,
                rows=rows,
                sample_rows=samples,
                explanation=f"Column '{col.name}' has {count} missing values ({pct(count, rows)} of "
                f"{rows} rows){note}.",
                resolutions=_missing_resolutions(p, col, count, sentinels),
                details={"tokens": sorted(col.tokens), "sentinels": sentinels},
            )
        )
    return out


def _missing_resolutions(
    p: Profile, col: ColumnProfile, count: int, sentinels: list[float]
) -> list[Resolution]:
    rows = col.rows
    drop_option = drop(count, rows, "missing this value")
    if col.kind == "numeric":
        values = numeric_sample(p, col, sentinels)
        if len(values):
            skew = float(values.skew()) if len(values) > 2 else 0.0
            skew = 0.0 if np.isnan(skew) else skew
            how = "" if p.sample.exact else " (from the row sample)"
            return [
                Resolution(
                    strategy="impute_median",
                    rationale=f"the median ({values.median():.4g}){how} is robust to the skew measured "
                    f"as {skew:.2f}",
                ),
                Resolution(
                    strategy="impute_mean",
                    rationale=f"the mean ({col.total / max(1, col.rows - col.nulls.count):.4g}) keeps the "
                    f"column's average; sound when the skew ({skew:.2f}) is near 0",
                ),
                drop_option,
                Resolution(
                    strategy="impute_interpolate",
                    rationale="fills each gap linearly from its neighbours; right when rows are in time "
                    "order",
                ),
                flag(col.name, "was_missing", count),
            ]
    # The mode goes first only when it is overwhelmingly the value: otherwise filling with it
    # writes a guess into every gap (a time column filled with its most common '7:10 a.m.').
    mode: list[Resolution] = []
    overwhelming = False
    if col.values:
        top, top_count = col.values.most_common(1)[0]
        filled = sum(col.values.values())
        overwhelming = top_count / filled >= OVERWHELMING_MODE
        evidence = Evidence(category="missing_values", columns=[col.name], count=count, rows=rows)
        mode.append(
            rate_mode_fill(
                Resolution(
                    strategy="impute_mode",
                    rationale=f"the most frequent value '{top}' holds {pct(top_count, filled)} of the "
                    f"{filled} filled rows",
                ),
                evidence,
                value=top,
                share=top_count / filled,
            )
        )
    constant: list[Resolution] = []
    if col.kind == "text":
        constant.append(
            Resolution(
                strategy="fill_constant",
                params={"value": DEFAULT_CONSTANT},
                rationale=f"marks the {count} gaps as '{DEFAULT_CONSTANT}' so they stay visible in analysis",
            )
        )
    flag_option = flag(col.name, "was_missing", count)
    if overwhelming:
        return [*mode, *constant, drop_option, flag_option]
    if constant:
        return [*constant, *mode, drop_option, flag_option]
    return [flag_option, *mode, drop_option]
