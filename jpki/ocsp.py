"""The OCSP responder (RFC 6960) over the PKI store.

Requests are matched to a CA generation by the issuer key hash, so a serial is looked up under
the generation that issued it even though all generations share a DN. Responses are signed by
that generation's delegated responder, whose certificate (id-kp-OCSPSigning, id-pkix-ocsp-nocheck)
travels in the response. A configured failure mode answers tryLater or unauthorized instead.

Private keys are parsed once per CA generation (a PEM load costs far more than the signature);
everything that can change while the server runs — the certificate status, new generations after
a rollover — is read from the store on every request.
"""

from __future__ import annotations

import datetime as dt
import threading
from enum import Enum

from asn1crypto import core as asn1_core
from asn1crypto import ocsp as asn1_ocsp
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import ocsp

from ..clock import Clock
from .ca import Responder, SimulatorPKI
from .certid import key_hash, name_hash
from .profile import CAKind
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
        # One store connection serves every HTTP thread; the lock also guards the caches.
        self._lock = threading.Lock()
        # Both caches are keyed by the CA certificate's DER, so a store whose generation 1 is a
        # different CA (re-created under the server) can never be answered with a stale key.
        self._certid_hashes: dict[tuple[bytes, str], tuple[bytes, bytes]] = {}
        self._responders: dict[bytes, Responder] = {}

    def respond(self, request_der: bytes) -> bytes:
        return self.response(request_der).public_bytes(serialization.Encoding.DER)

    def response(self, request_der: bytes) -> ocsp.OCSPResponse:
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
        except (ValueError, NotImplementedError, UnsupportedAlgorithm):
            # Garbage, several CertIDs (unsupported by cryptography) or an unknown hash.
            return ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        with self._lock:
            found = self._issuer(request, algorithm)
            if found is None:
                # Not a CA we answer for (RFC 6960 §2.3).
                return ocsp.OCSPResponseBuilder.build_unsuccessful(
                    ocsp.OCSPResponseStatus.UNAUTHORIZED)
            kind, generation, ca_der = found
            status = self._status(request.serial_number, kind, generation)
            responder = self._responder(kind, generation, ca_der)
        # Signed outside the lock: the store is not needed any more.
        return self._sign(request, algorithm, nonce, status, responder)

    def _issuer(self, request: ocsp.OCSPRequest,
                algorithm: hashes.HashAlgorithm) -> tuple[CAKind, int, bytes] | None:
        """The generation whose name and key hashes the request names, re-read from the store."""
        wanted = (request.issuer_name_hash, request.issuer_key_hash)
        for kind, generation, ca_der in self.pki.generation_certificates():
            hashes_key = (ca_der, algorithm.name)
            if hashes_key not in self._certid_hashes:
                certificate = x509.load_der_x509_certificate(ca_der)
                self._certid_hashes[hashes_key] = (name_hash(certificate, algorithm),
                                                   key_hash(certificate, algorithm))
            if self._certid_hashes[hashes_key] == wanted:
                return kind, generation, ca_der
        return None

    def _status(self, serial: int, kind: CAKind, generation: int
                ) -> tuple[ocsp.OCSPCertStatus, dt.datetime | None, x509.ReasonFlags | None]:
        try:
            record = self.pki.store.certificate(serial, kind.key)
        except StoreError:
            return ocsp.OCSPCertStatus.UNKNOWN, None, None
        if record.generation != generation:
            return ocsp.OCSPCertStatus.UNKNOWN, None, None
        if record.status in (Status.REVOKED, Status.HOLD):
            return ocsp.OCSPCertStatus.REVOKED, record.revoked_at, record.reason
        return ocsp.OCSPCertStatus.GOOD, None, None

    def _responder(self, kind: CAKind, generation: int, ca_der: bytes) -> Responder:
        if ca_der not in self._responders:
            self._responders[ca_der] = self.pki.responder(kind, generation)
        return self._responders[ca_der]

    def _sign(self, request: ocsp.OCSPRequest, algorithm: hashes.HashAlgorithm,
              nonce: bytes | None,
              status: tuple[ocsp.OCSPCertStatus, dt.datetime | None, x509.ReasonFlags | None],
              responder: Responder) -> ocsp.OCSPResponse:
        now = self.clock().astimezone(dt.UTC).replace(microsecond=0)
        cert_status, revoked_at, reason = status
        if cert_status is ocsp.OCSPCertStatus.REVOKED:
            revoked_at = (revoked_at or now).replace(microsecond=0)
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(request.issuer_name_hash, request.issuer_key_hash,
                                  request.serial_number, algorithm, cert_status, now,
                                  now + self.validity, revoked_at, reason)
            .responder_id(ocsp.OCSPResponderEncoding.HASH, responder.certificate)
            .certificates([responder.certificate])
        )
        if nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        signed = builder.sign(responder.key, hashes.SHA256())
        if signed.produced_at_utc == now:
            # On the system clock the builder's own stamp is already right (a second boundary
            # aside): signing twice would halve the responder's throughput.
            return signed
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
