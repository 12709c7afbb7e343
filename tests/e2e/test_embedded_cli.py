"""The same run in embedded mode, driven by the CLI as a user would, with a policy file."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.e2e

POLICY = """
source_review: {option: approve, rationale: schema looks right}
quality_review:
  option: apply
  params:
    choices:
      - {finding_id: "missing_values:satisfaction", strategy: impute_median}
      - {finding_id: duplicate_rows, strategy: drop_duplicates_keep_first}
analytics_review:
  - {option: modify, params: {n_clusters: 3}, rationale: three groups}
  - {option: accept}
insight_review: {option: accept}
action_selection: {option: choose, params: {selected: {top: 2}}}
"""


def run_cli(*args: str, home: Path, answers: str | None = None) -> subprocess.CompletedProcess[str]:
    """`lockflow run ARGS` as a user would type it, with optional answers on standard input."""
    return subprocess.run(
        [sys.executable, "-m", "lockflow.cli", "run", *args, "--home", str(home)],
        input=answers,
        capture_output=True,
        text=True,
        timeout=300,
        env={"COLUMNS": "200", "PATH": "/usr/bin"},
    )


def report_printed_by(done: subprocess.CompletedProcess[str]) -> dict:
    """The JSON report whose path the CLI printed."""
    json_line = next(line for line in done.stdout.splitlines() if line.strip().startswith("json"))
    return json.loads(Path(json_line.split()[-1]).read_text())


def test_policy_file_drives_a_run_to_its_report(tmp_path: Path, sales: pd.DataFrame) -> None:
    source = tmp_path / "sales.csv"
    sales.to_csv(source, index=False)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    done = run_cli(
        str(source), "--goal", "revenue:increase", "--decisions", str(policy), home=tmp_path / "home"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "completed" in done.stdout
    report = report_printed_by(done)
    final = sales.fillna({"satisfaction": sales["satisfaction"].median()}).drop_duplicates(keep="first")
    assert report["dataset"]["final"]["rows"] == len(final)
    stats = {c["name"]: c for c in report["analytics"]["columns"]}
    assert stats["revenue"]["mean"] == pytest.approx(final["revenue"].mean(), rel=1e-9)
    assert report["analytics"]["clustering"]["k"] == 3
    assert [d["option"] for d in report["decisions"]] == [
        "approve",
        "apply",
        "modify",
        "accept",
        "accept",
        "choose",
    ]
    assert len(report["plan"]) == 2


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"", "empty.csv", "is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "image.csv", "binary content"),
        (b"a,b,c\n1,2,3\n4,5,6,7,8\n", "ragged.csv", "has 5 fields, expected 3"),
    ],
)
def test_bad_files_get_a_message_naming_the_problem(
    tmp_path: Path, content: bytes, name: str, message: str
) -> None:
    source = tmp_path / name
    source.write_bytes(content)
    done = run_cli(str(source), "--yes", home=tmp_path / "home")
    assert done.returncode == 2
    assert message in done.stdout and name in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    done = run_cli(str(tmp_path / "nope.csv"), "--yes", home=tmp_path / "home")
    assert done.returncode == 2 and "no such file" in done.stdout and "nope.csv" in done.stdout


def test_a_bad_policy_file_is_named(tmp_path: Path, sales: pd.DataFrame) -> None:
    source = tmp_path / "sales.csv"
    sales.to_csv(source, index=False)
    policy = tmp_path / "policy.yaml"
    policy.write_text("quality_reveiw: {option: apply}\n")
    done = run_cli(str(source), "--decisions", str(policy), home=tmp_path / "home")
    assert done.returncode == 2 and "unknown gate 'quality_reveiw'" in done.stdout


def test_a_person_answers_every_gate_at_the_prompt(tmp_path: Path, sales: pd.DataFrame) -> None:
    source = tmp_path / "sales.csv"
    sales.to_csv(source, index=False)
    answers = (
        "\n".join(
            [
                "approve",
                "checked the schema",  # gate 1
                "apply",
                "all",
                "",  # gate 2: top fix for every finding
                "modify",
                "3",
                "want three groups",  # gate 3, first visit: loop back
                "accept",
                "",  # gate 3 again
                "accept",
                "",  # gate 4
                "choose",
                "2=ana@2099-01-31,1",
                "",  # gate 5: two actions, reordered; the first one with an owner and a due date
            ]
        )
        + "\n"
    )
    done = run_cli(str(source), "--goal", "revenue", home=tmp_path / "h", answers=answers)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "quality score" in done.stdout and "satisfaction" in done.stdout  # the findings table was shown
    report = report_printed_by(done)
    assert [d["option"] for d in report["decisions"]] == [
        "approve",
        "apply",
        "modify",
        "accept",
        "accept",
        "choose",
    ]
    assert report["decisions"][0]["rationale"] == "checked the schema"
    assert report["analytics"]["clustering"]["k"] == 3
    assert [p["rank"] for p in report["plan"]] == [1, 2]
    assert (report["plan"][0]["owner"], report["plan"][0]["due"]) == ("ana", "2099-01-31")
    out = done.stdout
    # Gate 3: rows used, what came from cache on the second visit (only clustering depends on k).
    assert "rows were used" in out and "strongest correlations" in out and "spearman" in out
    assert "from cache: describe, correlations" in out and "computed now: clustering" in out
    assert "clusters: k=3 (user)" in out and "anomalies:" in out and "drivers of revenue" in out
    # Gate 4: effect, confidence, interval, relevance; gate 5: impact, confidence, effort, priority.
    assert "95% interval" in out and "relevance" in out and "confidence" in out
    assert "expected impact" in out and "priority = impact x confidence / effort" in out
