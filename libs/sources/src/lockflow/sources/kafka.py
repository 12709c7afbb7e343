"""A stream source's Kafka security: as StreamSpec.security carries it (sealed), and as client options.

`StreamSpec.security` travels on the bus, so it holds the public settings (as the registry stores them)
and, under "sealed", the registry's own Fernet token of the source's secrets (`security.sasl_password`,
`schema_registry_password`), never a password in clear. Whoever connects (the stream worker) opens it
with `opened_security` (and `opened_registry_auth`) and the sources' key, then passes `aiokafka_options`
to its clients.
"""

from __future__ import annotations

from typing import Any

from lockflow.sources.configs import KafkaSecurity, StreamConfig
from lockflow.sources.secrets import SecretBox

SEALED = "sealed"  # the key in StreamSpec.security holding the registry's token of the source's secrets
PASSWORD = "security.sasl_password"  # the password's path among a stream source's secrets
REGISTRY_PASSWORD = "schema_registry_password"  # the schema registry's password's path among them


def sealed_security(public_security: dict[str, Any], secrets_token: str | None) -> dict[str, Any]:
    """StreamSpec.security: the stored public settings and the stored (sealed) secrets token."""
    return {**{k: v for k, v in public_security.items() if k != "sasl_password"}, SEALED: secrets_token}


def opened_security(security: dict[str, Any], box: SecretBox) -> KafkaSecurity:
    """StreamSpec.security back as the typed settings, the password unsealed."""
    public = {k: v for k, v in security.items() if k not in (SEALED, "sasl_password")}
    password = box.open(security.get(SEALED)).get(PASSWORD)
    return KafkaSecurity.model_validate({**public, "sasl_password": password})


def opened_registry_auth(
    username: str | None, security: dict[str, Any], box: SecretBox
) -> tuple[str, str] | None:
    """The schema registry's basic auth (StreamSpec's user, its password unsealed), when it has one."""
    if username is None:
        return None
    password = box.open(security.get(SEALED)).get(REGISTRY_PASSWORD)
    if password is None:
        raise ValueError("the stream names a schema registry user but its sealed secrets hold no password")
    return username, password


def aiokafka_options(security: KafkaSecurity) -> dict[str, Any]:
    """Keyword arguments for an aiokafka client (consumer, producer, admin) with these settings."""
    options: dict[str, Any] = {"security_protocol": security.security_protocol}
    if security.security_protocol.endswith("SSL"):
        from aiokafka.helpers import create_ssl_context  # only TLS streams need it

        options["ssl_context"] = (
            create_ssl_context(cadata=security.ssl_ca_pem) if security.ssl_ca_pem else create_ssl_context()
        )
    if security.security_protocol.startswith("SASL_"):
        options["sasl_mechanism"] = security.sasl_mechanism
        options["sasl_plain_username"] = security.sasl_username
        options["sasl_plain_password"] = (
            security.sasl_password.get_secret_value() if security.sasl_password else None
        )
    return options


def librdkafka_options(security: KafkaSecurity) -> dict[str, str]:
    """The same settings as librdkafka configuration properties (confluent-kafka's clients)."""
    options: dict[str, str] = {"security.protocol": security.security_protocol}
    if security.security_protocol.endswith("SSL") and security.ssl_ca_pem:
        options["ssl.ca.pem"] = security.ssl_ca_pem
    if security.security_protocol.startswith("SASL_"):
        options["sasl.mechanism"] = str(security.sasl_mechanism)
        options["sasl.username"] = str(security.sasl_username)
        options["sasl.password"] = security.sasl_password.get_secret_value() if security.sasl_password else ""
    return options


def consumer_group(config: StreamConfig, source_id: str) -> str:
    """The stream's consumer group: the configured one, or lockflow.stream.<source id>."""
    return config.consumer_group or f"lockflow.stream.{source_id}"
