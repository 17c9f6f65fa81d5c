"""A library kiosk: the patron inserts a My Number card and types the user-authentication PIN;
the kiosk has the card sign a fresh challenge, checks the signature with the card's certificate
and asks a certificate checker (a relying party's validator) whether that certificate is good.

``TrustingKiosk`` carries a planted bug: it lets a patron in while the card's certificate is on
hold, i.e. while the card is reported lost.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from mynacard.client.commands import CardCommandError
from mynacard.client.jpki import JPKIClient, JPKIKey
from mynacard.readers import CardConnection

CertificateChecker = Callable[[x509.Certificate], Any]
"""Returns a result with ``.verdict.value`` ("valid", "on-hold", "revoked", "expired", …)."""


@dataclass(frozen=True)
class Decision:
    admitted: bool
    reason: str


class Kiosk:
    def __init__(self, check_certificate: CertificateChecker) -> None:
        self.check_certificate = check_certificate

    def acceptable(self, verdict: str) -> bool:
        return verdict == "valid"

    def lend(self, connection: CardConnection, pin: str) -> Decision:
        client = JPKIClient(connection)
        certificate = client.read_certificate(JPKIKey.AUTH)
        challenge = secrets.token_bytes(32)
        try:
            signature = client.sign(JPKIKey.AUTH, challenge, pin)
        except CardCommandError as exc:
            return Decision(False, f"the card refused: {exc}")
        try:
            certificate.public_key().verify(signature, challenge, padding.PKCS1v15(),
                                            hashes.SHA256())
        except InvalidSignature:
            return Decision(False, "the card's signature does not match its certificate")
        verdict = self.check_certificate(certificate).verdict.value
        if not self.acceptable(verdict):
            return Decision(False, f"certificate {verdict}")
        return Decision(True, "welcome")


class TrustingKiosk(Kiosk):
    """The planted bug: "on hold is only temporary", so a card reported lost still works."""

    def acceptable(self, verdict: str) -> bool:
        return verdict in ("valid", "on-hold")
