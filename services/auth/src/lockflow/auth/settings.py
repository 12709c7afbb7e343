"""Settings of the auth service (LOCKFLOW_ prefix): keys, token lifetimes, hashing cost, abuse limits.

What a verifier needs too (issuer, audience, skew, proxies) is lockflow.access.settings.
"""

from pathlib import Path

from pydantic import SecretStr, model_validator

from lockflow.access.settings import AccessSettings

# OWASP Password Storage Cheat Sheet, argon2id minimum: m=19 MiB, t=2, p=1.
OWASP_MIN_MEMORY_KIB = 19 * 1024
OWASP_MIN_TIME_COST = 2
OWASP_MIN_PARALLELISM = 1
# OWASP ASVS 2.2.1: no more than 100 failed attempts per hour on a single account.
OWASP_MAX_FAILURES_PER_HOUR = 100


class AuthSettings(AccessSettings):
    """How tokens are signed and checked, how passwords are hashed and how logins are throttled."""

    # PEM of the Ed25519 private key that signs new tokens (or a file holding it).
    # Where `python -m lockflow.auth.app` listens (`lockflow serve-auth` takes --host/--port instead).
    auth_host: str = "127.0.0.1"
    auth_port: int = 8001
    signing_key: SecretStr | None = None
    signing_key_file: Path | None = None
    # PEM files of public keys that signed tokens still in flight (kept through a rotation).
    previous_public_key_files: list[Path] = []
    refresh_token_seconds: int = 14 * 24 * 3600
    argon2_memory_kib: int = OWASP_MIN_MEMORY_KIB
    argon2_time_cost: int = OWASP_MIN_TIME_COST
    argon2_parallelism: int = OWASP_MIN_PARALLELISM
    password_min_length: int = 12
    password_max_length: int = 128
    login_body_max_bytes: int = 8 * 1024
    failures_per_account_per_hour: int = OWASP_MAX_FAILURES_PER_HOUR
    failures_per_address_per_hour: int = 300

    @model_validator(mode="after")
    def _check(self) -> "AuthSettings":
        if self.argon2_memory_kib < OWASP_MIN_MEMORY_KIB or self.argon2_time_cost < OWASP_MIN_TIME_COST:
            raise ValueError(
                f"LOCKFLOW_ARGON2_MEMORY_KIB/LOCKFLOW_ARGON2_TIME_COST below OWASP's argon2id minimum "
                f"({OWASP_MIN_MEMORY_KIB} KiB, time cost {OWASP_MIN_TIME_COST}): "
                f"got {self.argon2_memory_kib} KiB, {self.argon2_time_cost}"
            )
        if self.failures_per_account_per_hour > OWASP_MAX_FAILURES_PER_HOUR:
            raise ValueError(
                f"LOCKFLOW_FAILURES_PER_ACCOUNT_PER_HOUR may not exceed {OWASP_MAX_FAILURES_PER_HOUR}"
            )
        shared = self.environment == "production" or (
            self.environment != "development" and self.mode == "distributed"
        )
        if shared and self.signing_key is None and self.signing_key_file is None:
            # With replicas a generated key would differ per replica; one embedded process keeps its own.
            raise ValueError(
                f"LOCKFLOW_SIGNING_KEY or LOCKFLOW_SIGNING_KEY_FILE must be set when "
                f"LOCKFLOW_ENVIRONMENT={self.environment}"
            )
        return self

    def development_key_file(self) -> Path:
        """Where development mode keeps the key it generated, so restarts keep tokens valid."""
        return self.home / "auth" / "signing-key.pem"
