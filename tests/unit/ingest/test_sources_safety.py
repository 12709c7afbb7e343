"""Hostile inputs to the source readers, refused with messages that name the problem."""

import gzip
import io
import re
import time
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from pydantic import SecretStr

from lockflow.common.errors import InvalidInput, TooLarge
from lockflow.common.models import ColumnSchema, SourceOptions, SourceSpec
from lockflow.ingest.archives import check_xlsx, gunzip, unzip_one
from lockflow.ingest.conn_db import single_select
from lockflow.ingest.conn_http import retry_after_seconds
from lockflow.ingest.drift import schema_drift
from lockflow.ingest.read import load_source
from lockflow.resilience import CircuitBreakers, CircuitOpen, RateLimited, RateLimiter
from lockflow.sources.checks import check_url, resolve_inside
from lockflow.sources.configs import (
    ConfigInvalid,
    join_secrets,
    masked,
    merge_update,
    parse_config,
    split_secrets,
)
from lockflow.sources.netguard import ForbiddenDestination, NetPolicy
from lockflow.sources.secrets import SecretBox, SecretsUnreadable
from lockflow.sources.settings import FileLimits

LIMITS = FileLimits(
    max_decompressed_bytes=20 * 1024 * 1024, max_ratio=100, max_entries=50, max_field_bytes=1024 * 1024
)


def fixed(mapping: dict[str, list[str]]):  # a resolver that answers from a table, never the network
    return lambda host, _port: mapping[host]


# ---- SSRF ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "answer", "kind"),
    [
        ("http://127.0.0.1:8080/x", ["127.0.0.1"], "loopback"),
        ("http://[::1]/x", ["::1"], "loopback"),
        ("http://169.254.169.254/latest/meta-data", ["169.254.169.254"], "cloud metadata"),
        ("http://10.1.2.3/", ["10.1.2.3"], "private"),
        ("http://internal.example/", ["93.184.216.34", "192.168.0.5"], "private"),  # one bad answer is enough
        ("http://mapped.example/", ["::ffff:127.0.0.1"], "loopback"),
        ("http://azure.example/", ["168.63.129.16"], "cloud metadata"),
    ],
)
def test_internal_addresses_are_refused(url: str, answer: list[str], kind: str) -> None:
    host = url.split("//")[1].split("/")[0].split(":")[0].strip("[]") if "[" not in url else "::1"
    policy = NetPolicy.from_list([], resolver=fixed({host: answer}))
    with pytest.raises(ForbiddenDestination, match=kind):
        policy.check_url(url)


def test_a_decimal_ip_is_resolved_and_refused() -> None:
    # 2130706433 == 127.0.0.1: the system resolver turns it into the loopback address.
    with pytest.raises(ForbiddenDestination, match="loopback"):
        NetPolicy.from_list([]).check_url("http://2130706433:9/")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://x/", "//no-scheme/"])
def test_only_http_and_https(url: str) -> None:
    with pytest.raises(ForbiddenDestination, match="only http and https"):
        NetPolicy.from_list([]).check_url(url)


def test_public_and_allowlisted_addresses_pass() -> None:
    policy = NetPolicy.from_list(
        ["10.0.0.0/8", "db.internal"],
        resolver=fixed(
            {
                "api.example": ["93.184.216.34"],
                "svc": ["10.9.9.9"],
                "db.internal": ["192.168.1.1"],
                "lo": ["127.0.0.1"],
            }
        ),
    )
    assert policy.check_url("https://api.example/v1")[1] == "93.184.216.34"
    assert policy.check_url("http://svc/")[1] == "10.9.9.9"
    assert policy.check_url("http://db.internal/")[1] == "192.168.1.1"
    with pytest.raises(ForbiddenDestination):
        policy.check_url("http://lo/")


def test_credentials_in_the_url_are_refused() -> None:
    policy = NetPolicy.from_list([], resolver=fixed({"api.example": ["93.184.216.34"]}))
    with pytest.raises(ForbiddenDestination, match="credentials"):
        policy.check_url("https://user:pw@api.example/")


# ---- paths --------------------------------------------------------------------------------------


def test_paths_must_stay_inside_the_allowed_folders(tmp_path: Path) -> None:
    allowed = tmp_path / "data"
    allowed.mkdir()
    (allowed / "ok.csv").write_text("a\n1\n")
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    (allowed / "link.csv").symlink_to(secret)
    assert resolve_inside(str(allowed / "ok.csv"), [allowed]) == allowed / "ok.csv"
    for bad in [str(allowed / ".." / "secret.csv"), "/etc/passwd", str(allowed / "link.csv")]:
        with pytest.raises(InvalidInput, match="outside the folders"):
            resolve_inside(bad, [allowed])


# ---- archives -----------------------------------------------------------------------------------


def test_a_zip_bomb_is_refused_before_extraction(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data.csv", b"0" * (30 * 1024 * 1024))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(TooLarge, match=r"zip bomb|limit"):
        unzip_one(bomb, out, LIMITS, entry=None)
    assert list(out.iterdir()) == []  # nothing half-written


def test_a_zip_entry_with_dot_dot_is_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../../escape.csv", "a\n1\n")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InvalidInput, match="escape the folder"):
        unzip_one(evil, out, LIMITS, entry=None)
    assert list(out.iterdir()) == [] and not (tmp_path / "escape.csv").exists()


def test_a_zip_with_one_csv_is_read(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": range(50), "b": [f"x{i}" for i in range(50)]})
    packed = tmp_path / "one.zip"
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("inner/data.csv", frame.to_csv(index=False))
    loaded = load_source(spec=SourceSpec(path=str(packed)))
    assert loaded.table.num_rows == 50
    assert loaded.table.column("a").to_pylist() == frame["a"].tolist()


def test_a_gzip_bomb_stops_at_the_limit_and_leaves_nothing(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.csv.gz"
    bomb.write_bytes(gzip.compress(b"1\n" * (15 * 1024 * 1024)))
    target = tmp_path / "bomb.csv"
    with pytest.raises(TooLarge, match=r"compression bomb|more than"):
        gunzip(bomb, target, LIMITS)
    assert not target.exists()


def test_a_gzip_csv_is_read(tmp_path: Path) -> None:
    packed = tmp_path / "d.csv.gz"
    packed.write_bytes(gzip.compress(b"a,b\n1,2\n3,4\n"))
    loaded = load_source(spec=SourceSpec(path=str(packed)))
    assert loaded.table.to_pydict() == {"a": [1, 3], "b": [2, 4]}


def _xlsx(path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["name", "amount"])
    for i in range(5):
        sheet.append([f"n{i}", i * 1.5])
    book.save(path)


def test_an_xlsx_is_read_with_its_header(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsx"
    _xlsx(path)
    loaded = load_source(spec=SourceSpec(path=str(path)))
    assert loaded.table.column_names == ["name", "amount"]
    assert loaded.table.column("amount").to_pylist() == [0.0, 1.5, 3.0, 4.5, 6.0]


def test_an_xlsx_with_an_entity_bomb_is_refused(tmp_path: Path) -> None:
    good = tmp_path / "good.xlsx"
    _xlsx(good)
    bomb = tmp_path / "bomb.xlsx"
    lol = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    )
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bomb, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = lol + re.sub(rb"^<\?xml[^>]*\?>", b"", data)
            dst.writestr(item, data)
    with pytest.raises(InvalidInput, match="DTD or entities"):
        check_xlsx(bomb, LIMITS)
    with pytest.raises(InvalidInput, match=r"bomb\.xlsx.*DTD"):
        load_source(spec=SourceSpec(path=str(bomb)))


# ---- CSV ----------------------------------------------------------------------------------------


def test_an_unmatched_quote_is_named(tmp_path: Path) -> None:
    path = tmp_path / "quote.csv"
    path.write_text('a,b\n1,"never closed\n2,y\n3,z\n')
    with pytest.raises(InvalidInput, match=r"quote\.csv: a quoted field opened in row \d+ is never closed"):
        load_source(spec=SourceSpec(path=str(path)))


def test_a_10_mb_field_is_refused_with_its_row_and_column(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    path.write_text("id,text\n1,short\n2," + "x" * (10 * 1024 * 1024) + "\n")
    with pytest.raises(InvalidInput, match=r"huge\.csv: row 2, column 'text' has a field of 10485760 bytes"):
        load_source(spec=SourceSpec(path=str(path)), limits=LIMITS)


def test_ragged_rows_are_named(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n1,2\n3,4\n5,6,7\n")
    with pytest.raises(InvalidInput, match=r"ragged\.csv: row 3 .* has 3 fields, expected 2"):
        load_source(spec=SourceSpec(path=str(path)))


def test_a_bom_is_not_part_of_the_first_column_name(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfname,value\nann,1\nbob,2\n")
    assert load_source(spec=SourceSpec(path=str(path))).table.column_names == ["name", "value"]


def test_invalid_utf8_suggests_an_encoding_and_latin1_reads(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("city,n\nsète,1\nköln,2\n".encode("latin-1"))
    with pytest.raises(InvalidInput, match="set the encoding option"):
        load_source(spec=SourceSpec(path=str(path)))
    loaded = load_source(spec=SourceSpec(path=str(path), options=SourceOptions(encoding="latin-1")))
    assert loaded.table.column("city").to_pylist() == ["sète", "köln"]


def test_headerless_csv_gets_numbered_columns_and_tsv_is_tab_separated(tmp_path: Path) -> None:
    path = tmp_path / "nohead.csv"
    path.write_text("1,2.5,3\n4,5.5,6\n7,8.5,9\n")
    loaded = load_source(spec=SourceSpec(path=str(path)))
    assert loaded.table.column_names == ["column_1", "column_2", "column_3"]
    assert loaded.table.num_rows == 3
    tsv = tmp_path / "d.tsv"
    tsv.write_text("a\tb\nx,1\t2\n")
    assert load_source(spec=SourceSpec(path=str(tsv))).table.column("a").to_pylist() == ["x,1"]


def test_a_json_array_is_read(tmp_path: Path) -> None:
    path = tmp_path / "records.json"
    path.write_text('[{"a": 1, "b": "x"}, {"a": 2, "b": null}]')
    assert load_source(spec=SourceSpec(path=str(path))).table.to_pydict() == {"a": [1, 2], "b": ["x", None]}


# ---- configs and secrets -------------------------------------------------------------------------


def test_config_errors_name_each_field() -> None:
    with pytest.raises(ConfigInvalid) as caught:
        parse_config("api", {"url": "ftp://x", "max_pages": 0, "pagination": {"style": "sideways"}})
    fields = {e["field"] for e in caught.value.errors}
    assert {"url", "max_pages", "pagination.style"} <= fields
    with pytest.raises(ConfigInvalid, match="exactly one of table and query"):
        parse_config("database", {"url": "postgresql://u:p@h/db"})
    with pytest.raises(ConfigInvalid, match="unknown source type"):
        parse_config("ftp", {})


def test_secrets_are_split_masked_sealed_and_kept_on_update() -> None:
    config = parse_config(
        "api", {"url": "https://api.example/v1", "auth": {"type": "bearer", "token": "tok-123"}}
    )
    public, secrets = split_secrets(config)
    assert secrets == {"auth.token": "tok-123"} and "tok-123" not in str(public)
    assert masked("api", public, list(secrets))["auth"]["token"] == "********"
    box = SecretBox(sources_key=None, secret_key=SecretStr("k1"))
    token = box.seal(secrets)
    assert token is not None and "tok-123" not in token
    assert join_secrets("api", public, box.open(token)).auth.token.get_secret_value() == "tok-123"  # type: ignore[attr-defined, union-attr]
    updated = merge_update("api", public, secrets, {"auth": {"token": "********"}, "max_pages": 3})
    assert updated.auth.token.get_secret_value() == "tok-123" and updated.max_pages == 3  # type: ignore[attr-defined, union-attr]
    with pytest.raises(SecretsUnreadable, match="cannot be decrypted"):
        SecretBox(sources_key=None, secret_key=SecretStr("other")).open(token)


def test_a_database_url_password_is_a_secret() -> None:
    public, secrets = split_secrets(
        parse_config("database", {"url": "postgresql://bob:hunter2@db/x", "table": "t"})
    )
    assert "hunter2" not in str(public) and secrets["url"] == "postgresql://bob:hunter2@db/x"


# ---- database URLs and queries -------------------------------------------------------------------


def test_unlisted_dialects_and_unsafe_options_are_refused(tmp_path: Path) -> None:
    allowed = ["postgresql", "sqlite"]
    with pytest.raises(InvalidInput, match="dialect 'mssql' is not allowed"):
        check_url("mssql+pyodbc://u:p@h/db", allowed_dialects=allowed, allowed_dirs=[tmp_path])
    with pytest.raises(InvalidInput, match="options not allowed: passfile"):
        check_url(
            "postgresql://u@h/db?passfile=/etc/shadow", allowed_dialects=allowed, allowed_dirs=[tmp_path]
        )
    with pytest.raises(InvalidInput, match="outside the folders"):
        check_url("sqlite:////etc/passwd", allowed_dialects=allowed, allowed_dirs=[tmp_path])


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELECT 1; DROP TABLE t", "exactly one statement"),
        ("DELETE FROM t", "must be a SELECT"),
        ("UPDATE t SET a = 1", "must be a SELECT"),
        ("SELECT * FROM t INTO OUTFILE '/tmp/t.csv'", "must not contain INTO"),  # a file on the server
        ("SELECT * INTO copy_of_t FROM t", "must not contain INTO"),  # a new table (PostgreSQL)
    ],
)
def test_queries_must_be_one_select(query: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        single_select(query)


def test_one_select_with_a_trailing_semicolon_passes() -> None:
    assert single_select("SELECT a FROM t WHERE b = ';' ;") == "SELECT a FROM t WHERE b = ';'"
    assert single_select("SELECT \"into\", 'into' FROM t") == "SELECT \"into\", 'into' FROM t"


def test_mysql_and_mariadb_urls_without_a_driver_use_pymysql(tmp_path: Path) -> None:
    allowed = ["mysql", "mariadb"]
    for raw, driver in [
        ("mysql://u:p@h/db", "mysql+pymysql"),
        ("mariadb://u:p@h/db", "mariadb+pymysql"),
        ("mariadb+pymysql://u:p@h/db", "mariadb+pymysql"),
    ]:
        assert check_url(raw, allowed_dialects=allowed, allowed_dirs=[tmp_path]).drivername == driver


# ---- drift, rate limit, circuit breaker ----------------------------------------------------------


def test_drift_reports_each_kind_of_change() -> None:
    def col(name: str, dtype: str, nullable: bool = False) -> ColumnSchema:
        return ColumnSchema(name=name, dtype=dtype, nullable=nullable)  # type: ignore[arg-type]

    contract = [col("id", "integer"), col("amount", "float"), col("city", "string"), col("gone", "string")]
    found = [
        col("id", "integer"),
        col("amount", "string"),
        col("city", "string", True),
        col("new", "boolean"),
    ]
    changes = {(c.column, c.change) for c in schema_drift(contract, found)}
    assert changes == {
        ("amount", "type_changed"),
        ("city", "nullability_changed"),
        ("gone", "removed"),
        ("new", "added"),
    }
    assert schema_drift(contract, contract) == []


def test_uploads_are_limited_per_user() -> None:
    # The `limits` package keeps time with the real clock, so the window is one real second.
    limiter = RateLimiter(limit=2, window=1)
    limiter.hit("ann")
    limiter.hit("ann")
    limiter.hit("bob")
    with pytest.raises(RateLimited, match="ann has made 2 uploads") as caught:
        limiter.hit("ann")
    assert caught.value.retry_after == pytest.approx(1, abs=0.1)
    time.sleep(1.05)
    limiter.hit("ann")


def test_circuit_opens_after_consecutive_failures_and_half_opens_later() -> None:
    # purgatory keeps time with the real clock, so the cool-down is one real second.
    breaker = CircuitBreakers(threshold=3, cooldown=1)
    for _ in range(3):
        with pytest.raises(OSError), breaker.guard("h"):
            raise OSError("refused")
    with pytest.raises(CircuitOpen, match="circuit for h is open after 3"), breaker.guard("h"):
        pass
    time.sleep(1.05)
    with breaker.guard("h"):  # half-open: a trial passes
        pass
    with breaker.guard("h"):
        pass
    assert breaker.state("h") == "closed"


def test_retry_after_takes_seconds_and_http_dates() -> None:
    assert retry_after_seconds("7") == 7
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == pytest.approx(10)
    assert retry_after_seconds("soon") is None


def test_sample_of_a_read_csv_matches_pandas(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": range(2500), "y": [i * 0.5 for i in range(2500)]})
    path = tmp_path / "n.csv"
    frame.to_csv(path, index=False)
    loaded = load_source(spec=SourceSpec(path=str(path), options=SourceOptions(chunk_rows=1000)))
    assert loaded.table.num_rows == len(frame)
    assert sum(loaded.table.column("y").to_pylist()) == pytest.approx(frame["y"].sum())
    assert io  # keep the import used for readers of this file
