"""Each service installs from uv.lock on its own, with only its dependencies, and every module imports."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import packages  # noqa: E402

UV = Path(sys.executable).parent / "uv"
SERVICES = [m for m in packages.members() if m.folder.parent.name == "services"]


def _install_alone(member: packages.Member, env: Path) -> None:
    run_env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(env), "UV_PYTHON_DOWNLOADS": "never"}
    subprocess.run(
        [str(UV), "sync", "-q", "--frozen", "--no-dev", "--package", member.name, "--python", sys.executable],
        cwd=ROOT, env=run_env, check=True, capture_output=True, text=True, timeout=600,
    )


def _modules(member: packages.Member) -> list[str]:
    names = []
    for path in sorted(member.package.rglob("*.py")):
        relative = path.relative_to(member.folder / "src").with_suffix("")
        names.append(".".join(part for part in relative.parts if part != "__init__"))
    return names


@pytest.mark.integration
@pytest.mark.parametrize("member", SERVICES, ids=lambda m: m.name)
def test_a_service_installs_alone_and_imports(member: packages.Member, tmp_path: Path) -> None:
    env = tmp_path / "env"
    _install_alone(member, env)
    python = env / "bin" / "python"
    script = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    result = subprocess.run([str(python), "-c", script, *_modules(member)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    listed = subprocess.run(
        [str(UV), "pip", "list", "--python", str(python)], capture_output=True, text=True, check=True
    ).stdout
    installed = {line.split()[0].lower() for line in listed.splitlines()[2:] if line.strip()}
    others = {m.name for m in SERVICES if m.name != member.name}
    assert not installed & others, f"{member.name} pulls in other services: {installed & others}"
