"""Validity: types, formats, user rules, encoding damage and personal data."""

from typing import Any

from lockflow.common.models import (
    Finding,
    FindingCategory,
    QualityDimension,
    Resolution,
    Severity,
)
from lockflow.quality.detectors.base import (
    MIXED_MIN_SHARE,
    MIXED_MIN_VALUES,
    NUMERIC_LIKE_SHARE,
    Context,
    disguised_sentinels,
    drop,
    finding,
    flag,
    hash_method,
    numeric_sample,
    pct,
)
from lockflow.quality.profile import Profile, RuleTally

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
            method=hash_method(p) if rule.kind == "unique" else "exact count over every row",
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
