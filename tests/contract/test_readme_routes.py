"""The README's route table is the OpenAPI's: every route, who may call it, what it does."""

import runpy
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ROUTES = runpy.run_path(str(ROOT / "scripts" / "readme_routes.py"))


def test_the_readme_lists_every_route_of_the_openapi_as_generated() -> None:
    document: dict[str, Any] = ROUTES["openapi_document"]()
    expected = ROUTES["routes_table"](document)
    held = ROUTES["readme_table"]((ROOT / "README.md").read_text())
    assert held == expected, "README.md's route table is stale: run `python scripts/readme_routes.py --write`"
    operations = sum(1 for item in document["paths"].values() for m in item if m in ROUTES["METHODS"])
    assert held.count("\n| ") == operations >= 40


def test_every_route_in_the_table_is_in_the_access_policy() -> None:
    held = ROUTES["readme_table"]((ROOT / "README.md").read_text())
    assert "not in the policy" not in held


def test_who_reads_each_rule_in_words() -> None:
    from lockflow.access.policy import ENDPOINTS

    assert ROUTES["who"](ENDPOINTS[("POST", "/auth/login")]) == "anyone, no token"
    assert ROUTES["who"](ENDPOINTS[("GET", "/audit")]) == "admin"
    assert ROUTES["who"](ENDPOINTS[("PATCH", "/sources/{ref}")]) == "analyst, approver, owner only"
    assert ROUTES["who"](None) == "nobody (not in the policy)"
