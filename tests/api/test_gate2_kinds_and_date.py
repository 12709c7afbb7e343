"""Gate 2 over HTTP says what each category and fix is, and which date the data was judged at."""

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from test_gateway_embedded import wait_open
from test_quality_preview import gate2

from lockflow.auth.testing import sign_in
from lockflow.common.kinds import category_label, strategy_facts
from lockflow.embedded import create_app
from lockflow.gateway.testing import embedded_settings

AS_OF = datetime(2031, 3, 4)


@pytest.fixture
def client(tmp_path: Path, data_dir: Path) -> Iterator[TestClient]:
    settings = embedded_settings(tmp_path, as_of=AS_OF)
    with TestClient(create_app(settings)) as test_client:
        test_client.data_dir = data_dir  # type: ignore[attr-defined]
        test_client.headers.update(sign_in(test_client, "ana", ["analyst"]))
        yield test_client


def test_gate2_context_and_preview_carry_the_tables_wording_and_the_date(client: TestClient) -> None:
    run_id, request, _ = gate2(client)
    context = request["context"]
    assert context["as_of"] == "2031-03-04"
    for finding in context["findings"]:
        assert finding["label"] == category_label(finding["category"])
        for fix in finding["resolutions"]:
            facts = strategy_facts(fix["strategy"])
            assert (fix["description"], fix["risk"], fix["changes"]) == (
                facts.description,
                facts.risk,
                facts.changes,
            )
    choices = [{"finding_id": "missing_values:spend", "strategy": "impute_median"}]
    answer = client.post(f"/decisions/{request['id']}/preview", json={"choices": choices})
    assert answer.status_code == 200, answer.text
    (step,) = answer.json()["steps"]
    assert step["category"] == "Missing values"
    assert step["description"] == strategy_facts("impute_median").description and step["risk"] == "medium"
    assert wait_open(client, run_id, "quality_review")["id"] == request["id"]
