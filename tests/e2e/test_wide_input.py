"""Hostile width through the whole embedded pipeline: 10,000 columns are refused at ingest with a
message naming the limit and its setting, instead of an analytics stage that grows without bound."""

import asyncio
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from lockflow.cli_run import run_embedded
from lockflow.common.db import Database
from lockflow.common.models import Goal, SourceSpec
from lockflow.common.settings import CommonSettings
from lockflow.orchestrator.policy import default_policy
from lockflow.runstore import views

pytestmark = pytest.mark.e2e


def test_ten_thousand_columns_stop_at_ingest_with_the_limit_named(
    tmp_path: Path, embedded_defaults: None
) -> None:
    path = tmp_path / "wide.csv"
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.integers(0, 10, size=(50, 10_000)), columns=[f"c{i}" for i in range(10_000)])
    frame.to_csv(path, index=False)
    settings = CommonSettings(mode="embedded", home=tmp_path / "home")
    out = io.StringIO()
    status = asyncio.run(
        run_embedded(
            settings=settings,
            spec=SourceSpec(path=str(path)),
            goal=Goal(target="c0"),
            name="wide",
            policy=default_policy(),
            console=Console(file=out, width=200, color_system=None),
        )
    )
    assert status == "failed"
    db = Database(settings.resolved_database_url())
    (run,) = views.list_runs(db)
    db.dispose()
    printed = out.getvalue()
    assert "10,000 columns, more than the limit of 1,000 (LOCKFLOW_MAX_COLUMNS)" in printed
    assert "AnalyticsCompleted" not in printed
    assert run["status"] == "failed" and run["current_step"] == "ingest"
    assert "LOCKFLOW_MAX_COLUMNS" in run["error"]
