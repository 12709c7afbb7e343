"""Gate 2 preview over HTTP: the dry run matches pandas, nothing is applied, bad choices get 422."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from test_gateway_embedded import wait_open

from lockflow.auth.testing import sign_in
from lockflow.embedded import create_app
from lockflow.gateway.testing import embedded_settings


@pytest.fixture
def client(tmp_path: Path, data_dir: Path) -> Iterator[TestClient]:
    settings = embedded_settings(tmp_path)
    with TestClient(create_app(settings)) as test_client:
        test_client.data_dir = data_dir  # type: ignore[attr-defined]
        test_client.headers.update(sign_in(test_client, "ana", ["analyst"]))
        yield test_client


def messy(rows: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {
            "region": rng.choice(["north", "south"], rows),
            "spend": rng.uniform(0, 100, rows),
            "revenue": rng.uniform(100, 200, rows),
        }
    )
    frame.loc[[3, 50, 77, 120], "spend"] = np.nan
    frame.loc[[10, 11], "region"] = "North "
    return pd.concat([frame, frame.iloc[[0, 1, 2]]], ignore_index=True)


def gate2(client: TestClient) -> tuple[str, dict, pd.DataFrame]:
    frame = messy()
    path = client.data_dir / "messy.csv"  # type: ignore[attr-defined]
    frame.to_csv(path, index=False)
    run_id = client.post("/runs", json={"path": str(path), "goal": {"target": "revenue"}}).json()["id"]
    source = wait_open(client, run_id, "source_review")
    assert client.post(f"/decisions/{source['id']}", json={"option": "approve"}).status_code == 200
    return run_id, wait_open(client, run_id, "quality_review"), frame


def test_preview_matches_pandas_and_applies_nothing(client: TestClient) -> None:
    run_id, request, frame = gate2(client)
    ids = {f["id"] for f in request["context"]["findings"]}
    assert {"missing_values:spend", "duplicate_rows", "inconsistent_categories:region"} <= ids
    assert set(request["context"]["dimensions"]) >= {"completeness", "uniqueness", "timeliness"}
    choices = [
        {"finding_id": "missing_values:spend", "strategy": "impute_median"},
        {"finding_id": "duplicate_rows", "strategy": "drop_duplicates_keep_first"},
        {"finding_id": "inconsistent_categories:region", "strategy": "merge_categories"},
    ]
    answer = client.post(f"/decisions/{request['id']}/preview", json={"choices": choices})
    assert answer.status_code == 200, answer.text
    preview = answer.json()
    assert preview["sampled"] is False and preview["rows_previewed"] == len(frame)
    assert preview["rows_removed"] == int(frame.duplicated().sum()) == 3
    kept = frame.drop_duplicates()
    assert preview["cells_changed_by_column"] == {
        "spend": int(kept["spend"].isna().sum()),
        "region": int((kept["region"] == "North ").sum()),
    }
    spend = preview["columns"]["spend"]
    assert spend["before"]["missing"] == int(frame["spend"].isna().sum())
    assert spend["after"]["missing"] == 0
    assert np.isclose(spend["after"]["median"], kept["spend"].fillna(frame["spend"].median()).median())
    changed = {r["row"] for r in preview["changed_rows"] if r["change"] == "changed"}
    assert changed <= {3, 50, 77, 120, 10, 11}
    # Nothing was applied: the gate is still open and the run waits.
    assert client.get(f"/runs/{run_id}").json()["status"] == "waiting"
    assert wait_open(client, run_id, "quality_review")["id"] == request["id"]


@pytest.mark.parametrize(
    ("choice", "message"),
    [
        ({"finding_id": "missing_values:nope", "strategy": "drop_rows"}, "unknown finding"),
        ({"finding_id": "duplicate_rows", "strategy": "impute_mean"}, "does not apply"),
        (
            {"finding_id": "missing_values:spend", "strategy": "drop_rows", "params": {"value": 1}},
            "does not take value",
        ),
        (
            {
                "finding_id": "inconsistent_categories:region",
                "strategy": "merge_categories",
                "params": {"mapping": 3},
            },
            "mapping",
        ),
    ],
)
def test_bad_choices_get_422_and_the_run_stays_at_gate_2(
    client: TestClient, choice: dict, message: str
) -> None:
    run_id, request, _ = gate2(client)
    answer = client.post(f"/decisions/{request['id']}/preview", json={"choices": [choice]})
    assert answer.status_code == 422 and message in answer.json()["detail"], answer.text
    decided = client.post(
        f"/decisions/{request['id']}", json={"option": "apply", "params": {"choices": [choice]}}
    )
    assert decided.status_code == 422 and message in decided.json()["detail"]
    assert client.get(f"/runs/{run_id}").json()["status"] == "waiting"


RULES = """
rules:
  - {column: spend, between: [0, 50]}
  - {name: revenue_above_spend, expression: "revenue > spend"}
"""


@pytest.mark.parametrize("given", ["yaml", "json"])
def test_rules_given_with_the_run_are_reported_like_findings(client: TestClient, given: str) -> None:
    frame = messy()
    path = client.data_dir / "ruled.csv"  # type: ignore[attr-defined]
    frame.to_csv(path, index=False)
    rules: object = RULES
    if given == "json":
        rules = {
            "rules": [
                {"column": "spend", "between": [0, 50]},
                {"name": "revenue_above_spend", "expression": "revenue > spend"},
            ]
        }
    started = client.post("/runs", json={"path": str(path), "goal": {"target": "revenue"}, "rules": rules})
    assert started.status_code == 201, started.text
    run_id = started.json()["id"]
    source = wait_open(client, run_id, "source_review")
    assert client.post(f"/decisions/{source['id']}", json={"option": "approve"}).status_code == 200
    found = {f["id"]: f for f in wait_open(client, run_id, "quality_review")["context"]["findings"]}
    assert found["rule:spend between"]["count"] == int((frame["spend"] > 50).sum())
    assert found["rule:spend between"]["category"] == "rule_violation"
    assert "rule:revenue_above_spend" not in found  # revenue (100-200) is always above spend (0-100)


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ("rules:\n  - {column: spend, betwen: [0, 1]}\n", "unknown key"),
        ("rules:\n  - {name: bad, expression: 'spend >'}\n", "does not parse"),
        ("rules: [", "not valid YAML"),
        ({"rules": [{"column": "spend", "between": [5, 1]}]}, "lower bound 5 is above the upper bound 1"),
        ({"rules": "spend"}, "rules"),
    ],
)
def test_a_bad_rules_file_is_refused_and_no_run_starts(
    client: TestClient, rules: object, message: str
) -> None:
    path = client.data_dir / "ruled.csv"  # type: ignore[attr-defined]
    messy().to_csv(path, index=False)
    before = client.get("/runs").json()
    answer = client.post("/runs", json={"path": str(path), "goal": {"target": "revenue"}, "rules": rules})
    assert answer.status_code == 422 and message in answer.json()["detail"], answer.text
    assert client.get("/runs").json() == before
    upload = client.post(
        "/runs/upload",
        files={"file": ("ruled.csv", path.read_bytes(), "text/csv")},
        data={"rules": rules if isinstance(rules, str) else "rules: 3"},
    )
    assert upload.status_code == 422, upload.text
    assert client.get("/runs").json() == before
