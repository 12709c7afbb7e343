"""Figures for issue 11's hostile input against a served gateway; prints them, asserts nothing.

1. A 100 MB body to `POST /decisions/{id}`: seconds to the 413, declared (Content-Length) and chunked
   (no Content-Length: how many bytes went out before the refusal).
2. `GET /runs?limit=` for an analyst owning a share of many runs: items and X-Total-Count per limit,
   and the median latency of one page (filtered in the query, then paged).

Embedded (SQLite, no stage workers), served by uvicorn on a free port.
Run: `.venv/bin/python bench/hostile.py [--runs 2000 --owned 800]`.
"""

import argparse
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from lockflow.auth.testing import PASSWORD, login
from lockflow.common.models import Goal, SourceSpec
from lockflow.devcluster import free_port
from lockflow.embedded import create_app
from lockflow.gateway.testing import embedded_settings
from lockflow.runstore import intake

HUNDRED_MB = 100 * 1024 * 1024


def _serve(folder: Path) -> tuple[str, int, object, uvicorn.Server]:
    app = create_app(embedded_settings(folder, start_workers=False))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", port, app, server


def _refusal(port: int, head: bytes, chunks: int = 0) -> tuple[float, int, bytes]:
    """Seconds until the status line arrives, and body bytes sent before it."""
    piece = b"10000\r\n" + b"a" * 0x10000 + b"\r\n"
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head)
        sock.setblocking(False)
        sent, answer = 0, b""
        for _ in range(chunks):
            try:
                answer = sock.recv(4096)
                break
            except BlockingIOError:
                pass
            try:
                sock.sendall(piece)
                sent += 0x10000
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                break
        sock.setblocking(True)
        while b"\r\n" not in answer:
            answer += sock.recv(4096)
    return time.perf_counter() - started, sent, answer.split(b"\r\n", 1)[0]


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--owned", type=int, default=800)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base, port, app, server = _serve(Path(tmp))
        auth = app.state.auth  # type: ignore[attr-defined]
        for name in ("ana", "bob"):
            auth.create_user(username=name, password=PASSWORD, roles=["analyst"], actor="bench")
        client = httpx.Client(base_url=base, timeout=60)
        token = login(client, "ana")["Authorization"]

        head = f"POST /decisions/x HTTP/1.1\r\nHost: b\r\nAuthorization: {token}\r\n"
        head += "Content-Type: application/json\r\n"
        seconds, _, status = _refusal(port, f"{head}Content-Length: {HUNDRED_MB}\r\n\r\n".encode())
        print(f"100 MB declared body:  {status.decode()} after {seconds * 1000:.1f} ms")
        seconds, sent, status = _refusal(
            port, f"{head}Transfer-Encoding: chunked\r\n\r\n".encode(), chunks=HUNDRED_MB // 0x10000
        )
        print(
            f"100 MB chunked body:   {status.decode()} after {seconds * 1000:.1f} ms, "
            f"{sent / 2**20:.1f} MiB sent"
        )

        system = app.state.system  # type: ignore[attr-defined]
        spec = SourceSpec(path=str(Path(tmp) / "data" / "none.csv"))
        for number in range(args.runs):
            owner = "ana" if number * args.owned % args.runs < args.owned else "bob"
            intake.request_run(system.db, name=f"r{number}", source=spec, goal=Goal(), requested_by=owner)
        owned = sum(1 for n in range(args.runs) if n * args.owned % args.runs < args.owned)
        headers = {"Authorization": token}
        print(f"GET /runs as an analyst owning {owned} of {args.runs} runs:")
        for limit in (1, 5, 10, 100):
            answer = client.get("/runs", params={"limit": limit}, headers=headers)
            print(
                f"  limit={limit:<4} items={len(answer.json()):<4} "
                f"X-Total-Count={answer.headers['x-total-count']}"
            )
        times = []
        for offset in range(0, 50 * 20, 20):
            started = time.perf_counter()
            client.get("/runs", params={"limit": 20, "offset": offset}, headers=headers)
            times.append(time.perf_counter() - started)
        print(f"  one page of 20 (50 offsets): median {statistics.median(times) * 1000:.1f} ms")
        server.should_exit = True


if __name__ == "__main__":
    main()
