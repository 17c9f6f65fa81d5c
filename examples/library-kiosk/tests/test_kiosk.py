"""The kiosk against a simulated My Number card, its PKI and a virtual clock, using only the
mynacard pytest plugin (no conftest.py) and mynacard's public API."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis.stateful import rule
from kiosk import Kiosk, TrustingKiosk

from mynacard.client.jpki import JPKIClient, JPKIKey
from mynacard.readers import open_reader
from mynacard.testing import strategies
from mynacard.testing.stateful import CardHolderMachine


def make_kiosk(harness, kiosk_class=Kiosk):
    """The kiosk checks certificates the way a relying party does: CRLs fetched over HTTP from
    the URLs in the certificate (the plugin's revocation server)."""
    return kiosk_class(lambda cert: harness.validator(crls=[], fetch=True).validate(cert))


def test_a_patron_borrows_with_the_right_pin(card_connection, mynacard_harness,
                                             revocation_server):
    decision = make_kiosk(mynacard_harness).lend(card_connection, "1234")
    assert decision.admitted, decision.reason


def test_a_wrong_pin_is_refused_and_costs_a_try(card_connection, mynacard_harness,
                                                revocation_server):
    decision = make_kiosk(mynacard_harness).lend(card_connection, "9999")
    assert not decision.admitted and "63C2" in decision.reason
    assert JPKIClient(card_connection).tries_left(JPKIKey.AUTH) == 2


@pytest.mark.mynacard_card("yamada-hanako", pins={"auth": "2580"})
def test_another_patron_with_her_own_pin(card_connection, mynacard_harness, revocation_server):
    assert make_kiosk(mynacard_harness).lend(card_connection, "2580").admitted


def test_a_card_reported_lost_is_refused(card_factory, mynacard_harness, revocation_server):
    card = card_factory("kokutou-mikiya")
    mynacard_harness.report_loss(card)
    mynacard_harness.publish()
    with open_reader(f"sim:{card}").connect() as connection:
        decision = make_kiosk(mynacard_harness).lend(connection, "1234")
    assert (decision.admitted, decision.reason) == (False, "certificate on-hold")


def test_a_stale_crl_is_refused(card_connection, mynacard_harness, mynacard_clock,
                                revocation_server):
    mynacard_clock.freeze()
    mynacard_harness.publish()
    mynacard_clock.advance(dt.timedelta(days=2))
    decision = make_kiosk(mynacard_harness).lend(card_connection, "1234")
    assert decision.reason == "certificate stale-revocation-info"


@settings(max_examples=5, derandomize=True, deadline=None, database=None)
@given(pin=strategies.invalid_pins())
def test_a_malformed_pin_never_gets_in(pin, mynacard_harness, card_factory):
    mynacard_harness.publish()
    with open_reader(f"sim:{card_factory()}").connect() as connection:
        assert not make_kiosk(mynacard_harness).lend(connection, pin).admitted


class KioskMachine(CardHolderMachine):
    """The card holder's life, plus the one thing the kiosk does."""

    kiosk_class = Kiosk

    def __init__(self, harness):
        super().__init__(harness)
        self.kiosk = make_kiosk(harness, self.kiosk_class)

    @rule()
    def holder_borrows_a_book(self):
        pin = self.right_pin("auth")
        decision = self.kiosk.lend(self.connection, pin)
        self.presented("auth", pin)
        assert decision.admitted == self.auth_certificate_usable(), (
            f"the kiosk said {decision.reason!r} to a card whose certificate a relying party "
            f"finds {self.expected_verdict('auth').value}, with "
            f"{self.model.tries['auth']} PIN tries left")


class TrustingKioskMachine(KioskMachine):
    kiosk_class = TrustingKiosk


MACHINE = settings(max_examples=25, stateful_step_count=8, derandomize=True, deadline=None,
                   database=None)


def test_the_kiosk_through_a_card_holders_life(mynacard_harness):
    KioskMachine.run(mynacard_harness, MACHINE)


@pytest.mark.planted_bug
def test_the_trusting_kiosk_through_a_card_holders_life(mynacard_harness):
    TrustingKioskMachine.run(mynacard_harness, MACHINE)
