"""The library CLI on its production path: the real relying-party recipes, trusting the CA
certificates exported by ``pki anchors`` and the CV roots of the issuing PKI, with revocation
fetched over HTTP from a loopback CRL/OCSP server. A lost card, then a renewed certificate,
are refused at the tap with the recipes' reasons."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import load_test_persona, pki_served_on_loopback

from mynacard.cardsim.perso import reissue
from mynacard.cardsim.perso.issue import issue_card
from mynacard.cli import main
from mynacard.jpki import lifecycle
from mynacard.jpki.ca import SimulatorPKI
from mynacard.jpki.publish import publish

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
T = NOW - dt.timedelta(hours=4)
"""Events happen in the last hours: the CLI runs on the real clock and CRLs stay fresh."""
HOUR = dt.timedelta(hours=1)


@pytest.fixture
def served_pki(tmp_path: Path) -> Iterator[tuple[SimulatorPKI, Path]]:
    with pki_served_on_loopback(tmp_path, created_at=T - dt.timedelta(days=2)) as (pki, crl_dir, _):
        yield pki, crl_dir


@pytest.mark.parametrize("revocation", ["crl", "ocsp"])
def test_enrol_lend_then_loss_and_renewal_are_refused_at_the_tap(
        tmp_path: Path, served_pki: tuple[SimulatorPKI, Path], revocation: str) -> None:
    pki, crl_dir = served_pki
    card = tmp_path / "card"
    issue_card(load_test_persona("kokutou-mikiya"), card, pki,
               issued_at=T - HOUR)
    publish(pki, crl_dir, T)
    runner = CliRunner()
    trust = tmp_path / "auth-ca.pem"
    assert runner.invoke(main, ["pki", "anchors", "--store", str(pki.path), "--out",
                                str(trust)]).exit_code == 0
    # The CA certificates come from $MYNACARD_LIBRARY_TRUST (the pcsc test passes --trust).
    checks = ["--card", str(card), "--cv-trust", str(pki.path / "cvc"),
              "--revocation", revocation, "--db", str(tmp_path / "library.db")]

    def library(*args: str, ok: bool = True) -> str:
        result = runner.invoke(main, ["app", "library", *args],
                               env={"PIN": "1234", "MYNACARD_LIBRARY_TRUST": str(trust)})
        assert (result.exit_code == 0) is ok, result.output
        assert "Traceback" not in result.output
        return result.output

    enrolled = json.loads(library("enrol", *checks, "--pin-env", "PIN", "--json"))
    library("items", "add", "B1", "--title", "坊っちゃん", "--db", str(tmp_path / "library.db"))
    library("items", "add", "B2", "--title", "こころ", "--db", str(tmp_path / "library.db"))
    lent = json.loads(library("lend", "B1", *checks, "--json"))
    assert lent["lend"][0]["barcode"] == "B1"

    card_id = reissue.card_id(card)
    lifecycle.report_loss(pki, card_id, T + HOUR)
    publish(pki, crl_dir, T + HOUR)
    refused = library("lend", "B2", *checks, ok=False)
    assert "reported lost" in refused

    lifecycle.card_found(pki, card_id, T + 2 * HOUR)
    reissue.reissue(pki, card, T + 3 * HOUR)
    publish(pki, crl_dir, T + 3 * HOUR)
    refused = library("lend", "B2", *checks, ok=False)
    assert "re-enrol" in refused
    moved = json.loads(library("enrol", *checks, "--pin-env", "PIN", "--member",
                               enrolled["user_number"], "--json"))
    assert moved["user_number"] == enrolled["user_number"]
    assert json.loads(library("lend", "B2", *checks, "--json"))["lend"][0]["barcode"] == "B2"


def test_untrusted_anchors_are_a_clear_error(tmp_path: Path, card_dir: Path) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate")
    result = CliRunner().invoke(main, ["app", "library", "lend", "B1", "--card", str(card_dir),
                                       "--trust", str(empty), "--cv-trust", str(tmp_path),
                                       "--db", str(tmp_path / "l.db")])
    assert result.exit_code == 2 and "no trusted CV root keys" in result.output
