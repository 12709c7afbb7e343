"""The `lockflow` command: run a file end to end (embedded), serve the API, or run one worker."""

import asyncio
import contextlib
import importlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn, get_args

import click
import typer
from rich.console import Console

from lockflow.cli_cluster import cluster_app
from lockflow.cli_sources import source_app
from lockflow.common.errors import LockflowError
from lockflow.common.logging import configure_logging, get_logger
from lockflow.common.models import DIRECTION_SYNONYMS, Direction, Goal, SourceSpec
from lockflow.common.settings import CommonSettings
from lockflow.common.settings_check import built_or_exit, settings_or_exit
from lockflow.common.telemetry import setup_tracing
from lockflow.sources.settings import SourceSettings

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="lockflow: a data pipeline that people steer.",
    pretty_exceptions_enable=False,
)
app.add_typer(source_app, name="source")
app.add_typer(cluster_app, name="cluster")
console = Console()
log = get_logger(__name__)
SAMPLE = Path(__file__).parent / "data" / "sample_sales.csv"
DIRECTIONS = (*get_args(Direction), *DIRECTION_SYNONYMS)
EXIT_REFUSED = 2  # the input or the request could not be used; the message says why
EXIT_CRASHED = 3  # an unexpected error; the log file has the traceback


def _parse_goal(goal: str | None) -> Goal:
    """`--goal revenue`, `--goal revenue:decrease` or `--goal revenue:max` (max/min mean the same)."""
    if not goal:
        return Goal()
    target, _, direction = goal.partition(":")
    if direction not in ("", *DIRECTIONS):
        raise typer.BadParameter(
            f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}", param_hint="--goal"
        )
    return Goal(target=target, direction=direction or "increase")  # type: ignore[arg-type]


def log_file(settings: CommonSettings) -> Path:
    """Where the CLI writes its JSON log (with run_id and trace_id): LOCKFLOW_HOME/logs/cli.log."""
    return settings.home / "logs" / "cli.log"


def _embedded_settings(home: Path | None, *, as_of: str | None = None) -> tuple[SourceSettings, Path]:
    """Embedded settings (home from --home or LOCKFLOW_HOME) with logging sent to the log file."""
    overrides: dict[str, Any] = {"mode": "embedded"}
    if home:
        overrides["home"] = home
    if as_of:
        overrides["as_of"] = as_of
    # Source settings: the ingest stage runs in this process and reads them.
    settings = settings_or_exit(SourceSettings, **overrides)
    path = log_file(settings)
    configure_logging(service="cli", level=settings.log_level, path=path)
    setup_tracing(service="lockflow-cli")
    return settings, path


@contextlib.contextmanager
def _clear_failures(*, doing: str, log_path: Path) -> Iterator[None]:
    """Turn any error into one message with the log's path and an exit code; never a traceback."""
    from lockflow.cli_run import DrivingInterrupted

    try:
        yield
    except (click.ClickException, click.exceptions.Exit, click.Abort):
        raise  # usage errors (e.g. a bad --goal) are Click's to word; exits pass through
    except LockflowError as exc:
        _say(f"error: {exc}")
        raise typer.Exit(code=EXIT_REFUSED) from exc
    except DrivingInterrupted as exc:
        cause = exc.__cause__ or exc
        if isinstance(cause, LockflowError):
            home = log_path.parent.parent
            _say(
                f"error: {cause}",
                f"  run: {exc.run_id} (kept where it stopped; the decisions made so far are stored)",
                f"  next: `lockflow resume {exc.run_id} --home {home}` continues it (e.g. with --yes)",
            )
            raise typer.Exit(code=EXIT_REFUSED) from exc
        log.error("cli_crashed", doing=doing, run_id=exc.run_id, exc_info=cause)
        _crashed(cause, doing=doing, log_path=log_path, run_id=exc.run_id)
    except Exception as exc:
        log.error("cli_crashed", doing=doing, exc_info=exc)
        _crashed(exc, doing=doing, log_path=log_path, run_id=None)


def _crashed(exc: BaseException, *, doing: str, log_path: Path, run_id: str | None) -> NoReturn:
    lines = [f"error: {doing} failed unexpectedly: {type(exc).__name__}: {exc}"]
    if run_id:
        lines.append(f"  run: {run_id} (kept as it was; its decisions are stored)")
    lines.append(f"  full log (with the traceback): {log_path}")
    if run_id:
        lines.append(f"  next: `lockflow resume {run_id} --home {log_path.parent.parent}` picks it up again")
    else:
        lines.append("  next: check the log; if the problem is in lockflow, report it with that log")
    _say(*lines)
    raise typer.Exit(code=EXIT_CRASHED)


def _say(*lines: str) -> None:
    """Print lines as they are: never wrapped inside a path or id, no markup read from them."""
    for line in lines:
        console.print(line, soft_wrap=True, crop=False, markup=False, highlight=False)


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="CSV, JSON lines or Parquet file")] = SAMPLE,
    goal: Annotated[
        str | None, typer.Option(help="Target column and direction, e.g. revenue:increase")
    ] = None,
    decisions: Annotated[Path | None, typer.Option(help="YAML policy answering the gates")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Take the default at every gate")] = False,
    home: Annotated[Path | None, typer.Option(help="Folder for the database, artifacts and reports")] = None,
    name: Annotated[str | None, typer.Option(help="A name for the run")] = None,
    rules: Annotated[Path | None, typer.Option(help="YAML file of data quality rules")] = None,
    as_of: Annotated[
        str | None,
        typer.Option(help="Judge the data as of this date (YYYY-MM-DD or ISO datetime); default: now"),
    ] = None,
) -> None:
    """Run FILE through every stage in this process, asking at each gate (or using a policy)."""
    from lockflow.cli_run import run_embedded
    from lockflow.orchestrator.policy import default_policy, load_policy

    settings, log_path = _embedded_settings(home, as_of=as_of)
    with _clear_failures(doing="lockflow run", log_path=log_path):
        policy = load_policy(decisions) if decisions else (default_policy() if yes else None)
        if goal is None and file == SAMPLE:
            goal = "revenue:increase"
        spec = SourceSpec(path=str(file.expanduser().resolve()))
        quality_rules = _load_rules(rules) if rules else None
        outcome = asyncio.run(
            run_embedded(
                settings=settings,
                spec=spec,
                goal=_parse_goal(goal),
                name=name or file.name,
                policy=policy,
                console=console,
                quality_rules=quality_rules,
                log_path=log_path,
            )
        )
    raise typer.Exit(code=0 if outcome == "completed" else 1)


@app.command()
def resume(
    run_id: Annotated[str, typer.Argument(help="The id of the run, as `lockflow run` printed it")],
    decisions: Annotated[Path | None, typer.Option(help="YAML policy answering the gates")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Take the default at every gate")] = False,
    home: Annotated[Path | None, typer.Option(help="Folder for the database, artifacts and reports")] = None,
) -> None:
    """Re-run a failed run's failed step with the same inputs, then answer the gates that follow.

    The decisions made so far are kept. A run left waiting at a gate is picked up at that gate.
    """
    from lockflow.cli_run import resume_embedded
    from lockflow.orchestrator.policy import default_policy, load_policy

    settings, log_path = _embedded_settings(home)
    with _clear_failures(doing="lockflow resume", log_path=log_path):
        policy = load_policy(decisions) if decisions else (default_policy() if yes else None)
        outcome = asyncio.run(
            resume_embedded(
                settings=settings, run_id=run_id, policy=policy, console=console, log_path=log_path
            )
        )
    raise typer.Exit(code=0 if outcome == "completed" else 1)


def _load_rules(path: Path) -> dict[str, Any] | None:
    """Read and validate a rules file; a bad one stops the run before it starts."""
    from lockflow.qualityrules.rules import quality_rules_of

    try:
        text = path.read_text()
    except OSError as exc:
        raise LockflowError(f"rules file {path}: cannot read it ({exc.strerror})") from exc
    return quality_rules_of(text, origin=f"rules file {path}")


@app.command()
def up(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Serve the API with every service in this one process (embedded mode)."""
    _serve(host=host, port=port, start_workers=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Serve the gateway only (distributed mode: workers run as `lockflow worker NAME`)."""
    _serve(host=host, port=port, start_workers=False)


def _serve(*, host: str, port: int, start_workers: bool) -> None:
    import uvicorn

    from lockflow.gateway.serving import server_config
    from lockflow.gateway.settings import GatewaySettings

    settings = settings_or_exit(GatewaySettings, host=host, port=port, start_workers=start_workers)
    if not start_workers and not settings.jwks_url:
        _refuse_start(
            "LOCKFLOW_JWKS_URL must name the auth service's key set for `lockflow serve`, e.g. "
            "http://127.0.0.1:8001/.well-known/jwks.json (the auth service runs as `lockflow serve-auth`)"
        )
    if start_workers and settings.gateway_workers > 1:
        _refuse_start(
            "LOCKFLOW_GATEWAY_WORKERS is for `lockflow serve` (distributed); `lockflow up` runs the pipeline "
            "in its one process, so it serves from one process"
        )
    configure_logging(service="gateway", level=settings.log_level)
    app: Any
    if start_workers:
        from lockflow.embedded import auth_settings_for, create_app

        auth_settings = built_or_exit(lambda: auth_settings_for(settings))
        app = create_app(settings, auth_settings=auth_settings)
        login = "POST /auth/login"
    else:
        from lockflow.gateway.app import create_app as create_gateway

        # With several workers each builds its own app (after the fork), none is built here.
        app = None if settings.gateway_workers > 1 else create_gateway(settings)
        auth_url = (settings.jwks_url or "").removesuffix("/.well-known/jwks.json")
        login = f"POST /auth/login on the auth service ({auth_url})"
    console.print(f"lockflow API on http://{host}:{port} (docs at /docs), mode={settings.mode}")
    if start_workers:  # the UI signs in on the same port: only where the auth routes are served too
        console.print(f"web UI: open http://{host}:{port}/ui/")
    console.print(f"every endpoint but /healthz and /docs needs a token: {login}, then Bearer")
    if app is None:
        from lockflow.gateway.serving import serve_workers

        console.print(f"{settings.gateway_workers} gateway processes share the port")
        # The workers read their settings from the environment, as this process did, listening alike.
        os.environ.update(LOCKFLOW_HOST=host, LOCKFLOW_PORT=str(port))
        serve_workers(host=host, port=port, workers=settings.gateway_workers)
        return
    uvicorn.Server(server_config(app, host=host, port=port)).run()


def _refuse_start(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise typer.Exit(code=2)


@app.command("serve-auth")
def serve_auth(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8001,
) -> None:
    """Serve the auth service only (distributed mode): login, users, shares, audit, and its JWKS."""
    import uvicorn

    from lockflow.auth.app import create_auth_app
    from lockflow.auth.settings import AuthSettings
    from lockflow.gateway.serving import server_config

    settings = settings_or_exit(AuthSettings)
    configure_logging(service="auth", level=settings.log_level)
    console.print(f"lockflow auth on http://{host}:{port}; its key set: /.well-known/jwks.json")
    uvicorn.Server(server_config(create_auth_app(settings), host=host, port=port)).run()


@app.command()
def worker(
    name: Annotated[
        str,
        typer.Argument(
            help="orchestrator, ingest, quality, analytics, insights, recommendations, reporting or streams"
        ),
    ],
) -> None:
    """Run one service as its own process over Kafka (distributed mode)."""
    from lockflow.common.runtime import WORKER_NAMES

    if name not in WORKER_NAMES:
        console.print(
            f"[bold red]error:[/] unknown worker {name!r}; choose one of: {', '.join(WORKER_NAMES)}"
        )
        raise typer.Exit(code=2)
    # The service's own composition root: it builds only what that service needs.
    importlib.import_module(f"lockflow.{name}.bootstrap").main()


admin_app = typer.Typer(no_args_is_help=True, help="Users and roles (the first admin).")
app.add_typer(admin_app, name="admin")


@admin_app.command("create")
def admin_create(
    username: Annotated[str, typer.Option(help="The admin's username")] = "admin",
    password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input")] = False,
) -> None:
    """Create an admin user in the configured database (asks for the password twice)."""
    from lockflow.auth.admin import create_admin
    from lockflow.auth.settings import AuthSettings

    settings = settings_or_exit(AuthSettings)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = create_admin(settings=settings, username=username, password=password)
    except LockflowError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(code=2) from exc
    console.print(f"admin {user['username']} created; log in with POST /auth/login")


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the `lockflow` script."""
    with contextlib.suppress(KeyboardInterrupt):
        return app(argv)
    return None


if __name__ == "__main__":
    main()
