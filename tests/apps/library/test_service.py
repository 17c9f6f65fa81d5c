"""The library service against the in-process simulator through the reader layer: enrol with
the PIN, tap, lend / return / renew / hold, limits, the overdue block, no fines, and the card's
life (renewed, moved, lost, found, dead, 顔認証). Card checks come from the test stand-in of
``client.recipes`` (standin.py)."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import load_test_persona
from standin import Refused, StandInChecks

from mynacard.apps.library.model import (
    CirculationRefused,
    EnrolMethod,
    Refusal,
)
from mynacard.apps.library.service import Library
from mynacard.apps.library.store import LibraryStore
from mynacard.cardsim.card import VirtualCard
from mynacard.cardsim.perso import reissue
from mynacard.cardsim.perso.issue import issue_card
from mynacard.clock import VirtualClock
from mynacard.jpki import lifecycle
from mynacard.jpki.ca import SimulatorPKI
from mynacard.readers.simulator import SimulatorReader

PIN = "1234"
HANAKO_PIN = "8642"          # yamada-hanako.yaml
NOW = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


@pytest.fixture
def pki(tmp_path: Path, pki_dir: Path) -> Iterator[SimulatorPKI]:
    """A private copy of the session PKI: lifecycle events here touch no other test."""
    shutil.copytree(pki_dir, tmp_path / "pki")
    opened = SimulatorPKI.open(tmp_path / "pki")
    yield opened
    opened.store.close()


@pytest.fixture
def new_card(tmp_path: Path, pki: SimulatorPKI) -> Callable[[str], Path]:
    def issue(persona: str = "kokutou-mikiya") -> Path:
        return issue_card(load_test_persona(persona), tmp_path / f"card-{persona}", pki)

    return issue


@contextmanager
def tapped(card_dir: Path):  # noqa: ANN201 - a connection
    card = VirtualCard.open(card_dir)
    card.power_on()
    connection = SimulatorReader(card=card).connect()
    try:
        yield connection
    finally:
        connection.disconnect()
        card.close()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(NOW)


@pytest.fixture
def library(tmp_path: Path, pki: SimulatorPKI, clock: VirtualClock) -> Iterator[Library]:
    store = LibraryStore(tmp_path / "library.db")
    for n in range(1, 13):
        store.add_item(f"B{n:03d}", f"book {n}")
    store.add_item("AV1", "film 1", "av")
    store.add_item("AV2", "film 2", "av")
    store.add_item("AV3", "film 3", "av")
    yield Library(store, StandInChecks(pki), clock)
    store.close()


def test_enrol_with_the_pin_then_tap_lend_return(library: Library, new_card) -> None:
    card = new_card()
    with tapped(card) as connection:
        link = library.enrol(connection, PIN)
    assert link.method is EnrolMethod.PIN
    # The link is issuer key id : serial, nothing personal.
    issuer, serial = link.link_key.split(":")
    assert len(bytes.fromhex(issuer)) == 20 and int(serial, 16) > 0
    with tapped(card) as connection:
        loan = library.lend(connection, "B001")
        assert loan.due_at == NOW + 14 * DAY
        assert library.member(connection).loans == (loan,)
    assert library.give_back("B001") is None
    # Erased on return: nothing in the store says who had B001.
    assert library.store.member(link.user_number).loans == ()
    assert [loan for _, loan, _ in library.store.items() if loan] == []


def test_enrolling_the_same_card_twice_keeps_one_member(library: Library, new_card) -> None:
    card = new_card()
    with tapped(card) as connection:
        first = library.enrol(connection, PIN)
        second = library.enrol(connection, PIN)
    assert first.user_number == second.user_number
    assert library.store.member_numbers() == [first.user_number]


def test_wrong_pin_links_nothing(library: Library, new_card) -> None:
    with tapped(new_card()) as connection:
        with pytest.raises(Refused) as refused:
            library.enrol(connection, "9999")
        assert refused.value.reason == "wrong-pin"
        with pytest.raises(Refused) as refused:
            library.lend(connection, "B001")
        assert refused.value.reason == "not-enrolled"
    assert library.store.member_numbers() == []


def test_loan_limit_av_limit_renewal_and_holds(library: Library, new_card, clock) -> None:
    card, other = new_card(), new_card("yamada-hanako")
    with tapped(card) as connection:
        library.enrol(connection, PIN)
        for n in range(1, 11):
            library.lend(connection, f"B{n:03d}")
        with pytest.raises(CirculationRefused) as refused:
            library.lend(connection, "B011")
        assert refused.value.reason is Refusal.TOO_MANY_LOANS
    library.give_back("B010")
    with tapped(card) as connection:
        library.lend(connection, "AV1")
        with pytest.raises(CirculationRefused) as refused:
            library.lend(connection, "AV2")
        assert refused.value.reason is Refusal.TOO_MANY_LOANS
    library.give_back("B009")
    library.give_back("B008")
    with tapped(card) as connection:
        library.lend(connection, "AV2")
        with pytest.raises(CirculationRefused) as refused:
            library.lend(connection, "AV3")
        assert refused.value.reason is Refusal.TOO_MANY_AV
    with tapped(other) as connection:
        library.enrol(connection, HANAKO_PIN)
        library.hold(connection, "B002")
    clock.advance(7 * DAY)
    with tapped(card) as connection:
        renewed = library.renew(connection, "B001")
        assert renewed.due_at == NOW + 21 * DAY and renewed.renewals == 1
        with pytest.raises(CirculationRefused) as refused:
            library.renew(connection, "B001")
        assert refused.value.reason is Refusal.RENEWAL_LIMIT
        with pytest.raises(CirculationRefused) as refused:
            library.renew(connection, "B002")
        assert refused.value.reason is Refusal.RENEWAL_HELD
    assert library.give_back("B002") is not None      # set aside for the holder
    with tapped(card) as connection:
        with pytest.raises(CirculationRefused) as refused:
            library.lend(connection, "B002")
        assert refused.value.reason is Refusal.HELD_FOR_ANOTHER
    with tapped(other) as connection:
        assert library.lend(connection, "B002").user_number != renewed.user_number
        assert library.member(connection).holds == ()


def test_long_overdue_blocks_borrowing_and_return_lifts_it_with_no_fine(
        library: Library, new_card, clock) -> None:
    card = new_card()
    with tapped(card) as connection:
        link = library.enrol(connection, PIN)
        library.lend(connection, "B001")
    clock.advance((14 + 14) * DAY)        # 14 days late: still lends, but no renewal
    with tapped(card) as connection:
        library.lend(connection, "B002")
        with pytest.raises(CirculationRefused) as refused:
            library.renew(connection, "B002")
        assert refused.value.reason is Refusal.RENEWAL_OVERDUE
    clock.advance(DAY)                    # 15 days late (調布): blocked, holds too (小金井)
    with tapped(card) as connection:
        for act in (library.lend, library.hold):
            with pytest.raises(CirculationRefused) as refused:
                act(connection, "B003")
            assert refused.value.reason is Refusal.LONG_OVERDUE
            assert "no fine" in str(refused.value)
    assert library.store.report(clock()).long_overdue == 1
    library.give_back("B001")             # returning is all it takes: nothing to pay
    with tapped(card) as connection:
        library.lend(connection, "B003")
    assert not any(field in str(library.store.member(link.user_number))
                   for field in ("fine", "fee", "amount"))


def test_renewed_certificate_refused_until_strict_reenrolment_moves_membership(
        library: Library, new_card, pki: SimulatorPKI) -> None:
    card = new_card()
    with tapped(card) as connection:
        old = library.enrol(connection, PIN)
        library.lend(connection, "B001")
    reissue.renew(pki, card, NOW)
    with tapped(card) as connection:
        with pytest.raises(Refused) as refused:
            library.lend(connection, "B002")
        assert refused.value.reason == "not-enrolled"
        assert "re-enrol" in str(refused.value) and "PIN" in str(refused.value)
        new = library.enrol(connection, PIN, user_number=old.user_number)
        assert new.link_key != old.link_key and new.user_number == old.user_number
        member = library.member(connection)
    assert member.link == new and [loan.barcode for loan in member.loans] == ["B001"]
    # The old link stays, superseded, for the audit of re-enrolments; it no longer taps.
    assert library.store.active_link(old.link_key) is None


def test_lost_card_refused_then_found_card_refused(library: Library, new_card,
                                                   pki: SimulatorPKI) -> None:
    card = new_card()
    with tapped(card) as connection:
        library.enrol(connection, PIN)
    lifecycle.report_loss(pki, reissue.card_id(card), NOW)
    with tapped(card) as connection, pytest.raises(Refused) as refused:
        library.lend(connection, "B001")
    assert refused.value.reason == "on-hold"
    lifecycle.card_found(pki, reissue.card_id(card), NOW + DAY)
    with tapped(card) as connection, pytest.raises(Refused) as refused:
        library.lend(connection, "B001")
    assert refused.value.reason == "revoked"
    assert library.store.report(NOW).loans == 0


def test_death_refused_and_a_move_still_works(library: Library, new_card,
                                              pki: SimulatorPKI) -> None:
    moved, dead = new_card(), new_card("yamada-hanako")
    for card, pin in ((moved, PIN), (dead, HANAKO_PIN)):
        with tapped(card) as connection:
            library.enrol(connection, pin)
    lifecycle.death(pki, reissue.card_id(dead), NOW)
    with tapped(dead) as connection, pytest.raises(Refused) as refused:
        library.lend(connection, "B001")
    assert refused.value.reason == "revoked"
    # A move revokes the signing certificate only: the authentication link keeps working.
    resident = load_test_persona("kokutou-mikiya").resident
    reissue.change_resident(pki, moved, replace(resident, address="東京都清瀬市元町一丁目1番1号"),
                            NOW)
    with tapped(moved) as connection:
        assert library.lend(connection, "B001").barcode == "B001"


def test_face_auth_card_told_to_use_the_staff_path(library: Library, new_card,
                                                   pki: SimulatorPKI) -> None:
    library.checks = StandInChecks(pki, face_auth=True)
    card = new_card()
    with tapped(card) as connection:
        with pytest.raises(Refused) as refused:
            library.enrol(connection, PIN)
        assert refused.value.reason == "no-pin" and "staff" in str(refused.value)
        assert library.store.member_numbers() == []
        link = library.enrol_by_staff(connection, "運転免許証")
        assert (link.method, link.document) == (EnrolMethod.STAFF, "運転免許証")
        assert library.lend(connection, "B001").user_number == link.user_number
