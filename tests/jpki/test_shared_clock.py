"""One VirtualClock drives the whole stack: issuance dates, lifecycle events, CRL
thisUpdate/nextUpdate, OCSP producedAt/thisUpdate and validation verdicts move together when it
is frozen or advanced; explicit ``now=`` arguments still win."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from mynacard.cardsim.perso.issue import issue_card
from mynacard.cardsim.perso.persona import parse_persona
from mynacard.cardsim.perso.reissue import card_id
from mynacard.client.jpki import JPKIClient, JPKIKey
from mynacard.clock import VirtualClock
from mynacard.jpki import lifecycle
from mynacard.jpki.ca import SimulatorPKI
from mynacard.jpki.ocsp import RESPONSE_VALIDITY, OCSPResponder
from mynacard.jpki.profile import AUTH_CA
from mynacard.jpki.publish import CRL_VALIDITY, publish
from mynacard.jpki.store import Status
from mynacard.jpki.validate import Policy, RevocationMethod, Validator, Verdict
from mynacard.readers.simulator import SimulatorReader

T1 = dt.datetime(2026, 5, 12, 1, 30, tzinfo=dt.UTC)  # 10:30 JST: the card's date is 2026-05-12
HOUR = dt.timedelta(hours=1)
CRL_ONLY = Policy(methods=(RevocationMethod.CRL,))
OCSP_ONLY = Policy(methods=(RevocationMethod.OCSP,))
PERSONA = {"name": {"family": "時田", "given": "守"}, "address": "東京都清瀬市元町１－１",
           "birth_date": "1985-09-09", "sex": "male",
           "municipality": {"code": "13221", "prefecture": "Tokyo-to", "name": "Kiyose-shi"}}


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T1)


@pytest.fixture
def clocked(pki: SimulatorPKI, clock: VirtualClock) -> SimulatorPKI:
    """The per-test PKI copy, reopened on the virtual clock."""
    return SimulatorPKI.open(pki.path, clock=clock)


def _read_auth(card_dir: Path) -> x509.Certificate:
    connection = SimulatorReader.for_image(card_dir).connect()
    try:
        return JPKIClient(connection).read_certificate(JPKIKey.AUTH)
    finally:
        connection.disconnect()


def _ocsp_answer(pki: SimulatorPKI, cert: x509.Certificate) -> bytes:
    request = ocsp.OCSPRequestBuilder().add_certificate(
        cert, pki.ca_at(AUTH_CA, cert.not_valid_before_utc).certificate, hashes.SHA256()).build()
    return OCSPResponder(pki).respond(request.public_bytes(serialization.Encoding.DER))


@pytest.fixture
def card(clocked: SimulatorPKI, tmp_path: Path) -> tuple[Path, x509.Certificate]:
    persona = parse_persona(PERSONA, clock=clocked.clock)
    out = issue_card(persona, tmp_path / "card", clocked)
    return out, _read_auth(out)


def test_issuance_takes_its_dates_from_the_clock(clocked: SimulatorPKI, clock: VirtualClock,
                                                 card) -> None:
    card_dir, auth = card
    assert parse_persona(PERSONA, clock=clock).issued == dt.date(2026, 5, 12)
    # Issued "today" means issued now: the certificate starts at the frozen instant.
    assert auth.not_valid_before_utc == T1
    record = clocked.store.certificate(auth.serial_number)
    assert record.status is Status.GOOD
    clock.advance(3 * HOUR)
    held = lifecycle.report_loss(clocked, card_id(card_dir)).changed
    assert {r.revoked_at for r in held} == {T1 + 3 * HOUR}


def test_crl_and_ocsp_dates_follow_the_clock(clocked: SimulatorPKI, clock: VirtualClock,
                                             card, tmp_path: Path) -> None:
    _, auth = card
    clock.advance(HOUR)
    publish(clocked, tmp_path / "crl")
    crl = x509.load_der_x509_crl((tmp_path / "crl" / "auth-g1.crl").read_bytes())
    assert crl.last_update_utc == T1 + HOUR
    assert crl.next_update_utc == T1 + HOUR + CRL_VALIDITY
    answer = ocsp.load_der_ocsp_response(_ocsp_answer(clocked, auth))
    assert answer.produced_at_utc == answer.this_update_utc == T1 + HOUR
    assert answer.next_update_utc == T1 + HOUR + RESPONSE_VALIDITY


def test_an_explicit_time_overrides_the_clock(clocked: SimulatorPKI, tmp_path: Path) -> None:
    at = T1 - dt.timedelta(days=30)
    publish(clocked, tmp_path / "crl", at)
    crl = x509.load_der_x509_crl((tmp_path / "crl" / "sign-g1.crl").read_bytes())
    assert crl.last_update_utc == at
    assert OCSPResponder(clocked, clock=lambda: at).clock() == at


def test_verdicts_move_with_the_clock(clocked: SimulatorPKI, clock: VirtualClock, card,
                                      tmp_path: Path) -> None:
    card_dir, auth = card
    clock.advance(HOUR)
    crl_dir = tmp_path / "crl"

    def by_crl() -> Verdict:
        crls = [p.read_bytes() for p in sorted(crl_dir.glob("auth-*.crl"))]
        return Validator(clocked.trust_anchors(), crls=crls, policy=CRL_ONLY,
                         clock=clock).validate(auth).verdict

    def by_ocsp(answer: bytes) -> Verdict:
        return Validator(clocked.trust_anchors(), ocsp_responses=[answer], policy=OCSP_ONLY,
                         clock=clock).validate(auth).verdict

    publish(clocked, crl_dir)
    good_answer = _ocsp_answer(clocked, auth)
    assert by_crl() is Verdict.VALID and by_ocsp(good_answer) is Verdict.VALID

    clock.advance(HOUR)
    lifecycle.report_loss(clocked, card_id(card_dir))
    publish(clocked, crl_dir)
    assert by_crl() is Verdict.ON_HOLD
    assert by_ocsp(_ocsp_answer(clocked, auth)) is Verdict.ON_HOLD

    # Past the OCSP answer's nextUpdate (1 h) the old "good" answer no longer counts …
    clock.advance(2 * HOUR)
    assert by_ocsp(good_answer) is Verdict.STALE_REVOCATION_INFO
    # … and past the CRL's nextUpdate (1 day) neither does the list.
    clock.advance(CRL_VALIDITY)
    assert by_crl() is Verdict.STALE_REVOCATION_INFO
    # Past the certificate's notAfter the verdict is expired, whatever the lists say.
    clock.freeze(auth.not_valid_after_utc + dt.timedelta(seconds=1))
    assert by_crl() is Verdict.EXPIRED
