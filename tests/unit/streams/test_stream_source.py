"""The `stream` source type: every source kind has a config type, checks, a label and a connector."""

from typing import get_args

import pytest
from pydantic import SecretStr

from lockflow.common.errors import InvalidInput
from lockflow.common.models import SourceKind
from lockflow.ingest.conn_kafka import KafkaConnector
from lockflow.ingest.connections import build_connector
from lockflow.sources.checks import check_config, label_of
from lockflow.sources.configs import (
    CONFIG_TYPES,
    ConfigInvalid,
    StreamConfig,
    masked,
    parse_config,
    split_secrets,
)
from lockflow.sources.kafka import aiokafka_options, opened_security, sealed_security
from lockflow.sources.secrets import SecretBox
from lockflow.sources.settings import SourceSettings

SASL = {
    "security_protocol": "SASL_PLAINTEXT",
    "sasl_mechanism": "SCRAM-SHA-256",
    "sasl_username": "producer",
    "sasl_password": "s3cret",
}
BASE = {"bootstrap_servers": "127.0.0.1:9092", "topic": "orders", "event_time_field": "ts"}


def test_every_source_kind_has_a_config_type_and_the_stream_kind_is_one() -> None:
    assert set(get_args(SourceKind)) == set(CONFIG_TYPES)
    assert CONFIG_TYPES["stream"] is StreamConfig


def test_the_sasl_password_is_a_secret_split_out_masked_and_sealed_for_the_worker() -> None:
    config = parse_config("stream", {**BASE, "security": SASL})
    public, secrets = split_secrets(config)
    assert secrets == {"security.sasl_password": "s3cret"}
    assert public["security"]["sasl_password"] is None
    assert masked("stream", public, list(secrets))["security"]["sasl_password"] == "********"
    box = SecretBox(sources_key=None, secret_key=SecretStr("k" * 32))
    carried = sealed_security(public["security"], box.seal(secrets))
    assert "s3cret" not in str(carried) and carried["sasl_username"] == "producer"
    options = aiokafka_options(opened_security(carried, box))
    assert options == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "producer",
        "sasl_plain_password": "s3cret",
    }


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"security": {"security_protocol": "SASL_SSL"}}, "security", "needs sasl_mechanism"),
        (
            {"security": {"ssl_ca_pem": "-----BEGIN CERTIFICATE-----"}},
            "security",
            "needs security_protocol SSL",
        ),
        ({"bootstrap_servers": "kafka"}, "bootstrap_servers", "is not host:port"),
        ({"topic": "a topic"}, "topic", "should match pattern"),
        ({"window_seconds": 0}, "window_seconds", "greater than or equal to 1"),
        ({"unapproved_mode": "drop"}, "unapproved_mode", "'hold' or 'pass'"),
    ],
)
def test_a_bad_stream_config_names_its_field(changes: dict, field: str, message: str) -> None:
    with pytest.raises(ConfigInvalid) as caught:
        parse_config("stream", {**BASE, **changes})
    assert any(e["field"] == field and message in e["message"] for e in caught.value.errors), (
        caught.value.errors
    )


def test_the_brokers_must_be_hosts_the_network_policy_allows() -> None:
    settings = SourceSettings(allow_hosts=[])
    with pytest.raises(InvalidInput):
        check_config(parse_config("stream", BASE), settings)
    allowed = SourceSettings(allow_hosts=["127.0.0.1"])
    config = parse_config("stream", BASE)
    check_config(config, allowed)
    assert label_of(config, allowed) == "kafka://127.0.0.1:9092/orders"
    assert isinstance(build_connector(config, allowed), KafkaConnector)
