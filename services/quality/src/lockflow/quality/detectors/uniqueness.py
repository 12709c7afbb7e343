"""Uniqueness: duplicate rows and broken keys."""

import numpy as np

from lockflow.common.models import (
    Finding,
    Resolution,
)
from lockflow.quality.detectors.base import (
    CHANCE_COMBINATIONS,
    HIGH_CARDINALITY_SHARE,
    KEY_REPEAT_SHARE,
    Context,
    finding,
    flag,
    hash_method,
    pct,
)
from lockflow.quality.profile import ColumnProfile, Profile

# ---- uniqueness -----------------------------------------------------------------------------------


def detect_duplicate_rows(p: Profile, ctx: Context) -> list[Finding]:
    """Rows that repeat an earlier row exactly in every column (exact, via 64-bit row hashes)."""
    if p.duplicate_rows == 0:
        return []
    count, cols = p.duplicate_rows, list(p.columns)
    combinations = value_combinations(p)
    chance = combinations is not None
    note = (
        f"; but the columns allow only about {combinations:.3g} combinations of values for {p.rows} rows, "
        "so identical rows may well be different records"
        if chance
        else ""
    )
    return [
        finding(
            id="duplicate_rows",
            category="duplicate_rows",
            dimension="uniqueness",
            columns=cols,
            count=count,
            rows=p.rows,
            sample_rows=p.duplicate_rows_sample,
            explanation=f"{count} rows ({pct(count, p.rows)} of {p.rows}) repeat an earlier row exactly "
            f"in all {len(cols)} columns{note}.",
            method=hash_method(p),
            level="low" if chance else None,
            resolutions=[
                Resolution(
                    strategy="drop_duplicates_keep_first",
                    rationale=f"removes the {count} later copies and keeps each first occurrence",
                ),
                Resolution(
                    strategy="drop_duplicates_keep_last",
                    rationale=f"removes {count} copies and keeps each last occurrence instead",
                ),
            ],
        )
    ]


def value_combinations(p: Profile) -> float | None:
    """How many distinct rows the columns allow, when that is under CHANCE_COMBINATIONS x rows^2, so
    that different records can be identical by chance (a survey of small coded answers); None when a
    repeated row is evidence of a copy. Each column counts its effective number of values (the
    exponential of its value entropy, nulls as one value), so a few rare values do not count as many."""
    limit = CHANCE_COMBINATIONS * float(p.rows) ** 2
    combinations = 1.0
    for col in p.columns.values():
        if col.distinct()[0] >= HIGH_CARDINALITY_SHARE * max(1, col.rows - col.nulls.count):
            return None  # mostly distinct values (measurements, ids): rows that agree on it were copied
        combinations *= _effective_values(col)
        if combinations >= limit:
            return None
    return combinations


def _effective_values(col: ColumnProfile) -> float:
    if col.values is None:
        return float(max(1, col.distinct()[0]))
    counts = np.array([*col.values.values(), col.rows - sum(col.values.values())], dtype="float64")
    shares = counts[counts > 0] / max(1, col.rows)
    return float(max(1.0, np.exp(-(shares * np.log(shares)).sum())))


def detect_duplicate_keys(p: Profile, ctx: Context) -> list[Finding]:
    """An id-like column (id, *_id, uuid, key) whose values repeat: broken uniqueness.

    Only where the column is mostly unique: one whose values repeat in most rows (`subject_id` of
    patients tested several times, `test_id` with two values) refers to rows of another table, and
    its repeats are the data, not an error.
    """
    out = []
    for name, (count, sample) in p.keys.items():
        if count == 0 or count > KEY_REPEAT_SHARE * p.rows:
            continue
        out.append(
            finding(
                id=f"duplicate_keys:{name}",
                category="duplicate_keys",
                dimension="uniqueness",
                columns=[name],
                count=count,
                rows=p.rows,
                sample_rows=sample,
                explanation=f"Column '{name}' looks like an identifier, but {count} rows repeat a value "
                f"already "
                "used by an earlier row, so it no longer identifies one row.",
                method=hash_method(p),
                resolutions=[
                    Resolution(
                        strategy="drop_duplicates_most_complete",
                        rationale=f"keeps, for each repeated '{name}', the row with the fewest missing cells",
                    ),
                    Resolution(
                        strategy="drop_duplicates_keep_first",
                        rationale=f"keeps the first row of each '{name}' and removes {count} later ones",
                    ),
                    Resolution(
                        strategy="drop_duplicates_keep_last",
                        rationale=f"keeps the last row of each '{name}' (the newest, if rows are appended)",
                    ),
                    flag(name, "is_repeat", count),
                ],
            )
        )
    return out
