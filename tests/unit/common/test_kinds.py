"""Every finding category, insight kind and fix strategy has its facts in the one table."""

from typing import get_args

import pytest

from lockflow.common.kinds import (
    CATEGORIES,
    GENERIC_CATEGORY,
    GENERIC_INSIGHT,
    GENERIC_STRATEGY,
    INSIGHT_KINDS,
    RISKS,
    STRATEGIES,
    category_facts,
    insight_facts,
    strategy_facts,
)
from lockflow.common.models import FindingCategory, InsightKind, QualityDimension


def test_every_category_has_facts() -> None:
    assert set(CATEGORIES) == set(get_args(FindingCategory))


def test_every_insight_kind_has_facts() -> None:
    assert set(INSIGHT_KINDS) == set(get_args(InsightKind))


@pytest.mark.parametrize("category", get_args(FindingCategory))
def test_category_facts_are_complete(category: str) -> None:
    facts = category_facts(category)
    assert facts.words and facts.label and facts.source_action
    assert facts.dimension in get_args(QualityDimension)
    assert facts.effort in range(1, 6) and 0.0 <= facts.weight <= 1.0
    assert facts.default_fix in STRATEGIES


def test_strategy_facts_are_complete() -> None:
    for name, facts in STRATEGIES.items():
        assert facts.description and facts.risk in RISKS, name
    assert STRATEGIES["flag_only"].risk == "none"


def test_unknown_values_get_generic_facts() -> None:
    assert category_facts("from_a_newer_producer") is GENERIC_CATEGORY
    assert insight_facts("from_a_newer_producer") is GENERIC_INSIGHT
    assert strategy_facts("from_a_newer_producer") is GENERIC_STRATEGY
    assert GENERIC_STRATEGY.risk == "high"
