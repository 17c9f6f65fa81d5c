"""The shelter desk through pcscd + vpcd: ``mynacard app shelter check-in --reader
pcsc:<reader>`` on the default path (照合番号B from the card face), a repeat shown not
recorded, and the APDUs the card answered over PC/SC: the 券面事項入力補助AP only, 照合番号B,
the chip's challenge, never the My Number file."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import TEST_TODAY

from mynacard.cardsim.card import VirtualCard
from mynacard.cli import main
from mynacard.clock import VirtualClock
from mynacard.facts.text import AID as TEXT_AID

from .conftest import PcscSandbox

pytestmark = pytest.mark.xdist_group("pcscd")

DESK_TIME = dt.datetime.combine(TEST_TODAY, dt.time(1, 0), tzinfo=dt.UTC)
SELECT_TEXT_AP = bytes.fromhex("00A4040C0A") + TEXT_AID
SELECT_MY_NUMBER = bytes.fromhex("00A4020C020001")
SELECT_CODE_B = bytes.fromhex("00A4020C020015")


def test_a_default_check_in_through_pcscd(pcsc: PcscSandbox, fresh_card: VirtualCard,
                                          pki_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    clock = VirtualClock(DESK_TIME)
    db = ["--db", str(tmp_path / "desk.db"), "--device", "desk-a"]

    def shelter(*args: str) -> dict:
        result = runner.invoke(main, ["app", "shelter", *args, *db, "--json"],
                               obj={"shelter_clock": clock})
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    shelter("add-shelter", "S1", "--name", "清瀬第一小学校")
    desk = ["check-in", "--shelter", "S1", "--reader", f"pcsc:{pcsc.slots[0].reader}",
            "--cv-trust", str(pki_dir / "cvc"),
            "--face", "昭和", "55", "2", "17", "2035", "2285"]
    traced = len(pcsc.trace)
    first = shelter(*desk)
    sent = [command for command, _ in pcsc.trace[traced:]]
    assert first["name"] == "黒桐\u3000幹也" and first["verified"]
    assert first["source"] == "card_b" and not first["repeat"]
    assert [c for c in sent if c.startswith(bytes.fromhex("00A404"))] == [SELECT_TEXT_AP]
    assert SELECT_CODE_B in sent and SELECT_MY_NUMBER not in sent
    assert any(c.startswith(bytes.fromhex("802A0000")) for c in sent)   # the chip's proof

    clock.advance(dt.timedelta(minutes=30))
    again = shelter(*desk)
    assert again["repeat"] and again["person"] == first["person"]
    roster = shelter("roster")["roster"]
    assert [(r["name"], r["present"]) for r in roster] == [("黒桐\u3000幹也", True)]
