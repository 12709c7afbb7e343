"""The database connector on the real PostgreSQL (a fresh database per test) and on a SQLite file."""

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from lockflow.common.errors import InvalidInput, LockflowError
from lockflow.common.models import SourceOptions
from lockflow.ingest.conn_db import DatabaseConnector
from lockflow.ingest.read import load_chunks
from lockflow.sources.configs import parse_config
from lockflow.sources.netguard import NetPolicy

DIALECTS = ["postgresql", "mysql", "mariadb", "sqlite"]


# The servers run on this machine: their loopback address must be allowed like any internal host.
ALLOW = NetPolicy.from_list(["127.0.0.1"])


def connector(config: dict[str, object], allowed_dirs: list[Path] | None = None) -> DatabaseConnector:
    return DatabaseConnector(
        parse_config("database", config),  # type: ignore[arg-type]
        policy=ALLOW,
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


# ---- MariaDB (the real server from scripts/services.sh; a fresh database per test) ---------------------


def run_sql(url: str, *statements: str) -> None:
    engine = create_engine(url)
    with engine.begin() as c:
        for statement in statements:
            c.execute(text(statement))
    engine.dispose()


def count_rows(url: str, table: str) -> int:
    engine = create_engine(url)
    with engine.connect() as c:
        n = c.execute(text(f"SELECT count(*) FROM `{table}`")).scalar()
    engine.dispose()
    return int(n or 0)


@pytest.fixture
def shop(fresh_mariadb: str) -> str:
    """A table of 2,500 rows with the column types a MariaDB source typically has, NULLs in each."""
    run_sql(
        fresh_mariadb,
        """CREATE TABLE orders (
            id INT PRIMARY KEY, qty SMALLINT, big BIGINT UNSIGNED, price DECIMAL(10, 2), ratio DOUBLE,
            city VARCHAR(40), note TEXT, day DATE, at DATETIME(6), paid BOOLEAN, doc JSON
        ) CHARACTER SET utf8mb4""",
    )
    rows = [
        {
            "id": i,
            "qty": None if i % 11 == 0 else i % 7,
            "big": 2**64 - 1 if i == 3 else i * 1_000_003,
            "price": None if i % 13 == 0 else f"{i % 500}.25",
            "ratio": i / 7,
            "city": None if i % 17 == 0 else ["Oslo", "Zoë 🚀", "Lima"][i % 3],
            "note": "x" * (i % 5),
            "day": None if i % 19 == 0 else f"2024-02-{1 + i % 29:02d}",
            "at": f"2024-01-01 10:{i % 60:02d}:00.{i:06d}",
            "paid": i % 2,
            "doc": f'{{"n": {i}}}',
        }
        for i in range(2_500)
    ]
    engine = create_engine(fresh_mariadb)
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO orders VALUES "
                "(:id, :qty, :big, :price, :ratio, :city, :note, :day, :at, :paid, :doc)"
            ),
            rows,
        )
    engine.dispose()
    return fresh_mariadb


def test_a_mariadb_table_is_streamed_in_chunks_with_its_types(shop: str, tmp_path: Path) -> None:
    conn = connector({"url": shop, "table": "orders", "chunk_rows": 1000})
    health = conn.health()
    assert health.ok and health.readable, health.message
    tables = list(conn.chunks(options=SourceOptions(), workdir=tmp_path))
    assert [t.num_rows for t in tables] == [1000, 1000, 500]

    loaded = load_chunks(tables, name="db", column_types={}, bytes_read=0)

    types = {c.name: c.dtype for c in loaded.columns}
    assert types == {
        "id": "integer",
        "qty": "integer",
        "big": "float",  # BIGINT UNSIGNED reaches past int64 here (2**64 - 1)
        "price": "float",  # DECIMAL
        "ratio": "float",
        "city": "string",
        "note": "string",
        "day": "datetime",
        "at": "datetime",
        "paid": "integer",  # BOOLEAN is TINYINT(1) in MariaDB
        "doc": "string",  # JSON is LONGTEXT
    }
    frame = loaded.table.to_pandas()
    assert frame["id"].tolist() == list(range(2_500))
    nulls = {c.name: c.null_count for c in loaded.columns}
    assert nulls["qty"] == len(range(0, 2_500, 11)) and nulls["price"] == len(range(0, 2_500, 13))
    assert frame.loc[1, "city"] == "Zoë 🚀"  # utf8mb4 all the way
    assert frame.loc[3, "big"] == float(2**64 - 1)
    assert frame.loc[4, "price"] == 4.25
    assert frame.loc[7, "at"] == pd.Timestamp("2024-01-01 10:07:00.000007")  # microseconds kept
    assert frame.loc[5, "day"] == pd.Timestamp("2024-02-06")
    assert frame.loc[2, "doc"] == '{"n": 2}'


def test_a_mariadb_table_with_a_hostile_name_is_quoted_not_run(shop: str, tmp_path: Path) -> None:
    hostile = "we`ird; DROP TABLE orders; --"  # (MariaDB refuses a name ending in a space)
    quoted = hostile.replace("`", "``")
    run_sql(shop, f"CREATE TABLE `{quoted}` (v INT)", f"INSERT INTO `{quoted}` VALUES (1), (2), (3)")

    frame = read(connector({"url": shop, "table": hostile}), tmp_path)

    assert frame["v"].tolist() == [1, 2, 3]
    with pytest.raises(InvalidInput, match="no table or view named"):
        read(connector({"url": shop, "table": "orders`; DROP TABLE orders; --"}), tmp_path)
    assert count_rows(shop, "orders") == 2_500


def test_a_mariadb_query_runs_read_only_with_a_timeout(shop: str, tmp_path: Path) -> None:
    frame = read(
        connector({"url": shop, "query": "SELECT city, count(*) AS n FROM orders GROUP BY city;"}), tmp_path
    )
    assert frame["n"].sum() == 2_500
    with pytest.raises(InvalidInput, match="must be a SELECT"):
        read(connector({"url": shop, "query": "DELETE FROM orders"}), tmp_path)
    outfile = "SELECT * FROM orders INTO OUTFILE '/tmp/orders.csv'"
    with pytest.raises(InvalidInput, match="must not contain INTO"):
        read(connector({"url": shop, "query": outfile}), tmp_path)
    # A SELECT that writes passes the parser; the read-only transaction refuses it.
    run_sql(
        shop,
        "CREATE TABLE audit (n INT)",
        "CREATE FUNCTION bump() RETURNS INT MODIFIES SQL DATA "
        "BEGIN INSERT INTO audit VALUES (1); RETURN 1; END",
    )
    with pytest.raises(LockflowError, match="READ ONLY transaction"):
        read(connector({"url": shop, "query": "SELECT bump() AS b"}), tmp_path)
    with pytest.raises(LockflowError, match="READ ONLY transaction"):
        read(connector({"url": shop, "query": "SELECT id FROM orders WHERE id < 3 FOR UPDATE"}), tmp_path)
    assert count_rows(shop, "audit") == 0 and count_rows(shop, "orders") == 2_500
    with pytest.raises(LockflowError, match="max_statement_time exceeded"):
        read(connector({"url": shop, "query": "SELECT SLEEP(20) AS s", "timeout_seconds": 1}), tmp_path)


def test_a_wrong_mariadb_password_is_a_clear_error(shop: str, tmp_path: Path) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(shop).set(password="definitely-wrong").render_as_string(hide_password=False)
    conn = connector({"url": url, "table": "orders"})
    health = conn.health()
    assert not health.ok and not health.authorised
    assert "database error" in health.message and "Access denied for user 'lockflow'" in health.message
    with pytest.raises(LockflowError, match=r"database error while reading: .*Access denied"):
        read(conn, tmp_path)
    shown = conn.label()
    assert "definitely-wrong" not in shown and "***" in shown
