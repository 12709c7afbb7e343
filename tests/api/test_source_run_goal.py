"""A run on a registered source without a goal target gets one picked after ingest, and says why."""

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from lockflow.auth.testing import sign_in
from lockflow.embedded import create_app
from lockflow.gateway.testing import embedded_settings


@pytest.fixture
def client(tmp_path: Path, data_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(embedded_settings(tmp_path))) as test_client:
        test_client.headers.update(sign_in(test_client, "ana", ["analyst"]))
        yield test_client


def test_a_source_run_without_a_target_aims_at_an_outcome_column(client: TestClient, data_dir: Path) -> None:
    rng = np.random.default_rng(4)
    rows = 200
    pd.DataFrame(
        {
            "customer_id": np.arange(rows),
            "seq": np.arange(rows) + 1000,
            "region": rng.choice(["a", "b"], rows),
            "sales": rng.gamma(2.0, 30.0, rows).round(2),
        }
    ).to_csv(data_dir / "shop.csv", index=False)
    assert (
        client.post(
            "/sources", json={"name": "shop", "type": "file", "config": {"path": str(data_dir / "shop.csv")}}
        ).status_code
        == 201
    )
    run_id = client.post("/sources/shop/runs", json={}).json()["id"]
    deadline = time.monotonic() + 30
    while not client.get("/decisions", params={"run_id": run_id}).json():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    goal = client.get(f"/runs/{run_id}").json()["results"]["goal"]
    assert goal["target"] == "sales"
    assert goal["description"].startswith("target picked by lockflow after ingest: sales")
