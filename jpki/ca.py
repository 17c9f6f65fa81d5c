"""The simulator's issuing CAs and card-certificate issuance.

``SimulatorPKI`` is the entry point card issuance uses: it holds one signing CA
and one user-authentication CA (the current generation of each) and issues the
two end-entity certificates of a card.
"""

from __future__ import annotations

import datetime as dt
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from fsutil import atomic_write
from jpki.profile import (
    AUTH_CA,
    SIGN_CA,
    CAKind,
    EndEntityRequest,
    build_auth_certificate,
    build_ca_certificate,
    build_sign_certificate,
    certificate_expiry,
)
from jpki.resident import Resident

CA_VALIDITY = dt.timedelta(days=3652)
CA_BACKDATE = dt.timedelta(days=3 * 365)
"""New simulator CAs start this far in the past, so personas with past issue dates work."""


class PKIStoreError(Exception):
    """The PKI directory is missing, unreadable or inconsistent."""


class IssuanceError(ValueError):
    """The CA cannot issue what was asked (e.g. a date outside its own validity)."""


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def random_serial() -> int:
    """A positive serial of at most 64 bits (RFC 5280 allows 20 octets)."""
    return secrets.randbits(63) | 1 << 62


@dataclass(frozen=True, slots=True)
class CertificateAuthority:
    kind: CAKind
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @classmethod
    def create(cls, kind: CAKind, now: dt.datetime) -> CertificateAuthority:
        key = new_rsa_key()
        start = now - CA_BACKDATE
        cert = build_ca_certificate(kind, key, random_serial(), start, start + CA_VALIDITY)
        return cls(kind, key, cert)


@dataclass(frozen=True, slots=True)
class CardCertificates:
    auth: x509.Certificate
    sign: x509.Certificate | None
    auth_ca: x509.Certificate
    sign_ca: x509.Certificate


def _auth_identifier(municipality_code: str) -> str:
    """An opaque 23-character CN shaped like test cards' (e.g. ``997794E9AGCIEG13221003A``)."""
    hexpart = secrets.token_hex(4).upper()
    letters = "".join(secrets.choice(string.ascii_uppercase) for _ in range(6))
    return f"{hexpart}{letters}{municipality_code}{secrets.randbelow(1000):03d}A"


def _sign_common_name(now: dt.datetime, municipality_code: str) -> str:
    """Issuance-request timestamp ‖ 5-digit sequence ‖ reception-window code (facts §11.2)."""
    stamp = now.astimezone(dt.timezone(dt.timedelta(hours=9))).strftime("%Y%m%d%H%M%S")
    return f"{stamp}{secrets.randbelow(100000):05d}{municipality_code}001"


class SimulatorPKI:
    """A directory holding one signing CA and one auth CA (PEM files)."""

    def __init__(self, sign_ca: CertificateAuthority, auth_ca: CertificateAuthority,
                 path: Path | None = None) -> None:
        self.sign_ca = sign_ca
        self.auth_ca = auth_ca
        self.path = path

    @classmethod
    def create(cls, now: dt.datetime | None = None) -> SimulatorPKI:
        now = now or dt.datetime.now(dt.UTC)
        return cls(CertificateAuthority.create(SIGN_CA, now),
                   CertificateAuthority.create(AUTH_CA, now))

    @classmethod
    def load_or_create(cls, path: Path) -> SimulatorPKI:
        path = Path(path)
        if not (path / f"{SIGN_CA.key}-ca.crt").exists():
            pki = cls.create()
            pki.path = path
            pki.save()
            return pki
        try:
            return cls(_load_ca(path, SIGN_CA), _load_ca(path, AUTH_CA), path)
        except (OSError, ValueError) as exc:
            raise PKIStoreError(f"cannot load the CAs in {path}: {exc}") from exc

    def save(self) -> None:
        if self.path is None:
            raise PKIStoreError("this PKI has no directory")
        self.path.mkdir(parents=True, exist_ok=True)
        for ca in (self.sign_ca, self.auth_ca):
            key_pem = ca.key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption())
            atomic_write(self.path / f"{ca.kind.key}-ca.key", key_pem, mode=0o600)
            atomic_write(self.path / f"{ca.kind.key}-ca.crt",
                          ca.certificate.public_bytes(serialization.Encoding.PEM))

    def issue_card_certificates(
        self, resident: Resident, auth_key: rsa.RSAPublicKey, sign_key: rsa.RSAPublicKey | None,
        issued: dt.datetime, card_expiry: dt.date,
    ) -> CardCertificates:
        """Both certificates of a card; ``sign_key`` None for those not given one (under-15s)."""
        for ca in (self.auth_ca, self.sign_ca):
            start, end = ca.certificate.not_valid_before_utc, ca.certificate.not_valid_after_utc
            if not start <= issued <= end:
                raise IssuanceError(f"issue time {issued:%Y-%m-%d} is outside the {ca.kind.key} "
                                    f"CA's validity ({start:%Y-%m-%d} – {end:%Y-%m-%d})")
        not_after = certificate_expiry(issued.date(), resident.birth_date, card_expiry)
        auth = build_auth_certificate(
            _auth_identifier(resident.municipality_code), auth_key,
            self.auth_ca.certificate, self.auth_ca.key,
            EndEntityRequest(random_serial(), issued, not_after))
        sign = None
        if sign_key is not None:
            sign = build_sign_certificate(
                resident, _sign_common_name(issued, resident.municipality_code), sign_key,
                self.sign_ca.certificate, self.sign_ca.key,
                EndEntityRequest(random_serial(), issued, not_after))
        return CardCertificates(auth, sign, self.auth_ca.certificate, self.sign_ca.certificate)


def _load_ca(path: Path, kind: CAKind) -> CertificateAuthority:
    key = serialization.load_pem_private_key((path / f"{kind.key}-ca.key").read_bytes(), None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{kind.key} CA key is not RSA")
    cert = x509.load_pem_x509_certificate((path / f"{kind.key}-ca.crt").read_bytes())
    return CertificateAuthority(kind, key, cert)

