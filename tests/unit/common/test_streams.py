"""The stream finding table covers every kind, and each kind's default action is one it allows."""

from lockflow.common.streams import (
    STREAM_ACTIONS,
    STREAM_FINDING_KINDS,
    STREAM_FINDINGS,
    counted,
    stream_finding_facts,
)


def test_every_stream_finding_kind_has_its_facts() -> None:
    assert set(STREAM_FINDINGS) == set(STREAM_FINDING_KINDS)


def test_each_default_action_is_allowed_and_every_action_is_used() -> None:
    for kind, facts in STREAM_FINDINGS.items():
        assert facts.default_action in facts.actions, kind
        assert set(facts.actions) <= set(STREAM_ACTIONS), kind
    used = {action for facts in STREAM_FINDINGS.values() for action in facts.actions}
    assert used == set(STREAM_ACTIONS)


def test_an_unknown_kind_gets_generic_words_instead_of_an_error() -> None:
    facts = stream_finding_facts("clock_skew")
    assert facts.label == "Clock skew"
    assert facts.default_action == "flag"


def test_a_count_reads_in_the_singular_for_one_and_the_plural_for_more() -> None:
    for kind, facts in STREAM_FINDINGS.items():
        assert counted(kind, 1) == facts.one and facts.one.split()[0] in ("a", "an"), kind
        assert counted(kind, 3) == f"3 {facts.words}", kind
