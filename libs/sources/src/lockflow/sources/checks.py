"""The checks a source's config passes before it is stored, and the label people see for it.

Local checks only (a file inside the allowed folders, a listed database dialect with safe options,
hosts the network policy allows); no connection is made. The connectors in the ingest service run
the same checks again at every connection (DNS answers may change in between), through these
functions, so a config the registry stored is one a connector accepts.
"""

from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import URL, make_url

from lockflow.common import paths
from lockflow.common.errors import InvalidInput
from lockflow.sources.configs import ApiConfig, Config, DatabaseConfig, FileConfig, S3Config, StreamConfig
from lockflow.sources.netguard import NetPolicy, Unresolvable
from lockflow.sources.settings import SourceSettings

# URL query options a user may set; others (e.g. sslkey, passfile, service) could read server files.
_SAFE_QUERY = {"sslmode", "connect_timeout", "application_name", "charset", "ssl_mode"}
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}


def resolve_inside(path: str, allowed: list[Path]) -> Path:
    """The resolved path (symlinks followed), if it lies inside one of the allowed folders; a registered
    source needs at least one configured (it is read again later, by whoever it is shared with)."""
    if not allowed:
        raise InvalidInput(
            "this server has no folders configured that sources may read (LOCKFLOW_ALLOWED_DIRS)"
        )
    return paths.resolve_inside(path, allowed)


def check_url(raw: str, *, allowed_dialects: list[str], allowed_dirs: list[Path]) -> URL:
    """The parsed URL if its dialect is listed, its options are safe, and a SQLite file is allowed."""
    try:
        url = make_url(raw)
    except Exception as exc:
        raise InvalidInput("the database URL is not a SQLAlchemy URL") from exc
    dialect = url.get_backend_name()
    if dialect not in allowed_dialects:
        raise InvalidInput(
            f"database dialect {dialect!r} is not allowed; allowed: {', '.join(allowed_dialects)}"
        )
    if url.drivername in ("mysql", "mariadb"):
        # No driver named: the one installed (PyMySQL), not SQLAlchemy's default (mysqlclient).
        url = url.set(drivername=f"{url.drivername}+pymysql")
    elif url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg2")  # the one installed, not SQLAlchemy 2.1's psycopg
    unsafe = sorted(set(url.query) - _SAFE_QUERY)
    if unsafe:
        raise InvalidInput(f"database URL options not allowed: {', '.join(unsafe)}")
    if dialect == "sqlite":
        if not url.database or url.database == ":memory:":
            raise InvalidInput("a SQLite source must name a database file")
        path = resolve_inside(url.database, allowed_dirs)
        if not path.is_file():
            raise InvalidInput(f"no such SQLite file: {url.database}")
        # Opened read-only by the SQLite library itself, not just by convention.
        url = make_url(f"sqlite:///file:{path}?mode=ro&uri=true")
    return url


def network_target(url: URL) -> tuple[str, int] | None:
    """The (host, port) a server URL connects to, None for SQLite; a URL without a host is refused."""
    dialect = url.get_backend_name()
    if dialect == "sqlite":
        return None
    if not url.host:
        # No host means a local socket (libpq) or localhost (PyMySQL): the server's own database.
        raise InvalidInput(
            "the database URL must name a host, e.g. postgresql://user:password@db.example.com/shop"
        )
    port = url.port or DEFAULT_PORTS.get(dialect)
    if port is None:
        raise InvalidInput(f"the database URL must name a port for dialect {dialect!r}")
    return url.host, port


def _database_url(config: DatabaseConfig, settings: SourceSettings) -> URL:
    return check_url(
        config.url.get_secret_value(),
        allowed_dialects=settings.allowed_dialects,
        allowed_dirs=settings.source_dirs(),
    )


def check_config(config: Config, settings: SourceSettings) -> None:
    """Refuse a config whose file, database URL or hosts this server may not use (InvalidInput)."""
    policy = NetPolicy.from_list(settings.allow_hosts)
    try:
        if isinstance(config, FileConfig):
            resolve_inside(config.path, settings.source_dirs())
        elif isinstance(config, ApiConfig):
            policy.check_url(config.url)
        elif isinstance(config, DatabaseConfig):
            target = network_target(_database_url(config, settings))
            if target is not None:
                policy.check_host(*target)
        elif isinstance(config, S3Config):
            if config.endpoint_url:
                policy.check_url(config.endpoint_url)
        elif isinstance(config, StreamConfig):
            for host, port in config.servers():
                policy.check_host(host, port)
        else:
            raise InvalidInput(f"no checks for {type(config).__name__}")
    except Unresolvable:
        pass  # a name that does not resolve now may later; every connection checks again


def file_label(config: FileConfig) -> str:
    """The file's path."""
    return str(Path(config.path).expanduser())


def api_label(config: ApiConfig) -> str:
    """The URL without its query (which may hold a key)."""
    parts = urlsplit(config.url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def database_label(url: URL, config: DatabaseConfig) -> str:
    """The checked URL without its password, and the table or 'query'."""
    return f"{url.render_as_string(hide_password=True)} {config.table or 'query'}"


def s3_label(config: S3Config) -> str:
    """s3://bucket/prefix[glob]."""
    return f"s3://{config.bucket}/{config.prefix}{config.glob or ''}"


def stream_label(config: StreamConfig) -> str:
    """kafka://first-broker/topic (no credentials)."""
    host, port = config.servers()[0]
    return f"kafka://{host}:{port}/{config.topic}"


def label_of(config: Config, settings: SourceSettings) -> str:
    """What people see as the source of a run: a path, a URL without its query or password, a bucket."""
    if isinstance(config, FileConfig):
        return file_label(config)
    if isinstance(config, ApiConfig):
        return api_label(config)
    if isinstance(config, DatabaseConfig):
        return database_label(_database_url(config, settings), config)
    if isinstance(config, S3Config):
        return s3_label(config)
    if isinstance(config, StreamConfig):
        return stream_label(config)
    raise InvalidInput(f"no label for {type(config).__name__}")
