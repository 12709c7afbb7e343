"""A stage worker ends every attempt with an outcome: its result, or StageFailed."""

from lockflow.common import worker as worker_module
from lockflow.common.artifacts import LocalArtifactStore
from lockflow.common.bus.memory import InMemoryBus
from lockflow.common.bus.port import DeliveredEvent
from lockflow.common.cache import MemoryCache
from lockflow.common.errors import StageError
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
from lockflow.common.worker import StageDeps, StageWorker


def _command() -> RecommendActions:
    return RecommendActions(
        run_id="r1",
        payload=RecommendActionsPayload(
            attempt_id="a1", goal=Goal(target="y"), unresolved_findings=[], insights=[]
        ),
    )


async def _outcome(handler, tmp_path, monkeypatch) -> tuple[Event, int]:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(worker_module, "RETRY_BACKOFF_SECONDS", 0.0)
    calls = {"n": 0}

    def counting(command: Command, deps: StageDeps) -> Event:
        calls["n"] += 1
        return handler(command, deps, calls["n"])

    bus = InMemoryBus()
    stage = StageWorker(
        stage="recommendations",
        handlers={"RecommendActions": counting},
        deps=StageDeps(artifacts=LocalArtifactStore(tmp_path), cache=MemoryCache()),
    )
    command = _command()
    await stage.handle(bus, DeliveredEvent(command, "t", 0, 0, []))
    (record,) = bus.records("lockflow.events")
    return parse_event(record.value), calls["n"]


async def test_bad_input_fails_the_attempt_at_once(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def bad(command: Command, deps: StageDeps, n: int) -> Event:
        raise StageError("column x is empty")

    outcome, calls = await _outcome(bad, tmp_path, monkeypatch)
    assert isinstance(outcome, StageFailed) and outcome.payload.error == "column x is empty"
    assert calls == 1


async def test_an_unexpected_error_is_retried_then_fails_the_attempt(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def broken(command: Command, deps: StageDeps, n: int) -> Event:
        raise KeyError("oops")

    outcome, calls = await _outcome(broken, tmp_path, monkeypatch)
    assert isinstance(outcome, StageFailed)
    assert outcome.payload.error.startswith("unexpected error in recommendations: KeyError")
    assert outcome.payload.attempt_id == "a1" and outcome.causation_id is not None
    assert calls == 3


async def test_a_transient_error_recovers(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def flaky(command: Command, deps: StageDeps, n: int) -> Event:
        if n == 1:
            raise OSError("disk hiccup")
        result = ActionsRecommendedPayload(attempt_id="a1", items=[])
        return command.follow(ActionsRecommended, result, producer="test")

    outcome, calls = await _outcome(flaky, tmp_path, monkeypatch)
    assert calls == 2 and isinstance(outcome, ActionsRecommended)
