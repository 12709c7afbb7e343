"""The chart tests' shared real evidence (built once per session in real_evidence.py)."""

from real_evidence import real

__all__ = ["real"]
