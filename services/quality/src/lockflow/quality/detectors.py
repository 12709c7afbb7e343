"""The catalogue of detectors: each a small pure function from a streaming Profile to Findings.

Counts marked exact come from the pass over every row; the rest say how they were estimated
(in `Finding.method`, with `exact=False`).
"""

import difflib
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

# Imported with the module (about 1 s, mostly scipy.stats) so a worker pays it once at start,
# not inside the first assessment.
from sklearn.ensemble import IsolationForest

from lockflow.common.models import (
    ColumnSchema,
    Finding,
    FindingCategory,
    QualityDimension,
    Resolution,
    Severity,
)
from lockflow.quality import patterns
from lockflow.quality.profile import FEED_THREADS, ColumnProfile, Profile, RuleTally, feed_pool, to_date
from lockflow.quality.risk import OVERWHELMING_MODE, Evidence, rate, rate_mode_fill
from lockflow.quality.sketches import PARTITIONS, SPILL_AFTER

SAMPLE_ROWS = 5
NUMERIC_LIKE_SHARE = 0.8
MIXED_MIN_VALUES = 20
MIXED_MIN_SHARE = 0.1
TUKEY_K = 1.5
ROBUST_Z = 3.5
OUTLIER_FAR_SHARE = 0.01
OUTLIER_TAIL_SHARE = 0.05
MIN_OUTLIER_VALUES = 8
SENTINEL_K = 3.0
SENTINEL_SPIKE = 5.0
SENTINEL_NEIGHBOURS = 10
DEFAULT_CONSTANT = "unknown"
NEAR_CONSTANT_SHARE = 0.99
IMBALANCE_SHARE = 0.9
HIGH_CARDINALITY_MIN = 50
HIGH_CARDINALITY_SHARE = 0.5
SKEW_BOWLEY = 0.3
SIMILAR_RATIO = 0.85
# A typo is rarer than the spelling it misspells; two near-equal spellings that are about as common
# are two values (names, models), not one value and its variant.
SIMILAR_RARITY = 3
CODE_MAX_LETTERS = 4
MAX_CATEGORIES_COMPARED = 300
IFOREST_ROWS = 20_000
IFOREST_SCORE = -0.75
PAIR_R = 0.8
PAIR_Z = 8.0
STALE_AFTER_DAYS = 365
KEY_REPEAT_SHARE = 0.5  # past this share of repeated rows an id-like column is a reference, not a key
# Rows can repeat by chance when the columns allow fewer combinations than this many times rows^2.
CHANCE_COMBINATIONS = 1000.0
GAP_COVERAGE = 0.5


@dataclass(frozen=True)
class Context:
    """What detection is compared against besides the data itself."""

    expected_schema: list[ColumnSchema] | None = None
    as_of: date | None = None


Detector = Callable[[Profile, Context], list[Finding]]


# ---- shared helpers -----------------------------------------------------------------------------


def severity(share: float) -> Severity:
    """high at >= 20% of rows, medium at >= 5%, else low."""
    if share >= 0.20:
        return "high"
    if share >= 0.05:
        return "medium"
    return "low"


def pct(part: float, whole: float) -> str:
    """A share as '12.3%'."""
    return f"{100.0 * part / whole:.1f}%" if whole else "0.0%"


def finding(
    *,
    id: str,
    category: FindingCategory,
    dimension: QualityDimension,
    columns: list[str],
    count: int,
    rows: int,
    sample_rows: list[int],
    explanation: str,
    resolutions: list[Resolution],
    exact: bool = True,
    method: str = "exact count over every row",
    details: dict[str, Any] | None = None,
    level: Severity | None = None,
) -> Finding:
    """A Finding with share and severity derived from the count, and each resolution's risk judged."""
    share = count / rows if rows else 0.0
    evidence = Evidence(category=category, columns=columns, count=count, rows=rows, details=details or {})
    resolutions = [rate(r, evidence) for r in resolutions]
    return Finding(
        id=id,
        category=category,
        severity=level or severity(share),
        columns=columns,
        count=count,
        share=share,
        sample_rows=sorted(sample_rows)[:SAMPLE_ROWS],
        explanation=explanation,
        resolutions=resolutions,
        dimension=dimension,
        method=method,
        exact=exact,
        details=details or {},
    )


def flag(column: str, what: str, count: int) -> Resolution:
    """The 'flag only' option: keep the data, add a boolean column."""
    return Resolution(
        strategy="flag_only",
        params={"column": f"{column}_{what}"},
        rationale=f"keeps the {count} values as they are and adds a column '{column}_{what}' marking them",
    )


def drop(count: int, rows: int, what: str) -> Resolution:
    """The 'drop rows' option."""
    return Resolution(
        strategy="drop_rows", rationale=f"removes the {count} rows ({pct(count, rows)} of the data) {what}"
    )


def sample_values(p: Profile, column: str) -> pd.Series:
    """The column's values in the row sample (index = row numbers)."""
    frame = p.sample.frame()
    return frame[column] if column in frame.columns else pd.Series(dtype="float64")


def numeric_sample(p: Profile, col: ColumnProfile, skip: list[float]) -> pd.Series:
    """Present numeric sample values as floats, without the given sentinels."""
    values = pd.to_numeric(sample_values(p, col.name), errors="coerce").astype("float64").dropna()
    return values[~values.isin(skip)] if skip else values


def sample_method(p: Profile, what: str) -> str:
    """How a sample-based figure was made."""
    if p.sample.exact:
        return f"{what} on every row (the {p.rows} rows fit the {p.sample.k}-row sample)"
    return (
        f"{what} on a uniform sample of {len(p.sample.keys)} of {p.rows} rows (bottom-k); "
        f"quantile rank error <= {p.sample.rank_error():.4f} at 99% confidence (DKW), count scaled"
    )


def disguised_sentinels(p: Profile, col: ColumnProfile) -> list[float]:
    """Sentinel values (-999, 9999 ...) standing for missing, judged on evidence: a sentinel lies more
    than SENTINEL_K x IQR beyond the quartiles of the other values and either beyond every other
    value or a frequency spike against its nearest values. A 99-minute delay among delays up to
    1301 minutes, as common as a 98 or a 100, is a value, not a missing one."""
    if not col.sentinels:
        return []
    found = [s for s, t in col.sentinels.items() if t.count >= 2]
    if not found:
        return []
    rest = numeric_sample(p, col, list(col.sentinels))
    if len(rest) < MIN_OUTLIER_VALUES:
        return []
    q1, q3 = np.percentile(rest.to_numpy(), [25, 75])
    iqr = max(q3 - q1, 1e-12)
    low, high = float(rest.min()), float(rest.max())
    out = []
    for s in found:
        if q1 - SENTINEL_K * iqr <= s <= q3 + SENTINEL_K * iqr:
            continue
        if s < low or s > high or _frequency_spike(p, col, s, rest):
            out.append(s)
    return sorted(out)


def _frequency_spike(p: Profile, col: ColumnProfile, sentinel: float, rest: pd.Series) -> bool:
    """True when `sentinel` is SENTINEL_SPIKE times as common as its nearest other values are (on
    average), its share from the exact count, theirs from the row sample."""
    sampled = len(sample_values(p, col.name))
    if sampled == 0 or col.rows == 0:
        return False
    counts = rest.value_counts()
    nearest = (pd.Series(counts.index, dtype="float64") - sentinel).abs().nsmallest(SENTINEL_NEIGHBOURS)
    neighbour_share = float(counts.iloc[nearest.index].mean()) / sampled
    return col.sentinels[sentinel].count / col.rows >= SENTINEL_SPIKE * neighbour_share


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
            method=_hash_method(p),
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


def _hash_method(p: Profile) -> str:
    where = (
        f"spilled to disk in {PARTITIONS} hash partitions past {SPILL_AFTER:,} entries: bounded memory"
        if p.spilled
        else "held in memory, 16 bytes per row"
    )
    collision = min(1.0, p.rows * p.rows / 2.0**65)
    return (
        f"exact count of repeated 64-bit hashes (polars' value hash per column, combined per row; {where}); "
        f"a hash collision is the only possible error (probability about {collision:.1e})"
    )


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
                method=_hash_method(p),
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


# ---- validity -------------------------------------------------------------------------------------


def detect_type_mismatches(p: Profile, ctx: Context) -> list[Finding]:
    """Text columns that are mostly numbers (numbers stored as text), or a mix of numbers and words."""
    out = []
    for col in p.columns.values():
        if col.kind != "text" or col.fmt is not None or col.filled == 0:
            continue
        filled, numbers, bad = col.filled, col.numeric_like, col.not_numeric.count
        if bad == 0:
            continue
        share = numbers / filled
        mostly = share >= NUMERIC_LIKE_SHARE
        mixed = filled >= MIXED_MIN_VALUES and MIXED_MIN_SHARE <= share < NUMERIC_LIKE_SHARE
        if not (mostly or mixed):
            continue
        examples = ", ".join(f"'{v}'" for v in col.not_numeric.examples[:3])
        what = "holds text" if mostly else "mixes numbers and text"
        out.append(
            finding(
                id=f"type_mismatch:{col.name}",
                category="type_mismatch",
                dimension="validity",
                columns=[col.name],
                count=bad,
                rows=col.rows,
                sample_rows=col.not_numeric.rows,
                explanation=f"Column '{col.name}' {what}, but {numbers} of its {filled} filled values "
                f"({pct(numbers, filled)}) are numbers; {bad} are not (e.g. {examples}).",
                resolutions=[
                    Resolution(
                        strategy="coerce_numeric",
                        rationale=f"makes the column numeric; the {bad} values that are not numbers become "
                        "missing (listed in the report)",
                    ),
                    drop(bad, col.rows, "whose value is not a number"),
                    flag(col.name, "not_a_number", bad),
                ],
                details={"examples": col.not_numeric.examples, "numbers": numbers},
                # A mix (ticket codes such as '113803' and 'A/5 21171') shows no value to be wrong.
                level=None if mostly else "low",
            )
        )
    return out


def detect_invalid_formats(p: Profile, ctx: Context) -> list[Finding]:
    """Values that do not fit the column's format: dates (real calendar dates), emails, phones, URLs, "
    "postcodes."""
    out = []
    for col in p.columns.values():
        if col.kind != "text" or not col.fmt or col.fmt_bad.count == 0:
            continue
        bad, fmt = col.fmt_bad.count, col.fmt
        examples = ", ".join(f"'{v}'" for v in col.fmt_bad.examples[:3])
        resolutions = []
        if fmt == "date":
            resolutions.append(
                Resolution(
                    strategy="coerce_datetime",
                    rationale=f"makes the column a date; the {bad} values that are not real dates "
                    f"become missing",
                )
            )
        resolutions += [
            Resolution(
                strategy="set_missing",
                rationale=f"blanks the {bad} malformed values so they count as missing, keeping the rows",
            ),
            drop(bad, col.rows, f"with a malformed {fmt}"),
            flag(col.name, f"bad_{fmt}", bad),
        ]
        out.append(
            finding(
                id=f"invalid_format:{col.name}",
                category="invalid_format",
                dimension="validity",
                columns=[col.name],
                count=bad,
                rows=col.rows,
                sample_rows=col.fmt_bad.rows,
                explanation=f"Column '{col.name}' holds {fmt.replace('_', ' ')} values, but {bad} of them "
                f"({pct(bad, col.filled)} of the filled values) are not valid (e.g. {examples}).",
                resolutions=resolutions,
                details={"format": fmt, "examples": col.fmt_bad.examples},
            )
        )
    return out


def detect_rule_violations(p: Profile, ctx: Context) -> list[Finding]:
    """User rules, built-in name-implied ranges (out of range) and cross-column rules."""
    return [f for rt in p.rules for f in _rule_finding(p, rt)]


def _rule_finding(p: Profile, rt: RuleTally) -> list[Finding]:
    rule = rt.rule
    label = rule.label()
    if rt.missing_columns:
        return [
            finding(
                id=f"rule:{label}",
                category="rule_violation",
                dimension="validity",
                columns=rt.missing_columns,
                count=0,
                rows=p.rows,
                sample_rows=[],
                explanation=f"Rule '{label}' cannot be checked: the data has no column "
                f"{', '.join(repr(c) for c in rt.missing_columns)}.",
                resolutions=[
                    Resolution(strategy="flag_only", rationale="nothing to fix in the data: fix the rule")
                ],
                level="high",
                details={"rule": rule.model_dump(exclude_none=True)},
            )
        ]
    count, sample_rows, examples, note = rt.tally.count, rt.tally.rows, rt.tally.examples, ""
    level: Severity | None = rule.severity
    if rt.beside_sentinels is not None:
        count, sample_rows, examples, note = _range_beside_missing(p, rt)
    if count == 0:
        return []
    if rt.builtin and rule.kind == "between":
        category: FindingCategory = "out_of_range"
        fid = f"out_of_range:{rule.column}"
        low, high = rule.between or (None, None)
        bound = f"[{_g(low)}, {_g(high, 'inf')}]"
        text = (
            f"Column '{rule.column}' has {count} values outside the plausible range {bound} its name "
            f"implies{note}"
        )
        median = _median(p, str(rule.column))
        if median is not None and (
            (low is not None and median < low) or (high is not None and median > high)
        ):
            # Not a few values apart from the rest but the bulk of the column (its median) breaks the
            # range: the name misleads (another unit, a signed quantity), no evidence of wrong values.
            level = "low"
            text += (
                f"; its median ({median:.4g}) is outside too, so the name's range may not apply "
                "(another unit?)"
            )
    elif rt.builtin:
        category, fid = "cross_column", f"cross_column:{label.split(':', 1)[1]}"
        text = f"{count} rows break the cross-column rule '{rule.expression}'"
    else:
        category, fid = "rule_violation", f"rule:{label}"
        text = f"{count} rows break your rule '{label}' ({_describe(rule)})"
    dimension: QualityDimension = {"not_null": "completeness", "unique": "uniqueness"}.get(
        rule.kind, "validity"
    )  # type: ignore[assignment]
    if category == "cross_column":
        dimension = "consistency"
    column = rule.column or rule.columns()[0]
    resolutions = []
    if rule.kind == "between":
        low, high = rule.between or (None, None)
        resolutions.append(
            Resolution(
                strategy="cap_to_fences",
                params={"lower": low, "upper": high},
                rationale=f"clips the {count} values into {[low, high]} and keeps every row",
            )
        )
        resolutions.append(
            Resolution(
                strategy="set_missing", rationale=f"blanks the {count} impossible values, keeping the rows"
            )
        )
    if rule.kind == "unique":
        resolutions.append(
            Resolution(
                strategy="drop_duplicates_keep_first",
                rationale=f"keeps the first row of each repeated '{column}' and removes {count} later ones",
            )
        )
    resolutions += [drop(count, p.rows, "that break the rule"), flag(column, "breaks_rule", count)]
    example_note = f" (e.g. {', '.join(repr(e) for e in examples[:3])})" if examples else ""
    return [
        finding(
            id=fid,
            category=category,
            dimension=dimension,
            columns=rule.columns(),
            count=count,
            rows=p.rows,
            sample_rows=sample_rows,
            explanation=f"{text} ({pct(count, p.rows)} of {p.rows} rows){example_note}.",
            resolutions=resolutions,
            level=level,
            method=_hash_method(p) if rule.kind == "unique" else "exact count over every row",
            details={"rule": rule.model_dump(exclude_none=True), "builtin": rt.builtin},
        )
    ]


def _median(p: Profile, name: str) -> float | None:
    """The median of a numeric column's sampled values (without its disguised missing values)."""
    col = p.columns.get(name)
    if col is None or col.kind != "numeric":
        return None
    values = numeric_sample(p, col, disguised_sentinels(p, col))
    return float(values.median()) if len(values) else None


def _range_beside_missing(p: Profile, rt: RuleTally) -> tuple[int, list[int], list[Any], str]:
    """A built-in range's (count, sample rows, examples, note) without the column's disguised
    missing values: a -999 is reported once, as missing, not also as out of range."""
    assert rt.beside_sentinels is not None
    col = p.columns[str(rt.rule.column)]
    low, high = rt.rule.between or (None, None)
    disguised = set(disguised_sentinels(p, col))
    beyond = [s for s in col.sentinels if (low is not None and s < low) or (high is not None and s > high)]
    outside = [s for s in beyond if s not in disguised]
    kept = rt.beside_sentinels
    count = kept.count + sum(col.sentinels[s].count for s in outside)
    rows = sorted([*kept.rows, *(r for s in outside for r in col.sentinels[s].rows)])[:5]
    examples = [*kept.examples, *outside][:5]
    left_out = sum(col.sentinels[s].count for s in beyond if s in disguised)
    note = f" (its {left_out} sentinel values are counted as missing instead)" if left_out else ""
    return count, rows, examples, note


def _g(value: float | None, none: str = "-inf") -> str:
    return none if value is None else f"{value:g}"


def _describe(rule: Any) -> str:
    if rule.kind == "between":
        low, high = rule.between
        return f"{rule.column} between {_g(low)} and {_g(high, 'inf')}"
    if rule.kind == "in_set":
        return f"{rule.column} in {rule.in_set}"
    if rule.kind == "matches":
        return f"{rule.column} matches {rule.matches!r}"
    if rule.kind == "expression":
        return str(rule.expression)
    return f"{rule.column} {rule.kind.replace('_', ' ')}"


def tukey(values: np.ndarray) -> tuple[float, float, float, float] | None:
    """(q1, q3, lower, upper) at 1.5 x IQR, or None if fewer than 8 values or IQR is 0."""
    if len(values) < MIN_OUTLIER_VALUES:
        return None
    q1, q3 = (float(q) for q in np.percentile(values, [25, 75]))
    iqr = q3 - q1
    if iqr == 0:
        return None
    return q1, q3, q1 - TUKEY_K * iqr, q3 + TUKEY_K * iqr


def outlier_severity(*, far: int, outside: int, values: int) -> Severity:
    """Values outside the fences are often real (a long tail, a second mode): never high. Medium only
    for a few values far out (beyond SENTINEL_K x IQR, at most OUTLIER_FAR_SHARE of the values) in a
    column whose tail is short (under OUTLIER_TAIL_SHARE outside the fences); otherwise low."""
    if far and far <= OUTLIER_FAR_SHARE * values and outside < OUTLIER_TAIL_SHARE * values:
        return "medium"
    return "low"


def detect_outliers(p: Profile, ctx: Context) -> list[Finding]:
    """Values outside the Tukey fences (1.5 x IQR), with the robust z-score (> 3.5) count alongside."""
    out = []
    for col in p.columns.values():
        if col.kind != "numeric" or patterns.looks_like_id(col.name):
            continue
        values = numeric_sample(p, col, disguised_sentinels(p, col))
        fences = tukey(values.to_numpy())
        if fences is None:
            continue
        q1, q3, lower, upper = fences
        outside = (values < lower) | (values > upper)
        in_sample = int(outside.sum())
        if in_sample == 0:
            continue
        median = float(values.median())
        mad = float((values - median).abs().median())
        robust = int((0.6745 * (values - median).abs() / mad > ROBUST_Z).sum()) if mad > 0 else 0
        far = int(((values < q1 - SENTINEL_K * (q3 - q1)) | (values > q3 + SENTINEL_K * (q3 - q1))).sum())
        present = col.rows - col.nulls.count
        count = in_sample if p.sample.exact else round(in_sample / len(values) * present)
        robust_count = robust if p.sample.exact else round(robust / len(values) * present)
        bounds = {"lower": lower, "upper": upper}
        out.append(
            finding(
                id=f"outliers:{col.name}",
                category="outliers",
                dimension="validity",
                columns=[col.name],
                count=count,
                rows=col.rows,
                sample_rows=[int(i) for i in values.index[outside.to_numpy()]],
                explanation=f"Column '{col.name}' has {count} values ({pct(count, col.rows)} of "
                f"{col.rows} rows) "
                f"outside the Tukey fences [{lower:.4g}, {upper:.4g}], i.e. more than {TUKEY_K} x IQR "
                f"beyond the "
                f"quartiles {q1:.4g} and {q3:.4g}; {robust_count} have a robust z-score above {ROBUST_Z} "
                f"(median {median:.4g}, MAD {mad:.4g}).",
                exact=p.sample.exact,
                method=sample_method(p, "quartiles, MAD and counts"),
                level=outlier_severity(far=far, outside=in_sample, values=len(values)),
                details={"robust_z_count": robust_count, "median": median, "mad": mad, **bounds},
                resolutions=[
                    Resolution(
                        strategy="cap_to_fences",
                        params=bounds,
                        rationale=f"clips the {count} values to [{lower:.4g}, {upper:.4g}] and keeps "
                        f"every row",
                    ),
                    Resolution(
                        strategy="winsorize",
                        params={"lower_quantile": 0.01, "upper_quantile": 0.99},
                        rationale="clips to the 1st and 99th percentiles: gentler than the fences",
                    ),
                    Resolution(
                        strategy="drop_rows",
                        params=dict(bounds),
                        rationale=f"removes the {count} rows with a value outside the fences",
                    ),
                    Resolution(
                        strategy="flag_only",
                        params=dict(bounds),
                        rationale=f"keeps the {count} values (they may be real) and adds a flag column",
                    ),
                ],
            )
        )
    return out


def multivariate_scores(
    frame: pd.DataFrame, details: dict[str, Any] | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Rows unusual in combination: a broken strong linear relation between two columns (robust z of the
    regression residual > PAIR_Z), or an IsolationForest anomaly score below IFOREST_SCORE; rows already
    beyond 2 x IQR on one column are left to the univariate detector. Returns (mask, parameters); given
    parameters (from a finding's details) it reuses them instead of fitting the pairs again."""
    median, iqr = frame.median(), (frame.quantile(0.75) - frame.quantile(0.25)).replace(0, np.nan)
    usable = [c for c in frame.columns if not np.isnan(iqr[c])]
    scaled = (frame[usable] - median[usable]) / iqr[usable]
    univariate = ((scaled < -2.0) | (scaled > 2.0)).any(axis=1).to_numpy()
    pairs = details["pairs"] if details else _strong_pairs(frame[usable])
    broken = np.zeros(len(frame), dtype=bool)
    for a, b, slope, intercept, center, spread in pairs:
        residual = frame[b].to_numpy() - (slope * frame[a].to_numpy() + intercept)
        broken |= np.abs(residual - center) / spread > PAIR_Z
    model = IsolationForest(n_estimators=50, random_state=0).fit(scaled.iloc[:IFOREST_ROWS].to_numpy())
    isolated = _scores(model, scaled.to_numpy()) < IFOREST_SCORE
    return (broken | isolated) & ~univariate, {"pairs": pairs, "columns": usable}


def _scores(model: IsolationForest, rows: np.ndarray) -> np.ndarray:
    """The model's anomaly scores, the rows split over the quality thread pool (tree walks drop the GIL)."""
    parts = np.array_split(rows, FEED_THREADS) if len(rows) >= 10_000 else [rows]
    return np.concatenate(list(feed_pool().map(model.score_samples, parts)))


def _strong_pairs(frame: pd.DataFrame) -> list[list[Any]]:
    """[a, b, slope, intercept, residual median, residual robust sd] for |Pearson r| >= PAIR_R."""
    corr = frame.corr().abs().to_numpy()
    names = list(frame.columns)
    out: list[list[Any]] = []
    for i, a in enumerate(names):
        for j in range(i + 1, len(names)):
            if corr[i, j] >= PAIR_R:
                b = names[j]
                slope, intercept = np.polyfit(frame[a].to_numpy(), frame[b].to_numpy(), 1)
                residual = frame[b].to_numpy() - (slope * frame[a].to_numpy() + intercept)
                center = float(np.median(residual))
                spread = float(np.median(np.abs(residual - center)) * 1.4826)
                if spread > 0:
                    out.append([a, b, float(slope), float(intercept), center, spread])
    return out


def detect_multivariate_outliers(p: Profile, ctx: Context) -> list[Finding]:
    """Rows unusual in combination (broken strong relations; IsolationForest), on the row sample."""
    names = [n for n, c in p.columns.items() if c.kind == "numeric" and not patterns.looks_like_id(n)]
    if len(names) < 2:
        return []
    frame = p.sample.frame()[names].apply(pd.to_numeric, errors="coerce").astype("float64").dropna()
    for name in names:
        frame = frame[~frame[name].isin(disguised_sentinels(p, p.columns[name]))]
    if len(frame) < 500:
        return []
    unusual, params = multivariate_scores(frame)
    in_sample = int(unusual.sum())
    if in_sample == 0:
        return []
    count = in_sample if p.sample.exact else round(in_sample / len(frame) * p.rows)
    relations = ", ".join(f"{b} ~ {a}" for a, b, *_ in params["pairs"]) or "none"
    return [
        finding(
            id="multivariate_outliers",
            category="multivariate_outliers",
            dimension="validity",
            columns=params["columns"],
            count=count,
            rows=p.rows,
            sample_rows=[int(i) for i in frame.index[unusual]],
            explanation=f"{'About ' if not p.sample.exact else ''}{count} rows are unusual in combination "
            f"although each value is within its column's usual range "
            f"(strong relations checked: {relations}).",
            exact=False,
            method=f"residual robust z > {PAIR_Z} for column pairs with |r| >= {PAIR_R}, or IsolationForest "
            f"(50 trees, seed 0) score < {IFOREST_SCORE}, on {len(frame)} "
            + ("rows (all)" if p.sample.exact else "sampled rows; count scaled to all rows"),
            details={"score_threshold": IFOREST_SCORE, "sample_rows_used": len(frame), **params},
            resolutions=[
                Resolution(
                    strategy="flag_only",
                    params={"column": "is_multivariate_outlier"},
                    rationale="marks the unusual rows so analysis can include or exclude them",
                ),
                drop(count, p.rows, "that are unusual in combination"),
            ],
        )
    ]


def detect_encoding_damage(p: Profile, ctx: Context) -> list[Finding]:
    """Mojibake (UTF-8 read as Latin-1), replacement characters and control characters in text."""
    out = []
    for col in p.columns.values():
        if col.kind != "text" or col.damaged.count == 0:
            continue
        count = col.damaged.count
        examples = ", ".join(repr(v) for v in col.damaged.examples[:3])
        out.append(
            finding(
                id=f"encoding:{col.name}",
                category="encoding",
                dimension="validity",
                columns=[col.name],
                count=count,
                rows=col.rows,
                sample_rows=col.damaged.rows,
                explanation=f"Column '{col.name}' has {count} values with damaged text: mojibake, "
                f"replacement "
                f"or control characters (e.g. {examples}).",
                resolutions=[
                    Resolution(
                        strategy="repair_text",
                        rationale="re-decodes UTF-8 that was read as Latin-1 and removes control characters",
                    ),
                    drop(count, col.rows, "with damaged text"),
                    flag(col.name, "damaged_text", count),
                ],
                details={"examples": col.damaged.examples},
            )
        )
    return out


def detect_personal_data(p: Profile, ctx: Context) -> list[Finding]:
    """Email addresses, phone numbers and Luhn-valid card numbers: masking suggested."""
    out = []
    for col in p.columns.values():
        if col.kind != "text":
            continue
        kinds = {k: t for k, t in col.pii.items() if t.count}
        if not kinds:
            continue
        count = max(t.count for t in kinds.values())
        what = ", ".join(f"{t.count} {k.replace('_', ' ')}s" for k, t in kinds.items())
        rows = sorted({r for t in kinds.values() for r in t.rows})
        out.append(
            finding(
                id=f"personal_data:{col.name}",
                category="personal_data",
                dimension="validity",
                columns=[col.name],
                count=count,
                rows=col.rows,
                sample_rows=rows,
                explanation=f"Column '{col.name}' holds personal data ({what}); mask it unless analysis "
                f"needs it.",
                level="high" if "card_number" in kinds else "medium",
                details={"kinds": sorted(kinds)},
                resolutions=[
                    Resolution(
                        strategy="mask_personal_data",
                        params={"kinds": sorted(kinds)},
                        rationale="replaces all but the last 4 characters of each match with '*'",
                    ),
                    Resolution(strategy="drop_column", rationale=f"removes '{col.name}' from the dataset"),
                    Resolution(
                        strategy="flag_only", params={"column": f"{col.name}_has_pii"}, rationale="keeps it"
                    ),
                ],
            )
        )
    return out


# ---- consistency ----------------------------------------------------------------------------------


def _normal(value: str) -> str:
    return re.sub(r"\s+", " ", value.strip().lower())


def _identifier_parts(value: str) -> tuple[str, ...]:
    """The parts of a value that identify rather than spell: its numbers, its letter-and-digit words and
    its short upper-case words ('AA-3859-IAH-ORD' -> ('4', '3859', 'aa', 'iah', 'ord');
    'EMB-145LR' -> ('2', '145', '145lr', 'emb')), and how many words it has. Values that differ there
    are different things, however alike they look."""
    words = re.findall(r"[A-Za-z0-9]+", value)
    numbers = re.findall(r"\d+", value)
    # A word mixing letters and digits is a code whole ('145LR', '3H4'), as is a short upper-case word.
    coded = [w.lower() for w in words if re.search(r"\d", w) and not w.isdigit()]
    codes = [w.lower() for w in words if w.isalpha() and w.isupper() and len(w) <= CODE_MAX_LETTERS]
    # The word count too: a typo changes letters, while an added word ('plymouth fury' / 'plymouth
    # fury iii') names another thing.
    return (str(len(words)), *numbers, *coded, *codes)


def _transposed(a: str, b: str) -> bool:
    """True when `b` is `a` with two adjacent characters swapped ('Biscoe' / 'Bicsoe'): the commonest
    typing slip, which difflib rates too low on short words."""
    if len(a) != len(b):
        return False
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]


def category_mapping(values: Counter[Any]) -> dict[str, str]:
    """Variant -> canonical spelling: same after trimming/case, or a near-duplicate spelling (difflib ratio
    >= SIMILAR_RATIO, or two adjacent letters swapped) of a value SIMILAR_RARITY times as common with the
    same numbers and codes."""
    texts = {str(v): n for v, n in values.items() if isinstance(v, str)}
    groups: dict[str, list[str]] = {}
    for v in texts:
        groups.setdefault(_normal(v), []).append(v)
    totals = {k: sum(texts[v] for v in groups[k]) for k in groups}
    keys = sorted(groups, key=lambda k: -totals[k])
    parent = {k: k for k in keys}
    if len(keys) <= MAX_CATEGORIES_COMPARED:
        codes = {k: _identifier_parts(max(groups[k], key=lambda v: texts[v])) for k in keys}
        for i, a in enumerate(keys):
            for b in keys[i + 1 :]:
                if (
                    min(len(a), len(b)) >= 4
                    and parent[b] == b
                    and totals[a] >= SIMILAR_RARITY * totals[b]
                    and codes[a] == codes[b]
                    and (_transposed(a, b) or difflib.SequenceMatcher(None, a, b).ratio() >= SIMILAR_RATIO)
                ):
                    parent[b] = parent[a]
    clusters: dict[str, list[str]] = {}
    for k in keys:
        clusters.setdefault(parent[k], []).extend(groups[k])
    mapping = {}
    for members in clusters.values():
        if len(members) < 2:
            continue
        canonical = max(members, key=lambda v: (texts[v], v == v.strip(), v))
        mapping.update({v: canonical for v in members if v != canonical})
    return mapping


def detect_inconsistent_categories(p: Profile, ctx: Context) -> list[Finding]:
    """Category spellings that differ only by case/whitespace, or are near-duplicates (clustered)."""
    out = []
    for col in p.columns.values():
        if col.kind != "text" or not col.values or len(col.values) < 2 or col.fmt:
            continue
        mapping = category_mapping(col.values)
        if not mapping:
            continue
        count = sum(col.values[v] for v in mapping)
        shown = ", ".join(f"'{a}' -> '{b}'" for a, b in list(mapping.items())[:6])
        case_only = all(_normal(a) == _normal(b) for a, b in mapping.items())
        resolutions = _merge_resolutions(col, mapping)
        if case_only:
            resolutions.append(
                Resolution(
                    strategy="normalise_case",
                    rationale="trims whitespace and lower-cases every value of the column",
                )
            )
        resolutions.append(flag(col.name, "variant", count))
        out.append(
            finding(
                id=f"inconsistent_categories:{col.name}",
                category="inconsistent_categories",
                dimension="consistency",
                columns=[col.name],
                count=count,
                rows=col.rows,
                sample_rows=[],
                explanation=f"Column '{col.name}' spells {len(set(mapping.values()))} categories in "
                f"{len(mapping) + len(set(mapping.values()))} ways; {count} values use a variant ({shown}).",
                details={"mapping": mapping},
                method="exact value counts, clustered by trimmed lower case and string similarity >= "
                f"{SIMILAR_RATIO} (difflib ratio) or two adjacent letters swapped, to a spelling "
                f"{SIMILAR_RARITY}x as common with the same numbers and codes",
                resolutions=resolutions,
            )
        )
    return out


def _merge_resolutions(col: ColumnProfile, mapping: dict[str, str]) -> list[Resolution]:
    """The merge option, for the pairs whose digits agree: spellings that differ in their digits are
    different codes ('AA-1243' is not 'AA-1234'), so the offered mapping leaves them out (a person can
    still add them) and no merge is offered when nothing else is left."""
    same_digits = {v: c for v, c in mapping.items() if re.findall(r"\d+", v) == re.findall(r"\d+", c)}
    if not same_digits:
        return []
    counts: Mapping[str, int] = col.values or {}
    count = sum(counts.get(v, 0) for v in same_digits)
    shown = ", ".join(f"'{a}' -> '{b}'" for a, b in list(same_digits.items())[:6])
    left = [v for v in mapping if v not in same_digits]
    note = f"; leaves {len(left)} spellings that differ in their digits (different codes)" if left else ""
    merge = Resolution(
        strategy="merge_categories",
        params={"mapping": same_digits},
        rationale=f"rewrites {count} values to the most frequent spelling of their cluster: {shown}{note}",
    )
    evidence = Evidence(category="inconsistent_categories", columns=[col.name], count=count, rows=col.rows)
    return [rate(merge, evidence)]


def detect_padded_whitespace(p: Profile, ctx: Context) -> list[Finding]:
    """Text values with leading or trailing whitespace (in columns not already covered by categories)."""
    out = []
    for col in p.columns.values():
        if col.kind != "text" or col.padded.count == 0:
            continue
        if col.values and any(
            _normal(v) != v.strip().lower() or v != v.strip() for v in category_mapping(col.values)
        ):
            continue  # the category finding already shows these
        count = col.padded.count
        out.append(
            finding(
                id=f"whitespace:{col.name}",
                category="inconsistent_categories",
                dimension="consistency",
                columns=[col.name],
                count=count,
                rows=col.rows,
                sample_rows=col.padded.rows,
                explanation=f"Column '{col.name}' has {count} values with leading or trailing spaces "
                f"(e.g. {', '.join(repr(v) for v in col.padded.examples[:3])}).",
                resolutions=[
                    Resolution(
                        strategy="trim_whitespace",
                        rationale=f"trims the {count} values; nothing else changes",
                    ),
                    flag(col.name, "padded", count),
                ],
            )
        )
    return out


def detect_constant_columns(p: Profile, ctx: Context) -> list[Finding]:
    """Columns with one value (constant) or one value in >= 99% of filled rows (near-constant)."""
    out = []
    for col in p.columns.values():
        if not col.values or col.rows < MIXED_MIN_VALUES:
            continue
        top, top_count = col.values.most_common(1)[0]
        filled = sum(col.values.values())
        share = top_count / filled
        if len(col.values) > 1 and share < NEAR_CONSTANT_SHARE:
            continue
        what = "constant" if len(col.values) == 1 else "near-constant"
        out.append(
            finding(
                id=f"constant_column:{col.name}",
                category="constant_column",
                dimension="consistency",
                columns=[col.name],
                count=filled - top_count,
                rows=col.rows,
                sample_rows=[],
                level="low",
                explanation=f"Column '{col.name}' is {what}: '{top}' fills {pct(top_count, filled)} of its "
                f"{filled} filled rows, so it carries almost no information.",
                details={"top": str(top), "top_share": share},
                resolutions=[
                    # Describing the column is not a reason to remove it unasked: keeping it comes first.
                    flag(col.name, "is_rare", filled - top_count),
                    Resolution(
                        strategy="drop_column",
                        rationale=f"removes '{col.name}', which cannot explain anything",
                    ),
                ],
            )
        )
    return out


def detect_high_cardinality(p: Profile, ctx: Context) -> list[Finding]:
    """Free-text-like categorical columns: many distinct values, most of them rare."""
    out = []
    for col in p.columns.values():
        if col.kind != "text" or col.fmt or patterns.looks_like_id(col.name) or col.filled == 0:
            continue
        if col.numeric_like / col.filled >= MIXED_MIN_SHARE:
            continue
        distinct, exact = col.distinct()
        if distinct < HIGH_CARDINALITY_MIN or distinct / col.filled < HIGH_CARDINALITY_SHARE:
            continue
        method = (
            "exact distinct count"
            if exact
            else f"HyperLogLog distinct count (+-{col.hll.relative_error:.2%})"
        )
        out.append(
            finding(
                id=f"high_cardinality:{col.name}",
                category="high_cardinality",
                dimension="consistency",
                columns=[col.name],
                count=0,
                rows=col.rows,
                sample_rows=[],
                level="low",
                exact=exact,
                method=method,
                explanation=f"Column '{col.name}' has about {distinct} distinct values in {col.filled} "
                f"filled rows "
                f"({pct(distinct, col.filled)}): too many to use as a category.",
                details={"distinct": distinct},
                resolutions=[
                    Resolution(
                        strategy="flag_only", params={"column": f"{col.name}_is_rare"}, rationale="keep it"
                    ),
                    Resolution(strategy="drop_column", rationale=f"removes '{col.name}' from analysis"),
                ],
            )
        )
    return out


def detect_skew_and_imbalance(p: Profile, ctx: Context) -> list[Finding]:
    """Strongly skewed numbers (Bowley quartile skewness, robust to outliers) and imbalanced categories."""
    out = []
    for col in p.columns.values():
        if col.kind == "numeric" and not patterns.looks_like_id(col.name):
            values = numeric_sample(p, col, disguised_sentinels(p, col))
            if len(values) >= 50 and (not col.values or len(col.values) > 10):
                q1, q2, q3 = np.percentile(values.to_numpy(), [25, 50, 75])
                bowley = (q3 + q1 - 2 * q2) / (q3 - q1) if q3 > q1 else 0.0
                if abs(bowley) >= SKEW_BOWLEY:
                    side = "right" if bowley > 0 else "left"
                    out.append(
                        finding(
                            id=f"skew:{col.name}",
                            category="skew",
                            dimension="validity",
                            columns=[col.name],
                            count=0,
                            rows=col.rows,
                            sample_rows=[],
                            level="low",
                            exact=p.sample.exact,
                            method=sample_method(p, "quartiles"),
                            explanation=f"Column '{col.name}' is strongly {side}-skewed (Bowley skewness "
                            f"{bowley:.2f}; quartiles {q1:.4g}, {q2:.4g}, {q3:.4g}): means will mislead.",
                            details={"bowley": float(bowley)},
                            resolutions=[
                                Resolution(
                                    strategy="flag_only",
                                    params={"column": f"{col.name}_skewed"},
                                    rationale="keep values; prefer medians and rank statistics in analysis",
                                ),
                                Resolution(
                                    strategy="winsorize",
                                    params={"lower_quantile": 0.01, "upper_quantile": 0.99},
                                    rationale="limits the long tail to the 1st-99th percentiles",
                                ),
                            ],
                        )
                    )
        if col.values and 2 <= len(col.values) <= 10 and col.rows >= MIXED_MIN_VALUES:
            filled = sum(col.values.values())
            top, top_count = col.values.most_common(1)[0]
            share = top_count / filled
            if IMBALANCE_SHARE <= share < NEAR_CONSTANT_SHARE:
                minority = filled - top_count
                out.append(
                    finding(
                        id=f"imbalance:{col.name}",
                        category="imbalance",
                        dimension="consistency",
                        columns=[col.name],
                        count=0,
                        rows=col.rows,
                        sample_rows=[],
                        level="low",
                        explanation=f"Column '{col.name}' is imbalanced: '{top}' is "
                        f"{pct(top_count, filled)} of the "
                        f"rows and the other {len(col.values) - 1} values share {minority} rows.",
                        details={"top": str(top), "top_share": share},
                        resolutions=[
                            Resolution(
                                strategy="flag_only",
                                params={"column": f"{col.name}_is_minority"},
                                rationale="keeps the data; use stratified sampling or class weights in "
                                "models",
                            )
                        ],
                    )
                )
    return out


def detect_schema_drift(p: Profile, ctx: Context) -> list[Finding]:
    """Columns added, removed or retyped against the schema approved at gate 1."""
    if not ctx.expected_schema:
        return []
    expected = {c.name: c for c in ctx.expected_schema}
    changes: list[str] = []
    cols: list[str] = []
    for name in expected:
        if name not in p.columns:
            changes.append(f"'{name}' is missing")
            cols.append(name)
    for name, col in p.columns.items():
        if name not in expected:
            changes.append(f"'{name}' is new")
            cols.append(name)
            continue
        want, got = expected[name].dtype, logical_type(col)
        if want != got and not (want == "float" and got == "integer"):
            changes.append(f"'{name}' was {want}, is {got}")
            cols.append(name)
        elif not expected[name].nullable and col.nulls.count:
            changes.append(f"'{name}' was approved without nulls, has {col.nulls.count}")
            cols.append(name)
    if not changes:
        return []
    return [
        finding(
            id="schema_drift",
            category="schema_drift",
            dimension="consistency",
            columns=cols,
            count=0,
            rows=p.rows,
            sample_rows=[],
            level="high",
            explanation="The data no longer matches the schema approved at gate 1: "
            + "; ".join(changes)
            + ".",
            details={"changes": changes},
            resolutions=[
                Resolution(
                    strategy="flag_only",
                    rationale="nothing is changed; reconfigure the source at gate 1 or update the contract",
                )
            ],
        )
    ]


def logical_type(col: ColumnProfile) -> str:
    """The column's type in the ColumnSchema vocabulary."""
    if col.kind == "numeric":
        return "integer" if col.integer else "float"
    if col.kind == "temporal":
        return "datetime"
    if col.kind == "boolean":
        return "boolean"
    return "string"


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


DETECTORS: tuple[Detector, ...] = (
    detect_missing_values,
    detect_duplicate_rows,
    detect_duplicate_keys,
    detect_type_mismatches,
    detect_invalid_formats,
    detect_rule_violations,
    detect_outliers,
    detect_multivariate_outliers,
    detect_inconsistent_categories,
    detect_padded_whitespace,
    detect_constant_columns,
    detect_high_cardinality,
    detect_skew_and_imbalance,
    detect_personal_data,
    detect_encoding_damage,
    detect_schema_drift,
    detect_time_gaps,
)
