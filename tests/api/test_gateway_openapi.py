"""The published OpenAPI says what the gateway does: the cases Schemathesis found, one plain test each."""

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from fastapi.testclient import TestClient

from lockflow.auth.testing import sign_in
from lockflow.embedded import create_app
from lockflow.gateway.testing import embedded_settings, served

NULL = {"type": "null"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(embedded_settings(tmp_path, start_workers=False))) as test_client:
        yield test_client


@pytest.fixture
def schema(client: TestClient) -> dict[str, Any]:
    answer = client.get("/openapi.json")
    assert answer.status_code == 200
    return answer.json()  # type: ignore[no-any-return]


def _operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            yield method.upper(), path, operation


def test_no_parameter_and_no_form_field_is_documented_as_null(schema: dict[str, Any]) -> None:
    """A header, query or path value, or a form field, cannot be JSON null: `Last-Event-ID: null` got 422."""
    for method, path, operation in _operations(schema):
        for parameter in operation.get("parameters", []):
            assert NULL not in parameter["schema"].get("anyOf", []), (method, path, parameter)
        for media, content in operation.get("requestBody", {}).get("content", {}).items():
            if media == "multipart/form-data":
                name = content["schema"]["$ref"].rsplit("/", 1)[-1]
                for field, spec in schema["components"]["schemas"][name]["properties"].items():
                    assert NULL not in spec.get("anyOf", []), (method, path, field)
    events = next(op for m, p, op in _operations(schema) if (m, p) == ("GET", "/runs/{run_id}/events"))
    header = next(p for p in events["parameters"] if p["name"] == "last-event-id")
    assert header["schema"]["type"] == "integer" and header["schema"]["minimum"] == 0


def test_the_event_stream_is_documented_and_served_as_text_event_stream(
    client: TestClient, schema: dict[str, Any], tmp_path: Path
) -> None:
    """Schemathesis got `text/event-stream` where the schema said application/json."""
    ok = schema["paths"]["/runs/{run_id}/events"]["get"]["responses"]["200"]
    assert list(ok["content"]) == ["text/event-stream"]
    headers = sign_in(client, "ana", ["analyst"])
    csv = "region,spend,revenue\n" + "".join(f"a,{i},{3 * i}\n" for i in range(30))
    run = client.post(
        "/runs/upload",
        files={"file": ("s.csv", csv.encode(), "text/csv")},
        data={"target": "revenue"},
        headers=headers,
    )
    assert run.status_code == 201, run.text
    # Served for real (a test client would wait for the endless stream to end): only the head is read.
    url = f"/runs/{run.json()['id']}/events"
    with (
        served(client.app) as (base, _port),  # type: ignore[arg-type]
        httpx.stream("GET", base + url, headers=headers, timeout=10) as answer,
    ):
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        first = _first_event(answer.iter_lines())
    # Each event is checked against the documented one (Schemathesis: "SSE event violates schema").
    jsonschema.validate(first, ok["content"]["text/event-stream"]["schema"])
    assert first["id"] == "1" and first["event"] == "RunRequested" and json.loads(first["data"])["seq"] == 1


def _first_event(lines: Iterator[str]) -> dict[str, str]:
    """The first Server-Sent Event of a stream as its fields (comments such as pings skipped)."""
    event: dict[str, str] = {}
    for line in lines:
        if not line and event:
            return event
        if line and not line.startswith(":"):
            name, _, value = line.partition(":")
            event[name] = value.removeprefix(" ")
    raise AssertionError("the stream ended before its first event")


def test_every_link_names_an_operation_and_parameters_it_has(schema: dict[str, Any]) -> None:
    """The links the stateful phase follows: each to a documented operation, each parameter one of its own."""
    by_id = {op["operationId"]: op for _m, _p, op in _operations(schema)}
    links = 0
    for method, path, operation in _operations(schema):
        for status, response in operation["responses"].items():
            for name, link in response.get("links", {}).items():
                links += 1
                target = by_id[link["operationId"]]
                own = {p["name"] for p in target.get("parameters", [])}
                for parameter, expression in link.get("parameters", {}).items():
                    assert parameter in own, (method, path, status, name)
                    assert re.match(r"^\$(response\.body#/|request\.path\.)", expression), expression
                if "requestBody" in link:
                    assert "requestBody" in target, (method, path, status, name)
    assert links >= 40
    created = schema["paths"]["/runs"]["post"]["responses"]["201"]["links"]["GET /runs/{run_id}"]
    assert created["parameters"] == {"run_id": "$response.body#/id"}
    decided = schema["paths"]["/decisions"]["get"]["responses"]["200"]["links"][
        "POST /decisions/{request_id}"
    ]
    assert decided["parameters"] == {"request_id": "$response.body#/0/id"}


@pytest.mark.parametrize(
    ("username", "status"),
    [("Ana.B@x-1", 201), ("x" * 64, 201), ("_[Õ7", 422), ("a b", 422), (" ana", 422), ("x" * 65, 422)],
)
def test_a_new_username_is_accepted_exactly_when_the_documented_pattern_matches(
    client: TestClient, schema: dict[str, Any], username: str, status: int
) -> None:
    """Schemathesis sent a schema-valid `_[Õ7...` and got 422: the schema now states the service's rule."""
    pattern = schema["components"]["schemas"]["UserCreate"]["properties"]["username"]["pattern"]
    assert (re.fullmatch(pattern.strip("^$"), username) is not None) == (status == 201)
    admin = sign_in(client, "root", ["admin"])
    body = {"username": username, "password": "correct horse battery staple", "roles": ["viewer"]}
    answer = client.post("/auth/users", json=body, headers=admin)
    assert answer.status_code == status, answer.text
    if status == 201:
        assert answer.json()["username"] == username.lower()


@pytest.mark.parametrize(("length", "status"), [(12, 201), (128, 201), (129, 422), (1024, 422)])
def test_a_new_password_is_accepted_exactly_within_the_documented_lengths(
    client: TestClient, schema: dict[str, Any], length: int, status: int
) -> None:
    """Schemathesis sent a long password the schema allowed (maxLength 1024): the service said 422."""
    documented = schema["components"]["schemas"]["UserCreate"]["properties"]["password"]
    assert (documented["minLength"] <= length <= documented["maxLength"]) == (status == 201)
    admin = sign_in(client, "root", ["admin"])
    body = {"username": f"user{length}", "password": "p" * length, "roles": ["viewer"]}
    answer = client.post("/auth/users", json=body, headers=admin)
    assert answer.status_code == status, answer.text
    change = schema["components"]["schemas"]["PasswordChange"]["properties"]["new_password"]
    assert change["maxLength"] == documented["maxLength"]


def _valid(schema: dict[str, Any], name: str, body: dict[str, Any]) -> bool:
    validator = jsonschema.Draft202012Validator({**schema, "$ref": f"#/components/schemas/{name}"})
    return validator.is_valid(body)


@pytest.mark.parametrize(
    "config",
    [
        {"type": "s3", "config": {}},
        {"type": "file", "config": {"path": "a.csv", "sheet1": "x"}},
        {"type": "api", "config": {"path": "a.csv"}},
        {"type": "database", "config": {"table": "t"}},
    ],
)
def test_a_source_config_the_service_refuses_for_its_fields_is_not_schema_valid(
    client: TestClient, schema: dict[str, Any], config: dict[str, Any]
) -> None:
    """Schemathesis sent `{"type": "s3", "config": {}}`, schema-valid then: each type's fields are shown."""
    body = {"name": "src", **config}
    assert not _valid(schema, "SourceCreate", body)
    answer = client.post("/sources", json=body, headers=sign_in(client, "ana", ["analyst"]))
    assert answer.status_code == 422 and answer.json()["errors"], answer.text


def test_a_source_config_with_its_types_fields_is_schema_valid(
    client: TestClient, schema: dict[str, Any]
) -> None:
    """The per-type branches admit the configs the service takes (here a file under the allowed folder)."""
    data = Path(client.app.state.settings.allowed_dirs[0])  # type: ignore[attr-defined]
    (data / "a.csv").write_text("x,y\n1,2\n")
    body = {"name": "src", "type": "file", "config": {"path": str(data / "a.csv"), "header": True}}
    assert _valid(schema, "SourceCreate", body)
    assert _valid(schema, "SourceCreate", {"name": "b", "type": "s3", "config": {"bucket": "my-bucket"}})
    answer = client.post("/sources", json=body, headers=sign_in(client, "ana", ["analyst"]))
    assert answer.status_code == 201, answer.text


@pytest.mark.parametrize(
    ("name", "status"),
    [("a" * 64, 201), ("Sales_2024.v-1", 201), ("0" * 80, 422), ("a" * 65, 422), ("-x", 422), ("a/b", 422)],
)
def test_a_source_name_is_accepted_exactly_when_the_documented_pattern_matches(
    client: TestClient, schema: dict[str, Any], name: str, status: int
) -> None:
    """Schemathesis sent an 80-character name the schema allowed (maxLength 200): the registry said 422."""
    data = Path(client.app.state.settings.allowed_dirs[0])  # type: ignore[attr-defined]
    (data / "a.csv").write_text("x,y\n1,2\n")
    body = {"name": name, "type": "file", "config": {"path": str(data / "a.csv")}}
    assert _valid(schema, "SourceCreate", body) == (status == 201)
    assert _valid(schema, "SourceUpdate", {"name": name}) == (status == 201)
    answer = client.post("/sources", json=body, headers=sign_in(client, "ana", ["analyst"]))
    assert answer.status_code == status, answer.text


def test_a_decision_option_outside_every_gates_options_is_not_schema_valid(schema: dict[str, Any]) -> None:
    """Schemathesis sent option `C\\x80ú...` (schema-valid then); the service knows each gate's options."""
    from lockflow.common.pipeline import GATES, STREAM_GATES

    assert not _valid(schema, "DecisionSubmit", {"option": "C\x80ú\x1e¦6K0"})
    # And `gate: "LPT1"`: the gates are published too (null, or none, still means whichever is open).
    assert not _valid(schema, "DecisionSubmit", {"option": "approve", "gate": "LPT1"})
    assert _valid(schema, "DecisionSubmit", {"option": "approve", "gate": None})
    for gate in [*GATES.values(), *STREAM_GATES.values()]:  # a stream's gates take their own options
        for option in gate.options:
            body = {"option": option.name, "gate": gate.gate.value}
            assert _valid(schema, "DecisionSubmit", body), body


@pytest.mark.parametrize("path", ["q\x00.csv", "~no-such-user-here/a.csv"])
def test_a_source_path_the_os_cannot_resolve_is_a_422_not_a_500(client: TestClient, path: str) -> None:
    """Schemathesis registered a file source whose path held a NUL byte: 500 (ValueError) before."""
    ana = sign_in(client, "ana", ["analyst"])
    body = {"name": "nul", "type": "file", "config": {"path": path}}
    created = client.post("/sources", json=body, headers=ana)
    assert created.status_code == 422 and "not a usable path" in created.json()["detail"], created.text
    data = Path(client.app.state.settings.allowed_dirs[0])  # type: ignore[attr-defined]
    (data / "a.csv").write_text("x,y\n1,2\n")
    good = {"name": "good", "type": "file", "config": {"path": str(data / "a.csv")}}
    assert client.post("/sources", json=good, headers=ana).status_code == 201
    patched = client.patch("/sources/good", json={"config": {"path": path}}, headers=ana)
    assert patched.status_code == 422, patched.text
    run = client.post("/runs", json={"path": path}, headers=ana)
    assert run.status_code == 422, run.text


def test_every_goal_direction_the_api_accepts_synonyms_included_is_in_the_openapi(
    schema: dict[str, Any],
) -> None:
    """`"direction": "max"` was accepted (stored as increase) while the OpenAPI listed increase|decrease."""
    from typing import get_args

    from pydantic import ValidationError

    from lockflow.common.models import DIRECTION_SYNONYMS, Direction, Goal

    accepted = [*get_args(Direction), *DIRECTION_SYNONYMS]
    documented = schema["components"]["schemas"]["Goal-Input"]["properties"]["direction"]["enum"]
    assert sorted(documented) == sorted(accepted)
    for direction in accepted:
        assert Goal(direction=direction).direction in get_args(Direction)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Goal(direction="sideways")  # type: ignore[arg-type]
    # Answers carry the stored direction only.
    stored = schema["components"]["schemas"]["Goal-Output"]["properties"]["direction"]["enum"]
    assert sorted(stored) == sorted(get_args(Direction))
    for name, body in schema["components"]["schemas"].items():
        if "direction" in body.get("properties", {}) and name.startswith("Goal"):
            assert set(body["properties"]["direction"]["enum"]) <= set(accepted), name
