"""Issued cards: certificates in the JPKI profile, verifiable with cryptography and openssl."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from helpers import load_test_persona

from mynacard.cardsim.perso.persona import Persona
from mynacard.client.jpki import JPKIClient, JPKIKey
from mynacard.jpki.profile import OID, certificate_expiry, read_sign_certificate_facts
from mynacard.readers.simulator import SimulatorReader


def read_all(card_dir: Path, password: str | None = "ABC123") -> dict[str, x509.Certificate]:
    connection = SimulatorReader.for_image(card_dir).connect()
    try:
        client = JPKIClient(connection)
        certs = {"auth": client.read_certificate(JPKIKey.AUTH),
                 "auth_ca": client.read_certificate(JPKIKey.AUTH, ca=True),
                 "sign_ca": client.read_certificate(JPKIKey.SIGN, ca=True)}
        if password:
            client.verify(JPKIKey.SIGN, password)
            certs["sign"] = client.read_certificate(JPKIKey.SIGN)
        return certs
    finally:
        connection.disconnect()


@pytest.fixture
def certs(card_dir: Path) -> dict[str, x509.Certificate]:
    return read_all(card_dir)


@pytest.fixture
def persona() -> Persona:
    return load_test_persona("kokutou-mikiya")


def test_certificates_chain_to_their_cas(certs: dict[str, x509.Certificate]) -> None:
    certs["auth"].verify_directly_issued_by(certs["auth_ca"])
    certs["sign"].verify_directly_issued_by(certs["sign_ca"])
    for ca in ("auth_ca", "sign_ca"):
        certs[ca].verify_directly_issued_by(certs[ca])
    with pytest.raises(ValueError):
        certs["auth"].verify_directly_issued_by(certs["sign_ca"])


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl command not installed")
def test_openssl_verifies_both_chains(certs: dict[str, x509.Certificate], tmp_path: Path) -> None:
    pem = serialization.Encoding.PEM
    for leaf, ca in (("auth", "auth_ca"), ("sign", "sign_ca")):
        (tmp_path / f"{ca}.pem").write_bytes(certs[ca].public_bytes(pem))
        (tmp_path / f"{leaf}.pem").write_bytes(certs[leaf].public_bytes(pem))
        result = subprocess.run(
            ["openssl", "verify", "-attime", str(int(dt.datetime(2026, 1, 1).timestamp())),
             "-CAfile", str(tmp_path / f"{ca}.pem"), str(tmp_path / f"{leaf}.pem")],
            capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.strip().endswith(": OK")
    wrong = subprocess.run(["openssl", "verify", "-CAfile", str(tmp_path / "sign_ca.pem"),
                            str(tmp_path / "auth.pem")], capture_output=True, check=False)
    assert wrong.returncode != 0


def test_ca_profile(certs: dict[str, x509.Certificate]) -> None:
    for name, ou in (("auth_ca", "JPKI for user authentication"),
                     ("sign_ca", "JPKI for digital signature")):
        ca = certs[name]
        assert ca.subject == ca.issuer
        assert [a.value for a in ca.subject] == ["JP", "JPKI-SIM", ou,
                                                 "Japan Agency for Local Authority Information "
                                                 "Systems"]
        basic = ca.extensions.get_extension_for_class(x509.BasicConstraints)
        assert basic.critical and basic.value.ca and basic.value.path_length is None
        usage = ca.extensions.get_extension_for_class(x509.KeyUsage)
        assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
        key = ca.public_key()
        assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048
        assert key.public_numbers().e == 65537
        assert isinstance(ca.signature_hash_algorithm, hashes.SHA256)


def test_auth_certificate_carries_no_personal_data(certs: dict[str, x509.Certificate]) -> None:
    auth = certs["auth"]
    assert [a.oid for a in auth.subject] == [NameOID.COUNTRY_NAME, NameOID.COMMON_NAME]
    common_name = auth.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert len(common_name) == 23 and "黒桐" not in common_name
    with pytest.raises(x509.ExtensionNotFound):
        auth.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    policies = auth.extensions.get_extension_for_class(x509.CertificatePolicies).value
    assert [p.policy_identifier for p in policies] == [OID.POLICY_AUTH]


def test_signing_certificate_profile(certs: dict[str, x509.Certificate],
                                     persona: Persona) -> None:
    sign = certs["sign"]
    assert [a.value for a in sign.subject.get_attributes_for_oid(NameOID.LOCALITY_NAME)] == [
        "Tokyo-to", "Kiyose-shi"]
    assert read_sign_certificate_facts(sign) == {
        OID.NAME.dotted_string: "黒桐\u3000幹也",
        OID.BIRTH_DATE.dotted_string: "319800217",  # 昭和 = 3, then the Gregorian date
        OID.SEX.dotted_string: "1",
        OID.ADDRESS.dotted_string: "東京都清瀬市観布子南１２－７－２０２",
        OID.NAME_SUBSTITUTE_FLAGS.dotted_string: "00000",
        OID.ADDRESS_SUBSTITUTE_FLAGS.dotted_string: "0" * 18,
    }
    san = sign.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [o.type_id for o in san] == [OID.NAME, OID.BIRTH_DATE, OID.SEX, OID.ADDRESS,
                                        OID.NAME_SUBSTITUTE_FLAGS, OID.ADDRESS_SUBSTITUTE_FLAGS]
    policies = sign.extensions.get_extension_for_class(x509.CertificatePolicies)
    assert policies.critical and [p.policy_identifier for p in policies.value] == [
        OID.POLICY_SIGN]
    usage = sign.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.content_commitment
    # issued 2025-10-27, born 17 February: the 5th birthday after issuance is 2030-02-17 (JST)
    assert sign.not_valid_after_utc == dt.datetime(2030, 2, 17, 14, 59, 59, tzinfo=dt.UTC)
    assert certs["auth"].not_valid_after_utc == sign.not_valid_after_utc


@pytest.mark.parametrize("issued, birth, expiry, expected", [
    (dt.date(2025, 10, 27), dt.date(1980, 2, 17), dt.date(2035, 2, 17), dt.date(2030, 2, 17)),
    (dt.date(2025, 1, 10), dt.date(1980, 2, 17), dt.date(2035, 2, 17), dt.date(2029, 2, 17)),
    (dt.date(2025, 2, 17), dt.date(1980, 2, 17), dt.date(2035, 2, 17), dt.date(2030, 2, 17)),
    (dt.date(2026, 3, 10), dt.date(1988, 2, 29), dt.date(2036, 2, 28), dt.date(2031, 2, 28)),
    (dt.date(2025, 6, 1), dt.date(2016, 5, 5), dt.date(2028, 5, 5), dt.date(2028, 5, 5)),
])
def test_certificate_expiry_is_the_fifth_birthday_capped_by_the_card(
        issued: dt.date, birth: dt.date, expiry: dt.date, expected: dt.date) -> None:
    assert certificate_expiry(issued, birth, expiry).astimezone(
        dt.timezone(dt.timedelta(hours=9))).date() == expected


def test_keys_are_generated_per_card(make_card_dir, pki_dir: Path) -> None:
    first = read_all(make_card_dir("kokutou-mikiya"), None)
    other = read_all(make_card_dir("yamada-hanako"), "HANAKO2024PASS")
    assert first["auth"].public_key() != other["auth"].public_key()
    assert other["sign"].public_key() != other["auth"].public_key()


def test_child_card_has_no_signing_certificate(make_card_dir) -> None:
    connection = SimulatorReader.for_image(make_card_dir("sato-sora-child")).connect()
    try:
        client = JPKIClient(connection)
        assert not client.has_sign_certificate()
        auth = client.read_certificate(JPKIKey.AUTH)
        message = b"child login"
        signature = client.sign(JPKIKey.AUTH, message, "2468")
        key = auth.public_key()
        assert isinstance(key, rsa.RSAPublicKey)
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    finally:
        connection.disconnect()
