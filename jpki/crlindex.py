"""Indexed CRLs: load, verify and look up very large CRLs quickly.

``CRLIndex.load`` runs the C scanner (``jpki._crlscan``) once over the DER: it checks the framing
of the whole list and builds a sorted array of (serial, entry offset) records. The list's own
fields (issuer, dates, extensions, signature algorithm) come from ``cryptography``, loaded from a
copy of the CRL with its entries cut out, so nothing but the entry walk is done by hand. The
signature is verified over the original tbsCertList bytes with ``cryptography``.

Where the scanner could not be built (no C compiler at install time), ``cryptography``
parses the whole CRL instead and the index is a dict: the same answers, far slower on
million-entry lists.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa

from ..errors import MynacardError
from ..iso7816.tlv import ber_encode

try:
    from . import _crlscan
except ImportError:
    _crlscan = None

REASON_CODES: dict[int, x509.ReasonFlags] = {
    0: x509.ReasonFlags.unspecified, 1: x509.ReasonFlags.key_compromise,
    2: x509.ReasonFlags.ca_compromise, 3: x509.ReasonFlags.affiliation_changed,
    4: x509.ReasonFlags.superseded, 5: x509.ReasonFlags.cessation_of_operation,
    6: x509.ReasonFlags.certificate_hold, 8: x509.ReasonFlags.remove_from_crl,
    9: x509.ReasonFlags.privilege_withdrawn, 10: x509.ReasonFlags.aa_compromise,
}


_INT64 = 1 << 63
_UINT64 = 1 << 64
FLAG_UNKNOWN_CRITICAL = 1
FLAG_CERTIFICATE_ISSUER = 2
_ENTRY_EXTENSIONS = {x509.CRLEntryExtensionOID.CRL_REASON,
                     x509.CRLEntryExtensionOID.INVALIDITY_DATE,
                     x509.CRLEntryExtensionOID.CERTIFICATE_ISSUER}


class CRLFormatError(MynacardError, ValueError):
    """The bytes are not a well-formed DER CRL; the message names the problem and its offset."""


class RevokedEntry(NamedTuple):
    """One CRL entry (a tuple: constructed once per lookup hit, so it must be cheap)."""

    serial: int
    revocation_date: dt.datetime
    reason: x509.ReasonFlags | None = None
    invalidity_date: dt.datetime | None = None


def serial_content(serial: int) -> bytes:
    """The minimal two's-complement content octets of an INTEGER."""
    magnitude = serial if serial >= 0 else ~serial
    return serial.to_bytes(magnitude.bit_length() // 8 + 1, "big", signed=True)


def serial_key(serial: int) -> bytes:
    content = serial_content(serial)
    return bytes([len(content)]) + content


def verify_signature(public_key: object, signature: bytes, data: bytes,
                     hash_algorithm: object, parameters: object) -> bool:
    """Check a signature with whatever key type ``cryptography`` loaded."""
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            pad = parameters if isinstance(parameters, padding.PSS) else padding.PKCS1v15()
            public_key.verify(signature, data, pad, hash_algorithm)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(hash_algorithm))
        elif isinstance(public_key, dsa.DSAPublicKey):
            public_key.verify(signature, data, hash_algorithm)
        elif isinstance(public_key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            public_key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False
    return True


class CRLIndex:
    """A CRL whose entries are indexed by serial number."""

    __slots__ = ("der", "header", "count", "_tbs", "_index", "_flags")

    def __init__(self, der: bytes, header: x509.CertificateRevocationList, count: int,
                 tbs: tuple[int, int], index: bytes | dict[int, RevokedEntry],
                 flags: int) -> None:
        self.der = der
        self.header = header
        """The CRL without its entries: issuer, dates, extensions, signature algorithm."""
        self.count = count
        self._tbs = tbs
        self._index = index
        self._flags = flags

    @classmethod
    def load(cls, der: bytes) -> CRLIndex:
        der = bytes(der)
        if _crlscan is None:
            return cls._load_with_cryptography(der)
        try:
            tbs_start, tbs_end, rev_start, rev_end, index, count, flags = _crlscan.scan(der)
        except ValueError as exc:
            raise CRLFormatError(f"malformed CRL: {exc}") from None
        first = der[tbs_start + 1]
        content_start = tbs_start + 2 + (first & 0x7F if first & 0x80 else 0)
        if rev_start >= 0:
            body = der[content_start:rev_start] + der[rev_end:tbs_end]
        else:
            body = der[content_start:tbs_end]
        try:
            shell = ber_encode(0x30, ber_encode(0x30, body) + der[tbs_end:])
            header = x509.load_der_x509_crl(shell)
            header.extensions  # noqa: B018 - parse now so a bad extension fails at load
        except (ValueError, x509.InvalidVersion, x509.UnsupportedGeneralNameType) as exc:
            raise CRLFormatError(f"malformed CRL: {exc}") from None
        return cls(der, header, count, (tbs_start, tbs_end), index, flags)

    @classmethod
    def _load_with_cryptography(cls, der: bytes) -> CRLIndex:
        try:
            crl = x509.load_der_x509_crl(der)
            table: dict[int, RevokedEntry] = {}
            flags = 0
            for revoked in crl:
                reason = invalidity = None
                for extension in revoked.extensions:
                    value = extension.value
                    if isinstance(value, x509.CRLReason):
                        reason = value.reason
                    elif isinstance(value, x509.InvalidityDate):
                        invalidity = value.invalidity_date_utc
                    elif isinstance(value, x509.CertificateIssuer):
                        flags |= FLAG_CERTIFICATE_ISSUER
                    if extension.critical and extension.oid not in _ENTRY_EXTENSIONS:
                        flags |= FLAG_UNKNOWN_CRITICAL
                table.setdefault(revoked.serial_number, RevokedEntry(
                    revoked.serial_number, revoked.revocation_date_utc, reason, invalidity))
            tbs_start = 2 + (der[1] & 0x7F if der[1] & 0x80 else 0)
            tbs = (tbs_start, tbs_start + len(crl.tbs_certlist_bytes))
        except (ValueError, IndexError, x509.InvalidVersion,
                x509.UnsupportedGeneralNameType) as exc:
            raise CRLFormatError(f"malformed CRL: {exc}") from None
        return cls(der, crl, len(table), tbs, table, flags)

    @property
    def has_unknown_critical_entry_extension(self) -> bool:
        return bool(self._flags & FLAG_UNKNOWN_CRITICAL)

    @property
    def is_indirect(self) -> bool:
        """Some entry carries certificateIssuer: entries may belong to other CAs."""
        return bool(self._flags & FLAG_CERTIFICATE_ISSUER)

    @property
    def tbs_bytes(self) -> bytes:
        return self.der[self._tbs[0]:self._tbs[1]]

    def verify_signature(self, public_key: object) -> bool:
        try:
            hash_algorithm = self.header.signature_hash_algorithm
            parameters = self.header.signature_algorithm_parameters
        except UnsupportedAlgorithm:
            return False
        return verify_signature(public_key, self.header.signature, self.tbs_bytes,
                                hash_algorithm, parameters)

    def _offset(self, serial: int) -> int:
        # The scanner encodes 64-bit serials itself; longer ones (PKITS has 20-octet serials)
        # are encoded here.
        if -_INT64 <= serial < _UINT64:
            return _crlscan.lookup(self._index, self.der, serial)
        return _crlscan.lookup(self._index, self.der, serial_key(serial))

    def __contains__(self, serial: int) -> bool:
        if isinstance(self._index, dict):
            return serial in self._index
        return self._offset(serial) >= 0

    def lookup(self, serial: int) -> RevokedEntry | None:
        if isinstance(self._index, dict):
            return self._index.get(serial)
        try:
            found = _crlscan.find(self._index, self.der, serial if -_INT64 <= serial < _UINT64
                                  else serial_key(serial))
            if found is None:
                return None
            return RevokedEntry(serial, found[1], REASON_CODES[found[2]] if found[2] != -1
                                else None, found[3])
        except ValueError as exc:
            raise CRLFormatError(f"malformed CRL entry: {exc}") from None
        except KeyError:
            raise CRLFormatError(f"unknown CRL reason code {found[2]}") from None

    def _entry(self, offset: int) -> RevokedEntry:
        try:
            content, when, reason, invalidity = _crlscan.entry(self.der, offset)
            return RevokedEntry(int.from_bytes(content, "big", signed=True), when,
                                REASON_CODES[reason] if reason != -1 else None, invalidity)
        except ValueError as exc:
            raise CRLFormatError(f"malformed CRL entry: {exc}") from None
        except KeyError:
            raise CRLFormatError(f"unknown CRL reason code {reason}") from None

    def entries(self) -> Iterator[RevokedEntry]:
        """Every entry, in list order."""
        if isinstance(self._index, dict):
            yield from self._index.values()
            return
        for offset in _crlscan.offsets(self._index):
            yield self._entry(offset)
