"""`lockflow run --yes` without --goal: a sensible target is picked and named, or the run stops at once."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.e2e


def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lockflow.cli", "run", *args, "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"COLUMNS": "80", "PATH": "/usr/bin"},
    )


def test_yes_without_a_goal_picks_a_numeric_target_that_is_not_an_id_and_completes(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    rows = 500
    frame = pd.DataFrame(
        {
            "tuple_id": np.arange(rows),
            "region": rng.choice(["n", "s"], rows),
            "visits": rng.integers(1, 30, rows),
            "amount": rng.gamma(2.0, 50.0, rows).round(2),
        }
    )
    frame.to_csv(tmp_path / "orders.csv", index=False)
    done = run_cli(str(tmp_path / "orders.csv"), "--yes", home=tmp_path / "home")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        "goal: amount (increase), picked by lockflow: numeric, and its name says it is an outcome"
        in done.stdout
    )
    assert "Insights need a goal target" not in done.stdout
    assert "completed" in done.stdout and "Traceback" not in done.stdout + done.stderr


def test_yes_without_a_goal_and_no_usable_column_runs_without_a_target(tmp_path: Path) -> None:
    pd.DataFrame({"tuple_id": range(100), "name": ["x"] * 100}).to_csv(tmp_path / "ids.csv", index=False)
    done = run_cli(str(tmp_path / "ids.csv"), "--yes", home=tmp_path / "home")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "no numeric column suits as the goal's target: tuple_id (its name says it identifies rows)" in out
    assert "insights toward a target are skipped" in out
    assert "Insights need a goal target" not in out
    assert "completed" in out and "Traceback" not in out + done.stderr
