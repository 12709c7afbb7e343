"""Identifiers: UUIDv7 so that ids sort by creation time."""

from uuid6 import uuid7


def new_id() -> str:
    """Return a new time-ordered UUIDv7 as text."""
    return str(uuid7())
