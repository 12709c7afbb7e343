"""Gate 1's contract of a stream: inferred from a sample, and checked when a person edits it."""

import pytest

from lockflow.common.errors import InvalidInput
from lockflow.common.stream_contract import check_contract, infer_contract


def _records(n: int) -> list[dict[str, object]]:
    return [
        {
            "id": f"o-{i}",
            "ts": f"2026-12-02T04:{i % 60:02d}:00Z",
            "amount": i * 1.5 if i % 2 else i,  # integers and floats: a number
            "status": ["new", "paid", "sent"][i % 3],
            "note": None if i % 4 == 0 else f"note {i}",
            **({"coupon": "X"} if i == 3 else {}),
        }
        for i in range(n)
    ]


def test_types_required_formats_enums_and_minimum_follow_the_sample() -> None:
    contract = infer_contract(_records(60), event_time_field="ts", key_field="id")
    props = contract["properties"]
    assert contract["type"] == "object" and contract["additionalProperties"] is False
    assert props["amount"] == {"type": "number", "minimum": 0}
    assert props["ts"] == {"type": "string", "format": "date-time"}
    assert props["status"] == {"type": "string", "enum": ["new", "paid", "sent"]}
    assert props["note"]["type"] == ["null", "string"] and "enum" not in props["note"]  # 45 distinct texts
    assert props["coupon"] == {"type": "string"}  # once: no enum from one value
    assert contract["required"] == ["id", "ts", "amount", "status"]  # note has nulls, coupon is mostly absent
    assert contract["x-lockflow"] == {
        "inferred_from_records": 60,
        "event_time_field": "ts",
        "key_field": "id",
    }
    # What was inferred is a contract the worker can check, and the sample satisfies it.
    assert check_contract(contract, event_time_field="ts", key_field="id") is contract


def test_a_small_sample_infers_no_enum_and_no_minimum() -> None:
    props = infer_contract(_records(12), event_time_field="ts")["properties"]
    assert props["status"] == {"type": "string"} and props["amount"] == {"type": "number"}


def test_the_event_time_and_key_fields_must_be_in_the_sample() -> None:
    with pytest.raises(InvalidInput, match="'when'"):
        infer_contract(_records(5), event_time_field="when")
    with pytest.raises(InvalidInput, match="'order_id'"):
        infer_contract(_records(5), event_time_field="ts", key_field="order_id")
    with pytest.raises(InvalidInput, match="no records"):
        infer_contract([], event_time_field="ts")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.update(type="array"), "must describe an object"),
        (lambda c: c["properties"].pop("ts"), "event-time field 'ts'"),
        (lambda c: c["properties"]["amount"].update(type="money"), "'type' must be one of"),
        (lambda c: c["properties"]["amount"].update(pattern="^x"), "does not check pattern"),
        (lambda c: c["properties"]["amount"].update(minimum=5, maximum=1), "minimum \\(5\\) is above"),
        (lambda c: c["properties"]["amount"].update(maximum="10"), "maximum must be a number"),
        (lambda c: c.update(required=["ghost"]), "no property for: ghost"),
        (lambda c: c["properties"]["status"].update(enum=[]), "non-empty list"),
        (lambda c: c.update(additionalProperties={"type": "string"}), "true or false"),
    ],
)
def test_an_edited_contract_the_worker_cannot_check_is_refused(edit, message) -> None:  # type: ignore[no-untyped-def]
    contract = infer_contract(_records(60), event_time_field="ts", key_field="id")
    edit(contract)
    with pytest.raises(InvalidInput, match=message):
        check_contract(contract, event_time_field="ts", key_field="id")
