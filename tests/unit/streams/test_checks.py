"""The stream worker's pure parts: window assignment, per-record checks, the policy's verdict, the score."""

from datetime import UTC, datetime

from lockflow.common.streams import StreamPolicy, StreamPolicyRule
from lockflow.streams.checks import (
    Contract,
    check_record,
    closable_until,
    decide,
    event_time_ms,
    idle_watermark,
    is_idle,
    is_late,
    mark_duplicates,
    median,
    percentile,
    quality_score,
    window_start,
)

CONTRACT = Contract(
    {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "ts": {"type": "integer"},
            "amount": {"type": "number", "minimum": 0, "maximum": 100},
            "country": {"type": "string", "enum": ["DE", "FR"]},
        },
        "required": ["id", "ts", "amount"],
    }
)


def _check(raw: bytes):  # type: ignore[no-untyped-def]
    return check_record(
        raw, contract=CONTRACT, event_time_field="ts", key_field="id", message_key=None, fallback_ms=7
    )


def _policy(*rules: StreamPolicyRule) -> StreamPolicy:
    return StreamPolicy(
        stream_id="s", version=3, rules=list(rules), approved_by="a", approved_at=datetime.now(UTC)
    )


def test_a_record_falls_in_the_tumbling_window_of_its_event_time() -> None:
    assert window_start(12_345, 1000) == 12_000
    assert window_start(12_000, 1000) == 12_000
    assert window_start(11_999, 1000) == 11_000


def test_a_window_closes_once_the_watermark_passes_its_end_by_the_grace() -> None:
    assert closable_until(15_500, grace_ms=2000) == 13_500
    assert is_late(12_999, window_ms=1000, closed_through_ms=13_000)
    assert not is_late(13_000, window_ms=1000, closed_through_ms=13_000)


def test_an_idle_stream_moves_its_watermark_past_every_open_window() -> None:
    watermark = idle_watermark([12_000, 14_000, 13_000], window_ms=1000, grace_ms=2000)
    assert watermark == 17_000
    assert watermark is not None
    limit = window_start(closable_until(watermark, grace_ms=2000), 1000)
    assert all(start + 1000 <= limit for start in (12_000, 13_000, 14_000))  # every open window closes
    assert is_late(14_999, window_ms=1000, closed_through_ms=limit)  # a record coming later for it: late
    assert not is_late(15_000, window_ms=1000, closed_through_ms=limit)
    assert idle_watermark([], window_ms=1000, grace_ms=2000) is None  # nothing open: nothing moves


def test_a_stream_is_idle_once_no_record_came_for_the_idle_close_time() -> None:
    assert not is_idle(101.9, 100.0, idle_close_ms=2000)
    assert is_idle(102.0, 100.0, idle_close_ms=2000)


def test_event_times_are_read_as_iso_text_or_epoch_seconds_or_milliseconds() -> None:
    assert event_time_ms(1_700_000_000) == 1_700_000_000_000
    assert event_time_ms(1_700_000_000_123) == 1_700_000_000_123
    assert event_time_ms("2023-11-14T22:13:20Z") == 1_700_000_000_000
    assert event_time_ms("soon") is None and event_time_ms(True) is None and event_time_ms(None) is None


def test_each_kind_of_finding_is_named_with_its_field() -> None:
    assert _check(b'{"id": "a", "ts": 1, "amount": 5, "country": "DE"}').findings == []
    kinds = {
        (f.kind, f.field) for f in _check(b'{"id": "a", "ts": 1, "amount": "x", "country": "XX"}').findings
    }
    assert kinds == {("type_violation", "amount"), ("contract_violation", "country")}
    kinds = {(f.kind, f.field) for f in _check(b'{"id": "a", "ts": 1, "amount": 500}').findings}
    assert kinds == {("out_of_range", "amount")}
    kinds = {(f.kind, f.field) for f in _check(b'{"id": "a", "ts": 1, "amount": null}').findings}
    assert kinds == {("null_value", "amount")}
    malformed = _check(b"{oops")
    assert [f.kind for f in malformed.findings] == ["malformed"] and malformed.event_ms == 7
    assert [f.kind for f in _check(b"[1]").findings] == ["malformed"]


def test_a_repeated_key_is_a_duplicate_after_its_first_arrival() -> None:
    records = [_check(b'{"id": "a", "ts": 1, "amount": 1}') for _ in range(3)]
    mark_duplicates(records)
    assert [len(r.findings) for r in records] == [0, 1, 1]


def test_quarantine_wins_over_a_repair_and_a_drop() -> None:
    record = _check(b'{"id": "a", "ts": 1, "amount": 500, "country": "XX"}')
    verdict = decide(
        record,
        policy=_policy(StreamPolicyRule(kind="out_of_range", action="repair_constant", constant=0)),
        last_medians={},
    )
    assert verdict.route == "quarantine" and verdict.reasons == ["contract_violation:country"]


def test_repairs_write_the_constant_or_the_last_windows_median() -> None:
    record = _check(b'{"id": "a", "ts": 1, "amount": 500}')
    constant = decide(
        record,
        policy=_policy(StreamPolicyRule(kind="out_of_range", action="repair_constant", constant=100)),
        last_medians={},
    )
    assert (constant.route, constant.value["amount"], constant.repaired) == ("clean", 100, True)  # type: ignore[index]
    last = decide(
        record,
        policy=_policy(StreamPolicyRule(kind="out_of_range", action="repair_last_median")),
        last_medians={"amount": 42.0},
    )
    assert last.value["amount"] == 42.0 and last.flags == ["repaired:out_of_range:amount"]  # type: ignore[index]
    none_yet = decide(
        record,
        policy=_policy(StreamPolicyRule(kind="out_of_range", action="repair_last_median")),
        last_medians={},
    )
    assert none_yet.route == "quarantine"
    assert record.value["amount"] == 500  # type: ignore[index]


def test_a_field_rule_comes_before_the_kinds_rule_and_a_missing_rule_takes_the_default() -> None:
    record = _check(b'{"id": "a", "ts": 1, "amount": 500}')
    policy = _policy(
        StreamPolicyRule(kind="out_of_range", action="quarantine"),
        StreamPolicyRule(kind="out_of_range", action="flag", field="amount"),
    )
    assert decide(record, policy=policy, last_medians={}).flags == ["out_of_range:amount"]
    assert decide(record, policy=_policy(), last_medians={}).flags == ["out_of_range:amount"]  # default: flag
    duplicate = _check(b'{"id": "a", "ts": 1, "amount": 5}')
    mark_duplicates([_check(b'{"id": "a", "ts": 1, "amount": 5}'), duplicate])
    assert decide(duplicate, policy=_policy(), last_medians={}).route == "drop"


def test_the_score_falls_with_each_kinds_weighted_share_of_records() -> None:
    assert quality_score(0, {}) == 100.0
    assert quality_score(10, {}) == 100.0
    assert quality_score(10, {"malformed": 1}) == 90.0
    assert quality_score(10, {"null_value": 2}) == 90.0
    assert quality_score(4, {"malformed": 4, "type_violation": 4}) == 0.0


def test_medians_and_percentiles() -> None:
    assert median([3, 1, 2]) == 2 and median([1, 2, 3, 4]) == 2.5 and median([]) is None
    assert percentile([float(i) for i in range(1, 101)], 99) == 99.0 and percentile([], 50) is None
