"""The quality service's settings: the common ones and gate 2's preview (its sample and its cache)."""

from pydantic import Field

from lockflow.common.settings import CommonSettings


class QualitySettings(CommonSettings):
    """LOCKFLOW_* variables the quality service reads."""

    preview_cache_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=0,
        description="In-process cache of gate 2's preview data and answers (least recently used "
        "out first, by bytes); 0 keeps nothing",
    )
    preview_sample_rows: int = Field(
        default=20_000,
        ge=100,
        description="Rows of the uniform sample a preview's first answer is computed on; "
        "a dataset this small or smaller is previewed exactly at once",
    )
    preview_exact_rows: int = Field(
        default=200_000,
        ge=0,
        description="Up to this many rows the exact preview reads the whole dataset into memory; "
        "above it the exact counts are streamed batch by batch",
    )
