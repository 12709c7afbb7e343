"""The facts about every kind the stages exchange: finding categories, insight kinds, fix strategies.

One table per kind, read by every consumer (detectors, scoring, recommendations, reports, plan
export, gate views, the preview). A consumer never keeps its own copy: it asks `category_facts`,
`insight_facts` or `strategy_facts`, which answer an unknown value (an event from a newer producer)
with generic wording instead of a KeyError. `tests/unit/common/test_kinds.py` enumerates the
`Literal`s and fails when a table lacks one.
"""

from dataclasses import dataclass
from typing import Literal, get_args

from lockflow.common.models import FindingCategory, InsightKind, QualityDimension, Risk

RISKS: tuple[Risk, ...] = get_args(Risk)
Changes = Literal["nothing", "cells", "rows", "columns"]


@dataclass(frozen=True)
class CategoryFacts:
    """What a finding category is called, what it measures and what acting on it costs."""

    words: str  # plural noun phrase for running text: "missing values"
    label: str  # for headings and table cells: "Missing values"
    dimension: QualityDimension
    effort: int  # 1..5: fixing it at the source
    weight: float  # weight of one affected cell in the quality score (0: descriptive only)
    default_fix: str  # the strategy usually ranked first
    source_action: str  # what to do upstream, as an imperative: "stop the gaps at the source"


# fmt: off
# One row a category: words, label, dimension, effort, score weight, default fix, action at the source.
CATEGORIES: dict[FindingCategory, CategoryFacts] = {
    "missing_values": CategoryFacts(
        "missing values", "Missing values", "completeness", 2, 1.0, "impute_median",
        "capture the missing values at the source",
    ),
    "duplicate_rows": CategoryFacts(
        "duplicate rows", "Duplicate rows", "uniqueness", 2, 1.0, "drop_duplicates_keep_first",
        "stop rows being loaded twice",
    ),
    "type_mismatch": CategoryFacts(
        "type mismatches", "Type mismatch", "validity", 3, 1.0, "coerce_numeric",
        "store the column with one type",
    ),
    "outliers": CategoryFacts(
        "outliers", "Outliers", "validity", 3, 0.5, "flag_only",
        "check the extreme values with their owner",
    ),
    "duplicate_keys": CategoryFacts(
        "repeated keys", "Duplicate keys", "uniqueness", 3, 1.0, "flag_only",
        "make the key unique where it is assigned",
    ),
    "invalid_format": CategoryFacts(
        "malformed values", "Invalid format", "validity", 2, 1.0, "flag_only",
        "validate the format where the values are entered",
    ),
    "out_of_range": CategoryFacts(
        "out-of-range values", "Out of range", "validity", 2, 1.0, "flag_only",
        "reject impossible values where they are entered",
    ),
    "multivariate_outliers": CategoryFacts(
        "unusual combinations", "Multivariate outliers", "validity", 3, 0.25, "flag_only",
        "review the rows whose values do not fit together",
    ),
    "inconsistent_categories": CategoryFacts(
        "inconsistent spellings", "Inconsistent categories", "consistency", 2, 0.5, "merge_categories",
        "offer a fixed list of values where they are entered",
    ),
    "constant_column": CategoryFacts(
        "constant columns", "Constant column", "consistency", 1, 0.0, "flag_only",
        "drop or fill the column upstream",
    ),
    "high_cardinality": CategoryFacts(
        "high-cardinality text", "High cardinality", "consistency", 2, 0.0, "flag_only",
        "split free text from categories",
    ),
    "skew": CategoryFacts(
        "skewed distributions", "Skew", "validity", 1, 0.0, "flag_only",
        "prefer medians and rank statistics for the column",
    ),
    "imbalance": CategoryFacts(
        "imbalanced categories", "Imbalance", "consistency", 2, 0.0, "flag_only",
        "collect more rows of the rare values",
    ),
    "cross_column": CategoryFacts(
        "contradictions between columns", "Cross-column rule", "consistency", 3, 1.0, "flag_only",
        "enforce the relation between the columns where they are written",
    ),
    "personal_data": CategoryFacts(
        "personal data", "Personal data", "validity", 2, 0.0, "flag_only",
        "mask or remove personal data before it reaches analysis",
    ),
    "encoding": CategoryFacts(
        "damaged text", "Encoding damage", "validity", 2, 1.0, "repair_text",
        "export the text as UTF-8",
    ),
    "schema_drift": CategoryFacts(
        "schema changes", "Schema drift", "consistency", 3, 0.0, "flag_only",
        "agree the schema change with the source's owner",
    ),
    "time_gaps": CategoryFacts(
        "gaps in time", "Time gaps", "timeliness", 2, 0.0, "flag_only",
        "find out why periods have no rows",
    ),
    "staleness": CategoryFacts(
        "stale data", "Staleness", "timeliness", 2, 0.0, "flag_only",
        "refresh the source",
    ),
    "rule_violation": CategoryFacts(
        "rule violations", "Rule violation", "validity", 3, 1.0, "flag_only",
        "enforce the rule where the data is written",
    ),
}
# fmt: on
GENERIC_CATEGORY = CategoryFacts(
    "data quality problems", "Data quality", "validity", 3, 1.0, "flag_only", "fix the problem at the source"
)


@dataclass(frozen=True)
class InsightFacts:
    """What an insight kind is called, how it is tested and what acting on it costs."""

    words: str  # noun phrase: "a driver of the target"
    label: str  # "Driver"
    effort: int  # 1..5
    tested: bool  # False: no significance test, so confidence is not 1 - p


INSIGHT_KINDS: dict[InsightKind, InsightFacts] = {
    "driver": InsightFacts("a driver of the target", "Driver", 3, True),
    "segment": InsightFacts("a segment that differs", "Segment", 2, True),
    "cluster": InsightFacts("a cluster of similar rows", "Cluster", 2, False),
    "correlation": InsightFacts("a strong correlation", "Correlation", 2, True),
    "trend_break": InsightFacts("a break in the trend", "Trend break", 2, True),
    "anomaly": InsightFacts("anomalous rows", "Anomaly", 2, False),
    "concentration": InsightFacts("a concentration of the target", "Concentration", 2, True),
}
GENERIC_INSIGHT = InsightFacts("an insight", "Insight", 2, False)


@dataclass(frozen=True)
class StrategyFacts:
    """What a fix does, what it changes and how risky it is before the finding is known."""

    description: str
    changes: Changes
    risk: Risk  # none: the data is kept (a flag column is added at most)


STRATEGIES: dict[str, StrategyFacts] = {
    "impute_median": StrategyFacts("fill the missing values with the column's median", "cells", "medium"),
    "impute_mean": StrategyFacts("fill the missing values with the column's mean", "cells", "medium"),
    "impute_mode": StrategyFacts(
        "fill the missing values with the column's most frequent value", "cells", "medium"
    ),
    # A placeholder is not the missing value: it changes cells without repairing them.
    "fill_constant": StrategyFacts(
        "fill the missing values with a constant (params: value)", "cells", "medium"
    ),
    "drop_rows": StrategyFacts("remove the rows that have this problem", "rows", "high"),
    "drop_duplicates_keep_first": StrategyFacts(
        "remove repeated rows, keeping the first occurrence", "rows", "low"
    ),
    "drop_duplicates_keep_last": StrategyFacts(
        "remove repeated rows, keeping the last occurrence", "rows", "low"
    ),
    "coerce_numeric": StrategyFacts(
        "convert the column to numbers; values that are not numbers become missing", "cells", "medium"
    ),
    "cap_to_fences": StrategyFacts(
        "clip values to the outlier fences (params: lower, upper)", "cells", "medium"
    ),
    "flag_only": StrategyFacts(
        "keep the values and add a boolean column marking the affected rows (params: column)",
        "nothing",
        "none",
    ),
    "impute_interpolate": StrategyFacts(
        "fill the missing numbers linearly from their neighbours in row order", "cells", "medium"
    ),
    "winsorize": StrategyFacts(
        "clip values to quantiles of the column (params: lower_quantile, upper_quantile)", "cells", "medium"
    ),
    "coerce_datetime": StrategyFacts(
        "convert the column to dates; values that are not real dates become missing", "cells", "medium"
    ),
    "set_missing": StrategyFacts(
        "blank the affected values (they become missing), keeping the rows", "cells", "medium"
    ),
    "trim_whitespace": StrategyFacts("remove leading and trailing spaces", "cells", "low"),
    # It rewrites every value of the column, not only the variants.
    "normalise_case": StrategyFacts("trim and lower-case every value of the column", "cells", "high"),
    "merge_categories": StrategyFacts(
        "rewrite variant spellings to one canonical spelling (params: mapping)", "cells", "medium"
    ),
    "drop_duplicates_most_complete": StrategyFacts(
        "for each repeated key keep the row with the fewest missing cells", "rows", "high"
    ),
    "mask_personal_data": StrategyFacts(
        "replace all but the last 4 characters of personal data with '*'", "cells", "medium"
    ),
    "repair_text": StrategyFacts(
        "re-decode UTF-8 read as Latin-1 and remove control characters", "cells", "low"
    ),
    "drop_column": StrategyFacts("remove the column from the dataset", "columns", "high"),
}
GENERIC_STRATEGY = StrategyFacts("change the data as the fix describes", "cells", "high")


def category_facts(category: str) -> CategoryFacts:
    """The facts of a finding category; generic wording for one this build does not know."""
    return CATEGORIES.get(category, GENERIC_CATEGORY)  # type: ignore[call-overload]


def insight_facts(kind: str) -> InsightFacts:
    """The facts of an insight kind; generic wording for one this build does not know."""
    return INSIGHT_KINDS.get(kind, GENERIC_INSIGHT)  # type: ignore[call-overload]


LOW_RISKS: frozenset[str] = frozenset({"none", "low"})  # what a default may apply unread (--yes)


def is_low_risk(risk: str) -> bool:
    """True for a risk a default may take without a person reading it: none or low."""
    return risk in LOW_RISKS


def strategy_facts(strategy: str) -> StrategyFacts:
    """The facts of a fix strategy; an unknown one is described generically and judged high-risk."""
    return STRATEGIES.get(strategy, GENERIC_STRATEGY)


def category_label(category: str) -> str:
    """A category's label for a table cell; an unknown one keeps its raw name beside the generic label."""
    known = CATEGORIES.get(category)  # type: ignore[call-overload]
    return known.label if known else f"{GENERIC_CATEGORY.label} ({category})"


def insight_label(kind: str) -> str:
    """An insight kind's label for a table cell; an unknown one keeps its raw name beside the generic one."""
    known = INSIGHT_KINDS.get(kind)  # type: ignore[call-overload]
    return known.label if known else f"{GENERIC_INSIGHT.label} ({kind})"


def strategy_summary(strategy: str) -> str:
    """A fix as a person choosing it reads it: what it does and its risk, e.g. 'remove ... (risk: high)'."""
    facts = strategy_facts(strategy)
    return f"{facts.description} (risk: {facts.risk})"
