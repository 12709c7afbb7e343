"""Stage 3 handlers: assess quality; apply the resolutions a person chose and re-score."""

import pyarrow as pa

from lockflow.common.events import (
    ApplyResolutions,
    AssessQuality,
    Command,
    Event,
    QualityAssessed,
    QualityAssessedPayload,
    ResolutionsApplied,
    ResolutionsAppliedPayload,
)
from lockflow.common.worker import StageDeps, StageHandler
from lockflow.ingest.read import infer_schema
from lockflow.quality.detect import assess
from lockflow.quality.resolve import apply_resolutions

PRODUCER = "quality"


def assess_quality(command: Command, deps: StageDeps) -> Event:
    """Run every detector on the dataset."""
    assert isinstance(command, AssessQuality)
    frame = deps.artifacts.read_frame(command.payload.dataset)
    assessment = assess(frame=frame)
    payload = QualityAssessedPayload(
        attempt_id=command.payload.attempt_id,
        dataset=command.payload.dataset,
        findings=assessment.findings,
        score=assessment.score,
    )
    return command.follow(QualityAssessed, payload, producer=PRODUCER)


def apply_chosen_resolutions(command: Command, deps: StageDeps) -> Event:
    """Apply the chosen resolutions to a copy, store it as a new artifact, and re-assess."""
    assert isinstance(command, ApplyResolutions)
    p = command.payload
    frame = deps.artifacts.read_frame(p.dataset)
    before = assess(frame=frame)
    applied = apply_resolutions(frame=frame, findings=p.findings, choices=p.choices)
    table = pa.Table.from_pandas(applied.frame, preserve_index=False)
    dataset = deps.artifacts.put_table(table, columns=infer_schema(table))
    after = assess(frame=applied.frame.reset_index(drop=True))
    payload = ResolutionsAppliedPayload(
        attempt_id=p.attempt_id,
        dataset_before=p.dataset,
        dataset=dataset,
        applied=applied.applied,
        findings_after=after.findings,
        score_before=before.score,
        score_after=after.score,
    )
    return command.follow(ResolutionsApplied, payload, producer=PRODUCER)


HANDLERS: dict[str, StageHandler] = {
    "AssessQuality": assess_quality,
    "ApplyResolutions": apply_chosen_resolutions,
}
