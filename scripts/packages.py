"""The workspace's distributions and what each one imports.

`python scripts/packages.py check` lists, per distribution, the third-party distributions its code
imports but its pyproject.toml does not declare, and those it declares but never imports (other than
the ones it needs without importing them, below). `python scripts/packages.py write` rewrites each
member's `dependencies` from its imports. Versions are not written here: the root pyproject.toml's
`[tool.uv] constraint-dependencies` pins every one, and uv.lock locks the whole workspace.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Needed at run time though no module imports them by name: a reason for each.
USED_WITHOUT_IMPORT: dict[str, dict[str, str]] = {
    "lockflow-common": {
        "psycopg2-binary": "SQLAlchemy's postgresql:// dialect loads it",
    },
    "lockflow-ingest": {
        "defusedxml": "openpyxl parses .xlsx XML with it when installed (no entity expansion)",
        "psycopg2-binary": "SQLAlchemy's postgresql:// dialect loads it for database sources",
        "PyMySQL": "SQLAlchemy's mysql+pymysql:// dialect loads it for database sources",
    },
    "lockflow-gateway": {
        "httptools": "uvicorn parses HTTP with it when installed",
        "python-multipart": "FastAPI parses uploaded files with it",
    },
    "lockflow-auth": {
        "python-multipart": "FastAPI parses the login form with it",
    },
}


@dataclass(frozen=True)
class Member:
    """One distribution of the workspace: its name, folder and the package folder it ships."""

    name: str
    folder: Path
    package: Path

    @property
    def pyproject(self) -> Path:
        return self.folder / "pyproject.toml"


def members() -> list[Member]:
    """Every distribution: each service, each library and the root (the CLI and embedded composition)."""
    found = [Member("lockflow", ROOT, ROOT / "src" / "lockflow")]
    for kind in ("libs", "services"):
        for folder in sorted((ROOT / kind).iterdir()):
            package = folder / "src" / "lockflow" / folder.name
            if package.is_dir():
                found.append(Member(f"lockflow-{folder.name}", folder, package))
    return found


def _modules(member: Member) -> list[Path]:
    files = member.package.rglob("*.py")
    if member.name == "lockflow":  # the root ships the top-level modules of the namespace only
        files = member.package.glob("*.py")
    return sorted(path for path in files if "__pycache__" not in path.parts)


def imported_names(member: Member) -> set[str]:
    """Top-level names of everything the member's modules import (absolute imports only)."""
    names: set[str] = set()
    for path in _modules(member):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
    return names


def internal_requirements(member: Member, all_members: list[Member]) -> set[str]:
    """The workspace distributions whose packages the member imports."""
    by_package = {m.package.name: m.name for m in all_members if m.name != "lockflow"}
    needed: set[str] = set()
    for name in imported_names(member):
        parts = name.split(".")
        if parts[0] == "lockflow" and len(parts) > 1 and parts[1] in by_package:
            needed.add(by_package[parts[1]])
    needed.discard(member.name)
    return needed


@cache
def _distributions() -> dict[str, list[str]]:
    return packages_distributions()


def external_requirements(member: Member) -> set[str]:
    """The third-party distributions the member imports (as installed here) plus those used unimported."""
    needed = set(USED_WITHOUT_IMPORT.get(member.name, {}))
    for name in imported_names(member):
        top = name.split(".")[0]
        if top in sys.stdlib_module_names or top in {"lockflow", "__future__"}:
            continue
        dists = _distributions().get(top)
        if not dists:
            raise SystemExit(f"{member.name}: no installed distribution provides the module {top!r}")
        needed.add(_canonical(dists[0]))
    return needed


def _canonical(name: str) -> str:
    spelled = {"pyjwt": "PyJWT", "pyyaml": "PyYAML", "pymysql": "PyMySQL"}
    lowered = re.sub(r"[-_.]+", "-", name).lower()
    return spelled.get(lowered, lowered)


def declared(member: Member) -> set[str]:
    """The member's declared runtime dependencies, by name (extras and markers dropped)."""
    project = tomllib.loads(member.pyproject.read_text())["project"]
    names = (re.split(r"[\[<>=!~; ]", dep, maxsplit=1)[0] for dep in project.get("dependencies", []))
    return {_canonical(name) for name in names}


def expected(member: Member, all_members: list[Member]) -> set[str]:
    """What the member should declare: its imports, inside the workspace and outside."""
    if member.name == "lockflow":  # the root composes everything, so it depends on every member
        internal = {m.name for m in all_members if m.name != "lockflow"}
    else:
        internal = internal_requirements(member, all_members)
    return internal | external_requirements(member)


def _jwt_extra(dep: str) -> str:
    return "PyJWT[crypto]" if dep == "PyJWT" else dep


def write(member: Member, all_members: list[Member]) -> None:
    """Rewrite the member's dependencies array from its imports."""
    deps = sorted(expected(member, all_members), key=str.lower)
    body = "".join(f'  "{_jwt_extra(dep)}",\n' for dep in deps)
    text = member.pyproject.read_text()
    new = re.sub(r"(?ms)^dependencies = \[\n.*?^\]\n", f"dependencies = [\n{body}]\n", text, count=1)
    if member.name == "lockflow":
        sources = "".join(f"{m.name} = {{ workspace = true }}\n" for m in all_members if m.name != "lockflow")
        table = f"[tool.uv.sources]\n{sources}\n["
        new = re.sub(r"(?ms)^\[tool\.uv\.sources\]\n.*?\n\[", table, new, count=1)
    member.pyproject.write_text(new)


def main(argv: list[str]) -> int:
    """Check or write every member's dependencies."""
    command = argv[1] if len(argv) > 1 else "check"
    all_members = members()
    problems = 0
    for member in all_members:
        if command == "write":
            write(member, all_members)
        want, have = expected(member, all_members), declared(member)
        for missing in sorted(want - have):
            print(f"{member.name}: imports {missing} but does not declare it")
            problems += 1
        for extra in sorted(have - want):
            print(f"{member.name}: declares {extra} but never imports it")
            problems += 1
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
