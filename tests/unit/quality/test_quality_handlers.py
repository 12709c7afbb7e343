"""Stage 3's handlers end to end on a real artifact store: assess, then apply chosen fixes and re-score."""

from pathlib import Path

import pandas as pd
import pyarrow as pa
from conftest import Planted

from lockflow.common.artifacts import LocalArtifactStore
from lockflow.common.cache import MemoryCache
from lockflow.common.events import (
    ApplyResolutions,
    ApplyResolutionsPayload,
    AssessQuality,
    AssessQualityPayload,
    QualityAssessed,
    ResolutionsApplied,
)
from lockflow.common.models import ResolutionChoice
from lockflow.common.worker import StageDeps
from lockflow.datasets.canonical import infer_schema
from lockflow.quality.handlers import apply_chosen_resolutions, assess_quality


def test_apply_writes_a_new_artifact_and_reports_the_re_score(tmp_path: Path, planted: Planted) -> None:
    deps = StageDeps(artifacts=LocalArtifactStore(tmp_path), cache=MemoryCache())
    table = pa.Table.from_pandas(planted.frame, preserve_index=False)
    original = deps.artifacts.put_table(table, columns=infer_schema(table))
    original_bytes = deps.artifacts.path_of(original.uri).read_bytes()
    assessed = assess_quality(
        AssessQuality(run_id="r", payload=AssessQualityPayload(attempt_id="a1", dataset=original)), deps
    )
    assert isinstance(assessed, QualityAssessed)
    findings = assessed.payload.findings
    choices = [
        ResolutionChoice(finding_id="duplicate_rows", strategy="drop_duplicates_keep_first"),
        ResolutionChoice(finding_id="missing_values:amount", strategy="impute_median"),
    ]
    command = ApplyResolutions(
        run_id="r",
        payload=ApplyResolutionsPayload(
            attempt_id="a2", dataset=original, findings=findings, choices=choices
        ),
    )
    applied = apply_chosen_resolutions(command, deps)
    assert isinstance(applied, ResolutionsApplied)
    result = applied.payload
    assert result.dataset.uri != original.uri
    assert deps.artifacts.path_of(original.uri).read_bytes() == original_bytes  # the old one is untouched
    fixed = pd.read_parquet(deps.artifacts.path_of(result.dataset.uri))
    expected = planted.frame.drop_duplicates()
    assert len(fixed) == len(expected) == len(planted.frame) - planted.duplicates
    assert fixed["amount"].isna().sum() == 0
    assert fixed["amount"].tolist() == expected["amount"].fillna(planted.frame["amount"].median()).tolist()
    assert {"duplicate_rows", "missing_values:amount"} <= set(result.resolved)
    assert result.introduced == []
    assert result.score_after > result.score_before == assessed.payload.score
    assert result.dimensions_after["uniqueness"] > result.dimensions_before["uniqueness"]
    assert result.dimensions_after["completeness"] > result.dimensions_before["completeness"]
    assert [a.strategy for a in result.applied] == ["impute_median", "drop_duplicates_keep_first"]
