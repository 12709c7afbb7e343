"""What a token verifier needs to know (LOCKFLOW_ prefix): whose tokens, the clock skew, the proxies.

A service that serves people extends these in its one settings class (the gateway's, the auth service's).
"""

from pydantic import Field, PrivateAttr, field_validator, model_validator

from lockflow.access.address import Network, parse_networks
from lockflow.common.settings import CommonSettings


class AccessSettings(CommonSettings):
    """The issuer and audience tokens must name, how long they live, and which proxies are believed."""

    issuer: str = "lockflow"
    audience: str = "lockflow-api"
    access_token_seconds: int = 300
    clock_skew_seconds: int = 30
    separation_of_duties: bool = True
    # Where a verifier in its own process fetches the auth service's public keys (distributed mode).
    jwks_url: str | None = None
    # Addresses or CIDR networks of reverse proxies whose X-Forwarded-For is believed; empty: none is.
    trusted_proxies: list[str] = Field(default_factory=list)
    _proxy_networks: tuple[Network, ...] = PrivateAttr(default=())

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        try:
            parse_networks(value)
        except ValueError as exc:
            raise ValueError(f"LOCKFLOW_TRUSTED_PROXIES: {exc}") from exc
        return [entry.strip() for entry in value]

    @model_validator(mode="after")
    def _networks(self) -> "AccessSettings":
        if not 30 <= self.access_token_seconds <= 3600:
            raise ValueError("LOCKFLOW_ACCESS_TOKEN_SECONDS must be between 30 and 3600 (short-lived)")
        self._proxy_networks = parse_networks(self.trusted_proxies)
        return self

    def proxy_networks(self) -> tuple[Network, ...]:
        """The trusted proxies as networks (an address is a network of one)."""
        return self._proxy_networks

    def token_state_ttl(self) -> int:
        """How long a revocation fact is kept in Redis: past the life of any token it could refuse."""
        return self.access_token_seconds + self.clock_skew_seconds + 60
