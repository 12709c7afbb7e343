"""`lockflow cluster up|down|status|logs`: distributed mode on this machine, one process per service."""

import shlex
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from lockflow.cluster import (
    DEFAULT_NAME,
    ClusterOptions,
    ClusterState,
    cluster_root,
    member_logs,
    parse_replicas,
    start,
    status_rows,
    stop,
    tail,
)
from lockflow.common.errors import LockflowError
from lockflow.common.settings import CommonSettings
from lockflow.common.settings_check import settings_or_exit

cluster_app = typer.Typer(
    no_args_is_help=True,
    help="Distributed mode on this machine: every service its own process, against real Kafka, "
    "PostgreSQL and Redis (those of scripts/services.sh unless given).",
)
console = Console(soft_wrap=True)  # paths and commands stay whole, to copy
EXIT_REFUSED = 2
Name = Annotated[str, typer.Option("--name", help="The cluster's name; another name gets its own database")]


@contextmanager
def _refusals() -> Iterator[None]:
    """A refusal or a cluster error as one line on stderr and exit code 2, never a traceback."""
    try:
        yield
    except LockflowError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise typer.Exit(code=EXIT_REFUSED) from None


def _home() -> Path:
    return settings_or_exit(CommonSettings).home


def _state(name: str) -> ClusterState:
    return ClusterState.load(cluster_root(_home(), name))


@cluster_app.command("up")
def up(
    name: Name = DEFAULT_NAME,
    port: Annotated[
        int, typer.Option(envvar="LOCKFLOW_CLUSTER_PORT", help="The gateway's port (API and UI)")
    ] = 8000,
    auth_port: Annotated[
        int, typer.Option(envvar="LOCKFLOW_CLUSTER_AUTH_PORT", help="The auth service's port (login, users)")
    ] = 8001,
    replicas: Annotated[
        list[str] | None,
        typer.Option(help="More processes of a worker, e.g. --replicas quality=2 (repeatable)"),
    ] = None,
    kafka: Annotated[str | None, typer.Option(help="Kafka bootstrap servers (host:port,...)")] = None,
    database_url: Annotated[
        str | None, typer.Option(help="PostgreSQL URL (postgresql+psycopg2://...)")
    ] = None,
    redis_url: Annotated[str | None, typer.Option(help="Redis URL (redis://host:port/db)")] = None,
    artifact_url: Annotated[
        str | None, typer.Option(help="s3://bucket/prefix for artifacts; unset: a folder in the cluster's")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for every process to be ready")] = 180.0,
) -> None:
    """Start every service as its own background process; return once each answers its readiness check."""
    with _refusals():
        options = ClusterOptions(
            home=_home(),
            name=name,
            port=port,
            auth_port=auth_port,
            replicas=parse_replicas(replicas or []),
            kafka_bootstrap=kafka,
            database_url=database_url,
            redis_url=redis_url,
            artifact_url=artifact_url,
        )
        console.print(f"starting cluster {name!r} (processes: gateway, auth, orchestrator, six stages) ...")
        state = start(options, timeout=timeout, report=console.print)
    _print_welcome(state)


def _print_welcome(state: ClusterState) -> None:
    root = Path(state.root)
    password = root / "home" / "auth" / "initial-admin-password"
    console.print(f"\ncluster {state.name!r} is up: {len(state.members)} processes; logs in {root / 'logs'}")
    console.print(f"  web UI       {state.url}/ui/   (API: {state.url}, OpenAPI: {state.url}/docs)")
    console.print(f"  sign in      POST {state.auth_url}/auth/login  (users, shares and audit are there too)")
    if password.exists():
        console.print(f"  first admin  'admin', password in {password}")
    else:
        console.print("  first admin  already created in this database (its password file was removed)")
    console.print(f"  database     {state.database_url}   topics: {state.topic_prefix}.*")
    console.print(f"  your files   put datasets in {root / 'data'} (the one folder runs may read)")
    console.print(f"  stop it      lockflow cluster down{_name_option(state.name)}")


def _name_option(name: str) -> str:
    return "" if name == DEFAULT_NAME else f" --name {name}"


@cluster_app.command("env")
def env(name: Name = DEFAULT_NAME) -> None:
    """Shell exports for a running cluster: eval "$(lockflow cluster env)" (right for any LOCKFLOW_HOME)."""
    with _refusals():
        state = _state(name)
    root = Path(state.root)
    exports = {
        "LOCKFLOW_URL": state.url,
        "LOCKFLOW_AUTH_URL": state.auth_url,
        "LOCKFLOW_CLUSTER_DIR": str(root),
        "LOCKFLOW_DATA_DIR": str(root / "data"),
        "LOCKFLOW_ADMIN_PASSWORD_FILE": str(root / "home" / "auth" / "initial-admin-password"),
    }
    for key, value in exports.items():
        print(f"export {key}={shlex.quote(value)}")


@cluster_app.command("status")
def status(name: Name = DEFAULT_NAME) -> None:
    """Each process of the cluster: running, ready, pid and log; exit code 1 unless all are ready."""
    with _refusals():
        state = _state(name)
    rows = status_rows(state)
    table = Table(title=f"cluster {name!r}: {state.url} (in {state.root})")
    for column in ("process", "pid", "running", "ready", "log"):
        table.add_column(column)
    for row in rows:
        mark = {True: "yes", False: "NO"}
        log = Path(row["log"]).relative_to(state.root)
        table.add_row(row["name"], str(row["pid"]), mark[row["running"]], mark[row["ready"]], str(log))
    console.print(table)
    if not all(row["ready"] for row in rows):
        raise typer.Exit(code=1)


@cluster_app.command("logs")
def logs(
    service: Annotated[str | None, typer.Argument(help="One service (its replicas too); unset: all")] = None,
    name: Name = DEFAULT_NAME,
    lines: Annotated[int, typer.Option(min=1, max=100_000, help="How many lines of each log")] = 40,
    follow: Annotated[bool, typer.Option(help="Keep printing new lines (Ctrl-C stops)")] = False,
) -> None:
    """The last lines of each process's log (JSON lines, with run_id and trace_id)."""
    with _refusals():
        chosen = member_logs(_state(name), service)
    for member in chosen:
        console.rule(member.name)
        print(tail(Path(member.log), lines), flush=True)
    if follow:
        _follow([Path(m.log) for m in chosen])


def _follow(paths: list[Path]) -> None:
    positions = {path: path.stat().st_size for path in paths}
    try:
        while True:
            for path in paths:
                with path.open("rb") as handle:
                    handle.seek(positions[path])
                    new = handle.read()
                    positions[path] = handle.tell()
                if new:
                    sys.stdout.write(new.decode(errors="replace"))
                    sys.stdout.flush()
            time.sleep(0.5)
    except KeyboardInterrupt:
        return


@cluster_app.command("down")
def down(name: Name = DEFAULT_NAME) -> None:
    """Stop exactly the processes `cluster up` started (SIGTERM, then SIGKILL after 20 s)."""
    with _refusals():
        state = _state(name)
    stopped = stop(state)
    console.print(
        f"cluster {name!r}: stopped {len(stopped)} processes"
        + (f" ({', '.join(stopped)})" if stopped else "")
    )
