"""Fixtures that start every lockflow service as its own OS process over Kafka + PostgreSQL + Redis."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from faults import cluster_env

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
def cluster(
    tmp_path: Path, kafka_bootstrap: str, fresh_postgres: str, redis_url: str, topic_prefix: str
) -> Iterator[DevCluster]:
    """Gateway + orchestrator + six stage workers, each a process, on fresh topics and a fresh database."""
    env = cluster_env(
        tmp_path,
        kafka_bootstrap=kafka_bootstrap,
        database_url=fresh_postgres,
        redis_url=redis_url,
        topic_prefix=topic_prefix,
    )
    running = DevCluster(env=env, logs=tmp_path / "logs")
    try:
        running.start()
        yield running
    finally:
        running.stop()
