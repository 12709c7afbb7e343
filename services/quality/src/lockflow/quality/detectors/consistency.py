"""Consistency: categories, whitespace, constants, cardinality, skew and schema drift."""

import difflib
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np

from lockflow.common.models import (
    Finding,
    Resolution,
)
from lockflow.quality import patterns
from lockflow.quality.detectors.base import (
    CODE_MAX_LETTERS,
    HIGH_CARDINALITY_MIN,
    HIGH_CARDINALITY_SHARE,
    IMBALANCE_SHARE,
    MAX_CATEGORIES_COMPARED,
    MIXED_MIN_SHARE,
    MIXED_MIN_VALUES,
    NEAR_CONSTANT_SHARE,
    SIMILAR_RARITY,
    SIMILAR_RATIO,
    SKEW_BOWLEY,
    Context,
    disguised_sentinels,
    finding,
    flag,
    numeric_sample,
    pct,
    sample_method,
)
from lockflow.quality.profile import ColumnProfile, Profile
from lockflow.quality.risk import Evidence, rate

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
