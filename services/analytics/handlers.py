"""Stage 4 handlers: statistics, correlations and clustering, cached by dataset + parameters."""

from lockflow.analytics.compute import analyse
from lockflow.common.cache import cache_key
from lockflow.common.events import AnalyticsCompleted, AnalyticsCompletedPayload, Command, Event, RunAnalytics
from lockflow.common.models import AnalyticsResult
from lockflow.common.worker import StageDeps, StageHandler

PRODUCER = "analytics"


def run_analytics(command: Command, deps: StageDeps) -> Event:
    """Serve the analysis from cache when the same data and parameters were analysed before."""
    assert isinstance(command, RunAnalytics)
    p = command.payload
    key = cache_key("analytics", p.dataset.fingerprint, p.params.model_dump(mode="json"))
    hit = deps.cache.get(key)
    if hit is not None:
        result, cached = AnalyticsResult.model_validate_json(hit), True
    else:
        result, cached = analyse(frame=deps.artifacts.read_frame(p.dataset), params=p.params), False
        deps.cache.set(key, result.model_dump_json())
    payload = AnalyticsCompletedPayload(
        attempt_id=p.attempt_id, dataset=p.dataset, result=result, cached=cached
    )
    return command.follow(AnalyticsCompleted, payload, producer=PRODUCER)


HANDLERS: dict[str, StageHandler] = {"RunAnalytics": run_analytics}
