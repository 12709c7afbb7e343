"""Every distribution declares exactly what its code imports, and imports follow the tree."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import packages  # noqa: E402


def test_every_member_declares_what_it_imports_and_nothing_else() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "packages.py"), "check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("member", packages.members(), ids=lambda m: m.name)
def test_the_import_path_is_the_file_path(member: packages.Member) -> None:
    """lockflow.<part>.<module> lives at <folder>/src/lockflow/<part>/<module>.py: no mapping needed."""
    import importlib

    for path in member.package.rglob("*.py") if member.name != "lockflow" else member.package.glob("*.py"):
        if "__pycache__" in path.parts:
            continue
        relative = path.relative_to(member.folder / "src").with_suffix("")
        dotted = ".".join(part for part in relative.parts if part != "__init__")
        spec = importlib.util.find_spec(dotted)
        assert spec is not None and spec.origin is not None, dotted
        assert Path(spec.origin).resolve() == path.resolve(), f"{dotted} imports {spec.origin}, not {path}"


def test_lockflow_is_a_namespace_shared_by_every_member() -> None:
    import lockflow

    assert getattr(lockflow, "__file__", None) is None, "an __init__.py in a src/lockflow/ hides the rest"
    folders = {Path(p).resolve() for p in lockflow.__path__}
    assert folders == {(m.folder / "src" / "lockflow").resolve() for m in packages.members()}
