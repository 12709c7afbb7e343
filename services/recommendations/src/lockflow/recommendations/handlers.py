"""Stage 6 handlers: prioritised action items from unresolved findings and insights, cached by inputs."""

from pydantic import TypeAdapter

from lockflow.common.cache import cache_key
from lockflow.common.events import (
    ActionsRecommended,
    ActionsRecommendedPayload,
    Command,
    Event,
    RecommendActions,
)
from lockflow.common.models import ActionItem
from lockflow.common.worker import StageDeps, StageHandler
from lockflow.recommendations.plan import recommend

PRODUCER = "recommendations"
_ITEMS = TypeAdapter(list[ActionItem])


def recommend_actions(command: Command, deps: StageDeps) -> Event:
    """Consolidate findings and insights into ranked actions (from cache for the same inputs)."""
    assert isinstance(command, RecommendActions)
    p = command.payload
    # The inputs are the whole story (they already carry the dataset's numbers), so they are the key.
    key = cache_key("recommendations", p.model_dump(mode="json", exclude={"attempt_id"}))
    hit = deps.cache.get(key)
    if hit is not None:
        items, cached = _ITEMS.validate_json(hit), True
    else:
        items = recommend(goal=p.goal, unresolved_findings=p.unresolved_findings, insights=p.insights)
        deps.cache.set(key, _ITEMS.dump_json(items).decode())
        cached = False
    payload = ActionsRecommendedPayload(attempt_id=p.attempt_id, items=items, cached=cached)
    return command.follow(ActionsRecommended, payload, producer=PRODUCER)


HANDLERS: dict[str, StageHandler] = {"RecommendActions": recommend_actions}
