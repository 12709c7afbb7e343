"""Gate 2's preview at any size: the estimate and its margin, the bounded cache, the handler's answers."""

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_quality_stream import generated

from lockflow.common.artifacts import LocalArtifactStore
from lockflow.common.cache import MemoryCache
from lockflow.common.events import PreviewResolutions, PreviewResolutionsPayload, ResolutionsPreviewed
from lockflow.common.models import ResolutionChoice
from lockflow.common.worker import StageDeps
from lockflow.datasets.canonical import infer_schema
from lockflow.quality import handlers
from lockflow.quality.detect import assess_parquet
from lockflow.quality.preview import preview, read_sample, read_whole, scale_count, wilson_interval
from lockflow.quality.preview_cache import ByteLRU, PreviewStore


def test_wilson_interval_known_values() -> None:
    low, high = wilson_interval(50, 100)
    assert math.isclose(low, 0.4038, abs_tol=1e-4) and math.isclose(high, 0.5962, abs_tol=1e-4)
    low, high = wilson_interval(0, 100)  # no case seen: still an upper bound above 0
    assert math.isclose(low, 0, abs_tol=1e-12) and math.isclose(
        high, 1.959964**2 / (100 + 1.959964**2), rel_tol=1e-6
    )


def test_scale_count_is_exact_over_every_row_and_narrows_with_the_sample() -> None:
    assert scale_count(17, 1_000, 1_000) == (17, 0)
    estimate, margin = scale_count(10, 100, 1_000)
    assert estimate == 100
    p, (low, high) = 0.1, wilson_interval(10, 100)
    assert margin == math.ceil(max(high - p, p - low) * math.sqrt(900 / 999) * 1_000)
    assert scale_count(100, 1_000, 10_000)[1] < scale_count(10, 100, 10_000)[1]


def test_the_margin_covers_the_true_count_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(11)
    total, n = 20_000, 500
    for share in (0.003, 0.05, 0.4):
        population = rng.random(total) < share
        truth = int(population.sum())
        covered = 0
        for _ in range(400):
            sample = population[rng.choice(total, size=n, replace=False)]
            estimate, margin = scale_count(int(sample.sum()), n, total)
            covered += abs(estimate - truth) <= margin
        assert covered / 400 >= 0.92, (share, covered)


def test_byte_lru_keeps_within_its_bound_and_drops_the_least_recently_used() -> None:
    cache = ByteLRU(100)
    assert cache.put("a", 1, 40) and cache.put("b", 2, 40)
    assert cache.get("a") == 1  # a is now the most recently used
    assert cache.put("c", 3, 40)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    assert cache.used <= 100
    assert not cache.put("huge", 4, 101) and cache.get("huge") is None
    assert cache.put("a", 5, 10) and cache.used == 50  # replaced, not counted twice
    assert cache.discard(lambda k: k in ("a", "c")) == 2 and cache.used == 0 and len(cache) == 0


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    path = tmp_path / "data.parquet"
    pq.write_table(
        pa.Table.from_pandas(generated(6_000, seed=8), preserve_index=False), path, row_group_size=1_000
    )
    return path


def choices_for(path: Path) -> tuple[list, list[ResolutionChoice]]:
    findings = assess_parquet(path=path).findings
    return findings, [
        ResolutionChoice(finding_id=f.id, strategy=f.resolutions[0].strategy)
        for f in findings
        if f.resolutions
    ]


def test_the_sample_is_uniform_with_the_whole_files_dtypes(dataset: Path) -> None:
    frame, total = read_sample(path=dataset, rows=1_000)
    whole, _ = read_whole(path=dataset)
    assert total == len(whole) and len(frame) == 1_000 and frame.index.is_unique
    assert (frame.dtypes == whole.dtypes).all()
    assert frame.equals(whole.loc[frame.index])
    assert 0.4 < frame.index.to_numpy().mean() / total < 0.6


@pytest.mark.parametrize("exact_rows", [1_000_000, 0], ids=["exact in memory", "exact streamed"])
def test_store_answers_an_estimate_then_the_exact_figures_then_from_cache(
    dataset: Path, exact_rows: int
) -> None:
    findings, choices = choices_for(dataset)
    opened = []

    def opener():  # type: ignore[no-untyped-def]
        opened.append(1)
        return open_path(dataset)

    store = PreviewStore(max_bytes=64 * 1024 * 1024, sample_rows=1_000, exact_rows=exact_rows)
    first = store.answer(uri="u", open_input=opener, findings=findings, choices=choices)
    assert first["exact"] is False and first["exact_pending"] is True and first["sample_rows"] == 1_000
    assert first["margin"]["rows_changed"] > 0
    store.wait(uri="u", findings=findings, choices=choices)
    exact = store.answer(uri="u", open_input=opener, findings=findings, choices=choices)
    whole, total = read_whole(path=dataset)
    truth = preview(frame=whole, total_rows=total, findings=findings, choices=choices)
    assert exact["exact"] is True and exact["exact_pending"] is False
    for key in ("rows_removed", "rows_changed", "cells_changed", "cells_changed_by_column"):
        assert exact[key] == truth[key], key
        if key != "cells_changed_by_column":  # the estimate's interval held the truth
            assert abs(first[key] - truth[key]) <= first["margin"][key], key
    assert [s["note"] for s in exact["steps"]] == [s["note"] for s in truth["steps"]]
    reads = len(opened)
    again = store.answer(uri="u", open_input=opener, findings=findings, choices=list(reversed(choices)))
    assert again == exact and len(opened) == reads  # from the cache: nothing read
    other = store.answer(uri="u", open_input=opener, findings=findings, choices=choices[:1])
    assert other["exact"] is False and len(opened) == reads  # new choices: the cached sample
    assert store.cache.used <= store.cache.max_bytes


def test_a_store_that_keeps_nothing_still_hands_over_the_exact_answer(dataset: Path) -> None:
    findings, choices = choices_for(dataset)
    store = PreviewStore(max_bytes=0, sample_rows=1_000, exact_rows=1_000_000)
    first = store.answer(uri="u", open_input=lambda: open_path(dataset), findings=findings, choices=choices)
    store.wait(uri="u", findings=findings, choices=choices)
    exact = store.answer(uri="u", open_input=lambda: open_path(dataset), findings=findings, choices=choices)
    assert first["exact"] is False and exact["exact"] is True and len(store.cache) == 0


def open_path(path: Path):  # type: ignore[no-untyped-def]
    from contextlib import nullcontext

    return nullcontext(path)


def test_the_handler_answers_from_the_sample_then_exactly(
    tmp_path: Path, dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCKFLOW_PREVIEW_SAMPLE_ROWS", "1000")
    monkeypatch.setattr(handlers, "_STORE", None)
    deps = StageDeps(artifacts=LocalArtifactStore(tmp_path / "store"), cache=MemoryCache())
    table = pq.read_table(dataset)
    ref = deps.artifacts.put_table(table, columns=infer_schema(table))
    findings, choices = choices_for(dataset)
    payload = PreviewResolutionsPayload(request_id="d1", dataset=ref, findings=findings, choices=choices)

    def ask() -> dict:
        request = PreviewResolutions(
            run_id="r",
            payload=payload,
            reply_to="replies",
            expires_at=datetime.now(UTC) + timedelta(minutes=1),
        )
        reply = handlers.preview_resolutions(request, deps)
        assert isinstance(reply, ResolutionsPreviewed)
        return reply.payload.preview

    first = ask()
    assert first["exact"] is False and first["rows_total"] == len(table)
    handlers.preview_store(deps).wait(uri=ref.uri, findings=findings, choices=choices)
    exact = ask()
    assert exact["exact"] is True and exact["rows_previewed"] == len(table)
    assert handlers.preview_store(deps).cache.max_bytes == handlers.QualitySettings().preview_cache_bytes


def test_new_choices_drop_the_exact_answers_still_queued_for_older_ones(dataset: Path) -> None:
    findings, choices = choices_for(dataset)
    store = PreviewStore(max_bytes=64 * 1024 * 1024, sample_rows=1_000, exact_rows=1_000_000)
    gate = __import__("threading").Event()
    store._worker.submit(gate.wait)  # the worker is busy: what follows queues
    opener = lambda: open_path(dataset)  # noqa: E731
    store.answer(uri="u", open_input=opener, findings=findings, choices=choices[:1])
    store.answer(uri="u", open_input=opener, findings=findings, choices=choices[:2])
    assert len(store._jobs) == 1  # the first one's exact answer was dropped from the queue
    gate.set()
    store.wait(uri="u", findings=findings, choices=choices[:2])
    assert store.answer(uri="u", open_input=opener, findings=findings, choices=choices[:2])["exact"] is True
    again = store.answer(uri="u", open_input=opener, findings=findings, choices=choices[:1])
    assert again["exact"] is False and again["exact_pending"] is True  # asked again: queued again
    store.wait(uri="u", findings=findings, choices=choices[:1])
    assert store.answer(uri="u", open_input=opener, findings=findings, choices=choices[:1])["exact"] is True
