"""Every PIN and 照合番号 locks after its retry limit, stays locked across power cycles, and the
card-face keys' limits (not public) are configurable per card."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import (
    BIRTH,
    CODE_A,
    CODE_B,
    PERSONAS,
    RESIDENT_PIN,
    TEXT_PIN,
    apdu,
    select_ef,
    verify_apdu,
)

from mynacard.cardsim.card import VirtualCard
from mynacard.cardsim.perso.issue import issue_card
from mynacard.cardsim.perso.persona import PersonError, load_persona, parse_persona

TEXT, VISUAL = "D3921000310001010408", "D3921000310001010402"
COMMON, JUKI = "D3921000310001010100", "D3921000310001010401"

KEYS = [  # (AP, EF, right value, a wrong value of the same shape, default limit)
    (TEXT, 0x0011, TEXT_PIN, "9999", 3),
    (TEXT, 0x0014, CODE_A, "111111111111", 10),
    (TEXT, 0x0015, CODE_B, "11111111111111", 10),
    (VISUAL, 0x0011, BIRTH, "111111", 10),
    (VISUAL, 0x0012, CODE_B, "11111111111111", 10),
    (VISUAL, 0x0013, CODE_A, "111111111111", 10),
    (COMMON, 0x001C, RESIDENT_PIN, "9999", 3),
    (JUKI, 0x001C, RESIDENT_PIN, "9999", 3),
]


def select(card: VirtualCard, aid: str, fid: int) -> None:
    assert apdu(card, f"00A4040C{len(aid) // 2:02X}{aid}")[1] == 0x9000
    assert apdu(card, select_ef(fid))[1] == 0x9000


@pytest.mark.parametrize(("aid", "fid", "right", "wrong", "limit"), KEYS)
def test_key_blocks_after_its_limit_and_stays_blocked(card_dir: Path, aid: str, fid: int,
                                                     right: str, wrong: str, limit: int) -> None:
    card = VirtualCard.open(card_dir)
    card.power_on()
    select(card, aid, fid)
    assert apdu(card, "00200080")[1] == 0x63C0 | limit
    for left in range(limit - 1, -1, -1):
        assert apdu(card, verify_apdu(wrong))[1] == 0x63C0 | left
    assert apdu(card, verify_apdu(right))[1] == 0x6984
    card.close()
    card = VirtualCard.open(card_dir)
    card.power_on()
    select(card, aid, fid)
    assert apdu(card, verify_apdu(right))[1] == 0x6984
    assert apdu(card, "00200080")[1] == 0x63C0
    card.close()


def test_resident_pins_are_separate_key_references(card: VirtualCard) -> None:
    select(card, COMMON, 0x001C)
    apdu(card, verify_apdu("9999"))
    select(card, JUKI, 0x001C)
    assert apdu(card, "00200080")[1] == 0x63C3


def test_resident_pin_changes_with_change_key_only_after_verify(card: VirtualCard) -> None:
    select(card, COMMON, 0x001C)
    assert apdu(card, "8032008004" + b"4321".hex())[1] == 0x6982
    assert apdu(card, verify_apdu(RESIDENT_PIN))[1] == 0x9000
    assert apdu(card, "8032008003" + b"432".hex())[1] == 0x6A80
    assert apdu(card, "8032008004" + b"4321".hex())[1] == 0x9000
    select(card, COMMON, 0x001C)
    assert apdu(card, verify_apdu("4321"))[1] == 0x9000


def test_card_face_keys_cannot_be_changed(card: VirtualCard) -> None:
    select(card, TEXT, 0x0014)
    assert apdu(card, verify_apdu(CODE_A))[1] == 0x9000
    assert apdu(card, "0024018004" + b"1234".hex())[1] == 0x6985


def test_blocked_at_issuance_reference(card: VirtualCard) -> None:
    select(card, TEXT, 0x0012)
    assert apdu(card, "00200080")[1] == 0x63C0
    assert apdu(card, verify_apdu("1234"))[1] == 0x6984


def test_retry_limits_are_configurable(tmp_path: Path, session_pki) -> None:
    source = PERSONAS / "kokutou-mikiya.yaml"
    text = source.read_text(encoding="utf-8") + \
        "  retry_limits: {code_a: 5, code_b: 4, birth: 15}\n"
    (tmp_path / "p.yaml").write_text(text, encoding="utf-8")
    persona = load_persona(tmp_path / "p.yaml")
    issue_card(persona, tmp_path / "card", session_pki)
    card = VirtualCard.open(tmp_path / "card")
    card.power_on()
    for aid, fid, limit in ((TEXT, 0x0014, 5), (TEXT, 0x0015, 4), (VISUAL, 0x0011, 15),
                            (VISUAL, 0x0013, 5), (VISUAL, 0x0012, 4)):
        select(card, aid, fid)
        assert apdu(card, "00200080")[1] == 0x63C0 | limit
    card.close()
    with pytest.raises(PersonError, match="retry_limits.code_a"):
        parse_persona({**_minimal(), "card": {"retry_limits": {"code_a": 16}}})


def _minimal() -> dict:
    return {"name": {"family": "山田", "given": "花子"}, "address": "東京都", "sex": "female",
            "birth_date": "1990-01-01",
            "municipality": {"code": "13101", "prefecture": "Tokyo-to", "name": "Chiyoda-ku"}}
