"""A stream through the orchestrator: gate 1 approves the contract (StartStream), the first window opens
gate 2, a policy version is recorded (ApplyStreamPolicy), and later windows reopen it, without stopping
the stream, for a new kind of finding, a violation rate or a score drop: each once, not at every window."""

from pathlib import Path
from typing import Any

import pytest
from streams_support import STREAM_CONFIG, assessed, outbox, settings, stream_at_gate_1, window

from lockflow.common.db import Database
from lockflow.common.events import ApplyStreamPolicy, DecisionRequested, RunAborted, StartStream, StopStream
from lockflow.common.pipeline import GateClosed, InvalidDecision
from lockflow.orchestrator import service
from lockflow.orchestrator.alerting import AlertRules
from lockflow.orchestrator.alerts import raise_for_event
from lockflow.runstore import intake, views
from lockflow.runstore.streams import policies_of, windows_page
from lockflow.sources.kafka import opened_registry_auth, opened_security
from lockflow.sources.registry import secret_box

RULES = [
    {"kind": "contract_violation", "action": "quarantine"},
    {"kind": "null_value", "action": "repair_constant", "field": "amount", "constant": 0},
]


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / 'o.db'}")


def _open(db: Database, run_id: str) -> dict[str, Any]:
    (request,) = views.list_decision_requests(db, run_id=run_id)
    return request


def _decide(db: Database, run_id: str, option: str, params: dict[str, Any] | None = None) -> None:
    request = _open(db, run_id)
    intake.record_decision(
        db, request_id=request["id"], option=option, params=params or {}, rationale="", decided_by="pat"
    )
    service.handle_event(db, outbox(db)[-1])


def _feed(db: Database, result: Any) -> None:
    event = assessed(result)
    service.handle_event(db, event)
    raise_for_event(db, event, AlertRules())


def _started(db: Database, tmp_path: Path) -> str:
    run_id = stream_at_gate_1(db, tmp_path)
    request = _open(db, run_id)
    assert request["gate"] == "source_review"
    assert [o["name"] for o in request["options"]] == ["approve", "resample", "abort"]
    assert request["context"]["contract"]["properties"]["amount"] == {"type": "integer", "minimum": 0}
    edited = dict(request["context"]["contract"])
    edited["properties"] = {
        **edited["properties"],
        "amount": {"type": "integer", "minimum": 0, "maximum": 500},
    }
    _decide(db, run_id, "approve", {"contract": edited, "unapproved_mode": "pass"})
    return run_id


def test_approving_the_contract_starts_the_stream_with_its_spec_and_the_password_sealed(
    db: Database, tmp_path: Path
) -> None:
    run_id = _started(db, tmp_path)
    start = outbox(db)[-1]
    assert isinstance(start, StartStream) and start.run_id == run_id
    spec = start.payload.spec
    assert (spec.stream_id, spec.topic, spec.window_seconds, spec.grace_seconds) == (run_id, "orders", 60, 5)
    assert spec.unapproved_mode == "pass" and spec.contract["properties"]["amount"]["maximum"] == 500
    assert spec.consumer_group == f"lockflow.stream.{spec.source_id}"
    assert "s3cret" not in start.model_dump_json()
    security = opened_security(spec.security, secret_box(settings(tmp_path)))
    assert security.sasl_password is not None and security.sasl_password.get_secret_value() == "s3cret"
    assert views.list_decision_requests(db, run_id=run_id) == []


def test_the_schema_registry_password_travels_sealed_beside_the_kafka_one(
    db: Database, tmp_path: Path
) -> None:
    config = {
        **STREAM_CONFIG,
        "format": "avro",
        "schema_registry_url": "https://registry.example/apis/ccompat/v7",
        "schema_registry_username": "key-1",
        "schema_registry_password": "r3gistry",
    }
    run_id = stream_at_gate_1(db, tmp_path, config=config)
    _decide(db, run_id, "approve", {"contract": _open(db, run_id)["context"]["contract"]})
    start = outbox(db)[-1]
    assert isinstance(start, StartStream)
    spec = start.payload.spec
    assert spec.schema_registry_username == "key-1" and "r3gistry" not in start.model_dump_json()
    box = secret_box(settings(tmp_path))
    assert opened_registry_auth(spec.schema_registry_username, spec.security, box) == ("key-1", "r3gistry")
    assert opened_security(spec.security, box).sasl_password is not None  # the Kafka one still opens


def test_an_edited_contract_the_worker_cannot_check_is_refused_at_gate_1(
    db: Database, tmp_path: Path
) -> None:
    run_id = stream_at_gate_1(db, tmp_path)
    request = _open(db, run_id)
    bad = {**request["context"]["contract"], "properties": {"amount": {"type": "integer"}}}
    with pytest.raises(InvalidDecision, match="event-time field 'ts'"):
        intake.record_decision(
            db,
            request_id=request["id"],
            option="approve",
            params={"contract": bad},
            rationale="",
            decided_by="pat",
        )
    with pytest.raises(InvalidDecision, match="unknown option 'accept'"):
        intake.record_decision(
            db, request_id=request["id"], option="accept", params={}, rationale="", decided_by="pat"
        )


def test_the_first_window_opens_gate_2_and_a_policy_version_is_applied(db: Database, tmp_path: Path) -> None:
    run_id = _started(db, tmp_path)
    _feed(db, window(run_id, 0, findings={"contract_violation": 3, "null_value": 2}))
    request = _open(db, run_id)
    assert request["gate"] == "quality_review"
    assert [o["name"] for o in request["options"]] == ["apply_policy", "keep_policy", "stop"]
    kinds = {k["kind"]: k for k in request["context"]["kinds"]}
    assert request["context"]["required_kinds"] == ["contract_violation", "null_value"]
    assert kinds["null_value"]["actions"] == ["quarantine", "repair_constant", "repair_last_median", "flag"]
    assert kinds["contract_violation"]["records"] == 3 and not kinds["late_record"]["seen"]
    # The same window again (a worker restarted) is stored once and opens nothing more.
    _feed(db, window(run_id, 0, findings={"contract_violation": 3, "null_value": 2}))
    assert windows_page(db, stream_id=run_id)[1] == 1
    with pytest.raises(InvalidDecision, match="no policy is in force yet"):
        intake.record_decision(
            db, request_id=request["id"], option="keep_policy", params={}, rationale="", decided_by="pat"
        )
    with pytest.raises(InvalidDecision, match="missing: null_value"):
        intake.record_decision(
            db,
            request_id=request["id"],
            option="apply_policy",
            params={"rules": RULES[:1]},
            rationale="",
            decided_by="pat",
        )
    with pytest.raises(InvalidDecision, match="does not apply to late records"):
        intake.record_decision(
            db,
            request_id=request["id"],
            option="apply_policy",
            params={"rules": [*RULES, {"kind": "late_record", "action": "repair_constant"}]},
            rationale="",
            decided_by="pat",
        )
    with pytest.raises(InvalidDecision, match="'price' is not a field"):
        intake.record_decision(
            db,
            request_id=request["id"],
            option="apply_policy",
            params={"rules": [*RULES[:1], {**RULES[1], "field": "price"}]},
            rationale="",
            decided_by="pat",
        )
    _decide(db, run_id, "apply_policy", {"rules": RULES, "reopen_violation_rate": 0.1})
    applied = outbox(db)[-1]
    assert isinstance(applied, ApplyStreamPolicy)
    assert applied.payload.policy.version == 1 and applied.payload.policy.approved_by == "pat"
    assert applied.payload.policy.reopen_violation_rate == 0.1
    assert [p["version"] for p in policies_of(db, stream_id=run_id)] == [1]
    with pytest.raises(GateClosed):
        intake.record_decision(
            db,
            request_id=request["id"],
            option="apply_policy",
            params={"rules": RULES},
            rationale="",
            decided_by="pat",
        )


def _with_policy(db: Database, tmp_path: Path) -> str:
    run_id = _started(db, tmp_path)
    _feed(db, window(run_id, 0, findings={"contract_violation": 3, "null_value": 2}))
    _decide(
        db, run_id, "apply_policy", {"rules": RULES, "reopen_violation_rate": 0.1, "reopen_score_drop": 10}
    )
    return run_id


def test_a_new_kind_reopens_gate_2_with_an_alert_and_the_stream_goes_on(db: Database, tmp_path: Path) -> None:
    run_id = _with_policy(db, tmp_path)
    _feed(db, window(run_id, 1, findings={"contract_violation": 2}, policy_version=1))
    assert views.list_decision_requests(db, run_id=run_id) == []  # covered by the policy, rate 2%
    before = len(outbox(db))
    _feed(db, window(run_id, 2, findings={"duplicate_key": 4}, policy_version=1))
    request = _open(db, run_id)
    assert request["context"]["reasons"] == ["4 repeated keys, which policy v1 has no rule for"]
    assert request["context"]["required_kinds"] == ["contract_violation", "null_value", "duplicate_key"]
    asked = outbox(db)[before:]
    assert [type(e) for e in asked] == [DecisionRequested]  # no StopStream: the stream goes on
    (alert,) = [a for a in views_alerts(db) if a["kind"] == "stream_gate_reopened"]
    assert alert["run_id"] == run_id and "repeated keys" in alert["detail"] and "orders" in alert["title"]
    _decide(db, run_id, "keep_policy")
    # Decided on: the same kind again reopens nothing.
    _feed(db, window(run_id, 3, findings={"duplicate_key": 1}, policy_version=1))
    assert views.list_decision_requests(db, run_id=run_id) == []
    (page, total) = windows_page(db, stream_id=run_id)
    assert total == 4 and page[0]["window_start"].startswith("2026-12-02T04:03")
    assert [w["reopened"] is not None for w in page] == [False, True, False, False]


def test_a_violation_rate_above_the_threshold_reopens_once_per_episode(db: Database, tmp_path: Path) -> None:
    run_id = _with_policy(db, tmp_path)
    _feed(db, window(run_id, 1, findings={"contract_violation": 20}, policy_version=1))
    request = _open(db, run_id)
    assert request["context"]["reasons"] == [
        "contract violations in 20.0% of records, above the policy's 10.0%"
    ]
    _decide(db, run_id, "keep_policy")
    _feed(db, window(run_id, 2, findings={"contract_violation": 30}, policy_version=1))
    assert views.list_decision_requests(db, run_id=run_id) == []  # the same episode, already decided
    _feed(db, window(run_id, 3, findings={"contract_violation": 1}, policy_version=1))
    _feed(db, window(run_id, 4, findings={"contract_violation": 25}, policy_version=1))
    assert _open(db, run_id)["context"]["reasons"][0].startswith("contract violations in 25.0%")


def test_a_score_drop_reopens_and_a_new_policy_is_version_2(db: Database, tmp_path: Path) -> None:
    run_id = _with_policy(db, tmp_path)
    for i in (1, 2, 3):
        _feed(db, window(run_id, i, score=96.0, policy_version=1))
    _feed(db, window(run_id, 4, score=80.0, policy_version=1))
    reasons = _open(db, run_id)["context"]["reasons"]
    assert len(reasons) == 1 and reasons[0].startswith("quality score 80.0, ")
    _decide(db, run_id, "apply_policy", {"rules": [*RULES, {"kind": "out_of_range", "action": "flag"}]})
    assert outbox(db)[-1].payload.policy.version == 2  # type: ignore[attr-defined]
    assert [p["version"] for p in policies_of(db, stream_id=run_id)] == [2, 1]


def test_stop_at_gate_2_stops_the_stream_and_ends_the_run(db: Database, tmp_path: Path) -> None:
    run_id = _started(db, tmp_path)
    _feed(db, window(run_id, 0))
    _decide(db, run_id, "stop")
    stop, ended = outbox(db)[-2:]
    assert isinstance(stop, StopStream) and stop.payload.stream_id == run_id
    assert isinstance(ended, RunAborted) and "stream stopped at quality_review by pat" in ended.payload.reason
    _feed(db, window(run_id, 1))  # a window closing after the stop changes nothing
    assert windows_page(db, stream_id=run_id)[1] == 1


def views_alerts(db: Database) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from lockflow.common.db import AlertRow

    with db.transaction() as session:
        return [
            {"kind": a.kind, "run_id": a.run_id, "title": a.title, "detail": a.detail}
            for a in session.scalars(select(AlertRow))
        ]
