"""The pass's shortcuts give the same answers as the plain computations they replace."""

import threading

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from lockflow.quality import patterns
from lockflow.quality.profile import prefetch, profile_batches, rebatch
from lockflow.quality.sketches import RowSample, hash_array, hash_rows

TRICKY = [
    "a@b.co",
    "mail me: x.y@host.org now",
    "4111 1111 1111 1111",
    "card 4111-1111-1111-1111!",
    "123456789012",
    " 42 ",
    "-3.5e2",
    ".5",
    "+7",
    "2023-02-30",
    " 01/02/2023",
    "2023-1-5 10:30",
    "caf\u00c3\u00a9",
    "ok\x07bell",
    "\ufffd",
    "  N/A ",
    "NULL",
    "\u212a",  # Kelvin sign: lower-cases to 'k'
    "",
    "   ",
    None,
    "u123@example.com",
    "a@b.c-d.com",
    "x@mail.co.uk",
    "@example.com",
    "bad@@example.com",
    "x" * 40,
]


# The last cut leaves "mail me: ..." last, just before a card number's digits in the buffer.
@pytest.mark.parametrize(("offset", "cut"), [(0, 0), (3, 0), (3, 2 * len(TRICKY) - 2)])
def test_prefiltered_regexes_equal_plain_regexes(offset: int, cut: int) -> None:
    # A sliced array: its buffers start before its first value and run on past its last.
    values = pa.array(TRICKY * 3).slice(offset, len(TRICKY) * 3 - offset - cut)
    plain = {
        "email": pc.match_substring_regex(values, patterns.EMAIL_IN_TEXT_RE),
        "card": pc.match_substring_regex(values, patterns.CARD_RE),
        "number": pc.match_substring_regex(values, patterns.NUMBER_RE),
        "date": pc.match_substring_regex(values, patterns.DATE_RE),
        "damage": pc.match_substring_regex(values, patterns.DAMAGE_RE),
    }
    plain_np = {
        k: np.asarray(pc.fill_null(v, False).to_numpy(zero_copy_only=False)) for k, v in plain.items()
    }
    every = np.ones(len(values), dtype=bool)
    fast = {
        "email": np.asarray(patterns.pii_masks(values, None)["email"]),
        "email, format known": np.asarray(
            patterns.pii_masks(values, "email", format_fits=_bool(patterns.format_ok("email", values)))[
                "email"
            ]
        ),
        "card": patterns.match_where(
            values,
            patterns.CARD_RE,
            patterns.byte_counts(values, patterns.DIGIT_BYTES) >= patterns.CARD_MIN_DIGITS,
        ),
        "number": patterns.match_where(
            values, patterns.NUMBER_RE, every & patterns.first_byte_in(values, patterns.NUMBER_START)
        ),
        "date": patterns.match_where(
            values, patterns.DATE_RE, patterns.first_byte_in(values, patterns.DATE_START)
        ),
    }
    for kind, mask in fast.items():
        assert mask.tolist() == plain_np[kind.split(",")[0]].tolist(), kind
    assert plain_np["damage"].any() and patterns.any_byte_in(values, patterns.DAMAGE_BYTES)
    assert not patterns.any_byte_in(pa.array(["plain ascii", "a@b.co"]), patterns.DAMAGE_BYTES)
    digits = [sum(ch.isdigit() and ch.isascii() for ch in v) if v is not None else 0 for v in TRICKY * 3]
    assert patterns.byte_counts(values, patterns.DIGIT_BYTES).tolist() == digits[offset : len(digits) - cut]


def _bool(mask: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)


def test_text_profile_counts_match_pandas_for_low_and_high_cardinality() -> None:
    rng = np.random.default_rng(5)
    n = 30_000
    low = rng.choice(np.array(TRICKY, dtype=object), n)  # few distinct values: dictionary path
    high = np.array([f"user{i}@example.com" for i in range(n)], dtype=object)  # all distinct: direct path
    high[rng.random(n) < 0.01] = "n/a"
    high[rng.random(n) < 0.01] = " padded@example.com "
    frame = pd.DataFrame({"low": low, "high": high})
    table = pa.Table.from_pandas(frame, preserve_index=False)
    profile = profile_batches(table.schema, table.to_batches(max_chunksize=4_000))
    for name in ("low", "high"):
        series = frame[name]
        col = profile.columns[name]
        text = series.dropna().astype(str)
        stripped = text.str.strip()
        blank = stripped.eq("")
        token = ~blank & stripped.str.lower().isin(patterns.MISSING_TOKENS)
        present = text[~blank & ~token]
        assert col.nulls.count == int(series.isna().sum())
        assert col.blanks.count == int(blank.sum())
        assert col.token_rows.count == int(token.sum())
        assert col.padded.count == int((present != present.str.strip()).sum())
        assert col.numeric_like == int(
            present.str.fullmatch(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*").sum()
        )
        assert col.pii["email"].count == int(present.str.contains(patterns.EMAIL_IN_TEXT_RE).sum())
        assert col.damaged.count == int(
            present.str.contains(r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F]|\ufffd|Ã[\x80-\xbf]").sum()
        )
        if col.values is not None:
            assert dict(col.values) == present.value_counts().to_dict()
        distinct, exact = col.distinct()
        assert abs(distinct - present.nunique()) <= (0 if exact else 0.05 * present.nunique())
        assert col.nulls.rows == [int(i) for i in np.flatnonzero(series.isna().to_numpy())[:5]]


def test_a_phone_column_counts_phones_as_personal_data() -> None:
    values = ["+47 912 34 567", "555-123-4567", "nope", "+1 (555) 123-4567", None]
    table = pa.table({"phone": values * 20})
    col = profile_batches(table.schema, table.to_batches(max_chunksize=30)).columns["phone"]
    fits = _bool(patterns.format_ok("phone", pa.array(values)))
    assert col.fmt == "phone"
    assert col.pii["phone"].count == int(fits.sum()) * 20 == 60
    assert col.fmt_bad.count == 20


def test_hash_array_treats_equal_values_alike() -> None:
    floats = hash_array(pa.array([0.0, -0.0, float("nan"), None, float("nan"), 1.5]))
    assert floats[0] == floats[1] and floats[2] == floats[4] and len(set(floats.tolist())) == 4
    text = hash_array(pa.array(["a", None, "b", "a"]))
    assert text[0] == text[3] and len(set(text.tolist())) == 3
    assert (hash_array(pa.array(["a", "b"]).dictionary_encode()) == hash_array(pa.array(["a", "b"]))).all()
    table = pa.table({"a": [1, 2, 1, 2], "b": ["x", "y", "x", "z"]})
    rows = hash_rows(table, ["a", "b"])
    assert rows[0] == rows[2] and len(set(rows.tolist())) == 3
    assert (hash_rows(table, ["b", "a"]) != rows).any()  # column order matters


def test_row_sample_equals_bottom_k_of_all_keys() -> None:
    table = pa.table({"v": np.arange(40_000)})
    sample = RowSample(k=1_000, seed=7)
    for i, batch in enumerate(table.to_batches(max_chunksize=3_000)):
        sample.add(batch, i * 3_000)
    keys = np.random.default_rng(7)
    every = np.concatenate([keys.random(b.num_rows) for b in table.to_batches(max_chunksize=3_000)])
    expected = np.sort(np.argsort(every)[:1_000])
    assert sample.frame().index.tolist() == expected.tolist()
    assert sample.frame()["v"].tolist() == expected.tolist()


def test_rebatch_joins_small_batches_and_keeps_rows() -> None:
    table = pa.table({"v": np.arange(10_000), "s": [str(i) for i in range(10_000)]})
    joined = list(rebatch(table.to_batches(max_chunksize=700), 3_000))
    assert [b.num_rows for b in joined] == [3_500, 3_500, 3_000]
    assert pa.Table.from_batches(joined).equals(table)


def test_prefetch_raises_reader_errors_in_the_consumer_and_stops_its_thread() -> None:
    def broken():  # type: ignore[no-untyped-def]
        yield pa.record_batch({"v": [1]})
        raise ValueError("row 2: bad quote")

    got = []
    with pytest.raises(ValueError, match="row 2: bad quote"):
        for batch in prefetch(broken()):
            got.append(batch)
    assert len(got) == 1
    endless = prefetch(pa.record_batch({"v": [i]}) for i in range(10**9))
    next(endless)
    endless.close()  # the consumer stops early: the reader thread must end, not block forever
    assert not any(t.name == "lockflow-quality-read" and t.is_alive() for t in threading.enumerate())
