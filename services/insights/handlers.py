"""Stage 5 handlers: goal-oriented insights with evidence."""

from lockflow.common.events import (
    Command,
    Event,
    GenerateInsights,
    InsightsGenerated,
    InsightsGeneratedPayload,
)
from lockflow.common.worker import StageDeps, StageHandler
from lockflow.insights.find import find_insights

PRODUCER = "insights"


def generate_insights(command: Command, deps: StageDeps) -> Event:
    """Find ranked insights toward the goal on the current dataset."""
    assert isinstance(command, GenerateInsights)
    p = command.payload
    insights = find_insights(
        frame=deps.artifacts.read_frame(p.dataset), analytics=p.analytics, params=p.params
    )
    payload = InsightsGeneratedPayload(attempt_id=p.attempt_id, params=p.params, insights=insights)
    return command.follow(InsightsGenerated, payload, producer=PRODUCER)


HANDLERS: dict[str, StageHandler] = {"GenerateInsights": generate_insights}
