"""`lockflow source ...`: the source registry from the command line (same database as the gateway)."""

import json
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console

from lockflow.common.errors import LockflowError

source_app = typer.Typer(no_args_is_help=True, help="Register, inspect, test and remove data sources.")
console = Console()


def _settings() -> Any:
    from lockflow.common.logging import configure_logging
    from lockflow.common.settings_check import settings_or_exit
    from lockflow.sources.settings import SourceSettings

    settings = settings_or_exit(SourceSettings)  # a bad variable: one line on stderr, exit 2
    configure_logging(service="cli", level="WARNING")  # the JSON on stdout is the output
    return settings


def _db(settings: Any) -> Any:
    from lockflow.common.db import Database

    return Database(settings.resolved_database_url())


def _config(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise LockflowError(f"no such config file: {path}") from exc
    except yaml.YAMLError as exc:
        raise LockflowError(f"{path}: not valid YAML or JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise LockflowError(f"{path}: expected a mapping of config fields")
    return data


def _call(action: Any) -> None:
    """Run an action, printing its JSON result, or a clear error (with each bad field) and exit code 2."""
    from lockflow.sources.configs import ConfigInvalid

    try:
        result = action()
    except ConfigInvalid as exc:
        console.print(f"[bold red]error:[/] {exc}")
        for error in exc.errors:
            console.print(f"  {error['field']}: {error['message']}")
        raise typer.Exit(code=2) from exc
    except LockflowError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(code=2) from exc
    if result is not None:
        console.print_json(json.dumps(result, default=str))


@source_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A unique name")],
    type_: Annotated[str, typer.Option("--type", help="file, api, database, s3 or stream")],
    config: Annotated[Path, typer.Option(help="YAML or JSON file with the type's config")],
    by: Annotated[str, typer.Option(help="Who registers it")] = "local",
) -> None:
    """Register a source (secrets are encrypted at rest and never shown again)."""
    from lockflow.sources import registry

    settings = _settings()
    _call(
        lambda: registry.create_source(
            _db(settings), name=name, kind=type_, config=_config(config), actor=by, settings=settings
        )
    )


@source_app.command("list")
def list_() -> None:
    """Every source, secrets masked."""
    from lockflow.sources import registry

    settings = _settings()
    _call(lambda: registry.list_sources(_db(settings), settings=settings))


@source_app.command("show")
def show(ref: Annotated[str, typer.Argument(help="Id or name")]) -> None:
    """One source with its approved contract, secrets masked."""
    from lockflow.sources import registry

    settings = _settings()
    _call(lambda: registry.get_source(_db(settings), ref=ref, settings=settings))


@source_app.command("update")
def update(
    ref: Annotated[str, typer.Argument(help="Id or name")],
    config: Annotated[Path | None, typer.Option(help="YAML/JSON with the fields to change")] = None,
    name: Annotated[str | None, typer.Option(help="A new name")] = None,
    by: Annotated[str, typer.Option(help="Who changes it")] = "local",
) -> None:
    """Change a source; secrets left out keep their stored value."""
    from lockflow.sources import registry

    settings = _settings()
    changes = _config(config) if config else {}
    _call(
        lambda: registry.update_source(
            _db(settings), ref=ref, changes=changes, name=name, actor=by, settings=settings
        )
    )


@source_app.command("delete")
def delete(ref: Annotated[str, typer.Argument(help="Id or name")]) -> None:
    """Remove a source and its contract."""
    from lockflow.sources import registry

    settings = _settings()
    _call(lambda: registry.delete_source(_db(settings), ref=ref, actor="local"))
    console.print(f"deleted {ref}")


@source_app.command("test")
def test(ref: Annotated[str, typer.Argument(help="Id or name")]) -> None:
    """Check that the source is reachable, authorised and readable, and how long it took (exit 1 if not)."""
    from lockflow.common.artifacts import store_for
    from lockflow.ingest import connections

    settings = _settings()
    holder: list[Any] = []
    artifacts = store_for(settings)  # an uploaded file source is read from the artifact store
    _call(
        lambda: holder.append(
            connections.test_source(_db(settings), ref=ref, settings=settings, artifacts=artifacts)
        )
    )
    health = holder[0]
    console.print_json(health.model_dump_json())
    if not health.ok:
        raise typer.Exit(code=1)
