"""The Grafana dashboards as provisioning JSON: fixed uids, the datasource by its fixed uid, rates over
$__rate_interval, and only lockflow's metrics (or `up`). Their queries are run on a real Prometheus in
tests/e2e/test_monitoring.py."""

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
GRAFANA = ROOT / "monitoring" / "grafana"
DATASOURCE = {"type": "prometheus", "uid": "lockflow-prometheus"}
BOARDS = {
    "lockflow-overview",
    "lockflow-stages",
    "lockflow-kafka",
    "lockflow-decisions",
    "lockflow-resources",
}


def _boards() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((GRAFANA / "dashboards").glob("*.json"))]


def test_the_five_dashboards_have_fixed_uids_and_use_the_provisioned_datasource() -> None:
    boards = _boards()
    assert {b["uid"] for b in boards} == BOARDS
    provisioned = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    by_uid = {d["uid"]: d for d in provisioned["datasources"]}  # Prometheus, and Jaeger for traces
    assert by_uid[DATASOURCE["uid"]]["type"] == DATASOURCE["type"]
    for board in boards:
        assert board["panels"], board["uid"]
        for panel in board["panels"]:
            assert panel["datasource"] == DATASOURCE
            assert all(t["datasource"] == DATASOURCE for t in panel["targets"])


def test_rates_use_rate_interval_and_queries_name_only_lockflow_metrics() -> None:
    for board in _boards():
        for panel in board["panels"]:
            for target in panel["targets"]:
                expr = target["expr"]
                for window in re.findall(r"(?:rate|increase|delta)\([^\[]*\[([^\]]+)\]", expr):
                    assert window == "$__rate_interval", (panel["title"], expr)
                names = set(re.findall(r"\b([a-z_]+)(?=\{|\[|\s*\)|\s*/|\s*$)", expr)) - {
                    "le",
                    "by",
                    "sum",
                    "max",
                }
                metrics = {
                    n
                    for n in names
                    if n.endswith(
                        (
                            "_total",
                            "_bucket",
                            "_seconds",
                            "_bytes",
                            "_messages",
                            "_ratio",
                            "_fds",
                            "_info",
                            "_pending",
                            "_active",
                        )
                    )
                }
                assert all(n.startswith("lockflow_") for n in metrics), (panel["title"], metrics)


def test_the_dashboard_provider_reads_the_dashboards_folder() -> None:
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "lockflow.yml").read_text())
    assert provider["providers"][0]["type"] == "file"
    assert provider["providers"][0]["options"]["path"].endswith("/lockflow")
