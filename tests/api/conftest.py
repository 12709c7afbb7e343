"""Shared fixtures for the gateway served in process with embedded adapters."""

from pathlib import Path

import pytest


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """The folder runs may read files from (the one `embedded_settings(tmp_path)` allows)."""
    folder = tmp_path / "data"
    folder.mkdir(exist_ok=True)
    return folder
