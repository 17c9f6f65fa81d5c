"""The city counter (``mynacard app taxi enrol``) on its production path: the real recipes
trusting ``pki anchors`` and the PKI's CV roots, revocation over HTTP from a loopback server,
the records file, the issuer channel; then the enrolled card rides and its ride is counted."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import load_test_persona, pki_served_on_loopback

from mynacard.apps.taxi.card import Reason, Refusal, TaxiCard
from mynacard.apps.taxi.eligibility import (
    NotEligible,
    RecordsError,
    ResidentRecord,
    decide,
    load_records,
)
from mynacard.apps.taxi.keys import CityKeys
from mynacard.apps.taxi.ledger import Ledger
from mynacard.apps.taxi.terminal import Terminal, TerminalConfig
from mynacard.cardsim.perso import reissue
from mynacard.cardsim.perso.issue import issue_card
from mynacard.cli import main
from mynacard.gp.scp03 import MASTER_KEY_FILE
from mynacard.jpki import lifecycle
from mynacard.jpki.publish import publish
from mynacard.readers.simulator import SimulatorReader

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
T = NOW - dt.timedelta(hours=4)
"""Events happen in the last hours: the CLI runs on the real clock and CRLs stay fresh."""
CITY, TERMINAL_ID, COMPANY = "10201", b"TAXI0001", "前橋タクシー"
RECORDS = [
    # 黒桐 幹也 (born 1980): eligible only through a disability certificate (category 3).
    {"resident": "A-100", "name": "黒桐\u3000幹也", "birth_date": "1980-02-17",
     "driving_licence": "yes", "disability": "身体"},
    # The same person without any ground: not eligible.
    {"resident": "A-101", "name": "黒桐\u3000幹也", "birth_date": "1980-02-17",
     "driving_licence": "yes"},
    # 高橋 和子 (born 1941, a 顔認証 card): 75 or older (category 1).
    {"resident": "A-200", "name": "高橋\u3000和子", "birth_date": "1941-03-03"},
    # A record that does not match the card's holder.
    {"resident": "A-300", "name": "別人\u3000太郎", "birth_date": "1940-01-01"},
]


@pytest.fixture
def counter(tmp_path: Path) -> Iterator[dict]:
    city = CityKeys.generate()
    city.save(tmp_path / "city")
    records = tmp_path / "residents.json"
    records.write_text(json.dumps(RECORDS, ensure_ascii=False), encoding="utf-8")
    with pki_served_on_loopback(tmp_path, created_at=T - dt.timedelta(days=2)) as (pki, crl_dir, _):
        yield {"pki": pki, "crl_dir": crl_dir, "city": city, "tmp": tmp_path}


def issue(setup: dict, persona: str) -> Path:
    card = setup["tmp"] / persona
    issue_card(load_test_persona(persona), card, setup["pki"], issued_at=T - dt.timedelta(hours=1))
    publish(setup["pki"], setup["crl_dir"], T)
    return card


def enrol(setup: dict, card: Path, resident: str, *extra: str, ok: bool = True) -> str:
    tmp, pki = setup["tmp"], setup["pki"]
    trust = tmp / "auth-ca.pem"
    if not trust.exists():
        assert CliRunner().invoke(main, ["pki", "anchors", "--store", str(pki.path), "--out",
                                         str(trust)]).exit_code == 0
    result = CliRunner().invoke(main, [
        "app", "taxi", "enrol", "--keys", str(tmp / "city"), "--ledger-db", str(tmp / "ledger.db"),
        "--card", str(card), "--records", str(tmp / "residents.json"), "--resident", resident,
        "--municipality", CITY, "--cv-trust", str(pki.path / "cvc"),
        "--issuer-key", str(pki.path / MASTER_KEY_FILE), *extra],
        env={"PIN": "1234", "MYNACARD_TAXI_TRUST": str(trust)})
    assert (result.exit_code == 0) is ok, result.output
    assert "Traceback" not in result.output
    return result.output


def has_taxi_applet(card: Path) -> bool:
    connection = SimulatorReader.for_image(card).connect()
    try:
        TaxiCard(connection).select()
    except Refusal as refusal:
        assert refusal.reason is Reason.NOT_REGISTERED
        return False
    finally:
        connection.disconnect()
    return True


@pytest.mark.parametrize("revocation", ["crl", "ocsp"])
def test_eligible_resident_enrolled_then_rides_and_the_ride_counts(counter: dict,
                                                                   revocation: str) -> None:
    card = issue(counter, "kokutou-mikiya")
    done = json.loads(enrol(counter, card, "A-100", "--pin-env", "PIN", "--json",
                            "--revocation", revocation))
    assert (done["category"], done["yearly_quota"], done["staff_document"]) == (3, 70, None)
    assert "身体" in done["rule"] and done["valid_to"].endswith("-03-31")

    city: CityKeys = counter["city"]
    config = TerminalConfig(TERMINAL_ID, COMPANY, CITY, city.terminal_key(TERMINAL_ID),
                            city.public_pem())
    terminal = Terminal(counter["tmp"] / "terminal.db", config)
    ledger = Ledger(counter["tmp"] / "ledger.db", city)
    try:
        terminal.install_deny_list([], NOW)
        connection = SimulatorReader.for_image(card).connect()
        try:
            ride = terminal.ride([connection], 3000)
        finally:
            connection.disconnect()
        assert (ride.subsidy, ride.to_pay) == (1000, 2000)
        assert ride.outcomes[0].rider_id == done["rider_id"]
        outcome = ledger.sync(TERMINAL_ID, COMPANY, [(r, receipt.encode()) for r, receipt
                                                     in terminal.queued()], NOW)
        assert outcome.accepted == [(done["rider_id"], 1)]
        usage = ledger.usage(done["rider_id"], NOW)
        assert (usage.rides, usage.enrolment, usage.stopped) == (1, "pin", None)
    finally:
        terminal.close()
        ledger.close()

    again = enrol(counter, card, "A-100", "--pin-env", "PIN", ok=False)
    assert "already registered" in again


def test_ineligible_resident_is_refused_with_the_rules_named(counter: dict) -> None:
    card = issue(counter, "kokutou-mikiya")
    refused = enrol(counter, card, "A-101", "--pin-env", "PIN", ok=False)
    assert "not eligible" in refused and "① 75 or older: aged" in refused
    assert "② 65 or older without a driving licence: aged" in refused
    assert "③ disability, care level" in refused and "④ driving licence returned" in refused
    assert not has_taxi_applet(card)


def test_records_naming_another_person_are_refused(counter: dict) -> None:
    card = issue(counter, "kokutou-mikiya")
    refused = enrol(counter, card, "A-300", "--pin-env", "PIN", ok=False)
    assert "name or birth date differ" in refused
    assert not has_taxi_applet(card)


def test_face_auth_card_goes_through_the_flagged_staff_path(counter: dict) -> None:
    card = issue(counter, "face-auth")
    refused = enrol(counter, card, "A-200", "--pin-env", "PIN", ok=False)
    assert "--staff-document" in refused and not has_taxi_applet(card)

    done = json.loads(enrol(counter, card, "A-200", "--staff-document", "運転経歴証明書",
                            "--json"))
    assert (done["category"], done["staff_document"]) == (1, "運転経歴証明書")
    assert has_taxi_applet(card)
    ledger = Ledger(counter["tmp"] / "ledger.db", counter["city"])
    try:
        assert ledger.usage(done["rider_id"], NOW).enrolment == "staff: 運転経歴証明書"
    finally:
        ledger.close()


def test_lost_card_on_hold_is_refused_at_enrolment(counter: dict) -> None:
    card = issue(counter, "kokutou-mikiya")
    lifecycle.report_loss(counter["pki"], reissue.card_id(card), T + dt.timedelta(hours=1))
    publish(counter["pki"], counter["crl_dir"], T + dt.timedelta(hours=1))
    refused = enrol(counter, card, "A-100", "--pin-env", "PIN", ok=False)
    assert "reported lost" in refused
    assert not has_taxi_applet(card)
    # The staff path checks revocation too: a lost card is no way round.
    refused = enrol(counter, card, "A-100", "--staff-document", "運転免許証", ok=False)
    assert "reported lost" in refused


def test_decision_rules_and_validity() -> None:
    today = dt.date(2026, 5, 1)
    base = ResidentRecord("R", "名\u3000前", dt.date(1970, 1, 1), driving_licence=True)
    assert decide(ResidentRecord("R", "n", dt.date(1951, 5, 1)), today).category == 1
    assert decide(ResidentRecord("R", "n", dt.date(1951, 5, 2)), today).category == 2
    older_driver = ResidentRecord("R", "n", dt.date(1951, 5, 2), driving_licence=True)
    with pytest.raises(NotEligible, match="holds a driving licence"):
        decide(older_driver, today)
    returned = ResidentRecord("R", "n", dt.date(1990, 1, 1), licence_returned=True)
    assert decide(returned, today).category == 4
    care = ResidentRecord("R", "n", dt.date(1990, 1, 1), care_level="要支援1")
    assert decide(care, today).valid_to == dt.date(2027, 3, 31)
    pregnant = ResidentRecord("R", "n", dt.date(1995, 1, 1), pregnancy_until=dt.date(2026, 9, 30))
    assert (decide(pregnant, today).category, decide(pregnant, today).valid_to) == (
        3, dt.date(2026, 9, 30))
    with pytest.raises(NotEligible, match="妊産婦 period ended"):
        decide(pregnant, dt.date(2026, 10, 1))
    with pytest.raises(NotEligible, match="not a resident"):
        decide(ResidentRecord("R", "n", dt.date(1940, 1, 1), status="moved-out"), today)
    with pytest.raises(NotEligible, match="aged 56"):
        decide(base, today)


def test_records_file_csv_and_its_errors(tmp_path: Path) -> None:
    good = tmp_path / "residents.csv"
    good.write_text("resident,name,birth_date,driving_licence,care_level,pregnancy_until\n"
                    "A-1,高橋\u3000和子,1941-03-03,no,要介護2,\n", encoding="utf-8")
    record = load_records(good)["A-1"]
    assert (record.care_level, record.driving_licence, record.pregnancy_until) == (
        "要介護2", False, None)
    for header, row, message in (
            ("resident,name,birth_date,income", "A-1,n,1941-03-03,0", "unknown column"),
            ("resident,name,birth_date,care_level", "A-1,n,1941-03-03,要介護9", "care_level"),
            ("resident,name,birth_date", "A-1,n,3 March 1941", "YYYY-MM-DD"),
            ("resident,name,birth_date,driving_licence", "A-1,n,1941-03-03,maybe", "yes or no"),
            ("resident,name,birth_date", "A-1,n,1941-03-03\nA-1,m,1941-03-03", "twice")):
        bad = tmp_path / "bad.csv"
        bad.write_text(f"{header}\n{row}\n", encoding="utf-8")
        with pytest.raises(RecordsError, match=message):
            load_records(bad)
