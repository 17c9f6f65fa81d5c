"""Byte layouts of the 券面 APs, 共通AP and the MF against the test person (facts §4-§7)."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric import padding
from helpers import BIRTH, CODE_A, CODE_B, TEXT_PIN, apdu, select_ef, verify_apdu

from mynacard.cardsim.card import VirtualCard
from mynacard.facts import cvc
from mynacard.facts.digest_info import encode_digest_info
from mynacard.iso7816.tlv import ber_iter, ber_read_header

TEXT = "00A4040C0AD3921000310001010408"
VISUAL = "00A4040C0AD3921000310001010402"
COMMON = "00A4040C0AD3921000310001010100"
ISD = "00A4040C07A0000001510000"

# EF 0002 of the test card, byte for byte (public reverse-engineering test vector, facts §4).
TEST_PERSON_0002 = bytes.fromhex(
    "ff2065df2108000e002000590064df220fe9bb92e6a190e38080e5b9b9e4b99f"
    "df2336e69db1e4baace983bde6b885e780ace5b882e8a6b3e5b883e5ad90e58d"
    "97efbc91efbc92efbc8defbc97efbc8defbc92efbc90efbc92df240831393830"
    "30323137df250131")


def read(card: VirtualCard, fid: int) -> bytes:
    assert apdu(card, select_ef(fid))[1] == 0x9000
    out = b""
    while True:
        data, sw = apdu(card, f"00B0{len(out):04X}00")
        if sw == 0x6B00:
            return out
        assert sw == 0x9000, hex(sw)
        out += data
        if len(data) < 256:
            return out


def unlock(card: VirtualCard, fid: int, secret: str) -> None:
    assert apdu(card, select_ef(fid))[1] == 0x9000
    assert apdu(card, verify_apdu(secret))[1] == 0x9000


def test_text_ap_records_are_byte_exact(card: VirtualCard, anchors: dict) -> None:
    apdu(card, TEXT)
    unlock(card, 0x0011, TEXT_PIN)
    number_file = read(card, 0x0001)
    assert number_file == b"\xff\x10\x0c537686677188\xff\xff"
    assert read(card, 0x0002) == TEST_PERSON_0002
    integrity = read(card, 0x0003)
    assert len(integrity) == 336 and integrity[:5] == bytes.fromhex("FF3082014B")
    fields = dict(ber_iter(integrity[5:]))
    assert fields[0xDF31] == hashlib.sha256(number_file).digest()
    assert fields[0xDF32] == hashlib.sha256(TEST_PERSON_0002[14:]).digest()
    certificate = read(card, 0x0004)
    assert len(certificate) == 568 and certificate[:10] == bytes.fromhex("7F218202335F4E820129")
    parsed = cvc.CVCertificate.parse(certificate)
    assert parsed.issuer == cvc.ROOT_TEXT and parsed.subject.number == "9132213"
    assert parsed.verified_by(anchors[cvc.ROOT_TEXT])
    assert cvc.verify(parsed.public_key, fields[0xDF33], integrity[5:5 + 70])
    info = read(card, 0x0005)
    assert info[:5] == bytes.fromhex("FF4082009F") and len(info) == 256
    assert info[5 + 0x9F:] == b"\xff" * (256 - 5 - 0x9F)
    inner = dict(ber_iter(info[5:5 + 0x9F]))
    assert inner[0xDF41] == bytes.fromhex("01030E01")
    assert inner[0xDF43][32:] == b"\xff" * 96
    session = read(card, 0x0006)
    assert session[:4] == bytes.fromhex("A1820109")
    signed = read(card, 0x0007)
    assert signed[:5] == bytes.fromhex("FF50820213") and len(signed) == 536


def test_visual_ap_records_and_signatures(card: VirtualCard, anchors: dict) -> None:
    apdu(card, VISUAL)
    certificate = cvc.CVCertificate.parse(read(card, 0x0004))
    assert certificate.issuer == cvc.ROOT_VISUAL
    assert certificate.verified_by(anchors[cvc.ROOT_VISUAL])
    key = certificate.public_key
    unlock(card, 0x0011, BIRTH)
    age = read(card, 0x0001)
    assert age[:5] == bytes.fromhex("FF1082021E") and len(age) == 547
    assert age[5:16] == b"\xdf\x11\x0819800217"
    assert cvc.verify(key, age[-256:], age[5:5 + 11 + 270])
    unlock(card, 0x0013, CODE_A)
    face = read(card, 0x0002)
    assert face[:2] == b"\xff\x20"
    outer = ber_read_header(face)
    tlvs, pos = {}, outer.header_length
    while pos < outer.total_length:
        header = ber_read_header(face, pos)
        tlvs[header.tag] = (pos, face[pos:pos + header.total_length],
                            face[pos + header.header_length:pos + header.total_length])
        pos += header.total_length
    table = tlvs[0xDF21][2]
    assert [int.from_bytes(table[i:i + 2], "big") for i in range(0, 18, 2)] == \
        [tlvs[t][0] for t in range(0xDF22, 0xDF2B)]
    assert tlvs[0xDF22][2] == b"19800217" and tlvs[0xDF23][2] == b"1"
    assert tlvs[0xDF29][2] == b"20350217"
    assert tlvs[0xDF27][2][:12] == bytes.fromhex("0000000C6A5020200D0A870A")  # JP2
    for tag in (0xDF25, 0xDF26, 0xDF2A):
        assert tlvs[tag][2][:8] == b"\x89PNG\r\n\x1a\n"
    digest = b"".join(hashlib.sha256(b"".join(tlvs[t][1] for t in group)).digest()
                      for group in ((0xDF22, 0xDF23, 0xDF24), (0xDF25, 0xDF26), (0xDF27,)))
    recovered = key.recover_data_from_signature(tlvs[0xDF28][2], padding.PKCS1v15(), None)
    assert recovered == cvc.concatenated_digest_info(digest)
    number = read(card, 0x0005)
    assert number[:2] == b"\xff\x40"


def test_visual_ap_info_names_the_municipality(card: VirtualCard) -> None:
    apdu(card, VISUAL)
    info = read(card, 0x0003)
    fields = dict(ber_iter(info[ber_read_header(info).header_length:]))
    assert fields[0xDF31] == bytes.fromhex("06030E01") and fields[0xDF34] == b"13221"
    assert len(fields[0xDF35]) == 16 + 256


def test_common_ap_card_record(card: VirtualCard) -> None:
    apdu(card, COMMON)
    data, sw = apdu(card, "00B2010C00")
    assert sw == 0x9000
    assert data == b"\x01\x1c" + b"400000012719843" + b"13221" + b"20350217"
    assert apdu(card, "00B2020C00")[1] == 0x6A83
    assert apdu(card, "00B2010500")[1] == 0x6A81
    assert apdu(card, "00B2010C05")[1] == 0x6C1E  # Le too short: exact length in SW2
    assert apdu(card, select_ef(0x0001))[1] == 0x9000
    assert apdu(card, "00B0000000")[1] == 0x6981  # a record EF is not transparent


def test_mf_get_data_objects(card: VirtualCard, anchors: dict) -> None:
    apdu(card, ISD)
    assert apdu(card, "00CA004500") == (b"400000012719843", 0x9000)
    assert apdu(card, "00CA00F000") == (b"13221", 0x9000)
    assert apdu(card, "00CA00F200") == (b"20350217", 0x9000)
    assert apdu(card, "00CA5F5100") == (bytes.fromhex("E000FF8131FE4514"), 0x9000)
    assert apdu(card, "00CA00F800")[1] == 0x6700  # > 256 bytes: extended Le needed
    upper = cvc.CVCertificate.parse(apdu(card, "00CA00F8000000")[0])
    lower = cvc.CVCertificate.parse(apdu(card, "00CA7F21000000")[0])
    assert upper.verified_by(anchors[cvc.ROOT_MF])
    assert lower.issuer == upper.subject and lower.verified_by(upper.public_key)
    assert apdu(card, "00CA00F700")[0] == upper.subject.encode()
    assert apdu(card, "00CA006600")[0][:2] == b"\x66\x31"
    assert apdu(card, "00CA123400")[1] == 0x6A88
    # Inside an AP only the contact ATR answers.
    apdu(card, COMMON)
    assert apdu(card, "00CA5F5100")[1] == 0x9000
    assert apdu(card, "00CA004500")[1] == 0x6A88


def test_simulator_key_ids_cannot_pass_for_production_or_test(card: VirtualCard) -> None:
    for select in (TEXT, VISUAL):
        apdu(card, select)
        certificate = cvc.CVCertificate.parse(read(card, 0x0004))
        for key_id in (certificate.issuer, certificate.subject):
            assert key_id.number[0] == "9" and key_id.number[0] not in cvc.RESERVED_PREFIXES


def test_session_key_and_internal_authenticate_answers(card: VirtualCard) -> None:
    expected = {TEXT: 0x6982, VISUAL: 0x66F1, COMMON: 0x66F1,
                "00A4040C0AD3921000310001010401": 0x6982, "00A4040C0AD392F000260100000001": 0x6982}
    for select, sw in expected.items():
        apdu(card, select)
        assert apdu(card, "80AE000000")[1] == sw, select
    apdu(card, COMMON)
    signature, sw = apdu(card, "0088009904CAFEBABE00")
    assert sw == 0x9000 and len(signature) == 256
    apdu(card, VISUAL)
    assert apdu(card, "008800" + "9A" + "04CAFEBABE00")[1] == 0x6985  # 券面 key: wrong command
    apdu(card, "00A4040C0AD392F000260100000001")
    assert apdu(card, "0088009704CAFEBABE00")[1] == 0x6982  # PIN-guarded JPKI key


def test_default_key_signs_without_credential(card: VirtualCard) -> None:
    digest_info = encode_digest_info("sha256", hashlib.sha256(b"challenge").digest())
    for select in (TEXT, VISUAL):
        apdu(card, select)
        signature, sw = apdu(card, f"802A0000{len(digest_info):02X}{digest_info.hex()}00")
        assert sw == 0x9000 and len(signature) == 256
    apdu(card, "00A4040C0AD392F000260100000001")
    assert apdu(card, f"802A0000{len(digest_info):02X}{digest_info.hex()}00")[1] == 0x6A86


def test_code_b_is_era_birth_expiry_year_and_security_code(card: VirtualCard) -> None:
    apdu(card, TEXT)
    unlock(card, 0x0015, CODE_B)
    assert apdu(card, select_ef(0x0002))[1] == 0x9000
    assert apdu(card, "00B0000000")[1] == 0x9000
