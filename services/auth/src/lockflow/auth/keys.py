"""Signing keys: the active Ed25519 key, older public keys kept through a rotation, and the JWKS."""

import base64
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from lockflow.auth.settings import AuthSettings
from lockflow.common.errors import InvalidInput


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(public: Ed25519PublicKey) -> dict[str, str]:
    """The public key as an OKP JWK with its RFC 7638 thumbprint as `kid`."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    members = {"crv": "Ed25519", "kty": "OKP", "x": _b64(raw)}
    thumbprint = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode())
    return {**members, "kid": _b64(thumbprint.digest()), "alg": "EdDSA", "use": "sig"}


def generate_private_pem() -> bytes:
    """A new Ed25519 private key as unencrypted PKCS#8 PEM."""
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_private(pem: bytes) -> Ed25519PrivateKey:
    """Parse a PEM private key; only Ed25519 is accepted."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"the signing key is not a readable PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput("the signing key must be an Ed25519 key (tokens are signed with EdDSA)")
    return key


def load_public(pem: bytes) -> Ed25519PublicKey:
    """Parse a PEM public key; only Ed25519 is accepted."""
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidInput("a verification key must be an Ed25519 public key")
    return key


def public_pem(key: Ed25519PrivateKey) -> bytes:
    """The PEM of a private key's public half."""
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@dataclass
class KeyRing:
    """The key that signs now and every public key a token in flight may have been signed with."""

    signing: Ed25519PrivateKey
    kid: str = ""
    verifying: dict[str, Ed25519PublicKey] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.kid = public_jwk(self.signing.public_key())["kid"]
        self.verifying.setdefault(self.kid, self.signing.public_key())

    def add_public(self, public: Ed25519PublicKey) -> None:
        """Keep verifying tokens signed by an older key."""
        self.verifying[public_jwk(public)["kid"]] = public

    def rotate(self, new_signing: Ed25519PrivateKey) -> None:
        """Sign with a new key from now on; tokens signed by the old one stay valid until they expire."""
        self.signing = new_signing
        self.__post_init__()

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set of every verification key, the active one first."""
        ordered = [self.kid, *(k for k in self.verifying if k != self.kid)]
        return {"keys": [public_jwk(self.verifying[k]) for k in ordered]}


def _key_pem(settings: AuthSettings) -> bytes:
    if settings.signing_key is not None:
        return settings.signing_key.get_secret_value().encode()
    if settings.signing_key_file is not None:
        return settings.signing_key_file.read_bytes()
    # Development only (the settings refuse this elsewhere): one key per home, created once.
    path = settings.development_key_file()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(generate_private_pem())
    return path.read_bytes()


def keyring_from_settings(settings: AuthSettings) -> KeyRing:
    """The key ring the settings describe."""
    ring = KeyRing(signing=load_private(_key_pem(settings)))
    for file in settings.previous_public_key_files:
        ring.add_public(load_public(Path(file).read_bytes()))
    return ring
