"""The README's table of every API route, made from the OpenAPI and the access policy.

`python scripts/readme_routes.py --write` puts it between the README's `routes:start` and `routes:end`
markers; tests/contract/test_readme_routes.py fails when the README's table differs from this one.
"""

import re
import runpy
import sys
from pathlib import Path
from typing import Any

from lockflow.access.policy import ENDPOINTS, Rule, Scope

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MARKERS = re.compile(r"(<!-- routes:start -->\n)(.*?)(<!-- routes:end -->)", re.DOTALL)
# Routes the auth service serves in distributed mode (`lockflow up` serves them on its one port).
AUTH_PREFIXES = ("/auth/", "/shares", "/audit", "/.well-known/")
METHODS = ("get", "post", "put", "patch", "delete")
SCOPES = {
    Scope.NONE: "",
    Scope.LISTED: ", theirs and shared",
    Scope.VISIBLE: ", own or shared",
    Scope.OWNER: ", owner only",
}


def who(rule: Rule | None) -> str:
    """Who may call a route, in words: public, or the roles and the object-level rule."""
    if rule is None:
        return "nobody (not in the policy)"
    if rule.roles is None:
        return "anyone, no token"
    roles = sorted(role.value for role in rule.roles)
    named = "every role" if len(roles) == 4 else ", ".join(roles)
    return named + SCOPES[rule.scope]


def routes_table(document: dict[str, Any]) -> str:
    """One row per operation of the OpenAPI document: method, path, service, who may call it, summary."""
    rows = ["| method | path | served by | who may call it | what it does |", "|---|---|---|---|---|"]
    for path in sorted(document["paths"]):
        item = document["paths"][path]
        for method in METHODS:
            if method not in item:
                continue
            operation = item[method]
            service = "auth" if path.startswith(AUTH_PREFIXES) else "gateway"
            rule = ENDPOINTS.get((method.upper(), path))
            text = operation.get("description") or operation.get("summary") or ""
            summary = " ".join(text.split("\n\n")[0].split()).replace("|", "\\|")
            rows.append(f"| {method.upper()} | `{path}` | {service} | {who(rule)} | {summary} |")
    return "\n".join(rows) + "\n"


def openapi_document() -> dict[str, Any]:
    """The OpenAPI of the app `lockflow up` serves (the same document the UI's client is made from)."""
    made: dict[str, Any] = runpy.run_path(str(ROOT / "scripts" / "ui_openapi.py"))["openapi_document"]()
    return made


def readme_table(text: str) -> str:
    """The table the README holds between its markers."""
    found = MARKERS.search(text)
    if found is None:
        raise SystemExit("README.md has no <!-- routes:start --> ... <!-- routes:end --> markers")
    return found.group(2)


def write(text: str, table: str) -> str:
    """The README text with `table` between its markers."""
    readme_table(text)
    return MARKERS.sub(lambda m: m.group(1) + table + m.group(3), text)


if __name__ == "__main__":
    table = routes_table(openapi_document())
    if "--write" in sys.argv:
        README.write_text(write(README.read_text(), table))
    else:
        sys.stdout.write(table)
