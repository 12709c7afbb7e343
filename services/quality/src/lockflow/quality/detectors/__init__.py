"""The catalogue of detectors, one module per family: each a small pure function from a streaming
Profile to Findings.

Counts marked exact come from the pass over every row; the rest say how they were estimated
(in `Finding.method`, with `exact=False`).
"""

from lockflow.quality.detectors.base import Context, Detector
from lockflow.quality.detectors.completeness import detect_missing_values
from lockflow.quality.detectors.consistency import (
    detect_constant_columns,
    detect_high_cardinality,
    detect_inconsistent_categories,
    detect_padded_whitespace,
    detect_schema_drift,
    detect_skew_and_imbalance,
)
from lockflow.quality.detectors.outliers import detect_multivariate_outliers, detect_outliers
from lockflow.quality.detectors.timeliness import detect_time_gaps
from lockflow.quality.detectors.uniqueness import detect_duplicate_keys, detect_duplicate_rows
from lockflow.quality.detectors.validity import (
    detect_encoding_damage,
    detect_invalid_formats,
    detect_personal_data,
    detect_rule_violations,
    detect_type_mismatches,
)

DETECTORS: tuple[Detector, ...] = (
    detect_missing_values,
    detect_duplicate_rows,
    detect_duplicate_keys,
    detect_type_mismatches,
    detect_invalid_formats,
    detect_rule_violations,
    detect_outliers,
    detect_multivariate_outliers,
    detect_inconsistent_categories,
    detect_padded_whitespace,
    detect_constant_columns,
    detect_high_cardinality,
    detect_skew_and_imbalance,
    detect_personal_data,
    detect_encoding_damage,
    detect_schema_drift,
    detect_time_gaps,
)

__all__ = ["DETECTORS", "Context", "Detector"]
