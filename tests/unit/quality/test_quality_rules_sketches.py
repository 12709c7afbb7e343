"""Rules files are validated with clear errors; sketches are exact or within their stated error."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from lockflow.common.errors import InvalidInput
from lockflow.common.pipeline import DecisionContext, InvalidDecision, check_quality_choices
from lockflow.quality.detect import assess
from lockflow.quality.sketches import HyperLogLog, RepeatCounter, RowSample, hash_values
from lockflow.qualityrules.rules import load_rules


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules: [{column: a, betwen: [0, 1]}]", "rules.0.betwen: unknown key"),
        ("rules: [{column: a}]", "exactly one check"),
        ("rules: [{column: a, not_null: true, unique: true}]", "found: not_null, unique"),
        ("rules: [{expression: 'a >= '}]", "does not parse"),
        ("rules: [{expression: '__import__(\"os\")'}]", "the only function allowed is abs"),
        ("rules: [{expression: 'a + 1'}]", "must be a comparison"),
        ("rules: [{column: a, matches: '([a-z'}]", "not a valid regular expression"),
        ("rules: [{column: a, between: [5, 1]}]", "lower bound 5 is above the upper bound 1"),
        ("rules: [{unique: true}]", "needs a 'column'"),
        ("rules: {column: a}", "rules: Input should be a valid list"),
        ("- just a list", "expected a mapping"),
        ("rules: [a: b: c]", "not valid YAML"),
    ],
)
def test_bad_rules_files_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match="rules file") as error:
        load_rules(text)
    assert message in str(error.value)


def test_rules_are_reported_like_findings_and_count_like_pandas() -> None:
    frame = pd.DataFrame(
        {"a": [1, 2, 3, 50, None, 7], "b": [2, 1, 4, 60, 1, 8], "k": ["x", "y", "x", "z", "y", "w"]}
    )
    rules = load_rules(
        "rules:\n - {column: a, between: [0, 10]}\n - {name: b_over_a, expression: 'b > a'}\n"
        " - {column: k, unique: true, severity: high}\n - {column: a, not_null: true}\n"
        " - {column: missing_col, not_null: true}\n"
    )
    found = {f.id: f for f in assess(frame=frame, rules=rules, batch_rows=2).findings}
    assert found["rule:a between"].count == int(((frame["a"] < 0) | (frame["a"] > 10)).sum()) == 1
    assert found["rule:b_over_a"].count == int((frame["b"] <= frame["a"]).sum()) == 1
    assert found["rule:b_over_a"].sample_rows == [1]
    assert found["rule:k unique"].count == int(frame["k"].duplicated().sum()) == 2
    assert found["rule:k unique"].severity == "high" and found["rule:k unique"].dimension == "uniqueness"
    assert found["rule:a not_null"].count == 1 and found["rule:a not_null"].dimension == "completeness"
    assert "cannot be checked" in found["rule:missing_col not_null"].explanation


def test_hyperloglog_is_within_its_stated_error() -> None:
    rng = np.random.default_rng(0)
    values = rng.integers(0, 10**12, 300_000)
    sketch = HyperLogLog()
    for chunk in np.array_split(values, 7):
        sketch.add(hash_values(chunk))
    exact = len(np.unique(values))
    assert abs(sketch.estimate() - exact) / exact < 4 * sketch.relative_error
    small = HyperLogLog()
    small.add(hash_values(np.arange(500)))
    assert abs(small.estimate() - 500) <= 5  # linear counting is near exact for few values


def test_hyperloglog_registers_hold_each_bucket_s_highest_rank() -> None:
    # The reference: a hash's top p bits pick the register; its rank is one more than the leading
    # zeros of the remaining 64 - p bits (64 - p + 1 when they are all zero).
    rng = np.random.default_rng(7)
    edges = [0, 1, 2**63, 2**64 - 1, 2**50, 2**50 - 1, (2**14 - 1) << 50, 12345 << 20]
    hashes = np.concatenate(
        [np.array(edges, dtype=np.uint64), rng.integers(0, 2**64, 20_000, dtype=np.uint64)]
    )
    sketch = HyperLogLog(p=14)
    sketch.add(hashes[:9])
    sketch.add(hashes[9:])
    expected = np.zeros(1 << 14, dtype=np.uint8)
    for h in (int(x) for x in hashes):
        rest = h & ((1 << 50) - 1)
        expected[h >> 50] = max(expected[h >> 50], 50 - rest.bit_length() + 1)
    assert np.array_equal(sketch.registers, expected)


def test_repeat_counter_spilled_equals_in_memory() -> None:
    rng = np.random.default_rng(1)
    hashes = hash_values(rng.integers(0, 50_000, 120_000))
    rows = np.arange(len(hashes))
    memory, spilled = RepeatCounter(budget=10**9), RepeatCounter(budget=10_000)
    for part in range(0, len(hashes), 7_000):
        memory.add(hashes[part : part + 7_000], rows[part : part + 7_000])
        spilled.add(hashes[part : part + 7_000], rows[part : part + 7_000])
    a, b = memory.finish(), spilled.finish()
    assert b.spilled and not a.spilled
    assert a.repeats == b.repeats == int(pd.Series(hashes).duplicated().sum())
    assert (
        a.sample_rows == b.sample_rows == [int(i) for i in np.flatnonzero(pd.Series(hashes).duplicated())[:5]]
    )


def test_row_sample_is_uniform_bounded_and_exact_when_small() -> None:
    table = pa.table({"v": np.arange(50_000)})
    sample = RowSample(k=2_000, seed=3)
    for i, batch in enumerate(table.to_batches(max_chunksize=4_096)):
        sample.add(batch, i * 4_096)
    frame = sample.frame()
    assert len(frame) == 2_000 and not sample.exact
    assert (frame.index.to_numpy() == frame["v"].to_numpy()).all()  # row numbers are right
    assert abs(frame["v"].median() - 25_000) < 50_000 * sample.rank_error()
    small = RowSample(k=100)
    small.add(pa.table({"v": np.arange(60)}).to_batches()[0], 0)
    assert small.exact and small.frame()["v"].tolist() == list(range(60))


def test_batch_size_does_not_change_the_findings() -> None:
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"x": rng.normal(size=2_000), "c": rng.choice(["a", "b", " a"], 2_000)})
    frame.loc[::97, "x"] = np.nan
    frame = pd.concat([frame, frame.iloc[:30]], ignore_index=True)
    one = [(f.id, f.count, f.sample_rows) for f in assess(frame=frame, batch_rows=10_000).findings]
    many = [(f.id, f.count, f.sample_rows) for f in assess(frame=frame, batch_rows=333).findings]
    assert one == many


def test_gate_2_refuses_parameters_that_do_not_fit_the_column() -> None:
    context = DecisionContext(
        columns=frozenset({"city", "amount"}),
        numeric_columns=frozenset({"amount"}),
        finding_strategies={
            "m:city": frozenset({"impute_mean", "fill_constant"}),
            "m:amount": frozenset({"fill_constant"}),
        },
        finding_columns={"m:city": ("city",), "m:amount": ("amount",)},
        finding_params={"m:city": {"fill_constant": frozenset({"value"})}, "m:amount": {}},
    )
    with pytest.raises(InvalidDecision, match="needs numbers, but column 'city' is not numeric"):
        check_quality_choices({"choices": [{"finding_id": "m:city", "strategy": "impute_mean"}]}, context)
    bad_fill = {"finding_id": "m:amount", "strategy": "fill_constant", "params": {"value": "n/a"}}
    with pytest.raises(InvalidDecision, match="'value' must be a number"):
        check_quality_choices({"choices": [bad_fill]}, context)
    ok = {"finding_id": "m:amount", "strategy": "fill_constant", "params": {"value": 0}}
    assert check_quality_choices({"choices": [ok]}, context).choices[0].params == {"value": 0}
