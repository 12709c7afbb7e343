"""GET /runs/{run_id}/charts over HTTP on a real dataset: the specs follow the run's evidence gate by
gate, only for callers who may see the run; the preview answers with before/after histograms; the
finished report is served as PDF too."""

import importlib.resources
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from test_gateway_embedded import wait_open

from lockflow.auth.testing import share_run, sign_in
from lockflow.embedded import create_app
from lockflow.gateway.testing import embedded_settings


@pytest.fixture
def client(tmp_path: Path, data_dir: Path) -> Iterator[TestClient]:
    settings = embedded_settings(tmp_path)
    with TestClient(create_app(settings)) as test_client:
        test_client.data_dir = data_dir  # type: ignore[attr-defined]
        test_client.headers.update(sign_in(test_client, "ana", ["analyst"]))
        yield test_client


def _weather(folder: Path) -> Path:
    """vega_datasets' Seattle weather, as the package ships it."""
    path = folder / "seattle-weather.csv"
    source = importlib.resources.files("vega_datasets") / "_data" / "seattle-weather.csv"
    path.write_bytes(source.read_bytes())
    return path


def _charts(client: TestClient, run_id: str, **params: str) -> dict:
    answer = client.get(f"/runs/{run_id}/charts", params=params)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["total"] == len(body["items"])
    return body  # type: ignore[no-any-return]


def _bars(spec: dict) -> list[dict]:
    """A histogram's bins: its own data, or its first layer's when fences are drawn over it."""
    return (spec["layer"][0] if "layer" in spec else spec)["data"]["values"]  # type: ignore[no-any-return]


def _decide(client: TestClient, request: dict, option: str, params: dict | None = None) -> None:
    answer = client.post(f"/decisions/{request['id']}", json={"option": option, "params": params or {}})
    assert answer.status_code == 200, answer.text


def test_charts_follow_the_run_and_only_for_those_who_may_see_it(client: TestClient) -> None:
    path = _weather(client.data_dir)  # type: ignore[attr-defined]
    run_id = client.post("/runs", json={"path": str(path), "goal": {"target": "temp_max"}}).json()["id"]
    _decide(client, wait_open(client, run_id, "source_review"), "approve")
    gate2 = wait_open(client, run_id, "quality_review")
    at_gate2 = {i["id"]: i for i in _charts(client, run_id)["items"]}
    assert {i["kind"] for i in at_gate2.values()} == {"quality_scores", "missing_values", "histogram"}
    assessed = client.get(f"/runs/{run_id}").json()["results"]["quality_histograms"]
    for name, hist in assessed.items():
        bars = _bars(at_gate2[f"histogram:{name}"]["spec"])
        assert [b["count"] for b in bars] == hist["counts"] and sum(hist["counts"]) == 1461
    assert _charts(client, run_id, stage="analytics") == {"items": [], "total": 0}

    outliers = next(f for f in gate2["context"]["findings"] if f["category"] == "outliers")
    choice = {"finding_id": outliers["id"], "strategy": "cap_to_fences"}
    preview = client.post(f"/decisions/{gate2['id']}/preview", json={"choices": [choice]})
    assert preview.status_code == 200, preview.text
    shown = preview.json()["charts"]
    column = outliers["columns"][0]
    assert [c["id"] for c in shown] == [f"preview_histogram:{column}"]
    assert shown[0]["spec"]["$schema"].startswith("https://vega.github.io/schema/vega-lite/v6")

    _decide(client, gate2, "apply", {"choices": [choice]})
    wait_open(client, run_id, "analytics_review")
    run = client.get(f"/runs/{run_id}").json()
    items = {i["id"]: i for i in _charts(client, run_id)["items"]}
    assert {"correlation_heatmap", "clusters", "drivers:temp_max", f"histogram:{column}"} <= set(items)
    scores = items["quality_scores"]["spec"]["data"]["values"]
    after = {r["dimension"]: r["score"] for r in scores if r["version"] == "after"}
    assert after and after["overall"] == run["results"]["score_after"]
    stats = next(c for c in run["results"]["analytics"]["columns"] if c["name"] == column)
    bars = _bars(items[f"histogram:{column}"]["spec"])
    assert [b["count"] for b in bars] == stats["histogram_counts"]
    only = _charts(client, run_id, stage="quality")["items"]
    assert only and {i["stage"] for i in only} == {"quality"}

    bad = client.get(f"/runs/{run_id}/charts", params={"stage": "reporting"})
    assert bad.status_code == 422
    eve = sign_in(client, "eve", ["analyst"])
    assert client.get(f"/runs/{run_id}/charts", headers=eve).status_code == 404
    assert client.get("/runs/no-such-run/charts").status_code == 404
    share_run(client, dict(client.headers), run_id, "eve")
    assert client.get(f"/runs/{run_id}/charts", headers=eve).json()["total"] == len(items)

    _decide(client, wait_open(client, run_id, "analytics_review"), "accept")
    _decide(client, wait_open(client, run_id, "insight_review"), "accept")
    gate5 = wait_open(client, run_id, "action_selection")
    lee = sign_in(client, "lee", ["approver"])
    share_run(client, dict(client.headers), run_id, "lee")
    first = gate5["context"]["items"][0]["id"]
    chosen = client.post(
        f"/decisions/{gate5['id']}", json={"option": "choose", "params": {"selected": [first]}}, headers=lee
    )
    assert chosen.status_code == 200, chosen.text
    html = ""
    for _ in range(600):
        answer = client.get(f"/runs/{run_id}/report", params={"format": "html"})
        if answer.status_code == 200:
            html = answer.text
            break
        time.sleep(0.1)
    assert html.count("<svg") == len(_charts(client, run_id)["items"]) > 10
    pdf = client.get(f"/runs/{run_id}/report", params={"format": "pdf"})
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
