"""Stage 1 reading: formats, chunked reads, schema inference, type overrides and clear errors."""

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lockflow.common.errors import InvalidInput, StageError
from lockflow.common.models import SourceOptions, SourceSpec
from lockflow.datasets.canonical import normalise
from lockflow.ingest.read import detect_format, load_source

CHUNK = 1_000  # the smallest chunk SourceOptions allows; test files span several chunks


def spec(path: Path, **options: object) -> SourceSpec:
    return SourceSpec(path=str(path), options=SourceOptions(chunk_rows=CHUNK, **options))  # type: ignore[arg-type]


def synthetic_frame(rows: int = 2_500, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    amount = rng.normal(100, 15, rows).round(3)
    amount[rng.choice(rows, 40, replace=False)] = np.nan  # planted missing values
    days = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 365, rows), unit="D")
    return pd.DataFrame(
        {
            "id": np.arange(1, rows + 1),
            "amount": amount,
            "active": rng.random(rows) < 0.3,
            "day": days.strftime("%Y-%m-%d"),
            "region": rng.choice(["north", "south", "east"], rows),
        }
    )


# ---- detect_format ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.csv", "csv"),
        ("a.TSV", "csv"),
        ("a.txt", "csv"),
        ("a.jsonl", "jsonl"),
        ("a.ndjson", "jsonl"),
        ("a.json", "jsonl"),
        ("a.parquet", "parquet"),
        ("a.pq", "parquet"),
    ],
)
def test_detect_format_from_extension(name: str, expected: str) -> None:
    assert detect_format(Path(name), None) == expected


def test_declared_format_wins_and_unknown_extension_names_the_file() -> None:
    assert detect_format(Path("data.bin"), "parquet") == "parquet"
    with pytest.raises(InvalidInput, match=r"data\.xls"):
        detect_format(Path("/x/data.xls"), None)


# ---- CSV --------------------------------------------------------------------------------------


def test_csv_values_schema_and_sample_match_pandas(tmp_path: Path) -> None:
    frame = synthetic_frame()
    path = tmp_path / "orders.csv"
    frame.to_csv(path, index=False)

    loaded = load_source(spec=spec(path))

    table = loaded.table
    assert table.num_rows == len(frame)
    assert loaded.bytes_read == path.stat().st_size
    types = {c.name: c.dtype for c in loaded.columns}
    assert types == {
        "id": "integer",
        "amount": "float",
        "active": "boolean",
        "day": "datetime",
        "region": "string",
    }
    assert table.column("id").to_pylist() == frame["id"].tolist()
    np.testing.assert_allclose(
        table.column("amount").to_numpy(zero_copy_only=False), frame["amount"].to_numpy(), equal_nan=True
    )
    assert table.column("active").to_pylist() == frame["active"].tolist()
    assert table.column("region").to_pylist() == frame["region"].tolist()
    expected_days = pd.to_datetime(frame["day"]).dt.to_pydatetime().tolist()
    assert table.column("day").to_pylist() == expected_days

    by_name = {c.name: c for c in loaded.columns}
    assert by_name["amount"].null_count == int(frame["amount"].isna().sum()) == 40
    assert by_name["amount"].nullable is True
    assert by_name["id"].nullable is False and by_name["id"].null_count == 0
    assert by_name["id"].examples == ["1", "2", "3"]
    region_examples = by_name["region"].examples
    assert len(region_examples) == 3 and set(region_examples) == set(frame["region"])
    assert set(by_name["active"].examples) == {"true", "false"}

    assert len(loaded.sample) == 10
    json.dumps(loaded.sample, allow_nan=False)  # JSON-safe: no NaN, no datetime objects
    for row, (_, original) in zip(loaded.sample, frame.head(10).iterrows(), strict=True):
        assert row["id"] == original["id"]
        assert row["day"] == f"{original['day']}T00:00:00"
        assert row["amount"] is None if pd.isna(original["amount"]) else row["amount"] == original["amount"]


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_delimiter_is_sniffed(tmp_path: Path, delimiter: str) -> None:
    frame = synthetic_frame(rows=1_200)
    path = tmp_path / "data.txt"
    frame.to_csv(path, index=False, sep=delimiter)

    loaded = load_source(spec=spec(path))

    assert loaded.table.column_names == list(frame.columns)
    assert loaded.table.column("region").to_pylist() == frame["region"].tolist()


def test_declared_delimiter_overrides_sniffing(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    # Sniffing would pick ',' (it splits every line evenly); the user says the fields are ';'-separated.
    path.write_text("a;b\n" + "".join(f"{i},5;{i}\n" for i in range(1_500)))

    loaded = load_source(spec=spec(path, delimiter=";"))

    assert loaded.table.column_names == ["a", "b"]
    assert loaded.table.column("a").to_pylist()[:2] == ["0,5", "1,5"]
    assert loaded.table.column("b").to_pylist() == list(range(1_500))


def test_chunks_with_different_inferred_types_are_unified(tmp_path: Path) -> None:
    rows = 2_500
    as_int = [str(i) for i in range(rows)]
    promoted = [str(i) if i < CHUNK else f"{i}.5" for i in range(rows)]  # int chunk, then float chunks
    mixed = [str(i) if i < 2 * CHUNK else f"code{i}" for i in range(rows)]  # int chunks, then text
    late = ["" if i < CHUNK else str(i) for i in range(rows)]  # all empty in the first chunk
    frame = pd.DataFrame({"n": as_int, "p": promoted, "m": mixed, "late": late})
    path = tmp_path / "mixed.csv"
    frame.to_csv(path, index=False)

    table = load_source(spec=spec(path)).table

    assert table.schema.field("n").type == pa.int64()
    assert table.schema.field("p").type == pa.float64()
    assert table.column("p").to_pylist() == [float(v) for v in promoted]
    assert pa.types.is_large_string(table.schema.field("m").type)
    assert table.column("m").to_pylist() == mixed  # ints rendered back as written, not "1.0"
    assert table.schema.field("late").type == pa.int64()
    assert table.column("late").to_pylist() == [None] * CHUNK + list(range(CHUNK, rows))


def test_iso_text_becomes_timestamps_but_lookalikes_stay_text(tmp_path: Path) -> None:
    path = tmp_path / "dates.csv"
    frame = pd.DataFrame(
        {
            "at": ["2024-03-01T10:00:00+02:00", "2024-03-01T09:30:00Z", None] * 400,
            "bad": ["2024-01-31", "2024-13-45", "2024-02-01"] * 400,  # month 13: not a date
            "slash": ["2024/01/31"] * 1_200,  # not ISO
        }
    )
    frame.to_csv(path, index=False)

    loaded = load_source(spec=spec(path))

    types = {c.name: c.dtype for c in loaded.columns}
    assert types == {"at": "datetime", "bad": "string", "slash": "string"}
    expected = pd.to_datetime(frame["at"], format="ISO8601", utc=True)
    got = loaded.table.column("at").to_pandas()
    assert got.isna().sum() == 400
    assert (got.dropna() == expected.dropna()).all()
    assert loaded.sample[0]["at"] == "2024-03-01T08:00:00+00:00"


# ---- type overrides ---------------------------------------------------------------------------


def test_column_type_overrides_cast_from_the_text_as_written(tmp_path: Path) -> None:
    rows = 1_500
    path = tmp_path / "codes.csv"
    pd.DataFrame(
        {
            "zip": [f"{i:05d}" for i in range(rows)],
            "qty": [str(i) for i in range(rows)],
            "flag": ["yes", "no", "Y"] * (rows // 3),
            "when": ["2024/01/05", "5 Feb 2024", "2024-03-07 10:00"] * (rows // 3),
        }
    ).to_csv(path, index=False)

    overrides = {"zip": "string", "qty": "float", "flag": "boolean", "when": "datetime"}
    loaded = load_source(spec=spec(path, column_types=overrides))

    assert {c.name: c.dtype for c in loaded.columns} == {
        "zip": "string",
        "qty": "float",
        "flag": "boolean",
        "when": "datetime",
    }
    assert loaded.table.column("zip").to_pylist()[:3] == ["00000", "00001", "00002"]  # zeros kept
    assert loaded.table.column("qty").to_pylist() == [float(i) for i in range(rows)]
    assert loaded.table.column("flag").to_pylist()[:3] == [True, False, True]
    assert loaded.table.column("when").to_pylist()[:3] == [
        datetime(2024, 1, 5),
        datetime(2024, 2, 5),
        datetime(2024, 3, 7, 10),
    ]


def test_failed_cast_names_column_value_and_row(tmp_path: Path) -> None:
    values = [str(i) for i in range(1_500)]
    values[1_234] = "12x"  # planted in the second chunk; data row 1235
    path = tmp_path / "qty.csv"
    pd.DataFrame({"qty": values}).to_csv(path, index=False)

    with pytest.raises(StageError, match=r"'qty'.*integer.*'12x'.*row 1235"):
        load_source(spec=spec(path, column_types={"qty": "integer"}))


def test_integer_override_refuses_fractions_and_override_of_unknown_column(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    pd.DataFrame({"v": [1.0, 2.0, 2.5] + [3.0] * 1_000}).to_csv(path, index=False)
    with pytest.raises(StageError, match=r"'v'.*'2\.5'.*row 3"):
        load_source(spec=spec(path, column_types={"v": "integer"}))
    with pytest.raises(InvalidInput, match="nope"):
        load_source(spec=spec(path, column_types={"nope": "string"}))


# ---- JSON lines and Parquet -------------------------------------------------------------------


def test_jsonl_keeps_text_and_fills_keys_that_appear_later(tmp_path: Path) -> None:
    rows = [{"id": i, "zip": f"{i:05d}", "score": i / 4} for i in range(2_200)]
    for i in range(2_100, 2_200):
        rows[i]["extra"] = {"k": i}  # a nested key first seen in the third chunk
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")

    loaded = load_source(spec=spec(path))

    table = loaded.table
    assert {c.name: c.dtype for c in loaded.columns} == {
        "id": "integer",
        "zip": "string",
        "score": "float",
        "extra": "string",
    }
    assert table.column("zip").to_pylist() == [r["zip"] for r in rows]
    assert table.column("score").to_pylist() == [r["score"] for r in rows]
    extra = table.column("extra").to_pylist()
    assert extra[:2_100] == [None] * 2_100
    assert [json.loads(v) for v in extra[2_100:]] == [r["extra"] for r in rows[2_100:]]
    assert next(c for c in loaded.columns if c.name == "extra").null_count == 2_100


def test_parquet_types_are_normalised(tmp_path: Path) -> None:
    rows = 2_300
    rng = np.random.default_rng(3)
    small = rng.integers(-100, 100, rows).astype(np.int8)
    ratio = rng.random(rows).astype(np.float32)
    city = rng.choice(["Oslo", "Lima", "Pune"], rows)
    table = pa.table(
        {
            "small": pa.array(small),
            "ratio": pa.array(ratio),
            "city": pa.array(city).dictionary_encode(),
            "born": pa.array([datetime(2000, 1, 1 + i % 28).date() for i in range(rows)], pa.date32()),
            "price": pa.array([Decimal(f"{i}.25") for i in range(rows)], pa.decimal128(10, 2)),
            "seen": pa.array(
                [datetime(2024, 1, 1, i % 24, tzinfo=UTC) for i in range(rows)], pa.timestamp("ms", "UTC")
            ),
        }
    )
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=700)

    loaded = load_source(spec=spec(path))

    out = loaded.table
    assert out.schema.field("small").type == pa.int64()
    assert out.column("small").to_pylist() == small.tolist()
    assert out.schema.field("ratio").type == pa.float64()
    np.testing.assert_allclose(out.column("ratio").to_numpy(), ratio.astype(np.float64))
    assert out.column("city").to_pylist() == city.tolist()
    assert out.column("born").to_pylist()[:2] == [datetime(2000, 1, 1), datetime(2000, 1, 2)]
    assert out.column("price").to_pylist()[:2] == [0.25, 1.25]
    assert out.column("seen").to_pylist()[1] == datetime(2024, 1, 1, 1, tzinfo=UTC)
    assert {c.name: c.dtype for c in loaded.columns} == {
        "small": "integer",
        "ratio": "float",
        "city": "string",
        "born": "datetime",
        "price": "float",
        "seen": "datetime",
    }
    assert loaded.sample[0]["seen"] == "2024-01-01T00:00:00+00:00"


# ---- errors a person can act on ---------------------------------------------------------------


def test_missing_file_directory_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"no such file: .*ghost\.csv"):
        load_source(spec=spec(tmp_path / "ghost.csv"))
    with pytest.raises(InvalidInput, match="is a directory"):
        load_source(spec=spec(tmp_path))
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(InvalidInput, match=r"empty\.csv is empty"):
        load_source(spec=spec(empty))
    header_only = tmp_path / "header.csv"
    header_only.write_text("a,b,c\n")
    with pytest.raises(InvalidInput, match=r"header\.csv is empty"):
        load_source(spec=spec(header_only))
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n\n")
    with pytest.raises(InvalidInput, match=r"blank\.jsonl is empty"):
        load_source(spec=spec(blank))


def test_binary_content_is_refused_with_its_offset(tmp_path: Path) -> None:
    nul = tmp_path / "image.csv"
    nul.write_bytes(b"a,b\n1,2\n" + b"\x89PNG\x00\x00")
    with pytest.raises(InvalidInput, match=r"image\.csv does not look like a text .*byte 12\)"):
        load_source(spec=spec(nul))

    # Not UTF-8 far past the first blocks: a Latin-1 'é' after 1.5 MB of clean text.
    prefix = b"name,city\n" + b"ann,oslo\n" * 170_000
    latin = tmp_path / "latin.csv"
    latin.write_bytes(prefix + "bob,s\xe9te\n".encode("latin-1"))
    offset = len(prefix) + len(b"bob,s")
    with pytest.raises(InvalidInput, match=rf"latin\.csv .*binary content at byte {offset}\)"):
        load_source(spec=spec(latin))


def test_utf8_split_across_read_blocks_is_fine(tmp_path: Path) -> None:
    # 'é' is two bytes; pad so that it straddles the decoder's 8 KiB + 1 MiB block boundary.
    boundary = 8 * 1024 + 1024 * 1024
    header = "word\n"
    lines, size = [], len(header)
    while size + 100 < boundary:
        lines.append("x" * 99 + "\n")
        size += 100
    lines.append("y" * (boundary - size - 1) + "é\n")
    text = header + "".join(lines) + "plain\n" * 1_000
    path = tmp_path / "words.csv"
    path.write_text(text, encoding="utf-8")
    assert path.read_bytes()[boundary - 1 : boundary + 1] == "é".encode()

    loaded = load_source(spec=spec(path))

    assert loaded.table.column("word").to_pylist()[len(lines) - 1].endswith("é")


def test_ragged_rows_are_refused_with_their_row_number(tmp_path: Path) -> None:
    lines = ["a,b,c"] + [f"{i},{i},{i}" for i in range(2_500)]
    lines[2_300] = "1,2,3,4,5"  # data row 2300, line 2301, in the third chunk
    late = tmp_path / "late.csv"
    late.write_text("\n".join(lines) + "\n")
    with pytest.raises(InvalidInput, match=r"late\.csv: row 2300 \(line 2301\) has 5 fields, expected 3"):
        load_source(spec=spec(late))

    # pandas would make the first column an index here and shift every value left.
    first = tmp_path / "first.csv"
    first.write_text("id,name\n0,a,\n1,b,\n")
    with pytest.raises(InvalidInput, match=r"first\.csv: row 1 has 3 fields, expected 2"):
        load_source(spec=spec(first))


def test_bad_json_lines_are_refused_with_their_line_number(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"a": 1}\n{"a": 2}\n{"a": 3\n{"a": 4}\n')
    with pytest.raises(InvalidInput, match=r"broken\.jsonl: line 3 is not valid JSON"):
        load_source(spec=spec(broken))
    listed = tmp_path / "listed.ndjson"
    listed.write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(InvalidInput, match=r"listed\.ndjson: line 2 is a JSON list"):
        load_source(spec=spec(listed))


def test_unsigned_integers_past_int64_become_the_nearest_floats() -> None:
    # e.g. MySQL's BIGINT UNSIGNED, or a uint64 Parquet column; a safe cast to float64 would refuse them.
    out = normalise(pa.array([2**64 - 1, 7, None], pa.uint64()))
    assert out.type == pa.float64() and out.to_pylist() == [float(2**64 - 1), 7.0, None]
    assert normalise(pa.array([2**63 - 1], pa.uint64())).type == pa.int64()


def test_unreadable_parquet_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not really parquet")
    with pytest.raises(InvalidInput, match=r"broken\.parquet is not a readable Parquet file"):
        load_source(spec=spec(path))
