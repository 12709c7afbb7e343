"""A service whose stop hangs still ends: past LOCKFLOW_SHUTDOWN_SECONDS it prints every thread's stack and
exits 1, so a stuck client library cannot outlive the grace period (a CI run saw a stream worker take over
30 s to exit after a graceful leave)."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

STUCK = textwrap.dedent(
    """
    import time
    from lockflow.common.runtime import run_service
    from lockflow.common.settings import CommonSettings

    class Stuck:
        async def stop(self) -> None:
            time.sleep(3600)  # a client blocked on a closing connection, holding the loop

    async def start(adapters):
        return Stuck()

    run_service("stuck", CommonSettings, start)
    """
)


def test_a_stop_that_hangs_ends_at_the_deadline_with_every_threads_stack(tmp_path: Path) -> None:
    script = tmp_path / "stuck.py"
    script.write_text(STUCK)
    log = tmp_path / "stuck.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKFLOW_")}
    env.update(LOCKFLOW_HOME=str(tmp_path / "home"), LOCKFLOW_SHUTDOWN_SECONDS="2")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(script)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while "lockflow worker stuck ready" not in log.read_text(errors="replace"):
            assert process.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, "the service never said it was ready"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 1  # the deadline's exit, not the hour the stop would take
    finally:
        if process.poll() is None:
            process.kill()
    text = log.read_text(errors="replace")
    assert "Timeout (0:00:02)!" in text and "most recent call first" in text
    hung_at = next(n for n, line in enumerate(STUCK.splitlines(), 1) if "time.sleep(3600)" in line)
    assert f'File "{script}", line {hung_at} in stop' in text, text[-2000:]  # where it hung, named
