"""Database sources: PostgreSQL, MySQL/MariaDB and SQLite files, read in a read-only transaction.

Only listed dialects are accepted (a URL such as `sqlite:///etc/...` outside the allowed folders
or an unlisted dialect is refused before any driver is loaded). A table name is looked up in the
database's catalogue and then quoted; a query must be exactly one SELECT statement (without INTO)
and runs in a read-only transaction with a statement timeout. Rows are streamed with a server-side
cursor. MySQL and MariaDB are reached through PyMySQL and PostgreSQL through psycopg2 (the drivers
pinned), also for a URL that names no driver (`mysql://`, `mariadb://`, `postgresql://`).

A server's host goes through the same network guard as every other source (`netguard.NetPolicy`):
checked when the source is stored and again at every connection, and the driver connects to the
checked address (libpq's `hostaddr`, which keeps `host` for TLS verification; the address itself for
other drivers). A URL without a host (a local socket) is refused. A connection that fails before the
server answered in its own protocol gives one uniform message; an answer such as a wrong password on
an allowed host is shown as the server gave it.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlparse
from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.sql import quoted_name
from sqlparse.tokens import Keyword

from lockflow.common.errors import InvalidInput, StageError
from lockflow.common.models import SourceOptions
from lockflow.ingest.connector import Connector, Probe
from lockflow.sources.checks import check_url, database_label, network_target
from lockflow.sources.configs import DatabaseConfig
from lockflow.sources.netguard import Destination, NetPolicy, unreachable

CONNECT_TIMEOUT_SECONDS = 10
# Drivers built on libpq, which take `hostaddr` (the address to connect to) next to `host`.
_LIBPQ_DRIVERS = {"psycopg2", "psycopg", "psycopg2cffi"}
# libpq texts that only appear once a PostgreSQL server has answered in its own protocol.
_PG_ANSWERS = ("FATAL:", "fe_sendauth:", "server does not support SSL")


def pinned(url: URL, address: str) -> tuple[URL, dict[str, Any]]:
    """The URL and connect arguments that make the driver connect to the checked address, not a new lookup."""
    if url.get_backend_name() == "postgresql" and url.get_driver_name() in _LIBPQ_DRIVERS:
        # libpq connects to hostaddr and still uses host for TLS verification (sslmode=verify-full).
        return url, {"hostaddr": address}
    return url.set(host=address), {}


def server_answered(exc: BaseException) -> bool:
    """True when a failed connection got as far as the server answering in its protocol (a bad password)."""
    orig = exc.orig if isinstance(exc, DBAPIError) else None
    if orig is None:
        return False
    code = orig.args[0] if orig.args else None
    if type(orig).__module__.startswith("pymysql"):
        # Server error numbers are below 2000 or from 3000; 2000-2999 are the client's own (CR_*).
        return isinstance(code, int) and not 2000 <= code < 3000
    text_of = str(orig)
    return getattr(orig, "pgcode", None) is not None or any(mark in text_of for mark in _PG_ANSWERS)


def single_select(query: str) -> str:
    """The query without a trailing semicolon, if it is exactly one SELECT (or WITH ... SELECT)."""
    statements = [s for s in sqlparse.split(query) if s.strip().rstrip(";").strip()]
    if len(statements) != 1:
        raise InvalidInput(f"the query must be exactly one statement; found {len(statements)}")
    parsed = sqlparse.parse(statements[0])[0]
    if parsed.get_type() != "SELECT":
        raise InvalidInput(f"the query must be a SELECT; found {parsed.get_type() or 'an unknown statement'}")
    if any(token.ttype is Keyword and token.normalized == "INTO" for token in parsed.flatten()):
        # SELECT ... INTO creates a table (PostgreSQL) or writes a file on the server (MySQL/MariaDB).
        raise InvalidInput("the query must not contain INTO: a SELECT ... INTO writes instead of reading")
    return statements[0].strip().rstrip(";").strip()


class DatabaseConnector(Connector):
    """A table or query, streamed in chunks of `chunk_rows`."""

    kind = "database"

    def __init__(
        self,
        config: DatabaseConfig,
        *,
        policy: NetPolicy,
        allowed_dialects: list[str],
        allowed_dirs: list[Path],
    ) -> None:
        self.config = config
        self.policy = policy
        self.url = check_url(
            config.url.get_secret_value(), allowed_dialects=allowed_dialects, allowed_dirs=allowed_dirs
        )
        self.target = network_target(self.url)
        self._bytes = 0

    def check_network(self) -> Destination | None:
        """The server's host checked by the network policy now (None for a SQLite file)."""
        if self.target is None:
            return None
        return self.policy.check_host(*self.target)

    def label(self) -> str:
        """The URL without its password, and the table or 'query'."""
        return database_label(self.url, self.config)

    def _engine(self) -> tuple[Engine, Destination | None]:
        """An engine bound to the address checked just now (DNS may have changed since the last time)."""
        destination = self.check_network()
        url = self.url
        args: dict[str, Any] = {}
        if destination is not None:
            url, args = pinned(self.url, destination.address)
            args["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
            if url.get_backend_name() in ("mysql", "mariadb"):
                args["read_timeout"] = CONNECT_TIMEOUT_SECONDS  # a silent server must not hang the handshake
        try:
            engine = create_engine(url, poolclass=None, connect_args=args)
        except (NoSuchModuleError, ModuleNotFoundError) as exc:
            raise InvalidInput(f"no driver installed for {self.url.drivername}: {exc}") from exc
        if "read_timeout" in args:
            event.listen(engine, "connect", self._after_connect)
        return engine, destination

    def _after_connect(self, dbapi_connection: Any, _record: Any) -> None:
        # Connected: reads may now wait as long as a statement may run (PyMySQL checks this per read).
        if hasattr(dbapi_connection, "_read_timeout"):
            dbapi_connection._read_timeout = self.config.timeout_seconds + 30

    def _connect(self, engine: Engine, destination: Destination | None) -> Connection:
        """A connection, or Unreachable (one message for every cause) unless the server answered."""
        try:
            return engine.connect()
        except Exception as exc:
            if destination is None or server_answered(exc):
                raise
            raise unreachable(destination.host, destination.port, exc, kind="database") from exc

    def _read_only(self, connection: Connection) -> None:
        dialect = connection.dialect.name
        millis = int(self.config.timeout_seconds * 1000)
        if dialect == "postgresql":
            connection.execute(text("SET TRANSACTION READ ONLY"))
            connection.execute(text(f"SET LOCAL statement_timeout = {millis}"))
        elif dialect in ("mysql", "mariadb"):
            # Before the first statement, so the transaction that statement opens is read-only.
            connection.execute(text("SET SESSION TRANSACTION READ ONLY"))
            if getattr(connection.dialect, "is_mariadb", False):  # also for a mysql:// URL to MariaDB
                seconds = self.config.timeout_seconds
                connection.execute(text(f"SET SESSION max_statement_time = {seconds:.3f}"))
            else:
                connection.execute(text(f"SET SESSION max_execution_time = {millis}"))
        elif dialect == "sqlite":
            connection.exec_driver_sql("PRAGMA query_only = 1")

    def _table_sql(self, connection: Connection) -> str:
        """SELECT * FROM the table, found in the catalogue by its exact name, then quoted."""
        assert self.config.table is not None
        names = inspect(connection).get_table_names(schema=self.config.db_schema)
        views = inspect(connection).get_view_names(schema=self.config.db_schema)
        if self.config.table not in names and self.config.table not in views:
            raise InvalidInput(f"no table or view named {self.config.table!r} in the database")
        prep = connection.dialect.identifier_preparer
        table = prep.quote_identifier(quoted_name(self.config.table, quote=True))
        if self.config.db_schema:
            table = f"{prep.quote_identifier(self.config.db_schema)}.{table}"
        return f"SELECT * FROM {table}"

    def _sql(self, connection: Connection) -> str:
        if self.config.table is not None:
            return self._table_sql(connection)
        return single_select(self.config.query or "")

    def probe(self, found: Probe) -> None:
        """Connect (reachable + authorised), then fetch one row in a read-only transaction."""
        engine, destination = self._engine()
        try:
            with self._connect(engine, destination) as connection:
                found.reachable = found.authorised = True
                with connection.begin():
                    self._read_only(connection)
                    sql = self._sql(connection)
                    connection.execute(text(f"SELECT * FROM ({sql}) AS lockflow_probe LIMIT 1")).fetchall()
                found.readable = True
        except DBAPIError as exc:
            found.reachable = True  # a connection that did not reach the server raised Unreachable
            raise InvalidInput(f"database error: {_first_line(exc)}") from exc
        finally:
            engine.dispose()

    def chunks(self, *, options: SourceOptions, workdir: Path) -> Iterator[pa.Table]:
        """Stream the rows with a server-side cursor, one Arrow table per chunk_rows."""
        engine, destination = self._engine()
        try:
            with self._connect(engine, destination) as connection, connection.begin():
                self._read_only(connection)
                sql = self._sql(connection)
                if connection.dialect.name == "postgresql":
                    yield from self._pg_chunks(connection, sql)
                    return
                # Only the SELECT uses a server-side cursor: PostgreSQL cannot DECLARE a cursor for SET.
                streaming = connection.execution_options(
                    stream_results=True, max_row_buffer=self.config.chunk_rows
                )
                result = streaming.execute(text(sql))
                names = list(result.keys())
                for rows in result.partitions(self.config.chunk_rows):
                    yield _rows_to_table(names, rows)
        except DBAPIError as exc:
            raise StageError(f"database error while reading: {_first_line(exc)}") from exc
        except SQLAlchemyError as exc:
            raise StageError(f"database error while reading: {exc}") from exc
        finally:
            engine.dispose()

    def _pg_chunks(self, connection: Connection, sql: str) -> Iterator[pa.Table]:
        """Plain tuples from a psycopg2 named (server-side) cursor in the same read-only transaction.

        SQLAlchemy's Row objects cost more than the fetch itself for wide reads; a text() query has
        no result processing to lose. Only `sql` (checked above) runs in the cursor.
        """
        dbapi = connection.connection.dbapi_connection
        assert dbapi is not None
        cursor = dbapi.cursor(name="lockflow_read")
        cursor.itersize = self.config.chunk_rows  # type: ignore[attr-defined]
        driver_error = connection.dialect.loaded_dbapi.Error
        try:
            cursor.execute(sql)
            rows = cursor.fetchmany(self.config.chunk_rows)
            names = [d[0] for d in cursor.description or []]
            while rows:
                yield _rows_to_table(names, rows)
                rows = cursor.fetchmany(self.config.chunk_rows)
        except driver_error as exc:  # the raw cursor raises the driver's errors, not SQLAlchemy's
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StageError(f"database error while reading: {first}") from exc
        finally:
            cursor.close()


def _rows_to_table(names: list[str], rows: Sequence[Any]) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    arrays = [_column(values) for values in columns]
    return pa.table(arrays, names=[str(n) for n in names])


def _column(values: tuple[Any, ...]) -> pa.Array:
    # A database column has one type, so its first value tells whether it holds Decimals
    # (SQLite's mixed columns never do); float() of each keeps the value pandas would show.
    first = next((v for v in values if v is not None), None)
    if isinstance(first, decimal.Decimal):
        try:
            return pa.array([None if v is None else float(v) for v in values], type=pa.float64())
        except (TypeError, ValueError):
            pass  # not all numbers after all: read as text below
    try:
        return pa.array(values, from_pandas=True)
    except OverflowError:
        try:  # MySQL's BIGINT UNSIGNED past int64 (normalisation then makes the column floats)
            return pa.array(values, type=pa.uint64())
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    return pa.array([None if v is None else str(v) for v in values], type=pa.large_string())


def _first_line(exc: DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
