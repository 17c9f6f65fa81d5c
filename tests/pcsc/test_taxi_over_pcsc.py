"""マイタク end to end through pcscd + vpcd: the city counter enrols the card with
``--reader pcsc:<reader>`` (the real recipes, ``pki anchors``, revocation from a loopback CRL
server, the applet installed over the issuer channel), the taxi's terminal debits it twice
over PC/SC, and a sync counts both rides in the ledger."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import load_test_persona, pki_served_on_loopback

from mynacard.apps.taxi.keys import CityKeys
from mynacard.apps.taxi.ledger import Ledger
from mynacard.apps.taxi.server import LedgerServer
from mynacard.cardsim.perso.issue import issue_card
from mynacard.cli import main
from mynacard.gp.scp03 import MASTER_KEY_FILE
from mynacard.jpki.publish import publish

from .conftest import PcscSandbox, lent_slot

pytestmark = pytest.mark.xdist_group("pcscd")

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
"""The CLI runs on the real clock: the card is issued and the CRLs published just before."""


def test_enrol_two_rides_and_sync_through_pcscd(pcsc: PcscSandbox, tmp_path: Path) -> None:
    keys, ledger_db = tmp_path / "city", tmp_path / "ledger.db"
    ledger = server = None
    with pki_served_on_loopback(tmp_path, created_at=NOW - dt.timedelta(days=2)) as (
            pki, crl_dir, _), lent_slot(pcsc, 1) as slot:
        try:
            card = issue_card(load_test_persona("kokutou-mikiya"), tmp_path / "card", pki,
                              issued_at=NOW - dt.timedelta(hours=1))
            publish(pki, crl_dir, NOW)
            slot.remove()
            slot.insert(card)
            runner = CliRunner()

            def taxi(*args: str) -> str:
                result = runner.invoke(main, ["app", "taxi", *args], env={"PIN": "1234"})
                assert result.exit_code == 0, result.output
                return result.output

            taxi("city-keys", "--out", str(keys))
            trust = tmp_path / "auth-ca.pem"
            assert runner.invoke(main, ["pki", "anchors", "--store", str(pki.path), "--out",
                                        str(trust)]).exit_code == 0
            records = tmp_path / "residents.csv"
            records.write_text("resident,name,birth_date,driving_licence,care_level\n"
                               "A-100,黒桐\u3000幹也,1980-02-17,yes,要介護1\n", encoding="utf-8")
            traced = len(pcsc.trace)
            enrolled = json.loads(taxi(
                "enrol", "--keys", str(keys), "--ledger-db", str(ledger_db),
                "--reader", f"pcsc:{slot.reader}", "--trust", str(trust),
                "--cv-trust", str(pki.path / "cvc"),
                "--issuer-key", str(pki.path / MASTER_KEY_FILE),
                "--records", str(records), "--resident", "A-100", "--municipality", "10201",
                "--pin-env", "PIN", "--json"))
            assert (enrolled["category"], enrolled["rule"]) == (3, "③ 要介護1")
            # The applet went in over PC/SC: INSTALL (80 E6) is in the vpcd trace.
            assert any(command[1] == 0xE6 for command, _ in pcsc.trace[traced:])

            config, terminal_db = tmp_path / "taxi1.json", tmp_path / "taxi1.db"
            taxi("provision", "--keys", str(keys), "--terminal-id", "TAXI0001",
                 "--company", "前橋タクシー", "--municipality", "10201", "--out", str(config))
            terminal = ["--config", str(config), "--db", str(terminal_db)]
            taxi("deny-list", *terminal)
            for fare, subsidy in ((3000, 1000), (1500, 750)):
                ride = json.loads(taxi("ride", *terminal, "--fare", str(fare), "--json",
                                       "--riders", f"pcsc:{slot.reader}"))
                assert (ride["subsidy"], ride["cards"][0]["rider"]) == (subsidy,
                                                                        enrolled["rider_id"])

            ledger = Ledger(ledger_db, CityKeys.load(keys))
            server = LedgerServer("127.0.0.1", 0, ledger)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            synced = taxi("sync", *terminal, "--ledger", server.url)
            assert "uploaded 2: 2 accepted" in synced
            usage = ledger.usage(enrolled["rider_id"], dt.datetime.now(dt.UTC))
            assert (usage.rides, usage.enrolment) == (2, "pin")
        finally:
            if server is not None:
                server.shutdown()
                server.server_close()
            if ledger is not None:
                ledger.close()
