"""Encryption at rest of source secrets (Fernet: AES-128-CBC + HMAC-SHA256)."""

import base64
import json

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

from lockflow.common.errors import LockflowError

_INFO = b"lockflow-source-secrets-v1"


class SecretsUnreadable(LockflowError):
    """Stored secrets cannot be decrypted with this key (the key changed)."""


def derive_key(secret: str) -> bytes:
    """A Fernet key derived from the server secret with HKDF-SHA256."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret.encode())
    return base64.urlsafe_b64encode(raw)


class SecretBox:
    """Encrypts and decrypts a dict of secret strings."""

    def __init__(self, *, sources_key: SecretStr | None, secret_key: SecretStr) -> None:
        key = (
            sources_key.get_secret_value().encode()
            if sources_key
            else derive_key(secret_key.get_secret_value())
        )
        self._fernet = Fernet(key)

    def seal(self, secrets: dict[str, str]) -> str | None:
        """The secrets as one token, or None when there are none."""
        if not secrets:
            return None
        return self._fernet.encrypt(json.dumps(secrets, sort_keys=True).encode()).decode()

    def open(self, token: str | None) -> dict[str, str]:
        """The secrets in a token."""
        if not token:
            return {}
        try:
            data: dict[str, str] = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise SecretsUnreadable(
                "the source's stored secrets cannot be decrypted with this server's key "
                "(LOCKFLOW_SOURCES_KEY or LOCKFLOW_SECRET_KEY changed); set the secrets again"
            ) from exc
        return data
