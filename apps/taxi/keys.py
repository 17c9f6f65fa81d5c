"""The city's マイタク keys, and the part of them a taxi terminal receives.

* ``admin``, ``receipt`` masters (32 bytes): each card gets ``diversify(master, …, rider
  id)``, so the city rederives any card's keys from the rider id and nothing per card is
  stored; the receipt key never leaves the city and the card.
* ``terminal`` master: installed in every card; a terminal receives only
  ``terminal_key(master, terminal id)`` (a stolen tablet authorises debits as itself only).
* ECDSA P-256 signing key: signs the eligibility records; terminals hold the public key, so
  they verify records but cannot make one.

Stored as one JSON file (hex) plus a PEM, mode 0600 in a directory the city keeps.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from ...errors import MynacardError
from ...facts import taxi

MASTERS_FILE, SIGNING_FILE = "masters.json", "record-signing.pem"
HALF = taxi.SIGNATURE_LENGTH // 2


class KeyFileError(MynacardError):
    """A key file is missing or malformed."""


def sign_record(key: ec.EllipticCurvePrivateKey, body: bytes) -> bytes:
    r, s = decode_dss_signature(key.sign(body, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(HALF, "big") + s.to_bytes(HALF, "big")


def record_signed_by(public_key: ec.EllipticCurvePublicKey, signed: bytes) -> bool:
    """Whether ``signed`` (record ‖ r ‖ s) carries a valid signature of the city."""
    body, signature = signed[:-taxi.SIGNATURE_LENGTH], signed[-taxi.SIGNATURE_LENGTH:]
    if len(signature) != taxi.SIGNATURE_LENGTH:
        return False
    der = encode_dss_signature(int.from_bytes(signature[:HALF], "big"),
                               int.from_bytes(signature[HALF:], "big"))
    try:
        public_key.verify(der, body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class CityKeys:
    admin_master: bytes
    terminal_master: bytes
    receipt_master: bytes
    signing_key: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls) -> CityKeys:
        return cls(secrets.token_bytes(32), secrets.token_bytes(taxi.KEY_LENGTH),
                   secrets.token_bytes(32), ec.generate_private_key(ec.SECP256R1()))

    def admin_key(self, rider_id: bytes) -> bytes:
        return taxi.diversify(self.admin_master, b"admin", rider_id)

    def receipt_key(self, rider_id: bytes) -> bytes:
        return taxi.diversify(self.receipt_master, b"receipt", rider_id)

    def terminal_key(self, terminal_id: bytes) -> bytes:
        return taxi.terminal_key(self.terminal_master, terminal_id)

    def sign(self, record: taxi.Eligibility) -> bytes:
        body = record.encode()
        return body + sign_record(self.signing_key, body)

    def public_pem(self) -> bytes:
        return self.signing_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        masters = {"admin": self.admin_master.hex(), "terminal": self.terminal_master.hex(),
                   "receipt": self.receipt_master.hex()}
        _write_private(directory / MASTERS_FILE, json.dumps(masters).encode())
        _write_private(directory / SIGNING_FILE, self.signing_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))

    @classmethod
    def load(cls, directory: Path) -> CityKeys:
        try:
            masters = json.loads((directory / MASTERS_FILE).read_text())
            key = serialization.load_pem_private_key((directory / SIGNING_FILE).read_bytes(),
                                                     None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError("the record-signing key is not an EC key")
            return cls(bytes.fromhex(masters["admin"]), bytes.fromhex(masters["terminal"]),
                       bytes.fromhex(masters["receipt"]), key)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeyFileError(f"city keys in {directory} cannot be read: {exc}") from None


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def load_public_key(pem: bytes) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise KeyFileError(f"city public key is not a PEM public key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise KeyFileError("city public key is not an EC key")
    return key
