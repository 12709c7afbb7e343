"""How large each service's own installed environment is, next to the whole workspace's.

Each service is installed alone from uv.lock (`uv sync --package lockflow-<name> --no-dev`) into a
temporary environment; the figures are the size of its site-packages and how many distributions it
holds. The peer is the single environment every service shared before the split (all runtime
dependencies, `uv sync --all-packages --no-dev`).

    .venv/bin/python bench/service_envs.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import packages  # noqa: E402

UV = Path(sys.executable).parent / "uv"


def _size_and_count(env: Path) -> tuple[int, int]:
    site = next(env.glob("lib/python*/site-packages"))
    size = sum(p.stat().st_size for p in site.rglob("*") if p.is_file() and not p.is_symlink())
    return size, len(list(site.glob("*.dist-info")))


def measure(args: list[str]) -> tuple[int, int]:
    """Install with `uv sync ARGS` into a fresh environment and return (bytes, distributions)."""
    with tempfile.TemporaryDirectory() as folder:
        env = Path(folder) / "env"
        run_env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(env), "UV_PYTHON_DOWNLOADS": "never"}
        subprocess.run(
            [str(UV), "sync", "-q", "--frozen", "--no-dev", "--python", sys.executable, *args],
            cwd=ROOT,
            env=run_env,
            check=True,
        )
        return _size_and_count(env)


def main() -> None:
    """Print one line per service and the shared environment for comparison."""
    services = [m for m in packages.members() if m.folder.parent.name == "services"]
    rows = [(m.name, measure(["--package", m.name])) for m in services]
    whole = measure(["--all-packages"])
    print(f"{'environment':<28}{'MB':>8}{'dists':>7}{'of whole':>10}")
    for name, (size, count) in [*rows, ("every service (before)", whole)]:
        print(f"{name:<28}{size / 1e6:>8.0f}{count:>7}{size / whole[0]:>10.0%}")


if __name__ == "__main__":
    main()
