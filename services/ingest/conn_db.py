"""Database sources: PostgreSQL, MySQL/MariaDB and SQLite files, read in a read-only transaction.

Only listed dialects are accepted (a URL such as `sqlite:///etc/...` outside the allowed folders
or an unlisted dialect is refused before any driver is loaded). A table name is looked up in the
database's catalogue and then quoted; a query must be exactly one SELECT statement (without INTO)
and runs in a read-only transaction with a statement timeout. Rows are streamed with a server-side
cursor. MySQL and MariaDB are reached through PyMySQL (the driver pinned), also for a URL that names
no driver (`mysql://`, `mariadb://`).
"""

from __future__ import annotations

import decimal
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlparse
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.sql import quoted_name
from sqlparse.tokens import Keyword

from lockflow.common.errors import InvalidInput, StageError
from lockflow.common.models import SourceOptions
from lockflow.ingest.configs import DatabaseConfig
from lockflow.ingest.conn_file import resolve_inside
from lockflow.ingest.connector import Connector, Probe

# URL query options a user may set; others (e.g. sslkey, passfile, service) could read server files.
_SAFE_QUERY = {"sslmode", "connect_timeout", "application_name", "charset", "ssl_mode"}


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
        self, config: DatabaseConfig, *, allowed_dialects: list[str], allowed_dirs: list[Path]
    ) -> None:
        self.config = config
        self.url = check_url(
            config.url.get_secret_value(), allowed_dialects=allowed_dialects, allowed_dirs=allowed_dirs
        )
        self._bytes = 0

    def label(self) -> str:
        """The URL without its password, and the table or 'query'."""
        shown = self.url.render_as_string(hide_password=True)
        return f"{shown} {self.config.table or 'query'}"

    def _engine(self) -> Engine:
        args: dict[str, Any] = {}
        if self.url.get_backend_name() in ("postgresql", "mysql", "mariadb"):
            args["connect_timeout"] = 10
        try:
            return create_engine(self.url, poolclass=None, connect_args=args)
        except (NoSuchModuleError, ModuleNotFoundError) as exc:
            raise InvalidInput(f"no driver installed for {self.url.drivername}: {exc}") from exc

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
        engine = self._engine()
        try:
            with engine.connect() as connection:
                found.reachable = found.authorised = True
                with connection.begin():
                    self._read_only(connection)
                    sql = self._sql(connection)
                    connection.execute(text(f"SELECT * FROM ({sql}) AS lockflow_probe LIMIT 1")).fetchall()
                found.readable = True
        except DBAPIError as exc:
            raise InvalidInput(f"database error: {_first_line(exc)}") from exc
        finally:
            engine.dispose()

    def chunks(self, *, options: SourceOptions, workdir: Path) -> Iterator[pa.Table]:
        """Stream the rows with a server-side cursor, one Arrow table per chunk_rows."""
        engine = self._engine()
        try:
            with engine.connect() as connection, connection.begin():
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
