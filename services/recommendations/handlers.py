"""Stage 6 handlers: prioritised action items from unresolved findings and insights."""

from lockflow.common.events import (
    ActionsRecommended,
    ActionsRecommendedPayload,
    Command,
    Event,
    RecommendActions,
)
from lockflow.common.worker import StageDeps, StageHandler
from lockflow.recommendations.plan import recommend

PRODUCER = "recommendations"


def recommend_actions(command: Command, _deps: StageDeps) -> Event:
    """Consolidate findings and insights into ranked actions."""
    assert isinstance(command, RecommendActions)
    p = command.payload
    items = recommend(goal=p.goal, unresolved_findings=p.unresolved_findings, insights=p.insights)
    payload = ActionsRecommendedPayload(attempt_id=p.attempt_id, items=items)
    return command.follow(ActionsRecommended, payload, producer=PRODUCER)


HANDLERS: dict[str, StageHandler] = {"RecommendActions": recommend_actions}
