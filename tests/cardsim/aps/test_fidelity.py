"""Issue 9, card fidelity: each test sends what a named client of the real card sends and
checks the answer against literal bytes (the independent oracle), not against the encoder
that produced them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from helpers import PERSONAS, TEST_TODAY, TEXT_PIN, apdu
from hypothesis import given, settings
from hypothesis import strategies as st

from mynacard.cardsim.card import VirtualCard
from mynacard.cardsim.perso.issue import issue_card
from mynacard.cardsim.perso.persona import parse_persona
from mynacard.client.text import TextClient, parse_basic_four
from mynacard.facts.text import BasicFour
from mynacard.iso7816.tlv import ber_read_header, card_record_encode, card_record_length
from mynacard.readers.simulator import SimulatorReader

SELECT_TEXT = "00A4040C0AD3921000310001010408"
SELECT_VISUAL = "00A4040C0AD3921000310001010402"
SELECT_JPKI = "00A4040C0AD392F000260100000001"
SELECT_COMMON = "00A4040C0AD3921000310001010100"

# 35 full-width characters, 105 UTF-8 bytes: the address field stays short-form (mnbcard reads
# one length byte per field) while the whole record grows past 127 bytes.
LONG_ADDRESS = "東京都清瀬市観布子南１２－７－２０２観布子南マンション第一二棟三〇二号"


# -- item 2: lengths as the card writes them -------------------------------------------------

@pytest.mark.parametrize(("length", "expected"), [
    (0, "00"), (0x7F, "7F"), (0x80, "820080"), (0x86, "820086"), (0x9F, "82009F"),
    (0xFF, "8200FF"), (0x100, "820100"), (0x14B, "82014B"), (0xFFFF, "82FFFF"),
])
def test_card_record_length_is_short_to_127_then_82(length: int, expected: str) -> None:
    assert card_record_length(length) == bytes.fromhex(expected)


def test_card_record_length_refuses_what_82_cannot_hold() -> None:
    with pytest.raises(ValueError):
        card_record_length(0x10000)
    with pytest.raises(ValueError):
        card_record_length(-1)


def test_long_four_facts_record_is_ff20_82_00_ll() -> None:
    four = BasicFour("黒桐\u3000幹也", LONG_ADDRESS, dt.date(1980, 2, 17), "1")
    expected = (bytes.fromhex("FF20820098" "DF2108" "0010" "0022" "008E" "0099" "DF220F")
                + "黒桐\u3000幹也".encode() + bytes.fromhex("DF2369") + LONG_ADDRESS.encode()
                + bytes.fromhex("DF2408" "3139383030323137" "DF2501" "31"))
    assert four.encode() == expected


def _issue(pki, tmp_path: Path, **changes) -> Path:
    data = yaml.safe_load((PERSONAS / "kokutou-mikiya.yaml").read_text(encoding="utf-8"))
    data.update(changes)
    out = tmp_path / "card"
    issue_card(parse_persona(data, today=TEST_TODAY), out, pki)
    return out


def test_mnbcard_reads_a_long_address_record(session_pki, anchors, tmp_path: Path) -> None:
    """lanesky/mnbcard: one 256-byte read, then the DF21 offsets' low bytes at file bytes
    9/11/13/15 — which only holds with the 5-byte ``FF 20 82 00 LL`` header."""
    card_dir = _issue(session_pki, tmp_path, address=LONG_ADDRESS)
    card = VirtualCard.open(card_dir)
    card.power_on()
    try:
        for command in (SELECT_TEXT, "00A4020C020011", "0020008004" + b"1234".hex(),
                        "00A4020C020002"):
            assert apdu(card, command)[1] == 0x9000, command
        data, sw = apdu(card, "00B0000000")
        assert sw == 0x9000
        assert data[:5] == bytes.fromhex("FF20820098")

        def parse_attr(pos: int) -> bytes:  # mnbcard's _parse_attr
            assert data[pos] == 0xDF
            return data[pos + 3:pos + 3 + data[pos + 2]]

        assert parse_attr(data[9]).decode() == "黒桐\u3000幹也"
        assert parse_attr(data[11]).decode() == LONG_ADDRESS
        assert parse_attr(data[13]) == b"19800217" and parse_attr(data[15]) == b"1"
    finally:
        card.close()
    # The integrity record's DF32 covers the same bytes: the verifying client agrees.
    with SimulatorReader.for_image(card_dir).connect() as conn:
        assert TextClient(conn, anchors).read(pin=TEXT_PIN).basic_four.address == LONG_ADDRESS


def _headers(raw: bytes) -> list[tuple[bytes, int]]:
    """(length bytes, value length) of the outer TLV and of each field inside it."""
    outer = ber_read_header(raw)
    out = [(raw[2:outer.header_length], outer.value_length)]
    pos = outer.header_length
    while pos < outer.total_length:
        header = ber_read_header(raw, pos)
        out.append((raw[pos + 2:pos + header.header_length], header.value_length))
        pos += header.total_length
    return out


@settings(max_examples=200, deadline=None)
@given(name=st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=201),
       address=st.text(st.characters(exclude_categories=("Cs",)), max_size=200),
       birth=st.dates(dt.date(1868, 9, 8), dt.date(2026, 1, 1)),
       sex=st.sampled_from("1290"))
def test_any_four_facts_round_trip_with_the_card_length_rule(name: str, address: str,
                                                             birth: dt.date, sex: str) -> None:
    four = BasicFour(name, address, birth, sex)
    raw = four.encode()
    parsed, covered = parse_basic_four(raw + b"\xff" * 7)  # filler after the record is ignored
    assert parsed == four and covered == four.fields()
    for length_bytes, length in _headers(raw):
        if length < 0x80:
            assert length_bytes == bytes((length,))
        else:
            assert length_bytes == b"\x82" + length.to_bytes(2, "big")


def test_visual_security_code_image_uses_the_short_form(card: VirtualCard) -> None:
    """jpki/myna ``visual``: its asn1 fork rejects ``DF 2A 82 00 6E`` as non-minimal."""
    assert apdu(card, SELECT_VISUAL)[1] == 0x9000
    assert apdu(card, "00A4020C020013")[1] == 0x9000
    assert apdu(card, "002000800C" + b"537686677188".hex())[1] == 0x9000
    assert apdu(card, "00A4020C020002")[1] == 0x9000
    face = b""
    while True:
        data, sw = apdu(card, f"00B0{len(face):04X}00")
        if sw == 0x6B00:
            break
        assert sw == 0x9000
        face += data
    offsets = face[8:8 + 18]
    security_code = int.from_bytes(offsets[-2:], "big")
    header = ber_read_header(face, security_code)
    assert header.tag == 0xDF2A and header.value_length < 0x80
    assert face[security_code:security_code + 3] == bytes((0xDF, 0x2A, header.value_length))


def test_card_record_encode_keeps_cv_certificate_bytes() -> None:
    assert card_record_encode(0x5F4E, bytes(0x129))[:5] == bytes.fromhex("5F4E820129")
    assert card_record_encode(0x7F21, bytes(0x233))[:5] == bytes.fromhex("7F21820233")
    assert card_record_encode(0x90, bytes(3)) == bytes.fromhex("9003000000")


# -- item 1: text AP EF 0005 is 256 bytes ------------------------------------------------------

def _text_ap_info(card: VirtualCard, read_command: str) -> bytes:
    assert apdu(card, SELECT_TEXT)[1] == 0x9000
    assert apdu(card, "00A4020C020005")[1] == 0x9000
    data, sw = apdu(card, read_command)
    assert sw == 0x9000
    return data


@pytest.mark.parametrize("read_command", [
    "00B0000000",      # jpki/myna Go ReadBasicInfo: one short read, len(data) must be 256
    "00B00000000100",  # hebingchang/pymyna get_basic_info: extended Le 256, asserts 256
])
def test_text_ap_info_is_256_bytes_as_myna_and_pymyna_read_it(card: VirtualCard,
                                                              read_command: str) -> None:
    data = _text_ap_info(card, read_command)
    assert len(data) == 256
    assert data[:5] == bytes.fromhex("FF4082009F")
    assert data[5:12] == bytes.fromhex("DF410401030E01") and data[12:15] == bytes.fromhex("DF4210")
    assert data[31:35] == bytes.fromhex("DF438200") and data[35] == 0x80
    assert data[5 + 0x9F:] == b"\xff" * (256 - 5 - 0x9F)
    # Nothing after the 256 bytes: the next offset is outside the EF.
    assert apdu(card, "00B0010000")[1] == 0x6B00


# -- item 5: the face record EF is followed by FF filler ----------------------------------------

def test_face_ef_pages_end_in_ff_for_the_android_page_reader(card: VirtualCard) -> None:
    """The Android sample: SELECT 券面確認AP, 0013, VERIFY 照合番号A, SELECT 0002, then
    ``00 B0 i 00 00`` pages until a page's last byte is FF (status words unchecked)."""
    for command in (SELECT_VISUAL, "00A4020C020013", "002000800C" + b"537686677188".hex(),
                    "00A4020C020002"):
        assert apdu(card, command)[1] == 0x9000, command
    pages = []
    for i in range(0x80):  # P1 0x80 and up would be SFI mode; the record is far smaller
        data, sw = apdu(card, f"00B0{i:02X}0000")
        if sw == 0x6B00:
            break
        assert sw == 0x9000 and len(data) == 256  # whole pages only: the EF is page-sized
        pages.append(data)
    physical = b"".join(pages)
    header = ber_read_header(physical)
    assert header.tag == 0xFF20 and physical[2] == 0x82  # read by its header, not by FF
    filler = physical[header.total_length:]
    assert 1 <= len(filler) <= 256 and filler == b"\xff" * len(filler)
    # So the page reader stops at the latest on the last page (earlier only if a page of
    # the record itself happens to end in FF, as on a real card).
    assert pages[-1][-1] == 0xFF


# -- item 3: EFs the real card has -------------------------------------------------------------

NEW_KEY_REFERENCES = [
    (SELECT_JPKI, "0010"), (SELECT_JPKI, "0019"), (SELECT_JPKI, "001C"), (SELECT_JPKI, "001E"),
    (SELECT_TEXT, "0010"), (SELECT_TEXT, "001C"), (SELECT_TEXT, "001E"),
    (SELECT_VISUAL, "001C"), (SELECT_VISUAL, "001E"),
    (SELECT_COMMON, "001E"),
]


@pytest.mark.parametrize(("select_ap", "fid"), NEW_KEY_REFERENCES)
def test_listed_efs_exist_as_unusable_key_references(card: VirtualCard, select_ap: str,
                                                     fid: str) -> None:
    """jsapdu lists them; myna-card's fuzz_card baseline selects them (aborting unless 9000)
    and sends an empty VERIFY ``00 20 00 80``."""
    assert apdu(card, select_ap)[1] == 0x9000
    assert apdu(card, "00A4020C02" + fid)[1] == 0x9000
    assert apdu(card, "00200080")[1] == 0x6981  # not a PIN the simulator can report on
    assert apdu(card, "00B0000000")[1] == 0x6981  # an internal EF, not transparent
    assert apdu(card, "0020008004" + b"1234".hex())[1] == 0x6981


def test_myna_card_baseline_probe_selects_every_key(card: VirtualCard) -> None:
    """soltia48/myna-card examples/fuzz_card.rs ``baseline()``: per AP, SELECT DF, then for
    each key SELECT EF (must be 9000) and an empty VERIFY. (Its 券面確認AP list also names
    0014 and 0015, which jsapdu's list of that AP lacks: not modelled, see issue 9 notes.)"""
    keys = {SELECT_COMMON: ["001C", "001E"], "00A4040C0AD3921000310001010401": ["001C"],
            SELECT_VISUAL: ["0011", "0012", "0013"],
            SELECT_TEXT: ["0011", "0012", "0014", "0015"],
            SELECT_JPKI: ["0010", "0018", "001B"]}
    for select_ap, fids in keys.items():
        assert apdu(card, select_ap)[1] == 0x9000
        for fid in fids:
            assert apdu(card, "00A4020C02" + fid)[1] == 0x9000, (select_ap, fid)
            sw = apdu(card, "00200080")[1]
            assert sw & 0xFFF0 == 0x63C0 or sw == 0x6981, (select_ap, fid, hex(sw))


# -- item 4: 80 A2 and 80 FC on the JPKI-AP -------------------------------------------------

@pytest.mark.parametrize(("command", "sw"), [
    # AokiApp/jsapdu randr e2e test on a real card: 256 zero bytes, extended Lc and Le.
    ("80A200C1000100" + "00" * 256 + "0000", 0x6700),
    ("80A200C1", 0x6700),
    ("80A200C104DF210200", 0x6700),  # a TLV running past the data: wrong length
    ("80A200C105DF21010000", 0x6700),  # bytes after the TLV: wrong length
    # soltia48/myna-card: every other P1-P2 tried on physical cards.
    ("80A20000000133" + "00" * 307, 0x6A86),
    ("80A200AE000133" + "00" * 307, 0x6A86),
    ("80A28000000133" + "00" * 307, 0x6A86),
    ("80A200B6000133" + "00" * 307, 0x6A86),
    ("80A20000", 0x6A86),
    # A whole CV certificate object: nothing to check it against (our 6A80).
    ("80A200C1000136" + "7F21820131" + "5F4E82012C" + "00" * 300, 0x6A80),
    ("80FC0000", 0x6700),  # physical cards; iPhone tokens answer otherwise
    ("80FC0001", 0x6A86),
])
def test_jpki_proprietary_terminal_commands(card: VirtualCard, command: str, sw: int) -> None:
    assert apdu(card, "00A4040C0AD392F000260100000001")[1] == 0x9000
    assert apdu(card, command)[1] == sw


# -- item 7: secure-messaging class bytes with no session ---------------------------------------

@pytest.mark.parametrize("select_ap", [SELECT_TEXT, SELECT_JPKI, SELECT_VISUAL, SELECT_COMMON])
@pytest.mark.parametrize(("command", "sw"), [
    ("08B0000000", 0x69FC), ("0CB0000000", 0x69FC),  # READ BINARY
    ("08B00000000000", 0x69FC),  # myna-card's SM read shape, extended Le
    ("08B000000000059603000000" + "0000", 0x69FC),
    ("08200080", 0x69FC), ("0C200080", 0x69FC),  # VERIFY (retry query)
    ("0820009413861101" + "00" * 16, 0x69FC),  # myna-card's SM VERIFY shape
    ("08A4020C020002", 0x6882), ("0CA4020C020002", 0x6882),  # SELECT
    ("08A4040C0AD3921000310001010408", 0x6882),
    ("082A00800100", 0x6882),  # any other instruction under SM
])
def test_secure_messaging_class_without_a_session(card: VirtualCard, select_ap: str,
                                                  command: str, sw: int) -> None:
    assert apdu(card, select_ap)[1] == 0x9000
    assert apdu(card, "00A4020C020001")[1] in (0x9000, 0x6A82)
    assert apdu(card, command)[1] == sw
    assert apdu(card, "00A4020C020001")[1] in (0x9000, 0x6A82)  # nothing changed state


# -- item 6: re-selecting the same application after VERIFY -------------------------------------

PYJPKI_READ_SIGN_CERT = [
    SELECT_JPKI, "00A4020C02001B", "0020008006" + b"ABC123".hex(),  # verify_pin(SIGN)
    SELECT_JPKI, "00A4020C020001",  # read_certificate(): re-select the DF first
]


def _pyjpki(card: VirtualCard) -> tuple[bytes, int]:
    for command in PYJPKI_READ_SIGN_CERT:
        assert apdu(card, command)[1] == 0x9000, command
    return apdu(card, "00B0000000")


def test_reselecting_the_same_ap_clears_verification_by_default(card: VirtualCard) -> None:
    assert _pyjpki(card)[1] == 0x6982


def test_reselecting_the_same_ap_keeps_verification_when_the_card_says_so(
        card: VirtualCard) -> None:
    card.store.update_content(options={"reselect_keeps_verification": True})
    data, sw = _pyjpki(card)
    assert sw == 0x9000 and len(data) == 256 and data[:2] == b"\x30\x82"
    # pyjpki sign_data(): re-select, SELECT the key, 80 2A 00 80 with a SHA-256 DigestInfo.
    digest_info = "3031300D060960864801650304020105000420" + "11" * 32
    assert apdu(card, SELECT_JPKI)[1] == 0x9000
    assert apdu(card, "00A4020C02001A")[1] == 0x9000
    signature, sw = apdu(card, "802A008033" + digest_info + "00")
    assert sw == 0x9000 and len(signature) == 256
    # Another application in between, or a reset, still clears it.
    assert apdu(card, SELECT_TEXT)[1] == 0x9000
    assert apdu(card, SELECT_JPKI)[1] == 0x9000
    assert apdu(card, "00A4020C020001")[1] == 0x9000
    assert apdu(card, "00B0000000")[1] == 0x6982
    _pyjpki(card)
    card.reset()
    assert apdu(card, SELECT_JPKI)[1] == 0x9000
    assert apdu(card, "00A4020C020001")[1] == 0x9000
    assert apdu(card, "00B0000000")[1] == 0x6982


def test_reselection_forgets_the_current_ef_either_way(card: VirtualCard) -> None:
    card.store.update_content(options={"reselect_keeps_verification": True})
    _pyjpki(card)
    assert apdu(card, SELECT_JPKI)[1] == 0x9000
    assert apdu(card, "00B0000000")[1] == 0x6986
