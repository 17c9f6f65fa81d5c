"""Tampered card data is detected, and the client names what was tampered with.

Each test rewrites part of a card image the way an attacker with a writable chip would
(the image stays internally consistent, its seal recomputed), then reads it through the
host clients over the reader interface.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from helpers import CODE_A, CODE_B, TEXT_PIN

from mynacard.cardsim.storage import CardStore
from mynacard.client.cardinfo import CardInfoClient
from mynacard.client.records import CardDataError, TamperedError, UntrustedError
from mynacard.client.text import TextClient
from mynacard.client.visual import VisualClient
from mynacard.facts import cvc
from mynacard.iso7816.tlv import ber_read_header
from mynacard.jpki.ca import new_rsa_key
from mynacard.readers.simulator import SimulatorReader


def rewrite(card_dir: Path, name: str, change) -> None:
    store = CardStore.open(card_dir)
    try:
        store.update_content(files={name: change(store.file(name))})
    finally:
        store.close()


def flip(offset: int):
    def change(data: bytes) -> bytes:
        return data[:offset] + bytes((data[offset] ^ 0x01,)) + data[offset + 1:]
    return change


def connect(card_dir: Path):
    return SimulatorReader.for_image(card_dir).connect()


def test_untampered_card_verifies_with_every_credential(card_dir: Path, anchors) -> None:
    with connect(card_dir) as conn:
        full = TextClient(conn, anchors).read(pin=TEXT_PIN)
        assert full.my_number == CODE_A and full.basic_four.name == "黒桐\u3000幹也"
        assert TextClient(conn, anchors).read(code_a=CODE_A).basic_four is None
        assert TextClient(conn, anchors).read(code_b=CODE_B).my_number is None
        reading = VisualClient(conn, anchors).read_face(code_a=CODE_A)
        assert reading.face.expiry == dt.date(2035, 2, 17) and reading.my_number_png is not None
        assert CardInfoClient(conn, anchors).read().chip_authenticated


@pytest.mark.parametrize(("ef", "offset", "message"), [
    ("text/0001", 5, "EF 0001 (個人番号) does not match DF31"),
    ("text/0001", 15, "EF 0001 (個人番号) does not match DF31"),  # even the filler counts
    ("text/0002", 20, "EF 0002 (基本4情報) does not match DF32"),
    ("text/0003", 10, "EF 0003 (integrity record): signature does not verify"),
    ("text/0003", 300, "EF 0003 (integrity record): signature does not verify"),
    ("text/0004", 100, "EF 0004 (CV certificate): signature by 9000033/001 does not verify"),
    ("text/0007", 50, "EF 0007 (signed AP key): signature does not verify"),
])
def test_text_tampering_is_named(card_dir: Path, anchors, ef: str, offset: int,
                                 message: str) -> None:
    rewrite(card_dir, ef, flip(offset))
    with connect(card_dir) as conn, pytest.raises(TamperedError, match=message.replace(
            "(", r"\(").replace(")", r"\)")):
        TextClient(conn, anchors).read(pin=TEXT_PIN)


def test_a_certificate_from_another_root_is_untrusted(card_dir: Path, anchors) -> None:
    impostor = cvc.CVCAuthority(cvc.KeyId("5000033"), new_rsa_key())
    forged = impostor.certify(cvc.KeyId("5132213"), new_rsa_key().public_key())
    rewrite(card_dir, "text/0004", lambda _: forged.encode())
    with connect(card_dir) as conn, pytest.raises(UntrustedError, match="production"):
        TextClient(conn, anchors).read(pin=TEXT_PIN)


def test_a_cloned_record_without_the_chip_key_fails_the_challenge(card_dir: Path,
                                                                  anchors) -> None:
    store = CardStore.open(card_dir)
    try:
        der = new_rsa_key()
        store.update_content(keys={"text/0013": der.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())})
    finally:
        store.close()
    with connect(card_dir) as conn, pytest.raises(TamperedError, match="challenge response"):
        TextClient(conn, anchors).read(pin=TEXT_PIN)


def _face_field_offset(card_dir: Path, tag: int) -> int:
    store = CardStore.open(card_dir)
    face = store.file("visual/0002")
    store.close()
    table = face[8:8 + 18]  # FF 20 82 LL LL, DF 21 12, then the offsets from the file start
    start = int.from_bytes(table[2 * (tag - 0xDF22):2 * (tag - 0xDF22) + 2], "big")
    return start + ber_read_header(face, start).header_length  # first byte of the value


@pytest.mark.parametrize("tag", [0xDF22, 0xDF23, 0xDF25, 0xDF26, 0xDF27, 0xDF28])
def test_face_tampering_is_detected(card_dir: Path, anchors, tag: int) -> None:
    rewrite(card_dir, "visual/0002", flip(_face_field_offset(card_dir, tag)))
    with connect(card_dir) as conn, pytest.raises(TamperedError, match="EF 0002"):
        VisualClient(conn, anchors).read_face(code_b=CODE_B)


def test_expiry_is_not_covered_by_the_face_signature(card_dir: Path, anchors) -> None:
    # Faithful to the card: DF29 sits outside the signature, so a change goes unnoticed —
    # which is why the client reports it as unsigned.
    rewrite(card_dir, "visual/0002", flip(_face_field_offset(card_dir, 0xDF29)))
    with connect(card_dir) as conn:
        reading = VisualClient(conn, anchors).read_face(code_b=CODE_B)
        assert reading.face.expiry == dt.date(3035, 2, 17)


def test_mf_chain_tampering_is_detected(card_dir: Path, anchors) -> None:
    rewrite(card_dir, "isd/7F21", flip(100))  # inside the certified modulus
    with connect(card_dir) as conn, pytest.raises(TamperedError, match="7F21"):
        CardInfoClient(conn, anchors).read()


def test_a_malformed_certificate_is_reported_not_crashed_on(card_dir: Path, anchors) -> None:
    rewrite(card_dir, "isd/7F21", flip(40))  # the public exponent
    with connect(card_dir) as conn, pytest.raises(CardDataError, match="e = 65537"):
        CardInfoClient(conn, anchors).read()
