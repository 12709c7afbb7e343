"""A stream source's Kafka security: as StreamSpec.security carries it (sealed), and as client options.

`StreamSpec.security` travels on the bus, so it holds the public settings and the SASL password sealed
with the sources' key (the same Fernet box as the registry's secrets), never in clear. Whoever connects
(the ingest service's sampler, the stream worker) opens it with `aiokafka_options`.
"""

from __future__ import annotations

from typing import Any

from lockflow.sources.configs import KafkaSecurity, StreamConfig
from lockflow.sources.secrets import SecretBox

SEALED = "sealed"  # the key in StreamSpec.security holding the sealed {"sasl_password": ...}


def sealed_security(config: StreamConfig, box: SecretBox) -> dict[str, Any]:
    """The security settings for StreamSpec.security: public fields, the password sealed."""
    security = config.security
    shown = security.model_dump(mode="json", exclude={"sasl_password"})
    secret = {"sasl_password": security.sasl_password.get_secret_value()} if security.sasl_password else {}
    shown[SEALED] = box.seal(secret)
    return shown


def opened_security(security: dict[str, Any], box: SecretBox) -> KafkaSecurity:
    """StreamSpec.security back as the typed settings, the password unsealed."""
    public = {k: v for k, v in security.items() if k != SEALED}
    return KafkaSecurity.model_validate({**public, **box.open(security.get(SEALED))})


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


def consumer_group(config: StreamConfig, source_id: str) -> str:
    """The stream's consumer group: the configured one, or lockflow.stream.<source id>."""
    return config.consumer_group or f"lockflow.stream.{source_id}"
