"""Analytics results cached in real Redis: a re-run with the same inputs is served from cache."""

import uuid

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from lockflow.analytics.handlers import run_analytics
from lockflow.common.artifacts import LocalArtifactStore
from lockflow.common.cache import RedisCache, cache_key
from lockflow.common.events import AnalyticsCompleted, RunAnalytics, RunAnalyticsPayload
from lockflow.common.models import AnalyticsParams
from lockflow.common.worker import StageDeps
from lockflow.datasets.canonical import infer_schema

pytestmark = pytest.mark.integration


def test_set_get_and_expiry(redis_url: str) -> None:
    cache = RedisCache(redis_url)
    key = cache_key("test", uuid.uuid4().hex)
    assert cache.get(key) is None
    cache.set(key, '{"a": 1}', ttl_seconds=60)
    assert cache.get(key) == '{"a": 1}'
    assert 0 < cache._client.ttl(key) <= 60


def test_same_dataset_and_parameters_are_served_from_cache(tmp_path, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(uuid.uuid4().int % 2**32)  # new data each run, so the first call is a miss
    frame = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    table = pa.Table.from_pandas(frame, preserve_index=False)
    store = LocalArtifactStore(tmp_path)
    ref = store.put_table(table, columns=infer_schema(table))
    deps = StageDeps(artifacts=store, cache=RedisCache(redis_url))

    def command(params: AnalyticsParams) -> RunAnalytics:
        return RunAnalytics(
            run_id="r", payload=RunAnalyticsPayload(attempt_id="a", dataset=ref, params=params)
        )

    first = run_analytics(command(AnalyticsParams(n_clusters=2)), deps)
    second = run_analytics(command(AnalyticsParams(n_clusters=2)), deps)
    changed = run_analytics(command(AnalyticsParams(n_clusters=3)), deps)
    assert isinstance(first, AnalyticsCompleted) and isinstance(second, AnalyticsCompleted)
    assert isinstance(changed, AnalyticsCompleted)
    assert (first.payload.cached, second.payload.cached, changed.payload.cached) == (False, True, False)
    assert second.payload.result == first.payload.result
    assert changed.payload.result.clustering is not None and changed.payload.result.clustering.k == 3
