"""Which database errors are an outage (retry later) and which are the statement's own fault."""

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from lockflow.common.db import is_database_outage
from lockflow.devcluster import free_port


def _error(url: str, *statements: str) -> DBAPIError:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            for statement in statements or ("select 1",):
                connection.execute(text(statement))
    except DBAPIError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError("no error")


def test_a_refused_connection_is_an_outage() -> None:
    # Nothing listens on a fresh free port: what a restarting PostgreSQL looks like to a client.
    assert is_database_outage(_error(f"postgresql+psycopg2://u@127.0.0.1:{free_port()}/db"))


def test_errors_of_the_statement_or_schema_are_not(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert not is_database_outage(_error(url, "select * from no_such_table"))
    duplicate = _error(url, "create table t (a int primary key)", "insert into t values (1), (1)")
    assert "UNIQUE" in str(duplicate) and not is_database_outage(duplicate)
    assert not is_database_outage(ValueError("not a database error"))


def test_a_locked_sqlite_file_is_an_outage(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'y.db'}"
    holder = create_engine(url)
    waiting = create_engine(url, connect_args={"timeout": 0.05})
    with holder.connect() as held:
        held.execute(text("create table t (a int)"))
        held.commit()
        held.execute(text("begin exclusive"))
        with pytest.raises(DBAPIError) as locked, waiting.connect() as other:
            other.execute(text("select * from t"))
        held.rollback()
    assert is_database_outage(locked.value)
