"""PKCS#1 DigestInfo, encoded as signers build it (RFC 8017 §9.2: NULL parameters present)."""

from __future__ import annotations

from asn1crypto import core
from asn1crypto.algos import DigestInfo

HASH_NAMES = ("sha1", "sha224", "sha256", "sha384", "sha512")


def encode_digest_info(hash_name: str, digest: bytes) -> bytes:
    if hash_name not in HASH_NAMES:
        raise ValueError(f"unsupported hash {hash_name!r} (use one of {', '.join(HASH_NAMES)})")
    return DigestInfo({"digest_algorithm": {"algorithm": hash_name, "parameters": core.Null()},
                       "digest": digest}).dump()
