"""The committed schemas/ must be exactly what the pydantic models export."""

import json
from pathlib import Path

import jsonschema

from lockflow.common.events import RunRequested, RunRequestedPayload, serialize_event
from lockflow.common.models import Goal, SourceSpec
from lockflow.common.schema_export import render_all

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"


def test_committed_schemas_match_the_models() -> None:
    expected = render_all()
    for name, text in expected.items():
        path = SCHEMAS / name
        assert path.exists(), f"{name} missing: run python -m lockflow.common.schema_export"
        assert path.read_text() == text, f"{name} drifted from the models: re-export and review the change"
    committed = {f"events/{p.name}" for p in (SCHEMAS / "events").glob("*.json")}
    assert committed == {n for n in expected if n.startswith("events/")}


def test_a_produced_event_validates_against_its_exported_schema() -> None:
    event = RunRequested(
        run_id="r-1",
        payload=RunRequestedPayload(
            name="n", source=SourceSpec(path="/data/a.csv"), goal=Goal(target="revenue"), requested_by="ana"
        ),
    )
    schema = json.loads((SCHEMAS / "events" / "RunRequested.v1.json").read_text())
    jsonschema.validate(json.loads(serialize_event(event)), schema)


def test_a_schema_rejects_an_event_missing_a_field() -> None:
    schema = json.loads((SCHEMAS / "events" / "RunRequested.v1.json").read_text())
    bad = {"type": "RunRequested", "run_id": "r", "payload": {"name": "n"}}
    try:
        jsonschema.validate(bad, schema)
    except jsonschema.ValidationError:
        return
    raise AssertionError("a payload without source/goal must not validate")
