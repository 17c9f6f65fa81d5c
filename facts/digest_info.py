"""PKCS#1 DigestInfo, encoded as signers build it (RFC 8017 §9.2: NULL parameters present).

For a given hash the DER encoding is a fixed prefix followed by the digest, so the
prefixes are derived once from asn1crypto and the hot path (every signature, on both
sides of the wire) only concatenates or compares bytes.
"""

from __future__ import annotations

from asn1crypto import core
from asn1crypto.algos import DigestInfo

DIGEST_SIZES = {"sha1": 20, "sha224": 28, "sha256": 32, "sha384": 48, "sha512": 64}
HASH_NAMES = tuple(DIGEST_SIZES)


def der_digest_info(hash_name: str, digest: bytes) -> bytes:
    """The full asn1crypto encoding (the reference the prefixes are derived from)."""
    return DigestInfo({"digest_algorithm": {"algorithm": hash_name, "parameters": core.Null()},
                       "digest": digest}).dump()


_PREFIXES = {name: der_digest_info(name, bytes(size))[:-size]
             for name, size in DIGEST_SIZES.items()}
_BY_LENGTH = {len(prefix) + DIGEST_SIZES[name]: (name, prefix)
              for name, prefix in _PREFIXES.items()}


def encode_digest_info(hash_name: str, digest: bytes) -> bytes:
    size = DIGEST_SIZES.get(hash_name)
    if size is None:
        raise ValueError(f"unsupported hash {hash_name!r} (use one of {', '.join(HASH_NAMES)})")
    if len(digest) != size:
        raise ValueError(f"a {hash_name} digest is {size} bytes, not {len(digest)}")
    return _PREFIXES[hash_name] + digest


def recognise_digest_info(payload: bytes) -> tuple[str, bytes] | None:
    """(hash name, digest) when ``payload`` is byte for byte a DigestInfo as encoded above."""
    match = _BY_LENGTH.get(len(payload))
    if match is None:
        return None
    name, prefix = match
    if not payload.startswith(prefix):
        return None
    return name, payload[len(prefix):]
