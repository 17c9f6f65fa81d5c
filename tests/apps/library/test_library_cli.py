"""``mynacard app library`` end to end on the simulator (--card DIR), with the test stand-in
checks handed in through ctx.obj: enrol, items, lend, member, return, report, and the
one-line error of the CLI's boundary."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from standin import StandInChecks

from mynacard.cli import main
from mynacard.jpki.ca import SimulatorPKI


def test_a_library_session_from_enrolment_to_return(tmp_path: Path, card_dir: Path,
                                                    pki_dir: Path) -> None:
    pki = SimulatorPKI.open(pki_dir)
    runner = CliRunner()
    db = ["--db", str(tmp_path / "library.db")]
    card = ["--card", str(card_dir)]

    def run(*args: str, ok: bool = True) -> str:
        result = runner.invoke(main, ["app", "library", *args],
                               obj={"library_checks": StandInChecks(pki)},
                               env={"PIN": "1234"})
        assert (result.exit_code == 0) is ok, result.output
        return result.output

    enrolled = json.loads(run("enrol", *card, *db, "--pin-env", "PIN", "--json"))
    assert enrolled["enrolment"] == "pin"
    run("items", "add", "B1", "--title", "吾輩は猫である", *db)
    lent = json.loads(run("lend", "B1", *card, *db, "--json"))
    assert lent["lend"][0]["barcode"] == "B1"
    shown = json.loads(run("member", *card, *db, "--json"))
    assert shown["user_number"] == enrolled["user_number"] and shown["loans"][0]["barcode"] == "B1"
    error = run("lend", "B1", *card, *db, ok=False)
    assert error.strip().splitlines()[-1] == "Error: library: B1 is already lent to this member"
    assert "B1: returned" in run("return", "B1", *db)
    assert json.loads(run("report", *db, "--json"))["loans"] == 0
    pki.store.close()
