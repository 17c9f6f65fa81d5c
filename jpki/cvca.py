"""The simulator's CV hierarchy: the authority half of the 券面 APs' CV certificates.

Keys are generated on first use in ``<pki dir>/cvc/`` (private keys 0600, public keys beside,
the public ones being what a verifier holds as trust anchors). The certificate format and
the key IDs are facts (``facts.cvc``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..facts.cvc import (
    ROOTS,
    CVCAuthority,
    CVCError,
    CVCertificate,
    KeyId,
    municipality_key_id,
)
from ..fsutil import atomic_write
from .ca import new_rsa_key


@dataclass(frozen=True, slots=True)
class Issued:
    """A municipality key and the certificate its root issued for it."""

    authority: CVCAuthority
    certificate: CVCertificate


class SimulatorCVCA:
    """The simulator's CV hierarchy in a directory (private keys 0600, public keys beside).

    ``path`` None keeps the keys in memory only (throw-away hierarchies in tests).
    """

    def __init__(self, path: Path | None,
                 key_factory: Callable[[], rsa.RSAPrivateKey] = new_rsa_key) -> None:
        self.path = Path(path) if path is not None else None
        self._new_key = key_factory
        self._cache: dict[KeyId, CVCAuthority] = {}

    def _key(self, key_id: KeyId) -> CVCAuthority:
        cached = self._cache.get(key_id)
        if cached is not None:
            return cached
        if self.path is None:
            authority = self._cache[key_id] = CVCAuthority(key_id, self._new_key())
            return authority
        private = self.path / f"{key_id.number}-{key_id.group}.key.pem"
        if private.exists():
            try:
                loaded = serialization.load_pem_private_key(private.read_bytes(), None)
            except ValueError as exc:
                raise CVCError(f"{private} is not a PEM private key: {exc}") from None
            if not isinstance(loaded, rsa.RSAPrivateKey):
                raise CVCError(f"{private} is not an RSA key")
            key = loaded
        else:
            key = self._new_key()
            self.path.mkdir(parents=True, exist_ok=True)
            atomic_write(private, key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()), mode=0o600)
            atomic_write(self.path / f"{key_id.number}-{key_id.group}.pub.pem",
                         key.public_key().public_bytes(
                             serialization.Encoding.PEM,
                             serialization.PublicFormat.SubjectPublicKeyInfo))
        authority = self._cache[key_id] = CVCAuthority(key_id, key)
        return authority

    def root(self, key_id: KeyId) -> CVCAuthority:
        if key_id not in ROOTS:
            raise CVCError(f"{key_id} is not a simulator root")
        return self._key(key_id)

    def municipality(self, root: KeyId, municipality_code: str) -> Issued:
        authority = self._key(municipality_key_id(root, municipality_code))
        # Re-certifying is deterministic (PKCS#1 v1.5), so nothing needs storing.
        return Issued(authority, self.root(root).certify(authority.key_id,
                                                          authority.key.public_key()))

    def trust_anchors(self) -> dict[KeyId, rsa.RSAPublicKey]:
        return {key_id: self.root(key_id).key.public_key() for key_id in ROOTS}

