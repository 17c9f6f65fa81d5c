"""The card's one non-library path (raw PKCS#1 v1.5 padding + CRT exponentiation) checked
against cryptography: whatever the payload, the signature recovers exactly that payload."""

from __future__ import annotations

import hashlib

import pytest
from asn1crypto import algos
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from hypothesis import given, settings
from hypothesis import strategies as st

from mynacard.cardsim.signing import raw_pkcs1_v15_sign, sign_pkcs1_v15_payload
from mynacard.facts.digest_info import (
    HASH_NAMES,
    der_digest_info,
    encode_digest_info,
    recognise_digest_info,
)


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@settings(max_examples=40, deadline=None)
@given(payload=st.binary(min_size=1, max_size=245))
def test_any_payload_is_signed_verbatim(key: rsa.RSAPrivateKey, payload: bytes) -> None:
    signature = sign_pkcs1_v15_payload(key, payload)
    assert key.public_key().recover_data_from_signature(signature, padding.PKCS1v15(),
                                                        None) == payload


@pytest.mark.parametrize("hash_name", HASH_NAMES)
def test_digest_infos_match_cryptographys_own_signature(key: rsa.RSAPrivateKey,
                                                       hash_name: str) -> None:
    algorithm = {"sha1": hashes.SHA1(), "sha224": hashes.SHA224(), "sha256": hashes.SHA256(),
                 "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}[hash_name]
    digest = hashlib.new(hash_name, b"message").digest()
    info = encode_digest_info(hash_name, digest)
    expected = key.sign(digest, padding.PKCS1v15(), Prehashed(algorithm))
    assert sign_pkcs1_v15_payload(key, info) == expected
    assert raw_pkcs1_v15_sign(key, info) == expected


def test_digest_info_without_null_parameters_is_signed_as_sent(key: rsa.RSAPrivateKey) -> None:
    variant = algos.DigestInfo({"digest_algorithm": {"algorithm": "sha256", "parameters": None},
                                "digest": b"\x11" * 32}).dump()
    assert len(variant) == 49
    signature = sign_pkcs1_v15_payload(key, variant)
    assert key.public_key().recover_data_from_signature(signature, padding.PKCS1v15(),
                                                        None) == variant


def test_payload_too_long_for_the_modulus(key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ValueError):
        raw_pkcs1_v15_sign(key, b"\x00" * 246)


@pytest.mark.parametrize("hash_name", HASH_NAMES)
def test_prefix_encoding_equals_asn1crypto(hash_name: str) -> None:
    digest = hashlib.new(hash_name, b"abc").digest()
    encoded = encode_digest_info(hash_name, digest)
    assert encoded == der_digest_info(hash_name, digest)
    assert recognise_digest_info(encoded) == (hash_name, digest)
    assert recognise_digest_info(encoded[:-1]) is None
    assert recognise_digest_info(b"\x31" + encoded[1:]) is None
