"""A fault of the server becomes one plain JSON answer with the request id; the traceback is logged."""

import json

import structlog
from fastapi import FastAPI
from fastapi.testclient import TestClient

from lockflow.gateway.failures import UnexpectedErrors


def crashing_app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(UnexpectedErrors)

    @app.get("/runs/{run_id}/boom")
    async def boom(run_id: str) -> dict[str, str]:
        return {"ratio": str(1 / len(run_id[:0]))}  # a genuine bug: division by zero

    @app.get("/fine")
    async def fine() -> dict[str, str]:
        return {"ok": "yes"}

    return app


def test_an_unexpected_error_is_a_plain_500_naming_the_run_and_the_request() -> None:
    with structlog.testing.capture_logs() as logs, TestClient(crashing_app()) as client:
        answer = client.get("/runs/r-42/boom", headers={"X-Request-ID": "req-7"})
    assert answer.status_code == 500
    body = answer.json()
    assert (body["request_id"], body["run_id"]) == ("req-7", "r-42")
    assert "GET /runs/r-42/boom failed for run r-42" in body["detail"]
    assert "ZeroDivisionError" in body["detail"] and "request_id=req-7" in body["detail"]
    assert "Traceback" not in answer.text and "line " not in answer.text
    assert answer.headers["x-request-id"] == "req-7"
    (failure,) = [entry for entry in logs if entry["event"] == "request_failed"]
    assert failure["request_id"] == "req-7" and failure["run_id"] == "r-42"
    assert failure["exc_info"] is True


def test_a_request_id_is_made_when_none_or_an_unsafe_one_is_sent() -> None:
    with TestClient(crashing_app()) as client:
        answer = client.get("/runs/x/boom", headers={"X-Request-ID": "bad id\nwith newline"})
        fine = client.get("/fine")
    made = answer.json()["request_id"]
    assert made != "bad id\nwith newline" and len(made) == 36
    assert json.loads(fine.text) == {"ok": "yes"} and len(fine.headers["x-request-id"]) == 36
