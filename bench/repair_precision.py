"""Repair precision of gate 2's default fixes on a dirty/clean pair with ground truth.

    python bench/repair_precision.py [--rows 20000] [--seed 0]

Builds a clean flights-like table (flight codes, departure times as text, delays with a real long
tail, a constant year, airports, a status), makes a dirty copy (gaps, padded airports, upper-cased
statuses, exact repeated rows, flight codes with two digits swapped), assesses the dirty copy, and
applies the fixes two policies choose: `top` (what --yes applies: low-risk top fixes, flags for the
rest) and `top_any` (every top fix, any risk). For each it prints the cells changed, those that became
correct (repaired), correct cells made wrong (damaged), repair precision (repaired / changed), rows
removed and distinct clean rows lost with them (0: only repeats went), columns removed and flag columns added.
"""

import argparse
import string
import time

import numpy as np
import pandas as pd

from lockflow.common.models import ResolutionChoice
from lockflow.orchestrator.policy import top_choices
from lockflow.quality.detect import assess
from lockflow.quality.resolve import apply_resolutions, changed_cells


def clean_table(rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """The ground truth."""
    codes = [f"{a}{b}-{n}" for a in "AUDB" for b in "AL" for n in rng.integers(100, 9999, 40)]
    times = [f"{h}:{m:02d} {'a.m.' if h < 12 else 'p.m.'}" for h in range(5, 23) for m in range(0, 60, 5)]
    weights = rng.dirichlet(np.ones(len(times)))
    return pd.DataFrame(
        {
            "flight": pd.Series(rng.choice(codes, rows), dtype="str"),
            "dep_time": pd.Series(rng.choice(times, rows, p=weights), dtype="str"),
            "dep_delay": np.round(rng.exponential(12.0, rows) - 5.0, 1),
            "year": np.full(rows, 2011, dtype="int64"),
            "origin": pd.Series(rng.choice(["JFK", "LAX", "ORD", "SFO", "BOS"], rows), dtype="str"),
            "status": pd.Series(rng.choice(["on time", "delayed"], rows, p=[0.7, 0.3]), dtype="str"),
        }
    )


def dirty_copy(clean: pd.DataFrame, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    """The dirty table and, for each of its rows, the clean row it comes from."""
    n = len(clean)
    dirty = clean.copy()
    pick = lambda share: rng.choice(n, int(share * n), replace=False)  # noqa: E731
    dirty.loc[pick(0.05), "dep_time"] = None
    dirty.loc[pick(0.03), "dep_delay"] = np.nan
    padded = pick(0.02)
    dirty.loc[padded, "origin"] = dirty.loc[padded, "origin"] + " "
    shouted = pick(0.02)
    dirty.loc[shouted, "status"] = dirty.loc[shouted, "status"].str.upper()
    swapped = pick(0.01)
    dirty.loc[swapped, "flight"] = [_swap_digits(v, rng) for v in dirty.loc[swapped, "flight"]]
    repeats = pick(0.01)
    source = np.concatenate([np.arange(n), repeats])
    return pd.concat([dirty, dirty.iloc[repeats]], ignore_index=True), source


def _swap_digits(code: str, rng: np.random.Generator) -> str:
    digits = [i for i, ch in enumerate(code) if ch in string.digits]
    i = int(rng.integers(0, len(digits) - 1))
    chars = list(code)
    chars[digits[i]], chars[digits[i + 1]] = chars[digits[i + 1]], chars[digits[i]]
    return "".join(chars)


def measure(clean: pd.DataFrame, dirty: pd.DataFrame, source: np.ndarray, any_risk: bool) -> dict[str, float]:
    """Apply the policy's choices to the dirty table and compare every kept cell with the truth."""
    findings = assess(frame=dirty).findings
    choices, _ = top_choices([f.model_dump(mode="json") for f in findings], any_risk=any_risk)
    picked = [ResolutionChoice.model_validate(c) for c in choices]
    after = apply_resolutions(frame=dirty, findings=findings, choices=picked, keep_index=True).frame
    kept = after.index
    truth = clean.iloc[source[kept]].set_index(kept)
    before = dirty.loc[kept]
    out = {"changed": 0, "repaired": 0, "damaged": 0}
    for column in clean.columns:
        if column not in after.columns:
            continue
        changed = changed_cells(before[column], after[column]).to_numpy()
        was_wrong = changed_cells(truth[column], before[column]).to_numpy()
        now_wrong = changed_cells(truth[column], after[column]).to_numpy()
        out["changed"] += int(changed.sum())
        out["repaired"] += int((changed & was_wrong & ~now_wrong).sum())
        out["damaged"] += int((changed & ~was_wrong & now_wrong).sum())
    removed = dirty.index.difference(kept)
    out["precision"] = out["repaired"] / out["changed"] if out["changed"] else 1.0
    out["rows_removed"] = len(removed)
    # A removal is harmless when the clean row it came from is still held by a kept row with the same
    # true content (the clean table has exact repeats of its own): count the distinct rows lost.
    out["clean_rows_lost"] = len(clean.drop_duplicates()) - len(truth.drop_duplicates())
    out["columns_removed"] = len([c for c in clean.columns if c not in after.columns])
    out["flag_columns"] = len([c for c in after.columns if c not in clean.columns])
    out["choices"] = len(picked)
    return out


def main() -> None:
    """Print the figures for both policies."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    clean = clean_table(args.rows, rng)
    dirty, source = dirty_copy(clean, rng)
    wrong = sum(int(changed_cells(clean[c], dirty.iloc[: len(clean)][c]).sum()) for c in clean.columns)
    print(
        f"{len(dirty)} dirty rows ({len(dirty) - len(clean)} repeats), {wrong} wrong cells (seed {args.seed})"
    )
    for name, any_risk in (("top (--yes)", False), ("top_any", True)):
        started = time.perf_counter()
        r = measure(clean, dirty, source, any_risk)
        print(
            f"{name:12s} choices {r['choices']:2d}  cells changed {r['changed']:6d}  "
            f"repaired {r['repaired']:6d}  damaged {r['damaged']:6d}  precision {r['precision']:.3f}  "
            f"rows removed {r['rows_removed']} (clean rows lost {r['clean_rows_lost']})  "
            f"columns removed {r['columns_removed']}  flag columns {r['flag_columns']}  "
            f"({time.perf_counter() - started:.1f} s)"
        )


if __name__ == "__main__":
    main()
