"""The role matrices as data: every cell, the object-level rules, separation of duties, the docs."""

from pathlib import Path

import pytest

from lockflow.access.policy import (
    ENDPOINTS,
    GATES,
    Role,
    Scope,
    Verdict,
    endpoint_verdict,
    gate_verdict,
    is_public,
    matrix_markdown,
    object_verdict,
)
from lockflow.common.pipeline import Gate

ROOT = Path(__file__).resolve().parents[3]
READ_ONLY = {"viewer"}
# Written independently of the policy module: the intent of the issue, cell by cell.
EXPECTED_WRITERS = {"analyst", "approver"}


def _expected(method: str, route: str, role: Role) -> bool:
    if route in ("/healthz", "/readyz", "/metrics", "/auth/login", "/auth/refresh", "/.well-known/jwks.json"):
        return True
    if route in ("/auth/me", "/auth/logout", "/auth/password"):
        return True
    if route.startswith("/auth/users") or route.startswith("/audit"):
        return role is Role.ADMIN
    if method == "GET":
        return True
    return role.value in EXPECTED_WRITERS


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize(("method", "route"), list(ENDPOINTS))
def test_every_endpoint_cell(method: str, route: str, role: Role) -> None:
    allowed = endpoint_verdict(frozenset({role}), method, route) is Verdict.ALLOW
    assert allowed is _expected(method, route, role)


def test_public_routes_and_deny_by_default() -> None:
    assert {r for (m, r) in ENDPOINTS if is_public(m, r)} == {
        "/healthz",
        "/readyz",
        "/metrics",
        "/auth/login",
        "/auth/refresh",
        "/.well-known/jwks.json",
    }
    assert endpoint_verdict(frozenset(Role), "GET", "/not/in/the/matrix") is Verdict.FORBIDDEN
    assert endpoint_verdict(frozenset(), "GET", "/runs") is Verdict.FORBIDDEN


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("gate", list(Gate))
@pytest.mark.parametrize("relation", ["owner", "shared", "stranger"])
def test_every_gate_cell(gate: Gate, role: Role, relation: str) -> None:
    user = {"owner": "ana", "shared": "bob", "stranger": "eve"}[relation]
    verdict, reason = gate_verdict(
        roles=frozenset({role}),
        gate=gate,
        user=user,
        run_owner="ana",
        shared_with=frozenset({"bob"}),
        separation_of_duties=True,
    )
    if relation == "stranger":
        assert verdict is Verdict.NOT_FOUND  # another user's run is not revealed
    elif role is Role.VIEWER or role is Role.ADMIN:
        assert verdict is Verdict.FORBIDDEN and "needs the role" in reason
    elif gate is Gate.ACTION_SELECTION and role is Role.ANALYST:
        assert verdict is Verdict.FORBIDDEN
    elif gate is Gate.ACTION_SELECTION and relation == "owner":
        assert verdict is Verdict.FORBIDDEN and "started a run" in reason  # separation of duties
    else:
        assert verdict is Verdict.ALLOW


def test_separation_of_duties_can_be_switched_off() -> None:
    verdict, _ = gate_verdict(
        roles=frozenset({Role.APPROVER}),
        gate=Gate.ACTION_SELECTION,
        user="ana",
        run_owner="ana",
        shared_with=frozenset(),
        separation_of_duties=False,
    )
    assert verdict is Verdict.ALLOW
    assert set(GATES) == set(Gate)


@pytest.mark.parametrize(
    ("scope", "user", "expected"),
    [
        (Scope.VISIBLE, "ana", Verdict.ALLOW),
        (Scope.VISIBLE, "bob", Verdict.ALLOW),
        (Scope.VISIBLE, "eve", Verdict.NOT_FOUND),
        (Scope.OWNER, "ana", Verdict.ALLOW),
        (Scope.OWNER, "bob", Verdict.FORBIDDEN),
        (Scope.OWNER, "eve", Verdict.NOT_FOUND),
        (Scope.LISTED, "eve", Verdict.ALLOW),
    ],
)
def test_object_level_rules(scope: Scope, user: str, expected: Verdict) -> None:
    assert object_verdict(scope=scope, user=user, owner="ana", shared_with=frozenset({"bob"})) is expected


def test_the_docs_show_the_matrix_as_the_code_has_it() -> None:
    assert matrix_markdown() in (ROOT / "docs" / "architecture.md").read_text()
