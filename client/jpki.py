"""Host-side client of the JPKI-AP: certificates, PIN status, VERIFY, signing.

It reads certificates the way OpenSC and the other public clients do (by the DER
header, leaving the EF's filler unread) and signs by sending a DigestInfo with
``80 2A 00 80``, so what works here works on a real card.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import Enum

from cryptography import x509

from ..facts import jpki
from ..facts.digest_info import HASH_NAMES, encode_digest_info
from ..iso7816.apdu import CommandAPDU
from ..readers.base import CardConnection
from .commands import (
    CardCommandError,
    call,
    change_reference_data,
    pin_bytes,
    pin_tries_left,
    read_binary,
    read_tlv_object,
    select_df,
    select_ef,
    verify,
)


@dataclass(frozen=True, slots=True)
class KeyPair:
    """One of the two JPKI key pairs, with the EFs that make it up."""

    name: str
    certificate_ef: int
    ca_certificate_ef: int
    key_ef: int
    pin_ef: int
    pin_label: str


class JPKIKey(Enum):
    AUTH = KeyPair("auth", jpki.EF_AUTH_CERT, jpki.EF_AUTH_CA_CERT, jpki.EF_AUTH_KEY,
                   jpki.EF_AUTH_PIN, "user-authentication PIN")
    SIGN = KeyPair("sign", jpki.EF_SIGN_CERT, jpki.EF_SIGN_CA_CERT, jpki.EF_SIGN_KEY,
                   jpki.EF_SIGN_PIN, "signing password")

    @classmethod
    def named(cls, name: str) -> JPKIKey:
        for key in cls:
            if key.value.name == name:
                return key
        raise ValueError(f"unknown JPKI key {name!r}: use auth or sign")


def digest_info(message: bytes, hash_name: str = "sha256") -> bytes:
    """DER DigestInfo of ``message`` (what the card pads and signs)."""
    if hash_name not in HASH_NAMES:
        raise ValueError(f"unsupported hash {hash_name!r}")
    return encode_digest_info(hash_name, hashlib.new(hash_name, message).digest())


class JPKIClient:
    def __init__(self, connection: CardConnection) -> None:
        self.connection = connection
        select_df(connection, jpki.AID)

    def read_certificate_der(self, key: JPKIKey, *, ca: bool = False) -> bytes:
        """The DER certificate; the signing certificate needs ``verify(JPKIKey.SIGN, …)`` first."""
        select_ef(self.connection, key.value.ca_certificate_ef if ca else key.value.certificate_ef)
        return read_tlv_object(self.connection)

    def read_certificate(self, key: JPKIKey, *, ca: bool = False) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.read_certificate_der(key, ca=ca))

    def token_label(self) -> str:
        select_ef(self.connection, jpki.EF_TOKEN_INFO)
        return read_binary(self.connection, 0, 32).decode("ascii", "replace").rstrip(" \0")

    def has_sign_certificate(self) -> bool:
        select_ef(self.connection, jpki.EF_CERT_AVAILABILITY)
        return read_binary(self.connection, 0, 3)[0] == 0x8F

    def tries_left(self, key: JPKIKey) -> int:
        select_ef(self.connection, key.value.pin_ef)
        return pin_tries_left(self.connection)

    def verify(self, key: JPKIKey, pin: str) -> None:
        select_ef(self.connection, key.value.pin_ef)
        verify(self.connection, pin_bytes(pin, key.value.pin_label),
               f"VERIFY {key.value.pin_label}")

    def change_pin(self, key: JPKIKey, old: str, new: str) -> None:
        self.verify(key, old)
        change_reference_data(self.connection, pin_bytes(new, f"new {key.value.pin_label}"))

    def sign_digest_info(self, key: JPKIKey, info: bytes) -> bytes:
        """Sign a DigestInfo with the selected key (PIN verified beforehand)."""
        select_ef(self.connection, key.value.key_ef)
        response = call(self.connection, CommandAPDU(0x80, 0x2A, 0x00, 0x80, info, le=256),
                        f"COMPUTE DIGITAL SIGNATURE ({key.value.name})")
        if len(response.data) != jpki.SIGNATURE_LENGTH:
            raise CardCommandError(
                f"signature of {len(response.data)} bytes, expected {jpki.SIGNATURE_LENGTH}",
                response.sw)
        return response.data

    def sign(self, key: JPKIKey, message: bytes, pin: str, hash_name: str = "sha256") -> bytes:
        """VERIFY, then sign ``message`` (RSASSA-PKCS1-v1_5 with ``hash_name``)."""
        self.verify(key, pin)
        return self.sign_digest_info(key, digest_info(message, hash_name))
