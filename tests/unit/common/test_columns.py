"""Picking a goal target when the user named none: numeric, not an id, not constant, outcome-like."""

import pandas as pd
import pytest

from lockflow.common.columns import (
    ColumnFacts,
    choose_target,
    facts_from_rows,
    looks_like_id,
    name_words,
    no_target_message,
)
from lockflow.common.models import Goal, SourceSpec
from lockflow.ingest.preflight import preflight, settle_goal


def facts(name: str, *, numeric: bool = True, distinct: int = 50, row_number: bool = False) -> ColumnFacts:
    return ColumnFacts(name=name, numeric=numeric, values=100, distinct=distinct, row_number=row_number)


def test_a_column_named_like_an_outcome_wins_over_a_more_varied_one() -> None:
    choice = choose_target([facts("spend", distinct=99), facts("totalRevenue", distinct=10), facts("price")])
    assert choice is not None and choice.target == "totalRevenue" and "revenue" in choice.reason


def test_ids_constants_row_numbers_and_text_are_never_picked() -> None:
    columns = [
        facts("tuple_id", distinct=100),
        facts("flag", distinct=1),
        facts("n", distinct=100, row_number=True),
        facts("label", numeric=False),
        facts("year", distinct=5),
        facts("units", distinct=12),
    ]
    choice = choose_target(columns)
    assert choice is not None and choice.target == "units" and "most distinct values (12" in choice.reason


def test_without_an_outcome_name_the_most_varied_column_is_picked_leftmost_on_a_tie() -> None:
    choice = choose_target([facts("a", distinct=7), facts("b", distinct=30), facts("c", distinct=30)])
    assert choice is not None and choice.target == "b"


def test_no_suitable_column_names_each_numeric_one_and_why() -> None:
    columns = [facts("tuple_id"), facts("flag", distinct=1), facts("name", numeric=False)]
    assert choose_target(columns) is None
    assert no_target_message(columns) == (
        "no numeric column suits as the goal's target: "
        "tuple_id (its name says it identifies rows); flag (constant)"
    )
    assert "no numeric column" in no_target_message([facts("name", numeric=False)])


@pytest.mark.parametrize(
    ("name", "is_id"), [("id", True), ("tuple_id", True), ("uuid", True), ("paid", False)]
)
def test_looks_like_id(name: str, is_id: bool) -> None:
    assert looks_like_id(name) is is_id


def test_name_words_split_camel_case_and_separators() -> None:
    assert name_words("totalRevenue") == name_words("total_revenue") == name_words("Total Revenue")


def test_preflight_settles_the_target_from_the_head_of_a_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "orders.csv"
    pd.DataFrame(
        {
            "order_no": range(1, 201),
            "qty": [i % 7 for i in range(200)],
            "amount": [i * 37 % 101 for i in range(200)],
        }
    ).to_csv(path, index=False)
    spec = SourceSpec(path=str(path))
    checked = preflight(spec=spec, goal=Goal())
    by_name = {f.name: f for f in checked.facts}
    assert by_name["order_no"].row_number and not by_name["qty"].row_number
    goal, choice = settle_goal(Goal(direction="max"), checked, source="orders.csv")
    assert choice is not None and goal.target == "amount" and goal.direction == "increase"
    assert goal.description.startswith("target picked by lockflow: amount")
    named = preflight(spec=spec, goal=Goal(target="qty"))
    assert named.facts == [] and settle_goal(Goal(target="qty"), named, source="x") == (
        Goal(target="qty"),
        None,
    )


def test_a_goal_less_run_goes_on_without_a_target_when_nothing_suits(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "ids.parquet"
    pd.DataFrame({"tuple_id": range(30), "name": ["x"] * 30}).to_parquet(path)
    checked = preflight(spec=SourceSpec(path=str(path)), goal=Goal())
    goal, choice = settle_goal(Goal(), checked, source="ids.parquet")
    assert goal.target is None and choice is None
    assert "no numeric column suits as the goal's target: tuple_id (its name" in goal.description


def test_facts_from_a_few_sample_rows_tell_row_numbers_from_measures() -> None:
    rows = [{"n": i, "price": 10.0 - i, "label": "x"} for i in range(10)]
    by_name = {
        f.name: f for f in facts_from_rows([("n", "integer"), ("price", "float"), ("label", "string")], rows)
    }
    assert by_name["n"].row_number and not by_name["price"].row_number
    assert (by_name["price"].numeric, by_name["label"].numeric) == (True, False)
    assert by_name["label"].distinct == 1
    choice = choose_target(list(by_name.values()))
    assert choice is not None and choice.target == "price"
