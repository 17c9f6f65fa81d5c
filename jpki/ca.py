"""The simulator's issuing CAs, their key generations, and card-certificate issuance.

``SimulatorPKI`` is the entry point card issuance uses. It sits on a ``PKIStore`` and holds,
for the signing CA and the user-authentication CA, every key generation (all with one DN, as
J-LIS's 2015/2019/2023 roots), the self-issued link certificates between consecutive
generations, and one delegated OCSP responder per generation. New certificates come from the
current (newest) generation; each generation keeps signing the CRLs of what it issued.
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

from ..clock import Clock, system_clock
from ..errors import MynacardError
from ..facts.person import Resident
from .profile import (
    AUTH_CA,
    CA_KINDS,
    SIGN_CA,
    CAKind,
    EndEntityRequest,
    build_auth_certificate,
    build_ca_certificate,
    build_link_certificate,
    build_responder_certificate,
    build_sign_certificate,
)
from .store import PKIStore, Role, StoreError

CA_VALIDITY = dt.timedelta(days=3652)
CA_BACKDATE = dt.timedelta(days=3 * 365)
"""A new store's first CA generations start this far in the past, so personas with past issue
dates work; later generations start at their rollover."""
RESPONDER_VALIDITY = dt.timedelta(days=3652)
DEFAULT_BASE_URL = "http://127.0.0.1:8780"
STORE_FILENAME = "pki.sqlite3"

class IssuanceError(MynacardError, ValueError):
    """The CA cannot issue what was asked (e.g. a date outside its own validity)."""


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def random_serial() -> int:
    """A positive serial of at most 64 bits (RFC 5280 allows 20 octets)."""
    return secrets.randbits(63) | 1 << 62


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load_key(pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise StoreError("a CA key in the store is not RSA")
    return key


@dataclass(frozen=True, slots=True)
class CertificateAuthority:
    kind: CAKind
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    generation: int = 1

    @classmethod
    def create(cls, kind: CAKind, now: dt.datetime, generation: int = 1,
               start: dt.datetime | None = None) -> CertificateAuthority:
        """A new self-signed generation, valid from ``start`` (default: ``now`` back-dated)."""
        key = new_rsa_key()
        start = start if start is not None else now - CA_BACKDATE
        cert = build_ca_certificate(kind, key, random_serial(), start, start + CA_VALIDITY)
        return cls(kind, key, cert, generation)


@dataclass(frozen=True, slots=True)
class Responder:
    """The delegated OCSP responder of one CA generation."""

    kind: CAKind
    generation: int
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate


@dataclass(frozen=True, slots=True)
class CardCertificates:
    auth: x509.Certificate
    sign: x509.Certificate | None
    auth_ca: x509.Certificate
    sign_ca: x509.Certificate
    card_id: str | None = None


def _auth_identifier(municipality_code: str) -> str:
    """An opaque 23-character CN shaped like test cards' (e.g. ``997794E9AGCIEG13221003A``)."""
    hexpart = secrets.token_hex(4).upper()
    letters = "".join(secrets.choice(string.ascii_uppercase) for _ in range(6))
    return f"{hexpart}{letters}{municipality_code}{secrets.randbelow(1000):03d}A"


def _sign_common_name(now: dt.datetime, municipality_code: str) -> str:
    """Issuance-request timestamp ‖ 5-digit sequence ‖ reception-window code (facts §11.2)."""
    stamp = now.astimezone(dt.timezone(dt.timedelta(hours=9))).strftime("%Y%m%d%H%M%S")
    return f"{stamp}{secrets.randbelow(100000):05d}{municipality_code}001"


def store_path(path: Path | str) -> Path:
    """A directory gets ``pki.sqlite3`` inside it; anything with a suffix is the file itself."""
    path = Path(path)
    if path.suffix in (".sqlite3", ".sqlite", ".db"):
        return path
    return path / STORE_FILENAME


class SimulatorPKI:
    """Both JPKI CAs with all their generations, backed by a ``PKIStore``.

    ``clock`` is what "now" means to this PKI and to everything built on it (lifecycle events,
    CRL publication, the OCSP responder, card issuance): a test freezes one ``VirtualClock``
    and every date moves together. An explicit ``now=`` argument still overrides it.
    """

    def __init__(self, store: PKIStore, path: Path | None = None,
                 clock: Clock = system_clock) -> None:
        self.store = store
        self.path = path
        self.clock = clock

    def now(self, override: dt.datetime | None = None) -> dt.datetime:
        """``override`` when given (an explicit ``now=``), else the PKI's clock."""
        return override if override is not None else self.clock()

    # construction ----------------------------------------------------------------------------

    @classmethod
    def create(cls, now: dt.datetime | None = None, base_url: str = DEFAULT_BASE_URL,
               clock: Clock = system_clock) -> SimulatorPKI:
        """A throwaway PKI in an in-memory store."""
        pki = cls(PKIStore(":memory:"), clock=clock)
        pki.initialise(pki.now(now), base_url)
        return pki

    @classmethod
    def open(cls, path: Path | str, now: dt.datetime | None = None,
             base_url: str = DEFAULT_BASE_URL, clock: Clock = system_clock) -> SimulatorPKI:
        """Open the store at ``path`` (see ``store_path``), creating the first generations.

        The clock is not stored: each opening says which clock it runs on."""
        file = store_path(path)
        if file.parent.exists() and not file.parent.is_dir():
            raise StoreError(f"{file.parent} is a file, not a PKI store directory (a store "
                             "file is named *.sqlite3)")
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the PKI store in {file.parent}: {exc.strerror}"
                             ) from None
        pki = cls(PKIStore(file), Path(path), clock)
        if pki.store.get_meta("base_url") is None:
            pki.initialise(pki.now(now), base_url)
        return pki

    def initialise(self, now: dt.datetime, base_url: str) -> None:
        with self.store.transaction() as db:
            # Two processes may race to initialise the same file; the loser sees meta set.
            if db.execute("SELECT 1 FROM meta WHERE key = 'base_url'").fetchone():
                return
            self.store.set_meta(db, "base_url", base_url.rstrip("/"))
            for kind in CA_KINDS.values():
                self._add_generation(db, kind, 1, now)

    @property
    def base_url(self) -> str:
        value = self.store.get_meta("base_url")
        if value is None:
            raise StoreError("the PKI store is not initialised")
        return value

    # URLs ------------------------------------------------------------------------------------

    def crl_url(self, kind: CAKind, generation: int) -> str:
        return f"{self.base_url}/crl/{kind.key}-g{generation}.crl"

    def delta_crl_url(self, kind: CAKind, generation: int) -> str:
        return f"{self.base_url}/crl/{kind.key}-g{generation}-delta.crl"

    def arl_url(self, kind: CAKind, generation: int) -> str:
        return f"{self.base_url}/crl/{kind.key}-g{generation}-arl.crl"

    @property
    def ocsp_url(self) -> str:
        return f"{self.base_url}/ocsp"

    # generations -----------------------------------------------------------------------------

    def generations(self, kind: CAKind) -> list[CertificateAuthority]:
        rows = self.store.query("SELECT generation, key_pem, cert_der FROM ca_generation "
                                "WHERE kind = ? ORDER BY generation", (kind.key,))
        return [CertificateAuthority(kind, _load_key(r[1]), x509.load_der_x509_certificate(r[2]),
                                     r[0]) for r in rows]

    def generation_certificates(self) -> list[tuple[CAKind, int, bytes]]:
        """(kind, generation, certificate DER) of every CA generation, loading no private key."""
        rows = self.store.query("SELECT kind, generation, cert_der FROM ca_generation "
                                "ORDER BY kind, generation")
        return [(CA_KINDS[r[0]], r[1], bytes(r[2])) for r in rows]

    def ca(self, kind: CAKind, generation: int | None = None) -> CertificateAuthority:
        gens = self.generations(kind)
        if not gens:
            raise StoreError(f"the {kind.key} CA has no generation")
        if generation is None:
            return gens[-1]
        for ca in gens:
            if ca.generation == generation:
                return ca
        raise StoreError(f"the {kind.key} CA has no generation {generation}")

    def ca_at(self, kind: CAKind, when: dt.datetime) -> CertificateAuthority:
        """The newest generation whose validity covers ``when``: it issues at that time."""
        for ca in reversed(self.generations(kind)):
            cert = ca.certificate
            if cert.not_valid_before_utc <= when <= cert.not_valid_after_utc:
                return ca
        raise IssuanceError(f"no {kind.key} CA generation is valid at {when:%Y-%m-%d}")

    @property
    def sign_ca(self) -> CertificateAuthority:
        return self.ca(SIGN_CA)

    @property
    def auth_ca(self) -> CertificateAuthority:
        return self.ca(AUTH_CA)

    def trust_anchors(self) -> list[x509.Certificate]:
        return [ca.certificate for kind in CA_KINDS.values() for ca in self.generations(kind)]

    def link_certificates(self, kind: CAKind | None = None) -> list[x509.Certificate]:
        sql = "SELECT cert_der FROM link_certificate"
        params: tuple = ()
        if kind is not None:
            sql, params = sql + " WHERE kind = ?", (kind.key,)
        return [x509.load_der_x509_certificate(r[0])
                for r in self.store.query(sql + " ORDER BY kind, issuer_generation, "
                                          "subject_generation", params)]

    def responder(self, kind: CAKind, generation: int) -> Responder:
        rows = self.store.query("SELECT key_pem, cert_der FROM responder WHERE kind = ? AND "
                                "generation = ?", (kind.key, generation))
        if not rows:
            raise StoreError(f"no OCSP responder for {kind.key} generation {generation}")
        return Responder(kind, generation, _load_key(rows[0][0]),
                         x509.load_der_x509_certificate(rows[0][1]))

    def rollover(self, kind: CAKind, now: dt.datetime | None = None) -> CertificateAuthority:
        """A new key generation under the same DN, cross-linked with the previous one."""
        now = self.now(now)
        with self.store.transaction() as db:
            current = db.execute("SELECT MAX(generation) FROM ca_generation WHERE kind = ?",
                                 (kind.key,)).fetchone()[0]
            return self._add_generation(db, kind, current + 1, now)

    def _add_generation(self, db, kind: CAKind, generation: int,
                        now: dt.datetime) -> CertificateAuthority:
        ca = CertificateAuthority.create(kind, now, generation,
                                         start=None if generation == 1 else now)
        db.execute("INSERT INTO ca_generation(kind, generation, key_pem, cert_der) "
                   "VALUES (?, ?, ?, ?)", (kind.key, generation, _key_pem(ca.key),
                                           ca.certificate.public_bytes(serialization.Encoding.DER)))
        if generation > 1:
            old_row = db.execute("SELECT key_pem, cert_der FROM ca_generation WHERE kind = ? "
                                 "AND generation = ?", (kind.key, generation - 1)).fetchone()
            old_key = _load_key(old_row[0])
            old_cert = x509.load_der_x509_certificate(old_row[1])
            # new-with-old lets relying parties that trust only the old root reach the new one,
            # old-with-new the reverse; each lives no longer than the key it certifies.
            new_with_old = build_link_certificate(
                kind, ca.key.public_key(), old_key, random_serial(), now,
                min(ca.certificate.not_valid_after_utc, old_cert.not_valid_after_utc),
                self.arl_url(kind, generation - 1))
            old_with_new = build_link_certificate(
                kind, old_key.public_key(), ca.key, random_serial(), now,
                old_cert.not_valid_after_utc, self.arl_url(kind, generation))
            for issuer_gen, subject_gen, cert in ((generation - 1, generation, new_with_old),
                                                  (generation, generation - 1, old_with_new)):
                db.execute("INSERT INTO link_certificate(kind, issuer_generation, "
                           "subject_generation, serial, cert_der) VALUES (?, ?, ?, ?, ?)",
                           (kind.key, issuer_gen, subject_gen, f"{cert.serial_number:x}",
                            cert.public_bytes(serialization.Encoding.DER)))
                self.store.add_certificate(db, kind.key, issuer_gen, Role.LINK, None, cert)
        responder_key = new_rsa_key()
        responder_cert = build_responder_certificate(
            kind, responder_key.public_key(), ca.certificate, ca.key, random_serial(), now,
            now + RESPONDER_VALIDITY)
        db.execute("INSERT INTO responder(kind, generation, key_pem, cert_der) VALUES "
                   "(?, ?, ?, ?)", (kind.key, generation, _key_pem(responder_key),
                                    responder_cert.public_bytes(serialization.Encoding.DER)))
        return ca

    # issuance --------------------------------------------------------------------------------

    def _request(self, ca: CertificateAuthority, issued: dt.datetime,
                 not_after: dt.datetime) -> EndEntityRequest:
        return EndEntityRequest(
            random_serial(), issued, min(not_after, ca.certificate.not_valid_after_utc),
            crl_distribution_point=self.crl_url(ca.kind, ca.generation),
            ocsp_url=self.ocsp_url)

    def build_auth(self, resident: Resident, key: rsa.RSAPublicKey, issued: dt.datetime,
                   not_after: dt.datetime) -> tuple[CertificateAuthority, x509.Certificate]:
        ca = self.ca_at(AUTH_CA, issued)
        return ca, build_auth_certificate(_auth_identifier(resident.municipality_code), key,
                                          ca.certificate, ca.key,
                                          self._request(ca, issued, not_after))

    def build_sign(self, resident: Resident, key: rsa.RSAPublicKey, issued: dt.datetime,
                   not_after: dt.datetime) -> tuple[CertificateAuthority, x509.Certificate]:
        ca = self.ca_at(SIGN_CA, issued)
        return ca, build_sign_certificate(resident, _sign_common_name(
            issued, resident.municipality_code), key, ca.certificate, ca.key,
            self._request(ca, issued, not_after))
