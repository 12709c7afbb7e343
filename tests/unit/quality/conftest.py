"""A synthetic frame with planted quality problems, shared by the quality tests."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

ROWS = 1000


@dataclass(frozen=True)
class Planted:
    """The frame and what was planted where."""

    frame: pd.DataFrame
    missing_amount: int
    missing_city: int
    blank_city: int
    duplicates: int
    non_numbers: int
    extremes: int


def build_planted(seed: int = 7) -> Planted:
    """1000 rows: clean columns plus one planted problem per problem column."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "row_id": np.arange(ROWS),
            "clean_num": rng.uniform(0.0, 1.0, ROWS),
            "clean_int": rng.integers(0, 101, ROWS),
            "clean_text": rng.choice(["red", "green", "blue"], ROWS, p=[0.5, 0.3, 0.2]),
            "amount": rng.uniform(10.0, 20.0, ROWS),
            "city": rng.choice(["Oslo", "Lima", "Pune"], ROWS, p=[0.5, 0.3, 0.2]).astype(object),
            "code": [str(v) for v in rng.integers(100, 1000, ROWS)],
            "price": rng.uniform(100.0, 200.0, ROWS),
        }
    )
    # Duplicates: 12 later rows become exact copies of 12 earlier rows.
    sources = rng.choice(np.arange(0, 500), 12, replace=False)
    targets = rng.choice(np.arange(500, ROWS), 12, replace=False)
    frame.iloc[targets] = frame.iloc[sources].to_numpy()
    frame = frame.astype({"row_id": "int64", "clean_int": "int64", "clean_num": "float64"})
    frame = frame.astype({"amount": "float64", "price": "float64"})
    # Every other problem goes into rows not involved in duplication, so planted counts stay exact.
    free = np.setdiff1d(np.arange(ROWS), np.concatenate([sources, targets]))
    spots = rng.permutation(free)
    amount_rows, spots = spots[:70], spots[70:]
    city_rows, spots = spots[:30], spots[30:]
    code_rows, spots = spots[:9], spots[9:]
    price_rows = spots[:15]

    frame.loc[amount_rows, "amount"] = np.nan
    city = frame["city"].to_numpy(dtype=object)
    city[city_rows[:20]] = ""
    city[city_rows[20:25]] = "   "
    city[city_rows[25:]] = None
    frame["city"] = pd.Series(city, dtype="str")
    code = frame["code"].to_numpy(dtype=object)
    # Not placeholder tokens ('n/a', '?' ...): those count as missing values, not as non-numbers.
    code[code_rows] = ["abc", "#REF!", "x1", "3,5", "7 kg", "N0", "12a", "x", "one"]
    frame["code"] = pd.Series(code, dtype="str")
    frame.loc[price_rows[:10], "price"] = 10_000.0 + np.arange(10)
    # Low extremes stay positive so they are outliers without breaking the price >= 0 range.
    frame.loc[price_rows[10:], "price"] = 1.0 + np.arange(5)
    return Planted(
        frame=frame,
        missing_amount=70,
        missing_city=30,
        blank_city=25,
        duplicates=12,
        non_numbers=9,
        extremes=15,
    )


@pytest.fixture
def planted() -> Planted:
    """A fresh planted frame for each test."""
    return build_planted()
