"""The card answers every JPKI-AP command with the real card's bytes and status words."""

from __future__ import annotations

import hashlib
import struct

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from helpers import SELECT_JPKI, apdu, der_object, select_ef, verify_apdu
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mynacard.cardsim.card import VirtualCard
from mynacard.facts.digest_info import encode_digest_info
from mynacard.iso7816.sw import SW

AIDS = {
    "jpki": "D392F000260100000001",
    "text": "D3921000310001010408",
    "visual": "D3921000310001010402",
    "common": "D3921000310001010100",
    "juki": "D3921000310001010401",
    "isd": "A0000001510000",
}
FOREIGN_AIDS = [  # OpenSC's probes before its jpki driver gets a turn
    "A000000308000010000100",  # PIV
    "D27600012401",  # OpenPGP
    "A000000397425446590201",  # GIDS
    "F276A288BCFBA69D34F31001",  # IsoApplet
    "A00000000101",  # MUSCLE
    "627601FF000000",  # CoolKey
    "E82B0601040181C31F0201",  # SmartCard-HSM
]


def sha256_digest_info(message: bytes) -> bytes:
    return encode_digest_info("sha256", hashlib.sha256(message).digest())


def read_whole_ef(card: VirtualCard) -> bytes:
    out = b""
    while True:
        data, sw = apdu(card, f"00B0{len(out):04X}00")
        if sw == SW.OFFSET_OUTSIDE_EF:
            return out
        assert sw == SW.OK
        out += data


def certificate_from_ef(card: VirtualCard, fid: int) -> x509.Certificate:
    assert apdu(card, select_ef(fid))[1] == SW.OK
    return x509.load_der_x509_certificate(der_object(read_whole_ef(card)))


# -- selection -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", AIDS)
def test_every_application_is_selectable(card: VirtualCard, name: str) -> None:
    assert apdu(card, f"00A4040C{len(AIDS[name]) // 2:02X}{AIDS[name]}") == (b"", SW.OK)


@pytest.mark.parametrize("aid", FOREIGN_AIDS)
def test_foreign_aids_are_not_found_in_either_select_form(card: VirtualCard, aid: str) -> None:
    assert apdu(card, f"00A4040C{len(aid) // 2:02X}{aid}")[1] == SW.FILE_NOT_FOUND
    assert apdu(card, f"00A40400{len(aid) // 2:02X}{aid}00")[1] == SW.FILE_NOT_FOUND


def test_failed_select_keeps_the_current_application_and_its_state(card: VirtualCard) -> None:
    apdu(card, SELECT_JPKI)
    apdu(card, select_ef(0x001B))
    assert apdu(card, verify_apdu("ABC123"))[1] == SW.OK
    assert apdu(card, "00A4040C06D27600012401")[1] == SW.FILE_NOT_FOUND
    apdu(card, select_ef(0x0001))
    assert apdu(card, "00B0000004")[1] == SW.OK


def test_partial_df_name_selects_the_first_match(card: VirtualCard) -> None:
    assert apdu(card, "00A4040C05D392F00026")[1] == SW.OK
    assert apdu(card, select_ef(0x000A))[1] == SW.OK


def test_select_mf_is_refused_after_reset_and_a_no_op_inside_an_ap(card: VirtualCard) -> None:
    assert apdu(card, "00A40000")[1] == SW.INCORRECT_P1P2
    apdu(card, SELECT_JPKI)
    apdu(card, select_ef(0x000A))
    assert apdu(card, "00A40000")[1] == SW.OK
    assert apdu(card, "00B0000002") == (b"\x30\x82", SW.OK)
    assert apdu(card, "00A4020C023F00")[1] == SW.FILE_NOT_FOUND


@pytest.mark.parametrize("command, sw", [
    ("00A4020C020099", SW.FILE_NOT_FOUND),
    ("00A4020C03000A00", SW.WRONG_LENGTH),
    ("00A40204020001", SW.INCORRECT_P1P2),
    ("00A4080C020001", SW.INCORRECT_P1P2),
    ("00A4040C00", SW.WRONG_LENGTH),
])
def test_select_errors(card: VirtualCard, command: str, sw: int) -> None:
    apdu(card, SELECT_JPKI)
    assert apdu(card, command)[1] == sw


def test_no_ef_can_be_selected_before_an_application(card: VirtualCard) -> None:
    assert apdu(card, select_ef(0x000A))[1] == SW.FILE_NOT_FOUND
    assert apdu(card, "00B0000004")[1] == SW.NO_CURRENT_EF


# -- class and instruction bytes -------------------------------------------------------------

@pytest.mark.parametrize("cla, sw", [
    (0x01, SW.LOGICAL_CHANNEL_NOT_SUPPORTED), (0x03, SW.LOGICAL_CHANNEL_NOT_SUPPORTED),
    (0x40, SW.LOGICAL_CHANNEL_NOT_SUPPORTED), (0x08, SW.SM_SESSION_BROKEN),
    (0x0C, SW.SM_SESSION_BROKEN), (0x04, SW.SECURE_MESSAGING_NOT_SUPPORTED),
    (0x10, SW.COMMAND_CHAINING_NOT_SUPPORTED),
    (0xA0, SW.CLA_NOT_SUPPORTED), (0xFF, SW.CLA_NOT_SUPPORTED),
    (0x80, SW.CLA_NOT_SUPPORTED),
])
def test_class_byte_errors(card: VirtualCard, cla: int, sw: int) -> None:
    apdu(card, SELECT_JPKI)
    apdu(card, select_ef(0x000A))
    assert apdu(card, f"{cla:02X}B0000004")[1] == sw


@pytest.mark.parametrize("ins", [0x00, 0x0E, 0x44, 0xE0, 0xD6, 0xFE])
def test_unknown_instructions(card: VirtualCard, ins: int) -> None:
    apdu(card, SELECT_JPKI)
    assert apdu(card, f"00{ins:02X}0000")[1] == SW.INS_NOT_SUPPORTED


def test_proprietary_signing_instruction_needs_the_proprietary_class(card: VirtualCard) -> None:
    apdu(card, SELECT_JPKI)
    assert apdu(card, "002A00800100 00")[1] == SW.CLA_NOT_SUPPORTED


# -- READ BINARY ------------------------------------------------------------------------------

def test_certificate_efs_hold_der_then_filler(card: VirtualCard) -> None:
    apdu(card, SELECT_JPKI)
    for fid in (0x000A, 0x000B, 0x0002):
        apdu(card, select_ef(fid))
        physical = read_whole_ef(card)
        head = physical[:4]
        assert head[:2] == b"\x30\x82"
        der_length = struct.unpack(">H", head[2:])[0] + 4
        assert len(physical) == 2048
        assert set(physical[der_length:]) == {0xFF}
        x509.load_der_x509_certificate(physical[:der_length])


def test_read_binary_lengths_and_offsets(card: VirtualCard) -> None:
    apdu(card, SELECT_JPKI)
    apdu(card, select_ef(0x000A))
    whole = read_whole_ef(card)
    assert apdu(card, "00B0000000") == (whole[:256], SW.OK)
    assert apdu(card, "00B0010707") == (whole[0x107:0x107 + 7], SW.OK)
    assert apdu(card, "00B007FA00") == (whole[0x7FA:], SW.OK)  # fewer than Le remain
    assert apdu(card, "00B0080000")[1] == SW.OFFSET_OUTSIDE_EF
    assert apdu(card, "00B07FFF01")[1] == SW.OFFSET_OUTSIDE_EF
    assert apdu(card, "00B00000")[1] == SW.WRONG_LENGTH
    assert apdu(card, "00B00000020000")[1] == SW.WRONG_LENGTH


def test_read_binary_by_short_ef_identifier(card: VirtualCard) -> None:
    apdu(card, SELECT_JPKI)
    assert apdu(card, "00B08A0004")[0][:2] == b"\x30\x82"
    assert apdu(card, "00B0000002") == (b"\x30\x82", SW.OK)  # it became the current EF
    assert apdu(card, "00B09D0004")[1] == SW.FILE_NOT_FOUND  # 001D: none on the card
    assert apdu(card, "00B0990004")[1] == SW.INCOMPATIBLE_FILE_STRUCTURE  # 0019: a key ref
    assert apdu(card, "00B0CA0004")[1] == SW.INCORRECT_P1P2


@pytest.mark.parametrize("fid", [0x0017, 0x001A, 0x0018, 0x001B])
def test_key_and_pin_efs_are_never_readable(card: VirtualCard, fid: int) -> None:
    apdu(card, SELECT_JPKI)
    apdu(card, select_ef(0x001B))
    apdu(card, verify_apdu("ABC123"))
    apdu(card, select_ef(0x0018))
    apdu(card, verify_apdu("1234"))
    assert apdu(card, select_ef(fid))[1] == SW.OK
    assert apdu(card, "00B0000000")[1] == SW.INCOMPATIBLE_FILE_STRUCTURE
    assert apdu(card, f"00B0{0x80 | fid:02X}0000")[1] == SW.INCOMPATIBLE_FILE_STRUCTURE


def test_signing_certificate_needs_the_signing_password(card: VirtualCard) -> None:
    apdu(card, SELECT_JPKI)
    apdu(card, select_ef(0x0001))
    assert apdu(card, "00B0000004")[1] == SW.SECURITY_STATUS_NOT_SATISFIED
    apdu(card, select_ef(0x0018))
    apdu(card, verify_apdu("1234"))  # the auth PIN does not open it
    apdu(card, select_ef(0x0001))
    assert apdu(card, "00B0000004")[1] == SW.SECURITY_STATUS_NOT_SATISFIED
    apdu(card, select_ef(0x001B))
    apdu(card, verify_apdu("ABC123"))
    apdu(card, select_ef(0x0001))
    data, sw = apdu(card, "00B0000004")
    assert sw == SW.OK and data[:2] == b"\x30\x82"


def test_token_info_layout(card: VirtualCard) -> None:
    apdu(card, SELECT_JPKI)
    apdu(card, select_ef(0x0006))
    raw = read_whole_ef(card)
    assert len(raw) == 160
    assert raw[:32] == b"JPKIAPICCTOKEN2".ljust(32, b" ")
    fields = struct.unpack(">32s32s16s16s11L2s2s16s", raw)
    assert fields[2].rstrip() == b"E16R01NJ"
    assert fields[4] == 0x0000040D  # RNG | LOGIN_REQUIRED | USER_PIN_INITIALIZED | TOKEN_INIT.
    assert (fields[9], fields[10]) == (16, 6)  # max / min PIN length
    assert fields[11:15] == (0xFFFFFFFF,) * 4
    assert (fields[15], fields[16]) == (b"03", b"01")


def test_certificate_availability(card: VirtualCard, make_card_dir) -> None:
    apdu(card, SELECT_JPKI)
    apdu(card, select_ef(0x0008))
    assert read_whole_ef(card) == bytes.fromhex("8F8F00")
    child = VirtualCard.open(make_card_dir("sato-sora-child"))
    child.power_on()
    apdu(child, SELECT_JPKI)
    apdu(child, select_ef(0x0008))
    assert read_whole_ef(child) == bytes.fromhex("008F00")
    child.close()


# -- VERIFY -----------------------------------------------------------------------------------

def test_verify_counts_down_blocks_and_stays_blocked(card: VirtualCard) -> None:
    apdu(card, SELECT_JPKI)
    apdu(card, select_ef(0x0018))
    assert apdu(card, "00200080")[1] == 0x63C3
    assert apdu(card, verify_apdu("0000"))[1] == 0x63C2
    assert apdu(card, verify_apdu("0000"))[1] == 0x63C1
    assert apdu(card, verify_apdu("0000"))[1] == 0x63C0
    assert apdu(card, "00200080")[1] == 0x63C0
    assert apdu(card, verify_apdu("1234"))[1] == SW.AUTH_METHOD_BLOCKED
    card.reset()
    apdu(card, SELECT_JPKI)
    apdu(card, select_ef(0x0018))
    assert apdu(card, verify_apdu("1234"))[1] == SW.AUTH_METHOD_BLOCKED


def test_success_restores_the_counter(card: VirtualCard) -> None:
    apdu(card, SELECT_JPKI)
    apdu(card, select_ef(0x001B))
    for expected in (0x63C4, 0x63C3):
        assert apdu(card, verify_apdu("WRONG1"))[1] == expected
    assert apdu(card, verify_apdu("ABC123"))[1] == SW.OK
    assert apdu(card, "00200080")[1] == 0x63C5


@pytest.mark.parametrize("presented", [b"123", b"12345", b"abc123", b"ABC123\x00", b"\xff" * 4])
def test_any_mismatch_consumes_a_try_whatever_its_format(card: VirtualCard,
                                                        presented: bytes) -> None:
    apdu(card, SELECT_JPKI)
    apdu(card, select_ef(0x0018))
    assert apdu(card, verify_apdu(presented))[1] == 0x63C2


def test_empty_verify_reports_tries_even_when_verified(card: VirtualCard) -> None:
    apdu(card, SELECT_JPKI)
    apdu(card, select_ef(0x0018))
    apdu(card, verify_apdu("1234"))
    assert apdu(card, "00200080")[1] == 0x63C3  # OpenSC's PKCS#15 bind depends on 63Cx
    assert apdu(card, "0020008000")[1] == 0x63C3  # with an Le byte too


def test_empty_verify_answer_is_configurable(card: VirtualCard) -> None:
    card.store.update_content(options={"empty_verify_when_verified": "9000"})
    apdu(card, SELECT_JPKI)
    apdu(card, select_ef(0x0018))
    assert apdu(card, "00200080")[1] == 0x63C3
    apdu(card, verify_apdu("1234"))
    assert apdu(card, "00200080")[1] == SW.OK


@pytest.mark.parametrize("command, sw", [
    ("00200180", SW.INCORRECT_P1P2),
    ("00200000", SW.INCORRECT_P1P2),
    ("00200098", 0x63C3),  # 0x18 by short EF identifier
    ("0020009F", SW.REFERENCED_DATA_NOT_FOUND),
    ("0020008A", SW.INCOMPATIBLE_FILE_STRUCTURE),  # 000A is a certificate
])
def test_verify_reference_errors(card: VirtualCard, command: str, sw: int) -> None:
    apdu(card, SELECT_JPKI)
    assert apdu(card, command)[1] == sw


def test_verify_without_a_current_ef(card: VirtualCard) -> None:
    apdu(card, SELECT_JPKI)
    assert apdu(card, "00200080")[1] == SW.NO_CURRENT_EF


# -- CHANGE REFERENCE DATA -------------------------------------------------------------------

def test_change_pin_requires_verification_and_the_format(card: VirtualCard) -> None:
    apdu(card, SELECT_JPKI)
    apdu(card, select_ef(0x0018))
    assert apdu(card, "0024018004" + b"5678".hex())[1] == SW.SECURITY_STATUS_NOT_SATISFIED
    apdu(card, verify_apdu("1234"))
    for bad in (b"567", b"56789", b"56a8", "５６７８".encode()):
        assert apdu(card, f"00240180{len(bad):02X}{bad.hex()}")[1] == SW.WRONG_DATA
    assert apdu(card, "002400800435363738")[1] == SW.INCORRECT_P1P2
    assert apdu(card, "0024018004" + b"5678".hex())[1] == SW.OK
    card.reset()
    apdu(card, SELECT_JPKI)
    apdu(card, select_ef(0x0018))
    assert apdu(card, verify_apdu("1234"))[1] == 0x63C2
    assert apdu(card, verify_apdu("5678"))[1] == SW.OK


@pytest.mark.parametrize("new, accepted", [
    ("ABC123", True), ("A1B2C3D4E5F6G7H8", True), ("ABCDEF", False), ("123456", False),
    ("AB12", False), ("A1B2C3D4E5F6G7H8I", False), ("abc123", False), ("ABC 123", False),
])
def test_signing_password_rules(card: VirtualCard, new: str, accepted: bool) -> None:
    apdu(card, SELECT_JPKI)
    apdu(card, select_ef(0x001B))
    apdu(card, verify_apdu("ABC123"))
    sw = apdu(card, f"00240180{len(new):02X}{new.encode().hex()}")[1]
    assert sw == (SW.OK if accepted else SW.WRONG_DATA)


# -- signing ---------------------------------------------------------------------------------

def _public_key(card: VirtualCard, cert_fid: int) -> rsa.RSAPublicKey:
    key = certificate_from_ef(card, cert_fid).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    return key


@pytest.mark.parametrize("pin_fid, pin, key_fid, cert_fid", [
    (0x0018, "1234", 0x0017, 0x000A),
    (0x001B, "ABC123", 0x001A, 0x0001),
])
def test_signature_verifies_against_the_certificate(card: VirtualCard, pin_fid: int, pin: str,
                                                   key_fid: int, cert_fid: int) -> None:
    message = b"to be signed"
    apdu(card, SELECT_JPKI)
    apdu(card, select_ef(pin_fid))
    apdu(card, verify_apdu(pin))
    public_key = _public_key(card, cert_fid)
    apdu(card, select_ef(key_fid))
    info = sha256_digest_info(message)
    signature, sw = apdu(card, f"802A0080{len(info):02X}{info.hex()}00")
    assert sw == SW.OK and len(signature) == 256
    public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    # naming the key by short EF identifier gives the same (deterministic) signature
    assert apdu(card, f"802A00{0x80 | key_fid:02X}{len(info):02X}{info.hex()}00")[0] == signature


def test_signing_needs_the_matching_pin(card: VirtualCard) -> None:
    info = sha256_digest_info(b"x").hex()
    apdu(card, SELECT_JPKI)
    apdu(card, select_ef(0x0017))
    assert apdu(card, f"802A008033{info}00")[1] == SW.SECURITY_STATUS_NOT_SATISFIED
    apdu(card, select_ef(0x001B))
    apdu(card, verify_apdu("ABC123"))
    apdu(card, select_ef(0x0017))
    assert apdu(card, f"802A008033{info}00")[1] == SW.SECURITY_STATUS_NOT_SATISFIED
    apdu(card, select_ef(0x001A))
    assert apdu(card, f"802A008033{info}00")[1] == SW.OK


def test_security_state_is_cleared_by_reselect_reset_and_power_off(card: VirtualCard) -> None:
    info = sha256_digest_info(b"x").hex()

    def verified_then(action) -> int:
        apdu(card, SELECT_JPKI)
        apdu(card, select_ef(0x0018))
        assert apdu(card, verify_apdu("1234"))[1] == SW.OK
        action()
        apdu(card, select_ef(0x0017))
        return apdu(card, f"802A008033{info}00")[1]

    assert verified_then(lambda: None) == SW.OK
    assert verified_then(lambda: apdu(card, SELECT_JPKI)) == SW.SECURITY_STATUS_NOT_SATISFIED
    assert verified_then(lambda: (card.reset(), apdu(card, SELECT_JPKI))) == \
        SW.SECURITY_STATUS_NOT_SATISFIED
    assert verified_then(lambda: (card.power_off(), card.power_on(), apdu(card, SELECT_JPKI))) \
        == SW.SECURITY_STATUS_NOT_SATISFIED


def test_per_signature_verification_is_configurable(card: VirtualCard) -> None:
    card.store.update_content(options={"verify_per_signature": True})
    info = sha256_digest_info(b"x").hex()
    apdu(card, SELECT_JPKI)
    apdu(card, select_ef(0x001B))
    apdu(card, verify_apdu("ABC123"))
    apdu(card, select_ef(0x001A))
    assert apdu(card, f"802A008033{info}00")[1] == SW.OK
    assert apdu(card, f"802A008033{info}00")[1] == SW.SECURITY_STATUS_NOT_SATISFIED


@pytest.fixture
def auth_ready(card: VirtualCard) -> rsa.RSAPublicKey:
    apdu(card, SELECT_JPKI)
    public_key = _public_key(card, 0x000A)
    apdu(card, select_ef(0x0018))
    apdu(card, verify_apdu("1234"))
    apdu(card, select_ef(0x0017))
    return public_key


def test_signature_schemes_by_p1(card: VirtualCard, auth_ready: rsa.RSAPublicKey) -> None:
    message = b"scheme test"
    digest = hashlib.sha256(message).digest()
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)

    def sign(p1: int, data: bytes) -> bytes:
        signature, sw = apdu(card, f"802A{p1:02X}80{len(data):02X}{data.hex()}00")
        assert sw == SW.OK
        return signature

    recovered = auth_ready.recover_data_from_signature(sign(0x00, b"\x01\x02\x03"),
                                                      padding.PKCS1v15(), None)
    assert recovered == b"\x01\x02\x03"
    assert auth_ready.recover_data_from_signature(sign(0x01, message), padding.PKCS1v15(),
                                                  None) == digest
    auth_ready.verify(sign(0x02, digest), message, padding.PKCS1v15(), hashes.SHA256())
    auth_ready.verify(sign(0x03, message), message, padding.PKCS1v15(), hashes.SHA256())
    auth_ready.verify(sign(0x04, digest), digest, pss, Prehashed(hashes.SHA256()))
    auth_ready.verify(sign(0x05, message), message, pss, hashes.SHA256())


@pytest.mark.parametrize("command, sw", [
    ("802A0080F6" + "00" * 246 + "00", SW.WRONG_LENGTH),  # 246 > k - 11
    ("802A0280" + "1F" + "00" * 31 + "00", SW.WRONG_LENGTH),  # P1 02 takes exactly 32 bytes
    ("802A048021" + "00" * 33 + "00", SW.WRONG_LENGTH),
    ("802A068001AA00", SW.INCORRECT_P1P2),
    ("802A0080", SW.WRONG_LENGTH),
    ("802A008001AA", SW.WRONG_LENGTH),  # no Le: the signature could not be returned
    ("802A00000133 00", SW.INCORRECT_P1P2),
    ("802A008A0133 00", SW.INCOMPATIBLE_FILE_STRUCTURE),  # 000A is a certificate
])
def test_signing_errors(card: VirtualCard, auth_ready: rsa.RSAPublicKey, command: str,
                        sw: int) -> None:
    assert apdu(card, command)[1] == sw


def test_signing_with_a_certificate_selected(card: VirtualCard) -> None:
    apdu(card, SELECT_JPKI)
    apdu(card, select_ef(0x000A))
    assert apdu(card, "802A00800133 00")[1] == SW.INCOMPATIBLE_FILE_STRUCTURE


# -- GET CHALLENGE ---------------------------------------------------------------------------

def test_get_challenge(card: VirtualCard) -> None:
    first, sw = apdu(card, "0084000008")
    assert sw == SW.OK and len(first) == 8
    assert apdu(card, "0084000008")[0] != first
    assert len(apdu(card, "0084000000")[0]) == 256
    assert apdu(card, "00840000")[1] == SW.WRONG_LENGTH
    assert apdu(card, "0084010008")[1] == SW.INCORRECT_P1P2
    assert apdu(card, "00840000000010")[1] == SW.CONDITIONS_NOT_SATISFIED


# -- hostile input ---------------------------------------------------------------------------

KNOWN_SWS = {int(sw) for sw in SW}


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.binary(max_size=300), max_size=6))
def test_random_bytes_always_get_a_status_word(card: VirtualCard, commands: list[bytes]) -> None:
    apdu(card, SELECT_JPKI)
    for command in commands:
        response = card.transmit(command)
        sw = int.from_bytes(response[-2:], "big")
        assert sw in KNOWN_SWS or sw & 0xFFF0 == 0x63C0
        assert sw != SW.SELF_DIAGNOSIS_FAILURE


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255),
       st.binary(max_size=260), st.none() | st.integers(1, 256))
def test_structured_fuzz_never_leaks_keys_or_fails(card: VirtualCard, ins: int, p1: int,
                                                  p2: int, data: bytes, le: int | None) -> None:
    from mynacard.iso7816.apdu import CommandAPDU

    secrets = [card.store.content.keys[name] for name in card.store.content.keys]
    apdu(card, SELECT_JPKI)
    for cla in (0x00, 0x80):
        response = card.transmit(CommandAPDU(cla, ins, p1, p2, data, le).encode())
        assert int.from_bytes(response[-2:], "big") != SW.SELF_DIAGNOSIS_FAILURE
        assert not any(secret[-64:] in response for secret in secrets)
