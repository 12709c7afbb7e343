"""Settings for a command or a service's process: a bad LOCKFLOW_* variable or option stops it with one
line naming it, exit 2.

pydantic would print a validation report and a traceback; a person needs the variable, what is wrong
with it and the value they gave (never the value of a secret or a URL, which may hold a password).
"""

import re
import sys
from collections.abc import Callable, Collection
from typing import Any, NoReturn, TypeVar

from pydantic import ValidationError
from pydantic_settings import SettingsError

EXIT_REFUSED = 2  # the same code as the CLI gives for input it cannot use
T = TypeVar("T")
# Values never echoed back: they may be, or contain, credentials.
_UNSAFE = re.compile(r"secret|password|(^|_)key(_|$)|url|dsn", re.IGNORECASE)
_FIELD = re.compile(r'field "(\w+)"')
_SHOWN_CHARS = 80


def settings_or_exit(kind: Callable[..., T], **options: Any) -> T:
    """`kind(**options)` (a pydantic-settings class reading LOCKFLOW_*); a bad value exits naming it."""
    return built_or_exit(lambda: kind(**options), options=options.keys())


def built_or_exit(build: Callable[[], T], *, options: Collection[str] = ()) -> T:
    """What `build` returns; a settings error exits 2 with one line per bad variable, no traceback.

    `options` are the fields set from command-line options: those are named `--name`, the others
    `LOCKFLOW_NAME`.
    """
    try:
        return build()
    except ValidationError as exc:
        _refuse(problems(exc, options=options))
    except SettingsError as exc:
        _refuse([unparsable(exc)])


def problems(exc: ValidationError, *, options: Collection[str] = ()) -> list[str]:
    """One line per bad field (its first error), or per check of the whole settings."""
    lines: dict[str, str] = {}
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        if not error["loc"]:  # a check across fields: its message names the variables
            lines.setdefault(message, message)
            continue
        field = str(error["loc"][0])
        origin = f"--{field.replace('_', '-')}" if field in options else f"LOCKFLOW_{field.upper()}"
        message = message.removeprefix(f"{origin}: ")
        if not _UNSAFE.search(field):
            shown = repr(error.get("input"))
            message += f" (got {shown[:_SHOWN_CHARS]}{'...' if len(shown) > _SHOWN_CHARS else ''})"
        lines.setdefault(field, f"{origin}: {message}")
    return list(lines.values())


def unparsable(exc: SettingsError) -> str:
    """The line for a variable pydantic-settings could not even parse (a list or mapping not in JSON)."""
    found = _FIELD.search(str(exc))
    origin = f"LOCKFLOW_{found.group(1).upper()}" if found else "a LOCKFLOW_ variable"
    cause = f" ({exc.__cause__})" if exc.__cause__ else ""
    return f'{origin}: cannot be parsed{cause}; a list is written as JSON, e.g. ["a", "b"]'


def _refuse(lines: list[str]) -> NoReturn:
    for line in lines:
        print(f"error: {line}", file=sys.stderr, flush=True)
    # SystemExit, not typer.Exit: a service started on its own has no typer; click lets it through.
    raise SystemExit(EXIT_REFUSED)
