"""Stage 5 handlers: goal-oriented insights with evidence, on the rows stage 4 used."""

from lockflow.common.events import (
    Command,
    Event,
    GenerateInsights,
    InsightsGenerated,
    InsightsGeneratedPayload,
)
from lockflow.common.worker import StageDeps, StageHandler
from lockflow.datasets.sampling import read_sampled
from lockflow.insights.find import find_insights

PRODUCER = "insights"


def generate_insights(command: Command, deps: StageDeps) -> Event:
    """Find ranked insights toward the goal on the current dataset."""
    assert isinstance(command, GenerateInsights)
    p = command.payload
    # Same rows as stage 4: all of them up to sample_rows, else the same seeded sample.
    with deps.artifacts.open_input(p.dataset.uri) as source:
        frame, _ = read_sampled(
            source, size=p.analytics.params.sample_rows, seed=p.analytics.params.random_state
        )
    insights = find_insights(frame=frame, analytics=p.analytics, params=p.params)
    payload = InsightsGeneratedPayload(attempt_id=p.attempt_id, params=p.params, insights=insights)
    return command.follow(InsightsGenerated, payload, producer=PRODUCER)


HANDLERS: dict[str, StageHandler] = {"GenerateInsights": generate_insights}
