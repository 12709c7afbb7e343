"""The database connector on the real PostgreSQL (a fresh database per test) and on a SQLite file."""

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from lockflow.common.errors import InvalidInput, LockflowError
from lockflow.common.models import SourceOptions
from lockflow.ingest.configs import parse_config
from lockflow.ingest.conn_db import DatabaseConnector
from lockflow.ingest.read import load_chunks

DIALECTS = ["postgresql", "mysql", "mariadb", "sqlite"]


def connector(config: dict[str, object], allowed_dirs: list[Path] | None = None) -> DatabaseConnector:
    return DatabaseConnector(
        parse_config("database", config),  # type: ignore[arg-type]
        allowed_dialects=DIALECTS,
        allowed_dirs=allowed_dirs or [],
    )


def read(conn: DatabaseConnector, tmp_path: Path) -> pd.DataFrame:
    chunks = conn.chunks(options=SourceOptions(), workdir=tmp_path)
    return load_chunks(chunks, name="db", column_types={}, bytes_read=0).table.to_pandas()


@pytest.fixture
def orders(fresh_postgres: str) -> str:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {
            "id": range(2500),
            "amount": rng.normal(100, 15, 2500).round(2),
            "city": rng.choice(["a", "b", "c"], 2500),
        }
    )
    engine = create_engine(fresh_postgres)
    frame.to_sql("orders", engine, index=False)
    with engine.begin() as c:
        c.execute(text("ALTER TABLE orders ADD COLUMN price numeric(10,2)"))
        c.execute(text("UPDATE orders SET price = amount"))
    engine.dispose()
    return fresh_postgres


def test_a_table_is_streamed_in_chunks_and_matches_pandas(orders: str, tmp_path: Path) -> None:
    conn = connector({"url": orders, "table": "orders", "chunk_rows": 1000})
    tables = list(conn.chunks(options=SourceOptions(), workdir=tmp_path))
    assert [t.num_rows for t in tables] == [1000, 1000, 500]
    frame = read(connector({"url": orders, "table": "orders", "chunk_rows": 1000}), tmp_path)
    engine = create_engine(orders)
    expected = pd.read_sql("SELECT * FROM orders", engine)
    engine.dispose()
    assert len(frame) == len(expected)
    assert frame["amount"].sum() == pytest.approx(expected["amount"].sum())
    assert frame["price"].sum() == pytest.approx(float(expected["price"].sum()))  # numeric -> float
    assert frame["city"].value_counts().to_dict() == expected["city"].value_counts().to_dict()
    health = conn.health()
    assert health.ok and health.seconds > 0


def test_a_hostile_table_name_is_refused_and_nothing_changes(orders: str, tmp_path: Path) -> None:
    conn = connector({"url": orders, "table": 'orders"; DROP TABLE orders; --'})
    with pytest.raises(InvalidInput, match="no table or view named"):
        read(conn, tmp_path)
    engine = create_engine(orders)
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM orders")).scalar() == 2500
    engine.dispose()


def test_a_query_runs_read_only(orders: str, tmp_path: Path) -> None:
    frame = read(
        connector({"url": orders, "query": "SELECT city, count(*) AS n FROM orders GROUP BY city;"}), tmp_path
    )
    assert frame["n"].sum() == 2500
    sneaky = "WITH gone AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM gone"
    with pytest.raises(LockflowError, match=r"must not contain data-modifying|read-only transaction"):
        read(connector({"url": orders, "query": sneaky}), tmp_path)
    engine = create_engine(orders)
    with engine.begin() as c:
        c.execute(text("CREATE SEQUENCE counter"))
    engine.dispose()
    # A SELECT with a side effect passes the parser; the read-only transaction refuses it.
    with pytest.raises(LockflowError, match="read-only transaction"):
        read(connector({"url": orders, "query": "SELECT nextval('counter')"}), tmp_path)
    with pytest.raises(InvalidInput, match="exactly one statement"):
        read(connector({"url": orders, "query": "SELECT 1; DELETE FROM orders"}), tmp_path)
    engine = create_engine(orders)
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM orders")).scalar() == 2500
    engine.dispose()


def test_a_wrong_password_is_a_failed_health_check_not_a_crash(orders: str) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(orders).set(password="definitely-wrong", username="nobody_here")
    health = connector({"url": url.render_as_string(hide_password=False), "table": "orders"}).health()
    assert not health.ok and not health.readable and "database error" in health.message


def test_sqlite_files_are_read_only_and_must_be_in_the_allowed_folders(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE items (id INTEGER, name TEXT)")
        db.executemany("INSERT INTO items VALUES (?, ?)", [(i, f"n{i}") for i in range(300)])
    frame = read(
        connector({"url": f"sqlite:///{path}", "table": "items", "chunk_rows": 100}, [tmp_path]), tmp_path
    )
    assert frame["id"].tolist() == list(range(300))
    with pytest.raises(InvalidInput, match="outside the folders"):
        connector({"url": f"sqlite:///{path}", "table": "items"}, [tmp_path / "elsewhere"])
    with pytest.raises(InvalidInput, match="dialect 'oracle' is not allowed"):
        connector({"url": "oracle://u:p@h/db", "table": "t"})
