"""The Kafka bus takes its consumers' fetch wait from the settings."""

import pytest
from pydantic import ValidationError

from lockflow.common.bus.kafka import KafkaBus
from lockflow.common.runtime import build_adapters
from lockflow.common.settings import CommonSettings


def test_the_fetch_wait_comes_from_the_settings(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LOCKFLOW_KAFKA_FETCH_MAX_WAIT_MS", "40")
    settings = CommonSettings(
        mode="distributed", database_url=f"sqlite:///{tmp_path}/db.sqlite", home=tmp_path
    )
    bus = build_adapters(settings).bus
    assert isinstance(bus, KafkaBus)
    assert bus.fetch_max_wait_ms == 40


def test_the_default_fetch_wait_is_below_aiokafkas() -> None:
    assert CommonSettings().kafka_fetch_max_wait_ms == 100


@pytest.mark.parametrize("value", ["0", "5000"])
def test_a_fetch_wait_out_of_range_is_refused(value: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LOCKFLOW_KAFKA_FETCH_MAX_WAIT_MS", value)
    with pytest.raises(ValidationError):
        CommonSettings()
