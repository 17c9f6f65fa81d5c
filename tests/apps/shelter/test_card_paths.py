"""The shelter's card paths through the reader layer: 照合番号B validated before the card,
the default check-in's APDUs (no My Number file, no 照合番号A), the PIN path, disaster mode,
and every test persona on the default path."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import CODE_A, CODE_B, TEXT_PIN, load_test_persona
from shelter_helpers import persona_code_b

from mynacard.apps.shelter import card
from mynacard.apps.shelter.export import roster_csv, safety_csv
from mynacard.apps.shelter.model import Source
from mynacard.apps.shelter.service import DisasterMode, ShelterDesk
from mynacard.cardsim.storage import CardStore
from mynacard.facts.text import AID as TEXT_AID
from mynacard.readers.simulator import SimulatorReader
from mynacard.readers.trace import record

SELECT_TEXT_AP = "00A4040C0A" + TEXT_AID.hex().upper()
SELECT_MY_NUMBER = "00A4020C020001"
SELECT_CODE_A = "00A4020C020014"
SELECT_CODE_B = "00A4020C020015"


def commands(trace: Path) -> list[str]:
    return [line["command"] for line in map(json.loads, trace.read_text().splitlines())
            if line["type"] == "apdu"]


def text_ap_commands(sent: list[str]) -> list[str]:
    """Commands while the 券面事項入力補助AP is the selected application."""
    out, inside = [], False
    for command in sent:
        if command.startswith("00A4040C"):
            inside = command == SELECT_TEXT_AP
        if inside:
            out.append(command)
    return out


def test_code_b_from_the_card_face_is_the_cards_own() -> None:
    assert card.code_b_from_face("昭和", 55, 2, 17, 2035, "2285",
                                 load_test_persona("kokutou-mikiya").issued) == CODE_B


@pytest.mark.parametrize(("face", "complaint"), [
    (("平成", 31, 5, 1), "期間外"),           # 令和 from that day
    (("令和", 1, 4, 30), "期間外"),
    (("昭和", 55, 2, 30), "正しくありません"),
    (("令和", 9, 1, 1), "未来"),
    (("大化", 1, 1, 1), "元号"),
])
def test_an_impossible_birth_date_never_reaches_the_card(face: tuple, complaint: str) -> None:
    with pytest.raises(card.CodeBFormatError, match=complaint):
        card.code_b_from_face(*face, 2035, "2285", load_test_persona("kokutou-mikiya").issued)


@pytest.mark.parametrize(("code", "complaint"), [
    ("5502172035228", "14桁"), ("550230" "2035" "2285", "どの元号"),
    ("550217" "2015" "2285", "有効期限"), ("550217" "2099" "2285", "有効期限"),
])
def test_a_typo_in_a_whole_code_b_costs_no_try(desk: ShelterDesk, card_dir: Path,
                                                tmp_path: Path, code: str,
                                                complaint: str) -> None:
    trace = tmp_path / "typo.jsonl"
    with (SimulatorReader.for_image(card_dir).connect() as conn, record(conn, trace) as traced,
          pytest.raises(card.CodeBFormatError, match=complaint)):
        desk.read_code_b(traced, code)
    assert commands(trace) == []


def test_default_check_in_reads_the_four_facts_and_never_the_my_number(
        desk: ShelterDesk, card_dir: Path, tmp_path: Path) -> None:
    trace = tmp_path / "check-in.jsonl"
    with SimulatorReader.for_image(card_dir).connect() as conn, record(conn, trace) as traced:
        facts = desk.read_code_b(traced, CODE_B)
        result = desk.check_in(facts)
    sent = commands(trace)
    print("\n".join(["default check-in APDUs:", *sent]))
    assert facts.name == "黒桐\u3000幹也" and facts.verified and facts.source is Source.CARD_B
    assert result.event is not None and result.person.card_verified
    # Only the 券面事項入力補助AP is used; in it: 照合番号B, never EF 0001, never 照合番号A.
    assert [c for c in sent if c.startswith("00A4040C")] == [SELECT_TEXT_AP]
    assert SELECT_MY_NUMBER not in sent and SELECT_CODE_A not in sent
    verifies = [i for i, c in enumerate(sent) if c[2:4] == "20"]
    assert len(verifies) == 1 and sent[verifies[0] - 1] == SELECT_CODE_B
    assert any(c.startswith("802A0000") for c in sent)      # the chip's challenge
    assert not any(c[2:4] == "B0" and c[4:6] in ("81",) for c in sent)  # no READ BINARY by SFI 1
    assert text_ap_commands(sent) == sent


def test_a_wrong_code_b_asks_for_a_re_read_and_never_retries_blindly(
        desk: ShelterDesk, card_dir: Path, tmp_path: Path) -> None:
    trace = tmp_path / "wrong.jsonl"
    wrong = CODE_B[:10] + "2286"
    with SimulatorReader.for_image(card_dir).connect() as conn, record(conn, trace) as traced:
        with pytest.raises(card.CardRefused, match="もう一度読み取って") as first:
            desk.read_code_b(traced, wrong)
        assert first.value.reason == "wrong-code-b" and first.value.tries_left is not None
        sent = len(commands(trace))
        with pytest.raises(card.CardRefused, match="同じ照合番号B") as again:
            desk.read_code_b(traced, wrong)
        assert again.value.reason == "same-code-b" and len(commands(trace)) == sent
        with pytest.raises(card.CardRefused):
            desk.read_code_b(traced, CODE_B[:10] + "2287")
        with pytest.raises(card.CardRefused, match="これ以上") as stop:
            desk.read_code_b(traced, CODE_B)
        assert stop.value.reason == "code-b-stop"
        desk.guard.next_card()                # staff start over with the card re-read
        assert desk.read_code_b(traced, CODE_B).verified


def test_the_pin_path_leaves_the_my_number_file_alone(desk: ShelterDesk, card_dir: Path,
                                                     tmp_path: Path) -> None:
    trace = tmp_path / "pin.jsonl"
    with SimulatorReader.for_image(card_dir).connect() as conn, record(conn, trace) as traced:
        facts, number = desk.read_pin(traced, TEXT_PIN)
    assert facts.source is Source.CARD_PIN and facts.verified and number is None
    assert SELECT_MY_NUMBER not in commands(trace)


def test_disaster_mode_reads_the_my_number_keeps_it_apart_and_never_exports_it(
        desk: ShelterDesk, card_dir: Path) -> None:
    desk.disaster = DisasterMode("番号法第9条・別表 (被災者台帳の作成)")
    with SimulatorReader.for_image(card_dir).connect() as conn:
        facts, number = desk.read_pin(conn, TEXT_PIN)
    assert number == CODE_A
    person = desk.check_in(facts, my_number=number, consent=("name", "address", "status")).person
    assert desk.store.my_number(person.id) == CODE_A
    exported = (roster_csv(desk.store, desk.today()) + safety_csv(desk.store)
                + json.dumps(desk.store.own_records(), ensure_ascii=False))
    assert "黒桐" in exported and CODE_A not in exported


def test_without_disaster_mode_a_my_number_is_refused(desk: ShelterDesk) -> None:
    facts = card.manual_facts("山田　太郎", "", None, "1")
    with pytest.raises(card.ShelterError, match="disaster mode"):
        desk.check_in(facts, my_number=CODE_A)


def rewrite(card_dir: Path, name: str, offset: int) -> None:
    store = CardStore.open(card_dir)
    try:
        data = store.file(name)
        store.update_content(files={name: data[:offset] + bytes((data[offset] ^ 1,))
                                    + data[offset + 1:]})
    finally:
        store.close()


def test_a_tampered_four_facts_record_is_refused_with_what_to_do(
        desk: ShelterDesk, card_dir: Path) -> None:
    rewrite(card_dir, "text/0002", 20)
    with SimulatorReader.for_image(card_dir).connect() as conn, pytest.raises(
            card.CardRefused, match="確認できません.*手入力") as refused:
        desk.read_code_b(conn, CODE_B)
    assert refused.value.reason == "not-verified"


@pytest.mark.parametrize(("persona", "outcome"), [
    ("kokutou-mikiya", "ok"), ("yamada-hanako", "ok"), ("face-auth", "ok"),
    ("blocked-auth-pin", "ok"), ("renewed", "ok"), ("moved", "ok"), ("lost-card", "ok"),
    ("deceased", "ok"), ("expiring-soon", "ok"), ("sato-sora-child", "ok"), ("leap-day", "ok"),
    ("long-address", "ok"), ("cloned-certificate", "not-verified"),
])
def test_every_persona_on_the_default_path(desk: ShelterDesk,
                                           make_card_dir: Callable[..., Path], persona: str,
                                           outcome: str) -> None:
    resident = load_test_persona(persona).resident
    with SimulatorReader.for_image(make_card_dir(persona)).connect() as conn:
        if outcome != "ok":
            with pytest.raises(card.CardRefused, match="手入力") as refused:
                desk.read_code_b(conn, persona_code_b(persona))
            assert refused.value.reason == outcome
            return
        facts = desk.read_code_b(conn, persona_code_b(persona))
    # The chip's address (a move rewrites it; the moved persona's YAML keeps the old one).
    assert facts.birth_date == resident.birth_date and facts.verified
    person = desk.check_in(facts).person
    assert desk.store.person(person.id).address_card == facts.address
    if persona == "long-address":
        assert facts.address == resident.address and len(resident.address.encode()) > 127
        assert resident.address in roster_csv(desk.store, desk.today())


def test_no_card_is_manual_and_unverified(desk: ShelterDesk) -> None:
    facts = card.manual_facts("佐藤　そら", "東京都清瀬市", None, "2")
    result = desk.check_in(facts)
    assert result.person.source is Source.MANUAL and not result.person.card_verified
