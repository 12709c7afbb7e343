"""Print the hash of the UI's sources (frontend/): the build records it, a test compares (make ui)."""

import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FRONTEND = ROOT / "frontend"
# What the build reads; the tests, e2e specs and generated OpenAPI JSON do not change the bundle.
INPUTS = ("index.html", "package-lock.json", "vite.config.ts", "tsconfig.json")


def source_hash(frontend: Path = FRONTEND) -> str:
    """SHA-256 over the build's inputs: each file's relative path and bytes, in a fixed order."""
    files = [frontend / name for name in INPUTS]
    files += [p for p in (frontend / "src").rglob("*") if p.is_file() and ".test." not in p.name]
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.relative_to(frontend).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


if __name__ == "__main__":
    sys.stdout.write(source_hash() + "\n")
