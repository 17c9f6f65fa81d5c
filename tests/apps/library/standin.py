"""A stand-in for ``client.recipes`` (built on another branch), for these tests ONLY.

It implements the service's ``CardChecks`` against the simulator: strict enrolment VERIFYs the
PIN and has the card sign a fresh challenge, checked with the certificate's key; both paths
read the certificate's status from the test's own PKI store (the real recipes check the chain
and CRL/OCSP instead). Once ``client.recipes`` lands these tests can switch to
``RecipeChecks`` without touching the service.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from mynacard.client.commands import PinBlockedError, WrongPinError
from mynacard.client.jpki import JPKIClient, JPKIKey
from mynacard.errors import MynacardError
from mynacard.jpki.ca import SimulatorPKI
from mynacard.jpki.store import Status


class Refused(MynacardError):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Identity:
    issuer_key_id: bytes
    serial: int
    not_after: dt.datetime
    card_serial: str | None = None   # the stand-in does not read the chip

    @property
    def link_key(self) -> str:
        return f"{self.issuer_key_id.hex()}:{self.serial:x}"


@dataclass
class StandInChecks:
    pki: SimulatorPKI
    face_auth: bool = False          # the card stands for a 顔認証 card (no PIN can work)
    terminal_id: str = "counter-1"

    def _checked(self, cert: x509.Certificate) -> Identity:
        status = self.pki.store.certificate(cert.serial_number).status
        if status is Status.HOLD:
            raise Refused("on-hold", "this card is suspended (一時停止中のカードです)")
        if status is not Status.GOOD:
            raise Refused("revoked", "this card's certificate is revoked (利用停止中)")
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        return Identity(aki.key_identifier, cert.serial_number, cert.not_valid_after_utc)

    def enrol(self, connection, pin: str) -> Identity:  # noqa: ANN001
        if self.face_auth:
            raise Refused("no-pin", "顔認証マイナンバーカードでは登録できません: ask staff to "
                          "enrol you with an identity document")
        client = JPKIClient(connection)
        cert = client.read_certificate(JPKIKey.AUTH)
        challenge = os.urandom(32) + self.terminal_id.encode()
        try:
            signature = client.sign(JPKIKey.AUTH, challenge, pin)
        except WrongPinError as error:
            raise Refused("wrong-pin", str(error)) from error
        except PinBlockedError as error:
            raise Refused("pin-blocked", str(error)) from error
        cert.public_key().verify(signature, challenge, padding.PKCS1v15(), hashes.SHA256())
        return self._checked(cert)

    def tap(self, connection) -> Identity:  # noqa: ANN001
        return self._checked(JPKIClient(connection).read_certificate(JPKIKey.AUTH))

    def not_enrolled(self, message: str) -> Refused:
        return Refused("not-enrolled", message)

    def not_genuine(self, message: str) -> Refused:
        return Refused("not-genuine", message)
