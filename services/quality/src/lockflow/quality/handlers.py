"""Stage 3 handlers: assess quality; apply the resolutions a person chose and re-score."""

import threading

from lockflow.common.events import (
    ApplyResolutions,
    AssessQuality,
    Command,
    Event,
    PreviewResolutions,
    QualityAssessed,
    QualityAssessedPayload,
    Reply,
    Request,
    ResolutionsApplied,
    ResolutionsAppliedPayload,
    ResolutionsPreviewed,
    ResolutionsPreviewedPayload,
)
from lockflow.common.reqreply import RequestHandler
from lockflow.common.worker import StageDeps, StageHandler
from lockflow.quality.detect import assess_parquet
from lockflow.quality.preview_cache import PreviewStore
from lockflow.quality.settings import QualitySettings
from lockflow.quality.stream import stream_apply
from lockflow.qualityrules.rules import parse_rules

PRODUCER = "quality"
_STORE: PreviewStore | None = None
_STORE_LOCK = threading.Lock()


def preview_store(deps: StageDeps) -> PreviewStore:
    """The process's one preview store, sized by the quality service's settings."""
    global _STORE
    with _STORE_LOCK:
        if _STORE is None:
            settings = deps.settings if isinstance(deps.settings, QualitySettings) else QualitySettings()
            _STORE = PreviewStore(
                max_bytes=settings.preview_cache_bytes,
                sample_rows=settings.preview_sample_rows,
                exact_rows=settings.preview_exact_rows,
            )
        return _STORE


def _opener(deps: StageDeps, uri: str):  # type: ignore[no-untyped-def]
    return lambda: deps.artifacts.open_input(uri)


def assess_quality(command: Command, deps: StageDeps) -> Event:
    """Run every detector on the dataset artifact in one streaming pass."""
    assert isinstance(command, AssessQuality)
    p = command.payload
    rules = parse_rules(p.rules, origin="quality rules") if p.rules else None
    as_of = deps.clock.today()  # the process's one clock, so a run can be judged "as of" a date
    with deps.artifacts.open_input(p.dataset.uri) as source:
        assessment = assess_parquet(path=source, rules=rules, expected_schema=p.approved_schema, as_of=as_of)
    payload = QualityAssessedPayload(
        attempt_id=p.attempt_id,
        dataset=p.dataset,
        findings=assessment.findings,
        score=assessment.score,
        dimension_scores=assessment.dimensions,
        profile=assessment.summary,
        as_of=as_of,
    )
    # Gate 2 opens on this dataset next: read its preview sample now.
    preview_store(deps).warm(p.dataset.uri, _opener(deps, p.dataset.uri), assessment.findings)
    return command.follow(QualityAssessed, payload, producer=PRODUCER)


def apply_chosen_resolutions(command: Command, deps: StageDeps) -> Event:
    """Apply the chosen resolutions to a copy, store it as a new artifact, and re-assess."""
    assert isinstance(command, ApplyResolutions)
    p = command.payload
    rules = parse_rules(p.rules, origin="quality rules") if p.rules else None
    as_of = deps.clock.today()
    with deps.artifacts.open_input(p.dataset.uri) as source:
        before = assess_parquet(path=source, rules=rules, as_of=as_of)
    with deps.artifacts.open_dataset() as writer:
        with deps.artifacts.open_input(p.dataset.uri) as source:
            streamed = stream_apply(path=source, findings=p.findings, choices=p.choices, sink=writer)
        dataset = writer.commit(columns=streamed.columns)
    records = streamed.applied
    preview_store(deps).forget(p.dataset.uri)  # gate 2 was decided on it
    with deps.artifacts.open_input(dataset.uri) as source:
        after = assess_parquet(path=source, rules=rules, as_of=as_of)
    ids_before = {f.id for f in before.findings}
    ids_after = {f.id for f in after.findings}
    payload = ResolutionsAppliedPayload(
        attempt_id=p.attempt_id,
        dataset_before=p.dataset,
        dataset=dataset,
        applied=records,
        findings_after=after.findings,
        score_before=before.score,
        score_after=after.score,
        dimensions_before=before.dimensions,
        dimensions_after=after.dimensions,
        resolved=sorted(ids_before - ids_after),
        introduced=sorted(ids_after - ids_before),
        as_of=as_of,
    )
    return command.follow(ResolutionsApplied, payload, producer=PRODUCER)


HANDLERS: dict[str, StageHandler] = {
    "AssessQuality": assess_quality,
    "ApplyResolutions": apply_chosen_resolutions,
}


def preview_resolutions(request: Request, deps: StageDeps) -> Reply:
    """Gate 2's dry run: apply the checked choices to a copy (or a sample) of the dataset; store nothing."""
    assert isinstance(request, PreviewResolutions)
    p = request.payload
    answer = preview_store(deps).answer(
        uri=p.dataset.uri, open_input=_opener(deps, p.dataset.uri), findings=p.findings, choices=p.choices
    )
    payload = ResolutionsPreviewedPayload(preview=answer)
    return request.follow(ResolutionsPreviewed, payload, producer=PRODUCER)


# What the quality service answers on lockflow.requests.quality (request/reply; see lockflow.common.reqreply).
REQUESTS: dict[str, RequestHandler] = {"PreviewResolutions": preview_resolutions}
