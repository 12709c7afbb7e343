"""A stage worker keeps its attempt within budget: memory (checked while the handler runs) and time."""

import threading
import time

from lockflow.common.artifacts import LocalArtifactStore
from lockflow.common.bus.memory import InMemoryBus
from lockflow.common.bus.port import DeliveredEvent
from lockflow.common.cache import MemoryCache
from lockflow.common.events import (
    ActionsRecommended,
    ActionsRecommendedPayload,
    Command,
    Event,
    RecommendActions,
    RecommendActionsPayload,
    StageFailed,
    parse_event,
)
from lockflow.common.models import Goal
from lockflow.common.settings import CommonSettings
from lockflow.common.worker import StageDeps, StageHandler, StageWorker, resident_mb

CHUNK_MB = 10
SAFETY_MB = 1_500  # the handler never holds more than this, whatever the worker does


def _command() -> RecommendActions:
    payload = RecommendActionsPayload(
        attempt_id="a1", goal=Goal(target="y"), unresolved_findings=[], insights=[]
    )
    return RecommendActions(run_id="r1", payload=payload)


async def _outcome(handler: StageHandler, tmp_path, settings: CommonSettings) -> tuple[Event, float]:  # type: ignore[no-untyped-def]
    bus = InMemoryBus()
    deps = StageDeps(artifacts=LocalArtifactStore(tmp_path), cache=MemoryCache(), settings=settings)
    worker = StageWorker(stage="recommendations", handlers={"RecommendActions": handler}, deps=deps)
    started = time.monotonic()
    await worker.handle(bus, DeliveredEvent(_command(), "t", 0, 0, []))
    (record,) = bus.records("lockflow.events")
    return parse_event(record.value), time.monotonic() - started


async def test_a_handler_allocating_past_the_memory_budget_is_stopped(tmp_path) -> None:  # type: ignore[no-untyped-def]
    now = resident_mb()
    assert now is not None, "this test needs /proc/self/status (Linux)"
    budget = now + 200
    stopped = threading.Event()
    held: list[bytearray] = []

    def hungry(command: Command, deps: StageDeps) -> Event:
        try:
            while len(held) * CHUNK_MB < SAFETY_MB:
                held.append(bytearray(CHUNK_MB * 1024 * 1024))  # bytearray pages are touched: resident
                time.sleep(0.005)
            raise AssertionError("the worker let the handler reach the safety bound")
        finally:
            held.clear()
            stopped.set()

    settings = CommonSettings(memory_budget_mb=budget)
    outcome, _ = await _outcome(hungry, tmp_path, settings)
    assert isinstance(outcome, StageFailed)
    assert "more than its memory budget" in outcome.payload.error
    assert f"{budget:,} MB (LOCKFLOW_MEMORY_BUDGET_MB)" in outcome.payload.error
    # The handler's thread was interrupted, so it let go of what it held.
    assert stopped.wait(timeout=10)


async def test_a_handler_running_past_the_stage_timeout_is_stopped(tmp_path) -> None:  # type: ignore[no-untyped-def]
    stopped = threading.Event()

    def endless(command: Command, deps: StageDeps) -> Event:
        try:
            while True:
                time.sleep(0.01)
        finally:
            stopped.set()

    outcome, took = await _outcome(endless, tmp_path, CommonSettings(stage_timeout_seconds=0.5))
    assert isinstance(outcome, StageFailed)
    assert "ran longer than its budget of 0.5s (LOCKFLOW_STAGE_TIMEOUT_SECONDS)" in outcome.payload.error
    assert took < 5
    assert stopped.wait(timeout=10)


async def test_a_handler_within_budget_returns_its_result(tmp_path) -> None:  # type: ignore[no-untyped-def]
    def quick(command: Command, deps: StageDeps) -> Event:
        time.sleep(0.3)  # a few memory polls happen meanwhile
        return command.follow(
            ActionsRecommended, ActionsRecommendedPayload(attempt_id="a1", items=[]), producer="test"
        )

    outcome, _ = await _outcome(quick, tmp_path, CommonSettings(stage_timeout_seconds=30))
    assert isinstance(outcome, ActionsRecommended)
