"""OpenSC against the simulator served through pcscd + vpcd, with no driver pinned.

OpenSC must not be able to tell the simulator from a card: it has to pick the
``jpki`` driver by itself, read the certificates byte for byte, see the PIN
counters move, and get signatures that verify.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mynacard.cardsim.card import APPLICATIONS, VirtualCard
from mynacard.iso7816.apdu import CommandAPDU
from mynacard.iso7816.sw import SW
from mynacard.readers.pcsc import PcscReader

from .conftest import AUTH_PIN, SIGN_PASSWORD, PcscSandbox

pytestmark = pytest.mark.xdist_group("pcscd")

JPKI_AID = bytes.fromhex("D392F000260100000001")
EF_AUTH_CERT, EF_SIGN_CERT, EF_AUTH_CA, EF_SIGN_CA = 0x000A, 0x0001, 0x000B, 0x0002
EF_AUTH_PIN, EF_SIGN_PIN = 0x0018, 0x001B
# pkcs11 slots: OpenSC gives each PIN of the card in reader 0 its own slot.
AUTH_SLOT, SIGN_SLOT = "0", "1"


def card_certificate(card: VirtualCard, fid: int) -> x509.Certificate:
    """The certificate in a JPKI EF, read from the card image (not through OpenSC)."""
    ef = card.store.file(f"jpki/{fid:04X}")
    assert ef is not None and ef[:2] == b"\x30\x82"
    return x509.load_der_x509_certificate(ef[: 4 + int.from_bytes(ef[2:4], "big")])


def pin_counter(card: VirtualCard, fid: int) -> int:
    return card.store.counter(f"jpki/{fid:04X}")


def tries_left(listing: str) -> list[int]:
    return [int(n) for n in re.findall(r"Tries left\s*:\s*(\d+)", listing)]


def present_pin(pcsc: PcscSandbox, pin_ef: int, pin: str) -> int:
    """SELECT the JPKI-AP and the PIN EF, VERIFY ``pin`` through pyscard; the SW."""
    with PcscReader(pcsc.slots[0].reader).connect() as connection:
        assert connection.transmit(CommandAPDU(0, 0xA4, 4, 0x0C, JPKI_AID)).ok
        assert connection.transmit(CommandAPDU(0, 0xA4, 2, 0x0C, pin_ef.to_bytes(2, "big"))).ok
        return connection.transmit(CommandAPDU(0, 0x20, 0, 0x80, pin.encode())).sw


def pkcs11_sign(pcsc: PcscSandbox, module: str, slot: str, key_id: str, pin: str, tmp: Path,
                *, check: bool = True) -> subprocess.CompletedProcess[str]:
    message = tmp / "message.txt"
    message.write_bytes(b"mynacard interop " + key_id.encode())
    return pcsc.opensc(
        "pkcs11-tool", "--module", module, "--slot-index", slot, "--login", "--pin", pin,
        "--sign", "--mechanism", "SHA256-RSA-PKCS", "--id", key_id,
        "-i", str(message), "-o", str(tmp / "signature.bin"), check=check,
    )


def openssl_verify(certificate: x509.Certificate, tmp: Path) -> subprocess.CompletedProcess[str]:
    public_key = tmp / "public.pem"
    public_key.write_bytes(certificate.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", str(public_key),
         "-signature", str(tmp / "signature.bin"), str(tmp / "message.txt")],
        capture_output=True, text=True, timeout=30,
    )


def test_opensc_picks_the_jpki_driver_by_itself(pcsc: PcscSandbox):
    result = pcsc.opensc("opensc-tool", "--reader", "0", "--name")
    assert result.stdout.strip() == "jpki"


def test_opensc_finds_a_card_with_another_atr_by_selecting_jpki(pcsc: PcscSandbox):
    # Slot 1 has a JPKI ATR that OpenSC's ATR table lacks: its SELECT probe must succeed.
    pcsc.trace.clear()
    result = pcsc.opensc("opensc-tool", "--reader", "1", "--name")
    assert result.stdout.strip() == "jpki"
    select_jpki = bytes.fromhex("00A4040C0A") + JPKI_AID
    assert (select_jpki, bytes.fromhex("9000")) in pcsc.trace


def test_foreign_aid_probes_get_file_not_found(pcsc: PcscSandbox):
    pcsc.trace.clear()
    pcsc.opensc("opensc-tool", "--reader", "0", "--name")
    card_aids = [application.AID for application in APPLICATIONS]
    probes = [
        (command, response)
        for command, response in pcsc.trace
        if command[1:3] == b"\xa4\x04" and len(command) > 5
        and not any(aid.startswith(command[5 : 5 + command[4]]) for aid in card_aids)
    ]
    # OpenSC's drivers before jpki probe PIV, OpenPGP, GIDS, MUSCLE, CoolKey, SC-HSM ...
    assert len(probes) >= 10
    wrong = [(c.hex(), r.hex()) for c, r in probes if r != bytes.fromhex("6A82")]
    assert wrong == []


def test_get_data_probe_gets_referenced_data_not_found(pcsc: PcscSandbox):
    pcsc.trace.clear()
    pcsc.opensc("opensc-tool", "--reader", "0", "--name")
    answers = {c.hex(): r.hex() for c, r in pcsc.trace if c[:4] == bytes.fromhex("00CADF30")}
    assert answers == {"00cadf3005": "6a88"}


def test_lists_the_four_certificates(pcsc: PcscSandbox):
    listing = pcsc.opensc("pkcs15-tool", "--reader", "0", "--list-certificates").stdout
    titles = re.findall(r"X\.509 Certificate \[(.+)\]", listing)
    assert titles == [
        "User Authentication Certificate",
        "Digital Signature Certificate",
        "User Authentication Certificate CA",
        "Digital Signature Certificate CA",
    ]
    assert re.findall(r"ID\s*:\s*(\w+)", listing) == ["01", "02", "03", "04"]


@pytest.mark.parametrize(
    ("cert_id", "fid"), [("01", EF_AUTH_CERT), ("03", EF_AUTH_CA), ("04", EF_SIGN_CA)]
)
def test_read_certificate_is_byte_for_byte_the_cards(pcsc: PcscSandbox, cert_id: str, fid: int):
    pem = pcsc.opensc("pkcs15-tool", "--reader", "0", "--read-certificate", cert_id).stdout
    read = x509.load_pem_x509_certificate(pem.encode())
    expected = card_certificate(pcsc.slots[0].card, fid)
    assert read.public_bytes(serialization.Encoding.DER) == expected.public_bytes(
        serialization.Encoding.DER)


def test_list_pins_follows_wrong_pins_presented_through_pyscard(
    pcsc: PcscSandbox, fresh_card: VirtualCard
):
    listing = pcsc.opensc("pkcs15-tool", "--reader", "0", "--list-pins").stdout
    assert tries_left(listing) == [3, 5]
    assert present_pin(pcsc, EF_AUTH_PIN, "0000") == 0x63C2
    assert present_pin(pcsc, EF_SIGN_PIN, "WRONG1") == 0x63C4
    listing = pcsc.opensc("pkcs15-tool", "--reader", "0", "--list-pins").stdout
    assert tries_left(listing) == [2, 4]


def test_pkcs11_signature_with_the_auth_key_verifies(
    pcsc: PcscSandbox, opensc_pkcs11: str, tmp_path: Path
):
    pkcs11_sign(pcsc, opensc_pkcs11, AUTH_SLOT, "01", AUTH_PIN, tmp_path)
    assert (tmp_path / "signature.bin").stat().st_size == 256
    auth_cert = card_certificate(pcsc.slots[0].card, EF_AUTH_CERT)
    result = openssl_verify(auth_cert, tmp_path)
    assert result.returncode == 0 and "Verified OK" in result.stdout
    # And not with the other key: the check can fail.
    sign_cert = card_certificate(pcsc.slots[0].card, EF_SIGN_CERT)
    assert openssl_verify(sign_cert, tmp_path).returncode != 0


def test_pkcs11_signature_with_the_signing_key_verifies(
    pcsc: PcscSandbox, opensc_pkcs11: str, tmp_path: Path
):
    pkcs11_sign(pcsc, opensc_pkcs11, SIGN_SLOT, "02", SIGN_PASSWORD, tmp_path)
    sign_cert = card_certificate(pcsc.slots[0].card, EF_SIGN_CERT)
    result = openssl_verify(sign_cert, tmp_path)
    assert result.returncode == 0 and "Verified OK" in result.stdout


def test_wrong_pin_through_pkcs11_costs_exactly_one_try(
    pcsc: PcscSandbox, fresh_card: VirtualCard, opensc_pkcs11: str, tmp_path: Path
):
    assert pin_counter(fresh_card, EF_AUTH_PIN) == 3
    result = pkcs11_sign(pcsc, opensc_pkcs11, AUTH_SLOT, "01", "9999", tmp_path, check=False)
    assert result.returncode != 0 and "CKR_PIN_INCORRECT" in result.stderr
    assert pin_counter(fresh_card, EF_AUTH_PIN) == 2
    assert pin_counter(fresh_card, EF_SIGN_PIN) == 5
    # The right PIN still works and restores the counter.
    pkcs11_sign(pcsc, opensc_pkcs11, AUTH_SLOT, "01", AUTH_PIN, tmp_path)
    assert pin_counter(fresh_card, EF_AUTH_PIN) == 3


def test_locking_through_opensc_blocks_the_pin(
    pcsc: PcscSandbox, fresh_card: VirtualCard, opensc_pkcs11: str, tmp_path: Path
):
    for _ in range(3):
        result = pkcs11_sign(pcsc, opensc_pkcs11, AUTH_SLOT, "01", "9999", tmp_path, check=False)
        assert "CKR_PIN_INCORRECT" in result.stderr
    assert pin_counter(fresh_card, EF_AUTH_PIN) == 0
    pcsc.trace.clear()
    result = pkcs11_sign(pcsc, opensc_pkcs11, AUTH_SLOT, "01", AUTH_PIN, tmp_path, check=False)
    # OpenSC maps the card's 6984 to CKR_GENERAL_ERROR, as it does with a real card.
    assert result.returncode != 0 and "C_Login failed" in result.stderr
    verify_right_pin = bytes.fromhex("0020008004") + AUTH_PIN.encode()
    assert (verify_right_pin, bytes.fromhex("6984")) in pcsc.trace
    assert present_pin(pcsc, EF_AUTH_PIN, AUTH_PIN) == SW.AUTH_METHOD_BLOCKED


def test_ssh_keygen_prints_the_auth_public_key(pcsc: PcscSandbox, opensc_pkcs11: str):
    keys = pcsc.opensc("ssh-keygen", "-D", opensc_pkcs11).stdout.splitlines()
    auth_cert = card_certificate(pcsc.slots[0].card, EF_AUTH_CERT)
    expected = auth_cert.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    assert keys, "ssh-keygen listed no key"
    assert keys[0].split()[:2] == expected.split()[:2]
    assert keys[0].endswith("User Authentication Public Key")
