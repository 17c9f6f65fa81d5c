"""Indexed CRLs: load, verify and look up very large CRLs quickly.

``CRLIndex.load`` runs the C scanner (``jpki._crlscan``) once over the DER: it checks the framing
of the whole list and builds a sorted array of (serial, entry offset) records. The list's own
fields (issuer, dates, extensions, signature algorithm) come from ``cryptography``, loaded from a
copy of the CRL with its entries cut out, so nothing but the entry walk is done by hand. The
signature is verified over the original tbsCertList bytes with ``cryptography``.

Where the scanner could not be built (no C compiler at install time), ``_scan_python`` walks
the entries instead, by the same rules line for line, into a dict: the same answers (the
tests cross-check both on mutated CRLs), far slower on million-entry lists. Everything else
(the list's own fields through ``cryptography``) is one code path for both.

What a CRL must be to load at all (both paths; anything else is ``CRLFormatError``, so a
caller skips that one CRL with a reason): DER framing throughout; serials minimal INTEGERs
of at most 32 octets; every revocation date, reasonCode (a known code) and invalidityDate
well formed; no extension twice in an entry (at most ``MAX_ENTRY_EXTENSIONS``) nor in the
list (RFC 5280 §4.2: a second reasonCode ``removeFromCRL`` must not hide a revocation);
list extensions parseable by ``cryptography``; and for an indirect CRL, every entry
extension parseable by ``cryptography`` too (the validator reads those entries with it).
Once loaded, no lookup can fail.
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
MAX_SERIAL = 32
"""Octets of a serial's content (RFC 5280 allows 20; more is tolerated, bounded)."""
MAX_ENTRY_EXTENSIONS = 16
"""RFC 5280 defines four entry extensions; the bound keeps the duplicate check cheap."""
_PARSE_ERRORS = (ValueError, IndexError, x509.DuplicateExtension, x509.InvalidVersion,
                 x509.UnsupportedGeneralNameType, UnsupportedAlgorithm)
"""What ``cryptography`` raises on a hostile CRL (``DuplicateExtension`` is no ValueError)."""
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
        """Check and index a DER CRL; ``CRLFormatError`` if it is not one to use at all."""
        der = bytes(der)
        index: bytes | dict[int, RevokedEntry]
        try:
            if _crlscan is None:
                tbs_start, tbs_end, rev_start, rev_end, index, count, flags = _scan_python(der)
            else:
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
            # Parse now whatever the validator reads later, so a bad field fails here, for
            # this CRL only, and never as an exception in the middle of a validation.
            header.extensions  # noqa: B018
            header.issuer  # noqa: B018
            header.last_update_utc  # noqa: B018
            header.next_update_utc  # noqa: B018
            if flags & FLAG_CERTIFICATE_ISSUER:
                for revoked in x509.load_der_x509_crl(der):
                    revoked.extensions  # noqa: B018
        except _PARSE_ERRORS as exc:
            raise CRLFormatError(f"malformed CRL: {type(exc).__name__}: {exc}") from None
        return cls(der, header, count, (tbs_start, tbs_end), index, flags)

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


# -- the scanner's rules in Python, for installs without the C extension ------------------
# A line-for-line port of jpki/_crlscan.c (scan, scan_entry, read_extension, check_serial,
# time_fields): keep the two in step; tests/pki/test_crlindex.py cross-checks them.

_OID_REASON, _OID_HOLD = b"\x55\x1d\x15", b"\x55\x1d\x17"
_OID_INVALIDITY, _OID_CERT_ISSUER = b"\x55\x1d\x18", b"\x55\x1d\x1d"
_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class _TLV(NamedTuple):
    tag: int
    start: int
    cstart: int
    cend: int


def _fail(why: str, at: int) -> ValueError:
    return ValueError(f"{why} (at offset {at})")


def _read_tlv(b: bytes, pos: int, limit: int) -> _TLV:
    start = pos
    if pos >= limit:
        raise _fail("truncated: a tag was expected", pos)
    tag = b[pos]
    pos += 1
    if tag & 0x1F == 0x1F:
        raise _fail("high tag numbers do not occur in a CRL", pos - 1)
    if pos >= limit:
        raise _fail("truncated: a length was expected", pos)
    first = b[pos]
    pos += 1
    if first < 0x80:
        length = first
    elif first == 0x80:
        raise _fail("indefinite length (BER) is not allowed in DER", pos - 1)
    else:
        k = first & 0x7F
        if k > 4:
            raise _fail("length field longer than 4 octets", pos - 1)
        if limit - pos < k:
            raise _fail("truncated inside a length field", pos)
        if b[pos] == 0:
            raise _fail("non-minimal length encoding", pos)
        length = int.from_bytes(b[pos:pos + k], "big")
        pos += k
        if length < 0x80:
            raise _fail("non-minimal length encoding", pos - k - 1)
    if length > limit - pos:
        raise _fail("length runs past the end of its container", start)
    return _TLV(tag, start, pos, pos + length)


def _is_time(t: _TLV) -> bool:
    n = t.cend - t.cstart
    return (t.tag == 0x17 and n == 13) or (t.tag == 0x18 and n == 15)


def _time(t: bytes) -> dt.datetime | None:
    """A UTCTime or GeneralizedTime content as an aware UTC datetime; None if malformed."""
    n = len(t)
    if n not in (13, 15) or t[-1:] != b"Z" or not all(0x30 <= c <= 0x39 for c in t[:-1]):
        return None
    digits = [c - 0x30 for c in t[:-1]]
    if n == 13:
        year = digits[0] * 10 + digits[1]
        year += 1900 if year >= 50 else 2000
        k = 2
    else:
        year = digits[0] * 1000 + digits[1] * 100 + digits[2] * 10 + digits[3]
        k = 4
    month, day, hour, minute, second = (digits[k + 2 * f] * 10 + digits[k + 2 * f + 1]
                                        for f in range(5))
    if year < 1 or not 1 <= month <= 12 or day < 1 or hour > 23 or minute > 59 or second > 59:
        return None
    leap = (year % 4 == 0 and year % 100 != 0) or year % 400 == 0
    if day > _DAYS[month - 1] + (month == 2 and leap):
        return None
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC)


def _read_extension(b: bytes, ext: _TLV) -> tuple[_TLV, _TLV, bool]:
    if ext.tag != 0x30:
        raise _fail("an extension is not a SEQUENCE", ext.start)
    oid = _read_tlv(b, ext.cstart, ext.cend)
    if oid.tag != 0x06 or oid.cend == oid.cstart:
        raise _fail("an extension does not start with an OID", oid.start)
    critical = False
    value = _read_tlv(b, oid.cend, ext.cend)
    if value.tag == 0x01:
        if value.cend - value.cstart != 1:
            raise _fail("bad BOOLEAN length", value.start)
        if b[value.cstart] != 0xFF:
            raise _fail("critical flag is not DER TRUE", value.start)
        critical = True
        value = _read_tlv(b, value.cend, ext.cend)
    if value.tag != 0x04:
        raise _fail("extnValue is not an OCTET STRING", value.start)
    if value.cend != ext.cend:
        raise _fail("trailing data in an extension", value.cend)
    return oid, value, critical


def _check_serial(b: bytes, serial: _TLV) -> None:
    n = serial.cend - serial.cstart
    if serial.tag != 0x02:
        raise _fail("userCertificate is not an INTEGER", serial.start)
    if n == 0:
        raise _fail("empty INTEGER", serial.start)
    if n > MAX_SERIAL:
        raise _fail("serial number longer than 32 octets", serial.start)
    v0, v1 = b[serial.cstart], b[serial.cstart + 1] if n > 1 else 0
    if n > 1 and ((v0 == 0x00 and not v1 & 0x80) or (v0 == 0xFF and v1 & 0x80)):
        raise _fail("non-minimal INTEGER encoding of a serial number", serial.start)


def _scan_entry(b: bytes, entry: _TLV) -> tuple[RevokedEntry, int]:
    """One revoked entry, checked as the C scan_entry checks it, and its flags."""
    if entry.tag != 0x30:
        raise _fail("a revoked entry is not a SEQUENCE", entry.start)
    serial = _read_tlv(b, entry.cstart, entry.cend)
    _check_serial(b, serial)
    date = _read_tlv(b, serial.cend, entry.cend)
    revoked = _time(b[date.cstart:date.cend]) if _is_time(date) else None
    if revoked is None:
        raise _fail("revocationDate is not a valid UTCTime/GeneralizedTime", date.start)
    flags, reason, invalidity = 0, None, None
    number = int.from_bytes(b[serial.cstart:serial.cend], "big", signed=True)
    if date.cend == entry.cend:
        return RevokedEntry(number, revoked), flags
    exts = _read_tlv(b, date.cend, entry.cend)
    if exts.tag != 0x30:
        raise _fail("crlEntryExtensions is not a SEQUENCE", exts.start)
    if exts.cend != entry.cend:
        raise _fail("trailing data in a revoked entry", exts.cend)
    seen: list[bytes] = []
    pos = exts.cstart
    while pos < exts.cend:
        ext = _read_tlv(b, pos, exts.cend)
        oid, value, critical = _read_extension(b, ext)
        if len(seen) == MAX_ENTRY_EXTENSIONS:
            raise _fail("too many extensions in a revoked entry", ext.start)
        oid_bytes = b[oid.cstart:oid.cend]
        if oid_bytes in seen:
            raise _fail("duplicate extension in a revoked entry", ext.start)
        seen.append(oid_bytes)
        if oid_bytes == _OID_REASON:
            inner = _read_tlv(b, value.cstart, value.cend)
            if inner.tag != 0x0A or inner.cend - inner.cstart != 1 or inner.cend != value.cend \
                    or b[inner.cstart] not in REASON_CODES:
                raise _fail("malformed or unknown reasonCode", inner.start)
            reason = REASON_CODES[b[inner.cstart]]
        elif oid_bytes == _OID_INVALIDITY:
            inner = _read_tlv(b, value.cstart, value.cend)
            when = _time(b[inner.cstart:inner.cend]) if inner.tag == 0x18 else None
            if when is None or inner.cend != value.cend:
                raise _fail("malformed invalidityDate", inner.start)
            invalidity = when
        if oid_bytes == _OID_CERT_ISSUER:
            flags |= FLAG_CERTIFICATE_ISSUER
        if critical and oid_bytes not in (_OID_REASON, _OID_INVALIDITY, _OID_HOLD,
                                          _OID_CERT_ISSUER):
            flags |= FLAG_UNKNOWN_CRITICAL
        pos = ext.cend
    return RevokedEntry(number, revoked, reason, invalidity), flags


def _scan_python(der: bytes) -> tuple[int, int, int, int, dict[int, RevokedEntry], int, int]:
    """What ``_crlscan.scan`` returns, with a dict (serial → first entry) as the index."""
    b = der
    outer = _read_tlv(b, 0, len(b))
    if outer.tag != 0x30:
        raise _fail("a CRL is a SEQUENCE", 0)
    if outer.cend != len(b):
        raise _fail("trailing data after the CRL", outer.cend)
    tbs = _read_tlv(b, outer.cstart, outer.cend)
    if tbs.tag != 0x30:
        raise _fail("tbsCertList is not a SEQUENCE", tbs.start)
    pos = tbs.cstart
    t = _read_tlv(b, pos, tbs.cend)
    if t.tag == 0x02:
        pos = t.cend
        t = _read_tlv(b, pos, tbs.cend)
    if t.tag != 0x30:
        raise _fail("signature AlgorithmIdentifier expected", t.start)
    t = _read_tlv(b, t.cend, tbs.cend)
    if t.tag != 0x30:
        raise _fail("issuer Name expected", t.start)
    t = _read_tlv(b, t.cend, tbs.cend)
    if not _is_time(t):
        raise _fail("thisUpdate is not a UTCTime/GeneralizedTime", t.start)
    pos = t.cend
    if pos < tbs.cend:
        t = _read_tlv(b, pos, tbs.cend)
        if t.tag in (0x17, 0x18):
            if not _is_time(t):
                raise _fail("malformed nextUpdate", t.start)
            pos = t.cend
            if pos < tbs.cend:
                t = _read_tlv(b, pos, tbs.cend)
    rev_start = rev_end = -1
    table: dict[int, RevokedEntry] = {}
    count = flags = 0
    if pos < tbs.cend and t.tag == 0x30:
        rev_start, rev_end = t.start, t.cend
        entries = []
        p = t.cstart
        while p < t.cend:  # the framing of every entry first, as the C scanner counts them
            entry = _read_tlv(b, p, t.cend)
            entries.append(entry)
            p = entry.cend
        for entry in entries:
            revoked, entry_flags = _scan_entry(b, entry)
            flags |= entry_flags
            table.setdefault(revoked.serial, revoked)  # a duplicate serial: the first counts
        count = len(entries)
        pos = t.cend
        if pos < tbs.cend:
            t = _read_tlv(b, pos, tbs.cend)
    if pos < tbs.cend:
        if t.tag != 0xA0:
            raise _fail("unexpected field in tbsCertList", t.start)
        if t.cend != tbs.cend:
            raise _fail("trailing data in tbsCertList", t.cend)
    return tbs.start, tbs.cend, rev_start, rev_end, table, count, flags
