"""Effect sizes on one scale: a standardised mean difference as the equivalent correlation."""

import math


def r_from_d(d: float) -> float:
    """Cohen's d as the equivalent correlation, so segments and drivers rank on one scale (|r| <= 1)."""
    return d / math.sqrt(d * d + 4.0)
