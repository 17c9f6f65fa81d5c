"""The hashes inside an OCSP CertID (RFC 6960 §4.1.1), shared by responder and validator."""

from __future__ import annotations

import hashlib

from asn1crypto import keys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization


def key_hash(certificate: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    """Hash of the subjectPublicKey BIT STRING value (without its unused-bits octet)."""
    spki = certificate.public_key().public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    bits = keys.PublicKeyInfo.load(spki)["public_key"].contents[1:]
    return hashlib.new(algorithm.name, bits).digest()


def name_hash(certificate: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    return hashlib.new(algorithm.name,
                       certificate.subject.public_bytes(serialization.Encoding.DER)).digest()
