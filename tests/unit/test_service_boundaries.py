"""A service imports lockflow.common and the other libraries under libs/, never another service.

Every .py under services/<name>/ is parsed (ast, so a lazy import inside a function counts too) and
each `import lockflow.X` / `from lockflow.X import ...` is checked: X may be the service itself or a
library, not another service and not the composition root (`lockflow.bootstrap`, `lockflow.cli`, ...),
which is the one place allowed to import every service.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = (
    "gateway",
    "auth",
    "orchestrator",
    "ingest",
    "quality",
    "analytics",
    "insights",
    "recommendations",
    "reporting",
    "stream",
)
# The `lockflow` package itself (libs/lockflow) composes everything: no service may import it.
COMPOSITION_ROOT = tuple(
    sorted(p.stem for p in (ROOT / "libs" / "lockflow").glob("*.py") if p.stem != "__init__")
)


def _imported(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, dotted module) of every absolute import in the tree."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "lockflow":
            found.extend((node.lineno, f"lockflow.{alias.name}") for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def forbidden_imports(service: str, folder: Path) -> list[str]:
    """`path:line imports module` for each import of another service or of the composition root."""
    others = {s for s in SERVICES if s != service}
    refused = []
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, module in _imported(tree):
            parts = module.split(".")
            if parts[0] != "lockflow" or len(parts) < 2:
                continue
            if parts[1] in others or parts[1] in COMPOSITION_ROOT:
                refused.append(f"{path.relative_to(folder.parent)}:{line} imports {module}")
    return refused


def test_the_checker_sees_every_kind_of_import(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(
        "import lockflow.auth.service\n"
        "from lockflow.orchestrator import views\n"
        "from lockflow import bootstrap\n"
        "from lockflow.common.db import Database\n"
        "from lockflow.gateway.app import create_app\n"
        "def later():\n"
        "    from lockflow.quality.preview import preview\n"
    )
    found = forbidden_imports("gateway", tmp_path)
    assert [f.split(" imports ")[1] for f in found] == [
        "lockflow.auth.service",
        "lockflow.orchestrator",
        "lockflow.bootstrap",
        "lockflow.quality.preview",
    ]
    assert "bootstrap" in COMPOSITION_ROOT and "cli" in COMPOSITION_ROOT


def test_every_service_folder_is_checked() -> None:
    folders = {p.name for p in (ROOT / "services").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders <= set(SERVICES), f"add {sorted(folders - set(SERVICES))} to SERVICES"


@pytest.mark.parametrize(
    "service",
    [s for s in SERVICES if (ROOT / "services" / s).is_dir()],  # stream: not built yet
)
def test_a_service_imports_no_other_service(service: str) -> None:
    refused = forbidden_imports(service, ROOT / "services" / service)
    assert not refused, "a service may import libraries only:\n" + "\n".join(refused)


@pytest.mark.parametrize(
    "library", sorted(p.name for p in (ROOT / "libs").iterdir() if p.is_dir() and p.name != "lockflow")
)
def test_a_library_imports_no_service(library: str) -> None:
    refused = forbidden_imports("", ROOT / "libs" / library)
    assert not refused, "a library may import other libraries only:\n" + "\n".join(refused)
