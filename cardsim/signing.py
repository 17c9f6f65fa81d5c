"""RSA signing schemes of the card's COMPUTE DIGITAL SIGNATURE (``80 2A``), by P1 (facts §3.3).

Everything goes through ``cryptography`` except one narrow path: PKCS#1 v1.5
type-1 padding of a payload that is not a DigestInfo ``cryptography`` can rebuild
(P1 ``00`` with arbitrary data, P1 ``01`` bare hash). ``cryptography`` offers no raw
private-key operation, so that path pads (RFC 8017 §9.2 steps 4-5) and exponentiates
with the key's CRT parameters; tests cross-check it with ``cryptography``'s
``recover_data_from_signature``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from ..facts.digest_info import recognise_digest_info
from ..iso7816.sw import SW
from .status import StatusError

PKCS1_V15_MAX_PAYLOAD = 256 - 11
PSS_SALT_LENGTH = 32
"""The card's PSS salt length is not public; the digest length is the common choice."""

_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha1": hashes.SHA1(), "sha224": hashes.SHA224(), "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(), "sha512": hashes.SHA512(),
}


def raw_pkcs1_v15_sign(key: rsa.RSAPrivateKey, payload: bytes) -> bytes:
    """EMSA-PKCS1-v1_5 padding of an arbitrary payload, then RSASP1 with CRT."""
    k = (key.key_size + 7) // 8
    if not 1 <= len(payload) <= k - 11:
        raise ValueError(f"payload of {len(payload)} bytes does not fit PKCS#1 v1.5")
    encoded = b"\x00\x01" + b"\xff" * (k - 3 - len(payload)) + b"\x00" + payload
    numbers = key.private_numbers()
    m = int.from_bytes(encoded, "big")
    s1 = pow(m, numbers.dmp1, numbers.p)
    s2 = pow(m, numbers.dmq1, numbers.q)
    s = s2 + numbers.q * ((numbers.iqmp * (s1 - s2)) % numbers.p)
    return s.to_bytes(k, "big")


def sign_pkcs1_v15_payload(key: rsa.RSAPrivateKey, payload: bytes) -> bytes:
    """Sign ``payload`` as the PKCS#1 v1.5 type-1 block content, whatever it is."""
    recognised = recognise_digest_info(payload)
    if recognised is not None:
        # cryptography re-encodes the DigestInfo; it is byte-identical to the payload.
        hash_name, digest = recognised
        return key.sign(digest, padding.PKCS1v15(), Prehashed(_HASHES[hash_name]))
    return raw_pkcs1_v15_sign(key, payload)


def _pss() -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=PSS_SALT_LENGTH)


def _require_length(data: bytes, low: int, high: int) -> None:
    if not low <= len(data) <= high:
        raise StatusError(SW.WRONG_LENGTH)


def _verbatim(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    _require_length(data, 1, PKCS1_V15_MAX_PAYLOAD)
    return sign_pkcs1_v15_payload(key, data)


def _card_hash_bare(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    _require_length(data, 1, 65535)
    return raw_pkcs1_v15_sign(key, hashlib.sha256(data).digest())


def _prehashed_digest_info(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    _require_length(data, 32, 32)
    return key.sign(data, padding.PKCS1v15(), Prehashed(hashes.SHA256()))


def _card_hash_digest_info(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    _require_length(data, 1, 65535)
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def _prehashed_pss(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    _require_length(data, 32, 32)
    return key.sign(data, _pss(), Prehashed(hashes.SHA256()))


def _card_hash_pss(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    _require_length(data, 1, 65535)
    return key.sign(data, _pss(), hashes.SHA256())


SIGNATURE_SCHEMES: dict[int, Callable[[rsa.RSAPrivateKey, bytes], bytes]] = {
    0x00: _verbatim,
    0x01: _card_hash_bare,
    0x02: _prehashed_digest_info,
    0x03: _card_hash_digest_info,
    0x04: _prehashed_pss,
    0x05: _card_hash_pss,
}
"""P1 → scheme. The DigestInfo that OpenSC and every JPKI client send uses P1 ``00``."""
