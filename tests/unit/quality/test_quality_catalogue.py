"""Every detector of the catalogue finds its planted problem, with counts equal to independent pandas
computations, and finds nothing on the clean columns of the same data."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from lockflow.quality.detect import assess, assess_parquet
from lockflow.qualityrules.rules import load_rules

ROWS = 3000
CLEAN = ("clean_num", "clean_int", "clean_cat", "clean_day")
RULES = """
rules:
  - {column: score, between: [0, 10]}
  - {column: tier, in_set: [gold, silver, bronze]}
  - {column: sku, matches: '[A-Z]{3}-\\d{4}'}
  - {name: net_le_total, expression: "net <= total"}
  - {column: note_ref, not_null: true}
"""


def build() -> pd.DataFrame:
    """Clean columns, plus one column per planted problem (positions recorded by the test via masks)."""
    rng = np.random.default_rng(11)
    n = ROWS
    days = pd.date_range("2020-01-01", periods=n // 10, freq="D")
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "clean_num": rng.uniform(0, 100, n),
            "clean_int": rng.integers(0, 1000, n),
            "clean_cat": rng.choice(["north", "south", "east", "west"], n),
            "clean_day": np.repeat(days, 10)[:n],
            "gappy_day": np.repeat(days, 10)[:n],
            "income": rng.normal(3000, 300, n),
            "age": rng.integers(18, 90, n),
            "status": rng.choice(["Active", "Churned"], n, p=[0.6, 0.4]).astype(object),
            "email": [f"user{i}@example.com" for i in range(n)],
            "signup": [str(d)[:10] for d in rng.choice(days.to_numpy(), n)],
            "amount_text": [f"{v:.2f}" for v in rng.uniform(1, 100, n)],
            "comment": [f"note number {i}" for i in range(n)],
            "flag": rng.choice(["y", "n"], n, p=[0.97, 0.03]),
            "one_value": "same",
            "net": rng.uniform(10, 100, n),
            "tax": rng.uniform(1, 10, n),
            "score": rng.uniform(0, 10, n),
            "tier": rng.choice(["gold", "silver", "bronze"], n),
            "sku": [f"ABC-{i:04d}" for i in rng.integers(0, 9999, n)],
            "note_ref": [f"r{i}" for i in range(n)],
            "x": rng.normal(0, 1, n),
        }
    )
    frame["y"] = frame["x"] * 2 + rng.normal(0, 0.05, n)
    frame["total"] = frame["net"] + frame["tax"]
    frame["start_at"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 100, n), unit="D")
    frame["end_at"] = frame["start_at"] + pd.to_timedelta(rng.integers(1, 30, n), unit="D")
    # --- plant problems ---
    spots = iter(rng.permutation(np.arange(100, n)))
    take = lambda k: [next(spots) for _ in range(k)]  # noqa: E731
    frame.loc[take(40), "income"] = np.nan
    frame.loc[take(15), "income"] = -999.0  # disguised missing
    frame.loc[take(4), "income"] = -50.0  # below the range 'income' implies (not a sentinel)
    comment = frame["comment"].to_numpy(dtype=object)
    comment[take(20)] = "N/A"
    comment[take(10)] = "   "
    comment[take(8)] = "caf\u00c3\u00a9 au lait"  # mojibake
    comment[take(3)] = "bad\x07bell"
    comment[take(6)] = "card 4111 1111 1111 1111 on file"
    frame["comment"] = pd.Series(comment, dtype="str")
    frame.loc[take(12), "customer_id"] = 5  # repeated key
    frame.loc[take(9), "age"] = 150  # out of implied range
    status = frame["status"].to_numpy(dtype=object)
    status[take(30)] = "active "
    status[take(20)] = "ACTIVE"
    status[take(10)] = "Activ"
    frame["status"] = pd.Series(status, dtype="str")
    email = frame["email"].to_numpy(dtype=object)
    email[take(14)] = "not-an-email"
    frame["email"] = pd.Series(email, dtype="str")
    signup = frame["signup"].to_numpy(dtype=object)
    signup[take(7)] = "2023-02-30"
    frame["signup"] = pd.Series(signup, dtype="str")
    amount = frame["amount_text"].to_numpy(dtype=object)
    amount[take(11)] = "twelve"
    frame["amount_text"] = pd.Series(amount, dtype="str")
    frame.loc[take(10), "total"] = frame["total"] + 5  # total != net + tax
    frame.loc[take(6), "end_at"] = frame["start_at"] - pd.Timedelta(days=3)  # end before start
    frame.loc[take(5), "score"] = 11.5  # user rule: between 0 and 10
    frame.loc[take(4), "tier"] = "platinum"
    frame.loc[take(3), "sku"] = "abc-1"
    frame.loc[take(6), "note_ref"] = None
    frame.loc[take(5), "net"] = frame["total"] + 1  # breaks net <= total (and the sum)
    odd = take(20)
    frame.loc[odd, "x"] = rng.uniform(0.8, 1.2, 20)
    frame.loc[odd, "y"] = -2 * frame.loc[odd, "x"]  # unusual together, each value in its usual range
    gappy = frame["gappy_day"].copy()
    gappy[(gappy >= "2020-02-01") & (gappy < "2020-02-20")] = pd.Timestamp("2020-01-31")
    frame["gappy_day"] = gappy
    frame.iloc[take(10)] = frame.iloc[:10].to_numpy()  # exact duplicate rows of rows 0..9
    return frame.astype({"customer_id": "int64", "age": "int64", "clean_int": "int64"})


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return build()


@pytest.fixture(scope="module")
def found(data: pd.DataFrame) -> dict:
    result = assess(frame=data, rules=load_rules(RULES), as_of=date(2020, 6, 1), batch_rows=700)
    return {f.id: f for f in result.findings}


def tokens(series: pd.Series) -> pd.Series:
    normal = series.astype("str").str.strip().str.lower()
    return series.isna() | normal.eq("") | normal.isin(["n/a", "na", "null", "none", "?", "-", "--"])


def test_completeness_counts_match_pandas(data: pd.DataFrame, found: dict) -> None:
    income = found["missing_values:income"]
    assert income.count == int(data["income"].isna().sum() + (data["income"] == -999).sum())
    assert "-999" in income.explanation and income.details["sentinels"] == [-999.0]
    comment = found["missing_values:comment"]
    assert comment.count == int(tokens(data["comment"]).sum())
    assert found["rule:note_ref not_null"].count == int(data["note_ref"].isna().sum())


def test_uniqueness_counts_match_pandas(data: pd.DataFrame, found: dict) -> None:
    assert found["duplicate_rows"].count == int(data.duplicated().sum())
    assert found["duplicate_rows"].sample_rows == [int(i) for i in np.flatnonzero(data.duplicated())[:5]]
    assert found["duplicate_keys:customer_id"].count == int(data["customer_id"].duplicated().sum())


def test_validity_counts_match_pandas(data: pd.DataFrame, found: dict) -> None:
    assert found["out_of_range:age"].count == int(((data["age"] < 0) | (data["age"] > 120)).sum())
    # The -999 sentinels are missing values (counted there), not also out of range.
    income = found["out_of_range:income"]
    assert income.count == int(((data["income"] < 0) & (data["income"] != -999)).sum()) == 4
    assert all(data["income"].iloc[r] == -50.0 for r in income.sample_rows)
    assert "15 sentinel values are counted as missing" in income.explanation
    amount = pd.to_numeric(data["amount_text"], errors="coerce")
    assert found["type_mismatch:amount_text"].count == int(amount.isna().sum())
    email_ok = data["email"].str.fullmatch(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
    assert found["invalid_format:email"].count == int((~email_ok).sum())
    real = pd.to_datetime(data["signup"], format="%Y-%m-%d", errors="coerce")
    assert found["invalid_format:signup"].count == int(real.isna().sum())
    assert found["rule:score between"].count == int(((data["score"] < 0) | (data["score"] > 10)).sum())
    assert found["rule:tier in_set"].count == int((~data["tier"].isin(["gold", "silver", "bronze"])).sum())
    assert found["rule:sku matches"].count == int((~data["sku"].str.fullmatch(r"[A-Z]{3}-\d{4}")).sum())
    assert found["rule:net_le_total"].count == int((data["net"] > data["total"]).sum())
    damaged = data["comment"].str.contains("\u00c3|\x07", regex=True)
    assert found["encoding:comment"].count == int(damaged.sum())


def test_consistency_and_cross_column(data: pd.DataFrame, found: dict) -> None:
    parts = data["net"] + data["tax"]
    assert found["cross_column:total"].count == int((~np.isclose(data["total"], parts, atol=1e-6)).sum())
    assert found["cross_column:start_at:end_at"].count == int((data["end_at"] < data["start_at"]).sum())
    status = found["inconsistent_categories:status"]
    assert status.details["mapping"] == {"active ": "Active", "ACTIVE": "Active", "Activ": "Active"}
    assert status.count == int(data["status"].isin(["active ", "ACTIVE", "Activ"]).sum())
    assert found["constant_column:one_value"].count == 0
    assert "imbalance:flag" in found
    assert found["personal_data:email"].details["kinds"] == ["email"]
    card = found["personal_data:comment"]
    assert card.details["kinds"] == ["card_number"] and card.severity == "high"
    assert card.count == int(data["comment"].str.contains("4111 1111").sum())
    assert "high_cardinality:comment" in found


def test_outliers_and_timeliness(data: pd.DataFrame, found: dict) -> None:
    income = data["income"][(data["income"] != -999) & data["income"].notna()]
    q1, q3 = income.quantile([0.25, 0.75])
    tukey = (income < q1 - 1.5 * (q3 - q1)) | (income > q3 + 1.5 * (q3 - q1))
    assert found["outliers:income"].count == int(tukey.sum())  # the -999 sentinels are not counted
    median = income.median()
    mad = (income - median).abs().median()
    robust = int((0.6745 * (income - median).abs() / mad > 3.5).sum())
    assert found["outliers:income"].details["robust_z_count"] == robust
    multi = found["multivariate_outliers"]
    assert set(multi.columns) >= {"x", "y"} and not multi.exact and "IsolationForest" in multi.method
    planted = np.isclose(data["y"], -2 * data["x"]) & (data["x"] > 0.5)
    numeric = ["clean_num", "clean_int", "income", "age", "net", "tax", "score", "x", "y", "total"]
    complete = data[numeric].notna().all(axis=1) & (data["income"] != -999)  # rows the detector can score
    rows = data.loc[complete, numeric]
    scaled = (rows - rows.median()) / (rows.quantile(0.75) - rows.quantile(0.25))
    extreme = ((scaled < -2) | (scaled > 2)).any(axis=1).reindex(data.index, fill_value=True)
    expected = planted & complete & ~extreme  # rows left to the univariate detectors are not repeated here
    assert multi.count == int(expected.sum()) >= 18  # every scorable planted row, and nothing else
    assert multi.sample_rows == [int(i) for i in np.flatnonzero(expected)[:5]]
    gaps = found["time_gaps:gappy_day"]
    assert gaps.details["missing_days"] == 19
    assert not any(f.startswith("staleness") for f in found)  # as_of 2020-06-01: fresh


def test_staleness_against_as_of() -> None:
    frame = pd.DataFrame({"day": pd.date_range("2020-01-01", periods=30, freq="D"), "v": range(30)})
    stale = {f.id: f for f in assess(frame=frame, as_of=date(2022, 1, 30)).findings}["staleness:day"]
    assert stale.details["age_days"] == (date(2022, 1, 30) - date(2020, 1, 30)).days
    assert stale.severity == "medium" and stale.dimension == "timeliness"
    result = assess(frame=frame, as_of=date(2020, 2, 15))
    assert result.findings == [] and result.dimensions["timeliness"] == 100.0


def test_nothing_is_found_on_clean_columns(found: dict) -> None:
    for finding in found.values():
        if finding.category in ("duplicate_rows", "multivariate_outliers"):
            continue
        assert not set(finding.columns) & set(CLEAN), finding.id


def test_every_category_is_exercised(found: dict) -> None:
    categories = {f.category for f in found.values()}
    expected = {
        "missing_values", "duplicate_rows", "duplicate_keys", "type_mismatch", "invalid_format",
        "out_of_range", "multivariate_outliers", "inconsistent_categories", "constant_column",
        "high_cardinality", "imbalance", "cross_column", "personal_data", "encoding", "time_gaps",
        "rule_violation",
    }  # fmt: skip
    assert expected <= categories


def test_parquet_stream_equals_frame(data: pd.DataFrame, found: dict, tmp_path) -> None:
    path = tmp_path / "d.parquet"
    data.to_parquet(path)
    streamed = assess_parquet(path=path, rules=load_rules(RULES), as_of=date(2020, 6, 1), batch_rows=512)
    assert {f.id: f.count for f in streamed.findings} == {i: f.count for i, f in found.items()}
