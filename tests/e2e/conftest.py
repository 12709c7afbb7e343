"""Fixtures that start every lockflow service as its own OS process over Kafka + PostgreSQL + Redis."""

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lockflow.auth.keys import generate_private_pem
from lockflow.devcluster import DevCluster


def planted_sales(rows: int = 3_000, seed: int = 11) -> pd.DataFrame:
    """Sales: revenue driven by spend and discount, West 30% lower; missing values and duplicates planted."""
    rng = np.random.default_rng(seed)
    region = rng.choice(["North", "South", "East", "West"], size=rows)
    spend = rng.uniform(100, 2000, size=rows).round(2)
    discount = rng.uniform(0, 0.3, size=rows).round(3)
    revenue = 1500 + 2.0 * spend - 3000 * discount + rng.normal(0, 150, size=rows)
    revenue = np.where(region == "West", revenue * 0.7, revenue).round(2)
    satisfaction = rng.integers(1, 6, size=rows).astype(float)
    frame = pd.DataFrame(
        {
            "region": region,
            "spend": spend,
            "discount": discount,
            "satisfaction": satisfaction,
            "revenue": revenue,
        }
    )
    frame.loc[rng.choice(rows, size=150, replace=False), "satisfaction"] = np.nan
    return pd.concat([frame, frame.sample(n=12, random_state=seed)], ignore_index=True)


@pytest.fixture
def sales() -> pd.DataFrame:
    """The planted sales frame."""
    return planted_sales()


@pytest.fixture
def cluster_env(
    tmp_path: Path, kafka_bootstrap: str, fresh_postgres: str, redis_url: str, topic_prefix: str
) -> dict[str, str]:
    """The environment every process of a cluster shares: fresh topics, a fresh database, one key."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    return {
        "LOCKFLOW_MODE": "distributed",
        "LOCKFLOW_ENVIRONMENT": "test",
        "LOCKFLOW_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "LOCKFLOW_DATABASE_URL": fresh_postgres,
        "LOCKFLOW_REDIS_URL": redis_url,
        "LOCKFLOW_TOPIC_PREFIX": topic_prefix,
        "LOCKFLOW_HOME": str(tmp_path / "home"),
        "LOCKFLOW_ARTIFACT_DIR": str(tmp_path / "artifacts"),
        "LOCKFLOW_ALLOWED_DIRS": json.dumps([str(data_dir)]),
        "LOCKFLOW_LOG_LEVEL": "INFO",
        # Distributed mode verifies tokens with one key shared by every process (kept across restarts).
        "LOCKFLOW_SIGNING_KEY": generate_private_pem().decode(),
    }


@pytest.fixture
def cluster(tmp_path: Path, cluster_env: dict[str, str]) -> Iterator[DevCluster]:
    """Gateway + orchestrator + six stage workers, each a process, on fresh topics and a fresh database."""
    running = DevCluster(env=cluster_env, logs=tmp_path / "logs")
    try:
        running.start()
        yield running
    finally:
        running.stop()
