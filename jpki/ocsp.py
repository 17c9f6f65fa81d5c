"""The OCSP responder (RFC 6960) over the PKI store.

Requests are matched to a CA generation by the issuer key hash, so a serial is looked up under
the generation that issued it even though all generations share a DN. Responses are signed by
that generation's delegated responder, whose certificate (id-kp-OCSPSigning, id-pkix-ocsp-nocheck)
travels in the response. A configured failure mode answers tryLater or unauthorized instead.
"""

from __future__ import annotations

import datetime as dt
import threading
from enum import Enum

from asn1crypto import core as asn1_core
from asn1crypto import ocsp as asn1_ocsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import ocsp

from ..clock import Clock
from .ca import SimulatorPKI
from .certid import key_hash, name_hash
from .profile import CA_KINDS
from .store import Status, StoreError

RESPONSE_VALIDITY = dt.timedelta(hours=1)


class FailureMode(Enum):
    NONE = "none"
    TRY_LATER = "trylater"
    UNAUTHORIZED = "unauthorized"


class OCSPResponder:
    """Answers with producedAt = thisUpdate = ``clock()``: by default the PKI's own clock, so a
    frozen ``VirtualClock`` moves CRLs and OCSP answers together."""

    def __init__(self, pki: SimulatorPKI, *, clock: Clock | None = None,
                 failure: FailureMode = FailureMode.NONE,
                 validity: dt.timedelta = RESPONSE_VALIDITY) -> None:
        self.pki = pki
        self.clock = clock if clock is not None else pki.clock
        self.failure = failure
        self.validity = validity
        # One store connection serves every HTTP thread.
        self._lock = threading.Lock()

    def respond(self, request_der: bytes) -> bytes:
        return self.response(request_der).public_bytes(serialization.Encoding.DER)

    def response(self, request_der: bytes) -> ocsp.OCSPResponse:
        with self._lock:
            return self._response(request_der)

    def _response(self, request_der: bytes) -> ocsp.OCSPResponse:
        if self.failure is FailureMode.TRY_LATER:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.TRY_LATER)
        if self.failure is FailureMode.UNAUTHORIZED:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.UNAUTHORIZED)
        try:
            request = ocsp.load_der_ocsp_request(request_der)
            algorithm = request.hash_algorithm
            nonce = None
            for ext in request.extensions:
                if isinstance(ext.value, x509.OCSPNonce):
                    nonce = ext.value.nonce
        except ValueError:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        for kind in CA_KINDS.values():
            for ca in self.pki.generations(kind):
                if (key_hash(ca.certificate, algorithm) == request.issuer_key_hash
                        and name_hash(ca.certificate, algorithm) == request.issuer_name_hash):
                    return self._answer(request, kind, ca.generation, algorithm, nonce)
        # Not a CA we answer for (RFC 6960 §2.3).
        return ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)

    def _answer(self, request: ocsp.OCSPRequest, kind, generation: int,
                algorithm: hashes.HashAlgorithm, nonce: bytes | None) -> ocsp.OCSPResponse:
        now = self.clock().astimezone(dt.UTC).replace(microsecond=0)
        status, revoked_at, reason = ocsp.OCSPCertStatus.UNKNOWN, None, None
        try:
            record = self.pki.store.certificate(request.serial_number, kind.key)
        except StoreError:
            record = None
        if record is not None and record.generation == generation:
            if record.status in (Status.REVOKED, Status.HOLD):
                status = ocsp.OCSPCertStatus.REVOKED
                revoked_at = (record.revoked_at or now).replace(microsecond=0)
                reason = record.reason
            else:
                status = ocsp.OCSPCertStatus.GOOD
        responder = self.pki.responder(kind, generation)
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(request.issuer_name_hash, request.issuer_key_hash,
                                  request.serial_number, algorithm, status, now,
                                  now + self.validity, revoked_at, reason)
            .responder_id(ocsp.OCSPResponderEncoding.HASH, responder.certificate)
            .certificates([responder.certificate])
        )
        if nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        signed = builder.sign(responder.key, hashes.SHA256())
        return ocsp.load_der_ocsp_response(pin_produced_at(
            signed.public_bytes(serialization.Encoding.DER), responder.key, now))


def pin_produced_at(der: bytes, key: rsa.RSAPrivateKey, when: dt.datetime) -> bytes:
    """Set a signed response's producedAt to ``when`` and re-sign it (SHA-256, PKCS#1 v1.5).

    cryptography's builder stamps producedAt with the system time and offers no setter; a
    responder on a virtual clock must say the same instant in producedAt and thisUpdate."""
    response = asn1_ocsp.OCSPResponse.load(der)
    basic = response["response_bytes"]["response"].parsed
    tbs = basic["tbs_response_data"]
    tbs["produced_at"] = asn1_core.GeneralizedTime(when.astimezone(dt.UTC))
    basic["signature"] = key.sign(tbs.dump(force=True), padding.PKCS1v15(), hashes.SHA256())
    response["response_bytes"]["response"] = asn1_core.ParsableOctetString(basic.dump(force=True))
    return response.dump(force=True)
