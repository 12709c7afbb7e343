"""How risky each offered fix is for this finding, and what it changes, in words and numbers.

The base risk of a strategy comes from `lockflow.common.kinds.strategy_facts`; the finding's
evidence moves it: removing exact copies or trimming spaces stays low, filling with the mode is
low only when the mode is overwhelmingly the value (else high: it writes a guess into every gap),
a conversion is low only when almost nothing is lost, merging spellings that differ in their
digits (different codes) is high, and anything touching a large share of the rows is high.
`--yes` applies only fixes judged none or low (services/orchestrator/src/lockflow/orchestrator/policy.py).
"""

import re
from dataclasses import dataclass, field
from typing import Any

from lockflow.common.kinds import strategy_facts
from lockflow.common.models import Resolution, Risk

OVERWHELMING_MODE = 0.9  # impute_mode is low-risk only when the mode holds this share of filled values
ALMOST_NOTHING_LOST = 0.005  # a conversion is low-risk only when it loses at most this share
SMALL_SHARE = 0.05  # medium at most below this share of rows; high above LARGE_SHARE
LARGE_SHARE = 0.2
RANKS: dict[Risk, int] = {"none": 0, "low": 1, "medium": 2, "high": 3}
# Categories that describe the data without marking rows: flagging them changes nothing.
NO_ROWS = frozenset({"skew", "imbalance", "high_cardinality", "staleness", "time_gaps", "schema_drift"})


@dataclass(frozen=True)
class Evidence:
    """What a finding says about the size of its problem."""

    category: str
    columns: list[str]
    count: int
    rows: int
    details: dict[str, Any] = field(default_factory=dict)


def rate(resolution: Resolution, evidence: Evidence) -> Resolution:
    """The resolution with its risk and a sentence on what it changes (kept if already set)."""
    if "risk" in resolution.model_fields_set:
        return resolution
    risk, changes = _judge(resolution, evidence)
    return resolution.model_copy(update={"risk": risk, "changes": changes})


def rate_mode_fill(resolution: Resolution, evidence: Evidence, *, value: Any, share: float) -> Resolution:
    """impute_mode: low when `value` fills at least OVERWHELMING_MODE of the filled rows, else high."""
    risk: Risk = "low" if share >= OVERWHELMING_MODE else "high"
    changes = (
        f"writes '{value}' into {_cells(evidence)}; '{value}' holds {100 * share:.1f}% of the filled values"
    )
    if risk == "high":
        changes += f" (under {OVERWHELMING_MODE:.0%}: many gaps would get a value they never had)"
    return resolution.model_copy(update={"risk": risk, "changes": changes})


def _judge(resolution: Resolution, e: Evidence) -> tuple[Risk, str]:
    strategy = resolution.strategy
    base = strategy_facts(strategy).risk
    share = e.count / e.rows if e.rows else 0.0
    column = e.columns[0] if e.columns else ""
    if strategy == "flag_only":
        if e.category in NO_ROWS or e.count == 0:
            return "none", "changes nothing in the data"
        default = f"{column}_is_outlier" if e.category == "outliers" else f"{column}_flag"
        flag = resolution.params.get("column") or default  # the name resolve.py gives the column
        return "none", f"changes no values; adds column '{flag}' marking {_rows(e)}"
    if strategy in ("trim_whitespace", "repair_text"):
        return _by_share(base, share), f"changes {_cells(e)}"
    if strategy in ("drop_duplicates_keep_first", "drop_duplicates_keep_last"):
        if e.category == "duplicate_rows":
            return _by_share(
                "low", share, large="medium"
            ), f"removes {_rows(e)} that repeat another row exactly"
        return "high", f"removes {_rows(e)} that share a '{column}' but may differ in other columns"
    if strategy in ("coerce_numeric", "coerce_datetime"):
        return _conversion(strategy, e)
    if strategy == "merge_categories":
        return _merge(resolution.params.get("mapping") or {}, e)
    if strategy == "normalise_case":
        return "high", f"rewrites every value of '{column}' in lower case, not only the {e.count:,} variants"
    if strategy in ("cap_to_fences", "winsorize") and e.category == "skew":
        return "high", f"clips the tails of '{column}' (about 2% of its values): real values change"
    if strategy == "winsorize":
        return _by_share(
            base, share
        ), f"clips about 2% of the values of '{column}' to its 1st-99th percentiles"
    if strategy == "drop_rows":
        return "high", f"removes {_rows(e)}"
    if strategy == "drop_column":
        return "high", f"removes column '{column}' ({e.rows:,} values)"
    if strategy == "drop_duplicates_most_complete":
        return "high", f"removes {_rows(e)} that share a '{column}', keeping the most complete of each"
    if strategy == "fill_constant":
        value = resolution.params.get("value", "a constant")
        return _by_share(base, share), f"writes '{value}' into {_cells(e)}"
    if strategy == "impute_mode":
        return "high", f"writes the most frequent value into {_cells(e)}"
    return _by_share(base, share), f"changes {_cells(e)}"


def _conversion(strategy: str, e: Evidence) -> tuple[Risk, str]:
    """Low when almost nothing becomes missing; the lost share is of the filled values where known."""
    filled = e.count + int(e.details.get("numbers", 0)) if "numbers" in e.details else e.rows
    lost = e.count / filled if filled else 0.0
    risk: Risk = "low" if lost <= ALMOST_NOTHING_LOST else "medium" if lost <= SMALL_SHARE else "high"
    what = "numbers" if strategy == "coerce_numeric" else "dates"
    return risk, (
        f"converts '{e.columns[0]}' to {what}; {e.count:,} values ({100 * lost:.1f}%) that are not {what} "
        "become missing"
    )


def _merge(mapping: dict[str, str], e: Evidence) -> tuple[Risk, str]:
    """Low for case/spacing variants; high when a variant and its spelling differ in digits (codes)."""
    column = e.columns[0] if e.columns else ""
    differ_in_digits = [v for v, c in mapping.items() if re.findall(r"\d+", v) != re.findall(r"\d+", c)]
    if differ_in_digits:
        shown = ", ".join(f"'{v}' -> '{mapping[v]}'" for v in differ_in_digits[:3])
        return "high", (
            f"changes {_cells(e)}; merges values that differ in their digits ({shown}): different codes"
        )
    if all(_normal(v) == _normal(c) for v, c in mapping.items()):
        return _by_share("low", e.count / e.rows if e.rows else 0.0, large="medium"), (
            f"changes {_cells(e)}; the variants differ only in case or spacing"
        )
    return "medium", f"changes {_cells(e)}; merges near-identical spellings in '{column}'"


def _normal(value: str) -> str:
    return " ".join(value.split()).lower()


def _by_share(base: Risk, share: float, *, large: Risk = "high") -> Risk:
    """The base risk, raised to `large` when the fix touches LARGE_SHARE of the rows or more."""
    if share >= LARGE_SHARE and RANKS[large] > RANKS[base]:
        return large
    return base


def _cells(e: Evidence) -> str:
    return f"{e.count:,} cells ({_pct(e)}) in '{e.columns[0]}'" if e.columns else f"{e.count:,} cells"


def _rows(e: Evidence) -> str:
    return f"{e.count:,} rows ({_pct(e)})"


def _pct(e: Evidence) -> str:
    return f"{100 * e.count / e.rows:.1f}%" if e.rows else "0.0%"
