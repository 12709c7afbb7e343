"""A service imports lockflow.common and the libraries under libs/, never another service; a library
imports no service at all. Read from the source with ast, so a lazy import inside a function counts.

`src/lockflow` (the `lockflow` command, `lockflow up`/`run`) is the embedded composition root: it
composes every service in one process, so it is the one package allowed to import them, and no
service or library may import it.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "src" / "lockflow" / p.name).is_dir())
LIBRARIES = sorted(p.name for p in (ROOT / "libs").iterdir() if (p / "src" / "lockflow" / p.name).is_dir())
# The composition root's modules (lockflow.bootstrap, lockflow.cli, ...): only the root may import them.
ROOT_MODULES = sorted(p.stem for p in (ROOT / "src" / "lockflow").glob("*.py"))


def _imported(path: Path) -> set[str]:
    """Every module the file imports, absolute names."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _services_imported(path: Path) -> set[str]:
    """The services (as `lockflow.<name>`) the file imports from."""
    return {
        f"lockflow.{name.split('.')[1]}"
        for name in _imported(path)
        if name.startswith("lockflow.") and name.split(".")[1] in {*SERVICES, *ROOT_MODULES}
    }


def _crossings() -> dict[str, set[str]]:
    """File (relative to the repository) -> the services it imports that it must not."""
    found: dict[str, set[str]] = {}
    for service in SERVICES:
        for path in sorted((ROOT / "services" / service / "src").rglob("*.py")):
            others = _services_imported(path) - {f"lockflow.{service}"}
            if others:
                found[str(path.relative_to(ROOT))] = others
    for library in LIBRARIES:
        for path in sorted((ROOT / "libs" / library / "src").rglob("*.py")):
            if services := _services_imported(path):
                found[str(path.relative_to(ROOT))] = services
    return found


def test_the_tree_has_services_and_libraries() -> None:
    assert {"ingest", "quality", "analytics", "insights", "orchestrator"} <= set(SERVICES)
    assert {"common", "datasets", "stats"} <= set(LIBRARIES)
    assert {"bootstrap", "cli"} <= set(ROOT_MODULES)


def test_no_service_imports_another_and_no_library_imports_a_service() -> None:
    assert _crossings() == {}, "a service or library reaches into a service; move the shared code to libs/"


def test_the_checker_sees_lazy_and_from_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "import lockflow.ingest.read\n"
        "from lockflow.common import db\n"
        "def f():\n    from lockflow.orchestrator.views import x\n"
        "from . import sibling\n"
    )
    assert _services_imported(module) == {"lockflow.ingest", "lockflow.orchestrator"}
