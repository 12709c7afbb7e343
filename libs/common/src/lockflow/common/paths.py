"""Paths a person names: resolved, and kept inside the folders a server may read."""

from pathlib import Path

from lockflow.common.errors import InvalidInput


def resolve_inside(path: str, allowed: list[Path]) -> Path:
    """The resolved path, if it lies inside one of the allowed folders (any path when none are set)."""
    try:
        resolved = Path(path).expanduser().resolve()
    except (RuntimeError, ValueError, OSError) as exc:
        # `~user` of no such user, a NUL byte, a path the OS refuses: bad input, not a server error.
        raise InvalidInput(f"{path!r} is not a usable path ({exc})") from exc
    if allowed and not any(resolved == d or d in resolved.parents for d in allowed):
        raise InvalidInput(f"{path} is outside the folders this server may read")
    return resolved
