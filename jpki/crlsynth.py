"""Synthetic, realistically shaped large CRLs (benchmarks, ``mynacard pki crl synth``).

``CertificateRevocationListBuilder`` adds entries one Python object at a time, too slow for a
million. Here ``cryptography`` builds and signs an empty CRL with the real list extensions,
asn1crypto splices in a revokedCertificates SEQUENCE that a narrow encoder assembled, and the
new tbsCertList is signed with ``cryptography``. Tests load the result with ``cryptography`` and
``openssl crl`` to check it.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable

from asn1crypto import crl as asn1_crl
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..iso7816.tlv import ber_encode
from .crlindex import serial_content

# Reason mix loosely modelled on what relying parties see (facts §12): mostly address/name
# changes and renewals, some holds, few compromises.
REASON_WEIGHTS: tuple[tuple[int | None, int], ...] = (
    (3, 40), (4, 25), (5, 10), (6, 10), (None, 8), (1, 5), (0, 2))

_REASON_PREFIX = bytes.fromhex("300a0603551d1504030a01")
_INVALIDITY_PREFIX = bytes.fromhex("30180603551d180411180f")


def _entry(serial: int, when: dt.datetime, reason: int | None, invalidity: dt.datetime | None,
           ) -> bytes:
    body = ber_encode(0x02, serial_content(serial))
    body += b"\x17\x0d" + when.strftime("%y%m%d%H%M%SZ").encode()
    extensions = b""
    if reason is not None:
        extensions += _REASON_PREFIX + bytes([reason])
    if invalidity is not None:
        extensions += _INVALIDITY_PREFIX + invalidity.strftime("%Y%m%d%H%M%SZ").encode()
    if extensions:
        body += ber_encode(0x30, extensions)
    return ber_encode(0x30, body)


def synthesize_crl(
    issuer: x509.Name,
    key: rsa.RSAPrivateKey,
    entries: int,
    this_update: dt.datetime,
    *,
    next_update: dt.timedelta = dt.timedelta(days=1),
    crl_number: int = 1,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> tuple[bytes, list[int]]:
    """DER of a signed CRL with ``entries`` entries; also returns the revoked serials.

    Serials are random positive 64-bit values (half need a leading zero octet), revocation
    dates spread over the five years before ``this_update``; keyCompromise entries carry an
    invalidity date. ``progress`` is called with the number of entries done, every 10,000.
    """
    rng = random.Random(seed)
    header = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer)
        .last_update(this_update)
        .next_update(this_update + next_update)
        .add_extension(x509.CRLNumber(crl_number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    span = 5 * 365 * 86400
    reasons = [r for r, _ in REASON_WEIGHTS]
    weights = [w for _, w in REASON_WEIGHTS]
    serials: set[int] = set()
    parts = []
    while len(serials) < entries:
        serial = rng.getrandbits(64) | 1
        if serial in serials:
            continue
        serials.add(serial)
        when = this_update - dt.timedelta(seconds=rng.randrange(span))
        reason = rng.choices(reasons, weights)[0]
        invalidity = when - dt.timedelta(days=rng.randrange(30)) if reason == 1 else None
        parts.append(_entry(serial, when, reason, invalidity))
        if progress is not None and len(parts) % 10000 == 0:
            progress(len(parts))
    if progress is not None and len(parts) % 10000:
        progress(len(parts))
    serial_list = list(serials)
    del serials
    revoked = asn1_crl.RevokedCertificates.load(ber_encode(0x30, b"".join(parts)))
    del parts
    shell = asn1_crl.CertificateList.load(header.public_bytes(serialization.Encoding.DER))
    tbs = shell["tbs_cert_list"]
    if entries:
        tbs["revoked_certificates"] = revoked
    tbs_der = tbs.dump(force=False)
    signature = key.sign(tbs_der, padding.PKCS1v15(), hashes.SHA256())
    der = ber_encode(0x30, tbs_der + shell["signature_algorithm"].dump()
                  + ber_encode(0x03, b"\x00" + signature))
    return der, serial_list
