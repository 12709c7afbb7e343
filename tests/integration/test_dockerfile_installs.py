"""Each Dockerfile's install step, run here as written (no Docker engine: outside an image): the
environment it makes holds the service's own package, not editable (the runtime stage copies the
environment without the sources), and the module its ENTRYPOINT runs imports from it."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UV = Path(sys.executable).parent / "uv"
NAMES = sorted(p.parent.name for p in (ROOT / "services").glob("*/Dockerfile"))


@pytest.mark.integration
@pytest.mark.parametrize("name", NAMES)
def test_the_dockerfile_install_step_makes_an_environment_that_runs_the_entrypoint(
    name: str, tmp_path: Path
) -> None:
    dockerfile = (ROOT / "services" / name / "Dockerfile").read_text()
    (args,) = re.findall(r"^RUN uv sync (.*)$", dockerfile, re.M)
    (module,) = re.findall(r'^ENTRYPOINT \["python", "-m", "([\w.]+)"\]$', dockerfile, re.M)
    env_dir = tmp_path / "venv"
    run_env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(env_dir),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_LINK_MODE": "copy",
    }
    subprocess.run(
        [str(UV), "sync", "-q", *shlex.split(args), "--python", sys.executable],
        cwd=ROOT,
        env=run_env,
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
    )
    plain = {k: v for k, v in os.environ.items() if not k.startswith(("LOCKFLOW_", "PYTHON"))}
    script = f"import importlib.util as u; print(u.find_spec({module!r}).origin)"
    found = subprocess.run(
        [str(env_dir / "bin" / "python"), "-c", script],
        cwd=tmp_path,
        env=plain,
        capture_output=True,
        text=True,
        check=True,
    )
    origin = Path(found.stdout.strip())
    assert origin.is_relative_to(env_dir), f"{module} comes from {origin}, not from the environment"
    # Only this service: no other service's package in the image.
    others = {n for n in NAMES if n != name}
    installed = {p.name for p in (env_dir / "lib").glob("python*/site-packages/lockflow/*")}
    assert name in installed and not installed & others, installed
