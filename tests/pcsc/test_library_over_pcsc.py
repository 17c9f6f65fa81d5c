"""The library counter through pcscd + vpcd: ``mynacard app library`` enrols, lends and takes
back with ``--reader pcsc:<reader>``, on the production path (the real recipes, the CA
certificates from ``pki anchors``, revocation from a loopback CRL server)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import load_test_persona, pki_served_on_loopback

from mynacard.cardsim.perso.issue import issue_card
from mynacard.cli import main
from mynacard.jpki.publish import publish

from .conftest import PcscSandbox, lent_slot

pytestmark = pytest.mark.xdist_group("pcscd")

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
"""The CLI runs on the real clock: the card is issued and the CRLs published just before."""


def test_enrol_lend_and_return_through_pcscd(pcsc: PcscSandbox, tmp_path: Path) -> None:
    with pki_served_on_loopback(tmp_path, created_at=NOW - dt.timedelta(days=2)) as (
            pki, crl_dir, _), lent_slot(pcsc, 1) as slot:
        card = issue_card(load_test_persona("kokutou-mikiya"), tmp_path / "card", pki,
                          issued_at=NOW - dt.timedelta(hours=1))
        publish(pki, crl_dir, NOW)
        slot.remove()
        slot.insert(card)
        traced = len(pcsc.trace)
        runner = CliRunner()
        db = ["--db", str(tmp_path / "library.db")]
        trust = tmp_path / "auth-ca.pem"
        assert runner.invoke(main, ["pki", "anchors", "--store", str(pki.path), "--out",
                                    str(trust)]).exit_code == 0
        reader = ["--reader", f"pcsc:{slot.reader}", "--trust", str(trust),
                  "--cv-trust", str(pki.path / "cvc")]

        def library(*args: str) -> dict:
            result = runner.invoke(main, ["app", "library", *args, *db, "--json"],
                                   env={"PIN": "1234"})
            assert result.exit_code == 0, result.output
            return json.loads(result.output)

        enrolled = library("enrol", *reader, "--pin-env", "PIN")
        assert enrolled["enrolment"] == "pin"
        library("items", "add", "B1", "--title", "吾輩は猫である")
        assert library("lend", "B1", *reader)["lend"][0]["barcode"] == "B1"
        shown = library("member", *reader)
        assert shown["user_number"] == enrolled["user_number"]
        assert [loan["barcode"] for loan in shown["loans"]] == ["B1"]
        assert library("return", "B1")["returned"] == [{"barcode": "B1",
                                                         "set_aside_for": None}]
        assert library("member", *reader)["loans"] == []
        # The chip answered over PC/SC: its INTERNAL AUTHENTICATE is in the vpcd trace.
        assert any(command[1] == 0x88 for command, _ in pcsc.trace[traced:])
