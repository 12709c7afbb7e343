"""One JSON line per log record whatever logged it, and repeated errors rate limited with their count.

Each case runs in its own interpreter: logging is configured once per process.
"""

import json
import logging
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from lockflow.common.logging import RepeatLimiter

CONNECTION_ERROR = """
import logging
error = ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 9092)")
for _ in range(10_000):
    logging.getLogger("aiokafka").error("Unable connect to node with id %s: %s", 1, error)
"""


def run_python(*parts: str) -> subprocess.CompletedProcess[str]:
    """Run the code parts, one after the other, in a fresh interpreter; it fails loudly if they raised."""
    code = "\n".join(textwrap.dedent(part) for part in parts)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line parsed as JSON (a line that is not JSON fails the test)."""
    return [json.loads(line) for line in text.splitlines()]


def test_10000_identical_connection_errors_make_two_json_lines_that_count_them_all() -> None:
    done = run_python(
        """
        from lockflow.common.logging import configure_logging
        configure_logging(service="quality")
        """,
        CONNECTION_ERROR,
    )
    lines = json_lines(done.stderr)
    assert len(lines) == 2, done.stderr[:2000]
    assert all(line["logger"] == "aiokafka" and line["level"] == "error" for line in lines)
    assert all(line["service"] == "quality" for line in lines)
    assert (
        lines[0]["event"]
        == "Unable connect to node with id 1: [Errno 111] Connect call failed ('127.0.0.1', 9092)"
    )
    assert "repeated" not in lines[0]
    # The last line, written at exit, says how many more there were: every record is accounted for.
    assert len(lines) + sum(line.get("repeated", 0) for line in lines) == 10_000


def test_an_outage_writes_one_line_per_window_each_with_the_count_left_out_before_it() -> None:
    done = run_python(
        """
        import logging, time
        from lockflow.common.logging import configure_logging
        configure_logging(service="ingest", repeat_window=0.2)
        log = logging.getLogger("aiokafka")
        started = time.monotonic()
        sent = 0
        while time.monotonic() - started < 1.5:
            log.error("Unable connect to node with id %s: %s", 1, OSError(111, "refused"))
            sent += 1
            time.sleep(0.0005)
        print(sent)
        """
    )
    sent = int(done.stdout)
    lines = json_lines(done.stderr)
    assert 4 <= len(lines) <= 1.5 / 0.2 + 2, lines
    assert all(line.get("repeated", 0) > 0 for line in lines[1:])
    assert len(lines) + sum(line.get("repeated", 0) for line in lines) == sent


def test_kinds_are_limited_apart_and_info_lines_are_never_limited() -> None:
    done = run_python(
        """
        import logging
        from lockflow.common.logging import configure_logging, get_logger
        configure_logging(service="orchestrator")
        ours = get_logger("lockflow.common.bus.kafka")
        for i in range(500):
            ours.warning("outbox_relay_failed", error=f"attempt {i}")
            logging.getLogger("aiokafka").error("Unable to update metadata from %s", [1])
            logging.getLogger("kafka").error("Unable to update metadata from %s", [1])
        for i in range(5):
            ours.info("stage_done", step=i)
        """
    )
    lines = json_lines(done.stderr)
    kinds = [(line["logger"], line["event"].split(" from")[0], line["level"]) for line in lines]
    assert kinds.count(("lockflow.common.bus.kafka", "outbox_relay_failed", "warning")) == 2
    assert kinds.count(("aiokafka", "Unable to update metadata", "error")) == 2
    assert kinds.count(("kafka", "Unable to update metadata", "error")) == 2
    assert [line["step"] for line in lines if line["event"] == "stage_done"] == [0, 1, 2, 3, 4]
    assert sum(line.get("repeated", 0) for line in lines) == 3 * 498


def test_with_a_log_file_every_line_goes_there_as_json_and_nothing_to_the_terminal(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "cli.log"
    done = run_python(
        f"""
        import logging, warnings
        from pathlib import Path
        import structlog
        from lockflow.common.logging import configure_logging, get_logger
        configure_logging(service="cli", path=Path({str(log_file)!r}))
        structlog.contextvars.bind_contextvars(run_id="run-1")
        get_logger("lockflow.cli").error("cli_crashed", exc_info=ValueError("bad"))
        logging.getLogger("alembic.runtime.migration").warning("Will assume %s DDL.", "transactional")
        warnings.warn("a library is deprecated")
        """,
        CONNECTION_ERROR,
    )
    assert done.stderr == "" and done.stdout == ""
    lines = json_lines(log_file.read_text())
    assert [line["logger"] for line in lines] == [
        "lockflow.cli",
        "alembic.runtime.migration",
        "py.warnings",
        "aiokafka",
        "aiokafka",
    ]
    assert all(line["run_id"] == "run-1" and line["service"] == "cli" for line in lines)
    assert "ValueError: bad" in lines[0]["exception"]
    assert lines[-1]["repeated"] == 9_998


def test_uvicorn_errors_are_json_lines_too() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                textwrap.dedent(
                    f"""
                    import uvicorn
                    from lockflow.common.logging import configure_logging
                    from lockflow.gateway.serving import server_config

                    async def app(scope, receive, send):
                        pass

                    configure_logging(service="gateway")
                    uvicorn.Server(server_config(app, host="127.0.0.1", port={port})).run()
                    """
                ),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    lines = json_lines(done.stderr)
    assert lines and all(line["logger"].startswith("uvicorn") for line in lines), done.stderr
    assert any("address already in use" in line["event"] for line in lines)


def test_the_limiter_counts_by_logger_and_template_whatever_the_arguments() -> None:
    now = [0.0]
    limiter = RepeatLimiter(10.0, clock=lambda: now[0])

    def record(name: str, template: str, *args: Any, level: int = logging.ERROR) -> logging.LogRecord:
        return logging.LogRecord(name, level, __file__, 1, template, args, None)

    first = record("aiokafka", "Unable connect to node with id %s: %s", 1, "refused")
    assert limiter.filter(first) and first.lockflow_repeated == 0  # type: ignore[attr-defined]
    assert not any(
        limiter.filter(record("aiokafka", "Unable connect to node with id %s: %s", n, "x")) for n in range(7)
    )
    assert limiter.filter(record("aiokafka", "Unable to update metadata from %s", [1]))
    assert limiter.filter(record("kafka", "Unable connect to node with id %s: %s", 1, "refused"))
    assert all(limiter.filter(record("aiokafka", "connected to %s", n, level=logging.INFO)) for n in range(3))
    now[0] = 10.0
    later = record("aiokafka", "Unable connect to node with id %s: %s", 1, "refused")
    assert limiter.filter(later) and later.lockflow_repeated == 7  # type: ignore[attr-defined]
    assert limiter.left_out() == []
