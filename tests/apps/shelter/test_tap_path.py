"""The tap path (かざし, 公的個人認証法 §38の4) at the shelter desk, through the real
relying-party recipes (``client.recipes``) with revocation fetched over HTTP from a loopback
CRL/OCSP server: a resident checked in once by the card face and enrolled with the PIN is
recognised at the next visit by a tap alone; a card never enrolled here is sent to the card
face; a card reported lost (its certificates on hold) is refused with a message for staff."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import CODE_B, TEST_TODAY, load_test_persona
from shelter_helpers import persona_code_b

from mynacard.apps.shelter import card
from mynacard.apps.shelter.model import ShelterError
from mynacard.apps.shelter.service import ShelterDesk
from mynacard.apps.shelter.store import RosterStore
from mynacard.cardsim.perso.issue import issue_card
from mynacard.cardsim.perso.reissue import card_id
from mynacard.client.recipes import RevocationConfig
from mynacard.client.records import load_trust_anchors
from mynacard.clock import VirtualClock
from mynacard.jpki import lifecycle
from mynacard.jpki.ca import SimulatorPKI
from mynacard.jpki.ocsp import OCSPResponder
from mynacard.jpki.profile import AUTH_CA
from mynacard.jpki.publish import publish
from mynacard.jpki.server import RevocationServer
from mynacard.readers.simulator import SimulatorReader

NOW = dt.datetime.combine(TEST_TODAY, dt.time(1, 0), dt.UTC)   # 10:00 JST
AUTH_PIN = "1234"
HOUR = dt.timedelta(hours=1)


class Served:
    """A PKI on a frozen clock, its CRLs and OCSP on loopback, two cards issued on it."""

    def __init__(self, root: Path) -> None:
        self.clock = VirtualClock(NOW)
        self.pki = SimulatorPKI.open(root / "pki", clock=self.clock)
        self.crl_dir = root / "crl"
        self.crl_dir.mkdir()
        self.server = RevocationServer("127.0.0.1", 0, self.crl_dir, OCSPResponder(self.pki))
        with self.pki.store.transaction() as db:   # before issuance: the certificates name it
            self.pki.store.set_meta(db, "base_url", self.server.url)
        self.server.start_background()
        self.resident = issue_card(load_test_persona("kokutou-mikiya"), root / "resident",
                                   self.pki)
        self.stranger = issue_card(load_test_persona("yamada-hanako"), root / "stranger",
                                   self.pki)
        publish(self.pki, self.crl_dir)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.pki.store.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    world = Served(tmp_path)
    yield world
    world.close()


@pytest.fixture
def tap_desk(served: Served, tmp_path: Path, request: pytest.FixtureRequest
             ) -> Iterator[ShelterDesk]:
    store = RosterStore(tmp_path / "roster.db", "desk-1")
    store.add_shelter("S1", "清瀬第一小学校", NOW)
    config = RevocationConfig(
        trust_anchors=tuple(ca.certificate for ca in served.pki.generations(AUTH_CA)),
        method=request.param, clock=served.clock)
    anchors = load_trust_anchors(served.pki.path / "cvc")
    yield ShelterDesk(store, "S1", anchors, clock=served.clock,
                      taps=card.TapChecks(config, anchors, "shelter-S1-desk-1"))
    store.close()


def on(card_dir: Path) -> SimulatorReader:
    return SimulatorReader.for_image(card_dir)


@pytest.mark.parametrize("tap_desk", ["crl", "ocsp"], indirect=True)
def test_an_enrolled_resident_checks_in_by_a_tap_and_a_lost_card_is_refused(
        served: Served, tap_desk: ShelterDesk) -> None:
    desk = tap_desk
    # First visit: the card face, then the strict enrolment with the auth PIN.
    with on(served.resident).connect() as conn:
        first = desk.check_in(desk.read_code_b(conn, CODE_B))
        desk.enrol_for_tap(conn, AUTH_PIN, first.person.id)
    desk.check_out(first.person.id)

    # Next visit: a tap, no PIN, no card face: the same roster record, checked in again.
    served.clock.advance(HOUR)
    with on(served.resident).connect() as conn:
        person = desk.tap(conn)
    assert person.id == first.person.id and person.name == "黒桐\u3000幹也"
    again = desk.check_in_person(person.id)
    assert again.event is not None and not again.repeat
    assert [e.kind.value for e in desk.store.events()] == ["check_in", "check_out", "check_in"]

    # A genuine, valid card that never enrolled here: sent to the card face, nothing recorded.
    with on(served.stranger).connect() as conn, pytest.raises(
            card.CardRefused, match="照合番号Bで受付") as stranger:
        desk.tap(conn)
    assert stranger.value.reason == "not-enrolled"

    # The resident reports the card lost: on hold, refused at the tap with what staff do.
    lifecycle.report_loss(served.pki, card_id(served.resident), served.clock())
    served.clock.advance(HOUR)                   # past the recipes' CRL cache
    publish(served.pki, served.crl_dir)
    with on(served.resident).connect() as conn, pytest.raises(card.CardRefused) as lost:
        desk.tap(conn)
    assert lost.value.reason == "on-hold"
    assert "reported lost" in str(lost.value) and "municipal office" in str(lost.value)
    assert len(desk.store.events()) == 3

    # The card face still works for the person (照合番号B needs no certificate).
    with on(served.resident).connect() as conn:
        assert desk.read_code_b(conn, persona_code_b("kokutou-mikiya")).verified


@pytest.mark.parametrize("tap_desk", ["crl"], indirect=True)
def test_enrolment_needs_the_right_pin_and_a_known_person(served: Served,
                                                         tap_desk: ShelterDesk) -> None:
    desk = tap_desk
    with on(served.resident).connect() as conn:
        person = desk.check_in(desk.read_code_b(conn, CODE_B)).person
        with pytest.raises(card.CardRefused) as wrong:
            desk.enrol_for_tap(conn, "9999", person.id)
        assert wrong.value.reason == "wrong-pin"
        with pytest.raises(ShelterError, match="no person"):
            desk.enrol_for_tap(conn, AUTH_PIN, "desk-1-P999")
        with pytest.raises(card.CardRefused, match="登録されていません"):
            desk.tap(conn)


def test_without_ca_certificates_the_tap_path_is_a_clear_error(desk: ShelterDesk,
                                                               card_dir: Path) -> None:
    with on(card_dir).connect() as conn, pytest.raises(ShelterError, match="not configured"):
        desk.tap(conn)
