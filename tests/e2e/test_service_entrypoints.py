"""Each worker service starts from its own composition root (`python -m lockflow.<name>.bootstrap`),
which loads that service and the libraries only, and refuses bad settings like the `lockflow` command.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lockflow.common.runtime import WORKER_NAMES

SERVICES = {"gateway", "auth", *WORKER_NAMES}
LOADED = """
import json, sys
import lockflow.{name}.bootstrap
print(json.dumps(sorted({{m.split(".")[1] for m in sys.modules if m.startswith("lockflow.")}})))
"""


def _python(args: list[str], home: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKFLOW_")}
    env.update(LOCKFLOW_HOME=str(home), **variables)
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("name", WORKER_NAMES)
def test_a_service_root_loads_no_other_service(tmp_path: Path, name: str) -> None:
    done = _python(["-c", LOADED.format(name=name)], tmp_path)
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    assert name in loaded
    assert loaded & SERVICES == {name}, f"lockflow.{name}.bootstrap loads {sorted(loaded & SERVICES)}"


@pytest.mark.parametrize("name", WORKER_NAMES)
def test_a_service_root_refuses_a_bad_setting_in_one_line(tmp_path: Path, name: str) -> None:
    done = _python(["-m", f"lockflow.{name}.bootstrap"], tmp_path, LOCKFLOW_KAFKA_BOOTSTRAP="no-port")
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "error: LOCKFLOW_KAFKA_BOOTSTRAP: must be host:port[,host:port...] with ports 1-65535 (got 'no-port')"
    ]


def test_the_ingest_root_checks_the_source_settings_at_start(tmp_path: Path) -> None:
    done = _python(["-m", "lockflow.ingest.bootstrap"], tmp_path, LOCKFLOW_MAX_FILE_BYTES="lots")
    assert done.returncode == 2 and done.stderr.startswith("error: LOCKFLOW_MAX_FILE_BYTES: Input should be")
