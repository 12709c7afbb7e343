"""Event envelope rules: validation on produce and consume, causation, routing."""

import pytest

from lockflow.common.bus import topic_for
from lockflow.common.errors import InvalidEvent
from lockflow.common.events import (
    AssessQuality,
    AssessQualityPayload,
    RunRequested,
    RunRequestedPayload,
    parse_event,
    serialize_event,
)
from lockflow.common.models import DatasetRef, Goal, SourceSpec


def _requested() -> RunRequested:
    return RunRequested(
        run_id="run-1",
        correlation_id="run-1",
        payload=RunRequestedPayload(
            name="n", source=SourceSpec(path="a.csv"), goal=Goal(target="y"), requested_by="u"
        ),
    )


def test_round_trip_keeps_every_field() -> None:
    event = _requested()
    assert parse_event(serialize_event(event)) == event


def test_unknown_type_is_refused_with_reason() -> None:
    with pytest.raises(InvalidEvent, match="type"):
        parse_event(b'{"type": "Nope", "run_id": "x", "payload": {}}')


def test_extra_field_is_refused() -> None:
    raw = serialize_event(_requested()).replace(b'"payload":{', b'"payload":{"surprise":1,')
    with pytest.raises(InvalidEvent, match="surprise"):
        parse_event(raw)


def test_not_json_is_refused() -> None:
    with pytest.raises(InvalidEvent):
        parse_event(b"\x00\x01 not json")


def test_follow_sets_causation_and_correlation() -> None:
    cause = _requested()
    ref = DatasetRef(uri="file:///x.parquet", fingerprint="f" * 64, rows=1, columns=[])
    command = cause.follow(
        AssessQuality, AssessQualityPayload(attempt_id="a", dataset=ref), producer="orchestrator"
    )
    assert command.run_id == cause.run_id
    assert command.causation_id == cause.event_id
    assert command.correlation_id == "run-1"
    assert command.event_id != cause.event_id


def test_commands_route_to_their_stage_and_facts_to_events() -> None:
    ref = DatasetRef(uri="file:///x.parquet", fingerprint="f" * 64, rows=1, columns=[])
    command = AssessQuality(run_id="r", payload=AssessQualityPayload(attempt_id="a", dataset=ref))
    assert topic_for(command) == "lockflow.commands.quality"
    assert topic_for(_requested()) == "lockflow.events"


def test_event_ids_are_time_ordered_uuid7() -> None:
    first, second = _requested(), _requested()
    assert first.event_id[14] == "7"
    assert first.event_id < second.event_id
