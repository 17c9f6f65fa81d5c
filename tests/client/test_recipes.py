"""The relying-party recipes against the real simulator, PKI and HTTP revocation server.

Each persona of municipal-apps §0.6 goes through strict enrolment and the staffed tap; every
refusal reason is reached through the card's own answers and the PKI's published CRLs or OCSP.
The module's PKI has its own store and a loopback ``RevocationServer`` (an ephemeral port named
in the certificates' CRL and OCSP URLs), so lifecycle events here touch no other test's cards.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from helpers import PERSONAS, TEST_TODAY, load_test_persona

from mynacard.cardsim import jpki_ap
from mynacard.cardsim.jpki_ap import JPKIApplication, certificate_ef, certificate_files
from mynacard.cardsim.perso import reissue
from mynacard.cardsim.perso.issue import default_cvca, issue_card
from mynacard.cardsim.perso.persona import Persona, parse_persona
from mynacard.cardsim.storage import CardStore, image_key
from mynacard.client.jpki import JPKIClient, JPKIKey
from mynacard.client.recipes import (
    FETCH_RETRY_SECONDS,
    CardIdentity,
    RefusalReason,
    Refused,
    RevocationConfig,
    challenge_message,
    check_certificate,
    enrol_strict,
    require_link,
    tap_check,
)
from mynacard.clock import VirtualClock
from mynacard.jpki import lifecycle
from mynacard.jpki.ca import SimulatorPKI
from mynacard.jpki.cvca import SimulatorCVCA
from mynacard.jpki.fetch import http_fetch
from mynacard.jpki.ocsp import OCSPResponder
from mynacard.jpki.publish import publish
from mynacard.jpki.server import RevocationServer
from mynacard.readers.base import CardConnection
from mynacard.readers.simulator import SimulatorReader

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
PIN = "1234"
TERMINAL = "library-counter-1"


@dataclasses.dataclass
class World:
    pki: SimulatorPKI
    clock: VirtualClock
    server: RevocationServer
    crl_dir: Path
    cards: Path
    cv_anchors: dict

    def publish(self) -> None:
        publish(self.pki, self.crl_dir, self.clock())

    def config(self, **overrides) -> RevocationConfig:
        settings = {"trust_anchors": tuple(ca.certificate for ca in self.pki.generations(
            self.pki.auth_ca.kind)), "clock": self.clock, **overrides}
        return RevocationConfig(**settings)

    def issue(self, persona: Persona | str = "kokutou-mikiya", name: str = "card",
              cvca: SimulatorCVCA | None = None) -> Path:
        if isinstance(persona, str):
            persona = load_test_persona(persona)
        out = self.cards / f"{name}-{len(list(self.cards.iterdir()))}"
        issue_card(persona, out, self.pki, issued_at=NOW - dt.timedelta(days=1), cvca=cvca)
        self.publish()
        return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("recipes")
    clock = VirtualClock(NOW)
    pki = SimulatorPKI.open(base / "pki", now=NOW - dt.timedelta(days=2))
    crl_dir = base / "crl"
    crl_dir.mkdir()
    server = RevocationServer("127.0.0.1", 0, crl_dir, OCSPResponder(pki, clock=clock))
    with pki.store.transaction() as db:
        pki.store.set_meta(db, "base_url", server.url)
    server.start_background()
    cards = base / "cards"
    cards.mkdir()
    try:
        yield World(pki, clock, server, crl_dir, cards, default_cvca(pki).trust_anchors())
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def _clock_back(world: World) -> Iterator[None]:
    yield
    world.clock.freeze(NOW)


@contextmanager
def inserted(card_dir: Path) -> Iterator[CardConnection]:
    with SimulatorReader.for_image(card_dir).connect() as connection:
        yield connection


def enrol(world: World, card_dir: Path, pin: str = PIN, **config) -> CardIdentity:
    with inserted(card_dir) as connection:
        return enrol_strict(connection, pin, world.config(**config), terminal_id=TERMINAL)


def tap(world: World, card_dir: Path, **config) -> CardIdentity:
    with inserted(card_dir) as connection:
        return tap_check(connection, world.config(**config), cv_anchors=world.cv_anchors)


def refusal(action: Callable[[], object]) -> Refused:
    with pytest.raises(Refused) as caught:
        action()
    return caught.value


def persona_with(name: str, **overrides: object) -> Persona:
    """A persona YAML with fields replaced (dotted paths), parsed like the shipped ones."""
    data = yaml.safe_load((PERSONAS / f"{name}.yaml").read_text(encoding="utf-8"))
    for dotted, value in overrides.items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    return parse_persona(data, today=TEST_TODAY, base=PERSONAS)


def card_id(card_dir: Path) -> str:
    return reissue.card_id(card_dir)


def auth_certificate_der(card_dir: Path) -> bytes:
    with inserted(card_dir) as connection:
        return JPKIClient(connection).read_certificate_der(JPKIKey.AUTH)


# --- the good path --------------------------------------------------------------------------

def test_enrolment_then_tap_give_the_same_link(world: World) -> None:
    card = world.issue()
    enrolled = enrol(world, card)
    tapped = tap(world, card)
    assert tapped.link_key == enrolled.link_key
    assert enrolled.card_serial == tapped.card_serial == "400000012719843"
    certificate = x509.load_der_x509_certificate(auth_certificate_der(card))
    issuer_key = world.pki.auth_ca.certificate.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier).value.digest
    assert enrolled.issuer_key_id == issuer_key
    assert enrolled.serial == certificate.serial_number
    assert enrolled.not_after == certificate.not_valid_after_utc
    assert enrolled.link_key == f"{issuer_key.hex()}:{certificate.serial_number:x}"
    require_link(tapped, enrolled)


def test_the_card_signs_the_challenge_it_was_given(world: World) -> None:
    """The signature covers the server's nonce, the time and the terminal id: a signature made
    for another challenge does not verify (checked by replaying the card's answer)."""
    card = world.issue()
    nonce = bytes(range(32))
    with inserted(card) as connection:
        identity = enrol_strict(connection, PIN, world.config(), terminal_id=TERMINAL,
                                challenge=nonce)
    assert identity.serial == x509.load_der_x509_certificate(
        auth_certificate_der(card)).serial_number
    first = challenge_message(nonce, NOW, TERMINAL)
    assert first != challenge_message(nonce, NOW, "another-terminal")
    assert first != challenge_message(nonce[:-1] + b"\x00", NOW, TERMINAL)
    assert first != challenge_message(nonce, NOW + dt.timedelta(seconds=1), TERMINAL)
    # Length-prefixed: moving bytes between fields changes the message.
    assert challenge_message(b"ab", NOW, "c") != challenge_message(b"a", NOW, "bc")


# --- personas of municipal-apps §0.6 --------------------------------------------------------

def test_renewed_certificate_breaks_the_link_until_re_enrolment(world: World) -> None:
    card = world.issue()
    enrolled = enrol(world, card)
    old = x509.load_der_x509_certificate(auth_certificate_der(card))
    reissue.renew(world.pki, card, world.clock())
    world.publish()
    tapped = tap(world, card)
    assert tapped.serial != enrolled.serial
    assert tapped.link_key != enrolled.link_key
    assert refusal(lambda: require_link(tapped, enrolled)).reason is RefusalReason.NOT_ENROLLED
    # The old certificate itself is superseded: shown anywhere, it is refused as revoked.
    stale = refusal(lambda: check_certificate(old, world.config()))
    assert stale.reason is RefusalReason.REVOKED and "re-enrol" in stale.message
    again = enrol(world, card)
    assert again.link_key == tapped.link_key
    require_link(tap(world, card), again)


def test_moved_resident_keeps_working(world: World) -> None:
    persona = load_test_persona("kokutou-mikiya")
    card = world.issue(persona)
    enrolled = enrol(world, card)
    moved = dataclasses.replace(persona.resident, address="東京都清瀬市竹丘一丁目1番1号")
    result = reissue.change_resident(world.pki, card, moved, world.clock())
    world.publish()
    assert any(r.serial != enrolled.serial for r in result.changed)  # the signing one went
    require_link(tap(world, card), enrolled)
    assert enrol(world, card).link_key == enrolled.link_key


def test_lost_card_is_on_hold_and_no_pin_try_is_spent(world: World) -> None:
    card = world.issue()
    enrolled = enrol(world, card)
    lifecycle.report_loss(world.pki, card_id(card), world.clock())
    world.publish()
    held = refusal(lambda: tap(world, card))
    assert held.reason is RefusalReason.ON_HOLD and "lost" in held.message
    assert refusal(lambda: enrol(world, card, pin="9999")).reason is RefusalReason.ON_HOLD
    with inserted(card) as connection:
        assert JPKIClient(connection).tries_left(JPKIKey.AUTH) == 3
    assert enrolled.serial  # the link stays stored; the app decides what to do with it


def test_found_card_is_revoked(world: World) -> None:
    card = world.issue()
    lifecycle.report_loss(world.pki, card_id(card), world.clock())
    lifecycle.card_found(world.pki, card_id(card), world.clock())
    world.publish()
    for action in (lambda: tap(world, card), lambda: enrol(world, card)):
        refused = refusal(action)
        assert refused.reason is RefusalReason.REVOKED


def test_dead_holder_is_revoked(world: World) -> None:
    card = world.issue()
    enrol(world, card)
    lifecycle.death(world.pki, card_id(card), world.clock())
    world.publish()
    refused = refusal(lambda: tap(world, card))
    assert refused.reason is RefusalReason.REVOKED
    assert "cessation_of_operation" in refused.message and "municipal office" in refused.message


def test_wrong_pin_counts_down_then_blocks_and_the_tap_still_works(world: World) -> None:
    card = world.issue()
    first = refusal(lambda: enrol(world, card, pin="0000"))
    assert (first.reason, first.tries_left) == (RefusalReason.WRONG_PIN, 2)
    assert "2 tries left" in first.message
    second = refusal(lambda: enrol(world, card, pin="0000"))
    assert (second.reason, second.tries_left) == (RefusalReason.WRONG_PIN, 1)
    assert "1 try left" in second.message
    third = refusal(lambda: enrol(world, card, pin="0000"))
    assert third.reason is RefusalReason.PIN_BLOCKED
    assert "municipal office" in third.message
    # The right PIN no longer helps: the card answers blocked before any VERIFY is spent.
    assert refusal(lambda: enrol(world, card)).reason is RefusalReason.PIN_BLOCKED
    assert tap(world, card).serial  # the PIN-less path does not need the PIN


def test_child_has_no_signing_certificate_and_enrols(world: World) -> None:
    card = world.issue("sato-sora-child")
    with inserted(card) as connection:
        assert not JPKIClient(connection).has_sign_certificate()
    require_link(tap(world, card), enrol(world, card, pin="2468"))


def test_child_with_a_blocked_pin_is_told_blocked_not_face_auth(world: World) -> None:
    card = world.issue("sato-sora-child")
    _set_counters(card, {jpki_ap.EF_AUTH_PIN: 0})
    assert refusal(lambda: enrol(world, card, pin="2468")).reason is RefusalReason.PIN_BLOCKED


def _set_counters(card_dir: Path, counters: dict[int, int]) -> None:
    store = CardStore.open(card_dir)
    try:
        for fid, value in counters.items():
            store.set_counter(image_key(JPKIApplication.NAME, fid), value)
    finally:
        store.close()


def _face_auth_card(world: World) -> Path:
    """A 顔認証マイナンバーカード as we model it ([G], municipal-apps §1.2): an adult's card with
    an authentication certificate but no signing certificate, and neither JPKI PIN usable."""
    card = world.issue(persona_with("kokutou-mikiya", **{"card.serial": "400000099999991"}))
    auth = auth_certificate_der(card)
    store = CardStore.open(card)
    try:
        files = certificate_files(
            auth=auth, auth_ca=world.pki.auth_ca.certificate.public_bytes(DER),
            sign_ca=world.pki.sign_ca.certificate.public_bytes(DER), sign=None)
        store.update_content(files=files)
        for fid in (jpki_ap.EF_AUTH_PIN, jpki_ap.EF_SIGN_PIN):
            store.set_counter(image_key(JPKIApplication.NAME, fid), 0)
    finally:
        store.close()
    return card


def test_face_auth_card_cannot_enrol_and_is_sent_to_the_staff_path(world: World) -> None:
    card = _face_auth_card(world)
    refused = refusal(lambda: enrol(world, card))
    assert refused.reason is RefusalReason.NO_PIN
    assert "顔認証" in refused.message and "Staff" in refused.message
    assert tap(world, card).card_serial == "400000099999991"


def test_expired_certificate(world: World) -> None:
    card = world.issue()
    not_after = x509.load_der_x509_certificate(auth_certificate_der(card)).not_valid_after_utc
    world.clock.freeze(not_after + dt.timedelta(days=1))
    refused = refusal(lambda: tap(world, card))
    assert refused.reason is RefusalReason.EXPIRED
    assert f"{not_after:%Y-%m-%d}" in refused.message


def test_certificate_of_another_pki_is_untrusted(world: World, make_card_dir) -> None:
    foreign = make_card_dir()  # issued by the session PKI, not this module's
    refused = refusal(lambda: enrol(world, foreign))
    assert refused.reason is RefusalReason.UNTRUSTED
    assert "trusted JPKI authentication CA" in refused.message


# --- cloned certificates --------------------------------------------------------------------

DER = serialization.Encoding.DER


def _carrying(card_dir: Path, certificate_der: bytes) -> None:
    """Put another card's authentication certificate into this card's EF 000A."""
    store = CardStore.open(card_dir)
    try:
        store.update_content(files={image_key(JPKIApplication.NAME, jpki_ap.EF_AUTH_CERT):
                                    certificate_ef(certificate_der)})
    finally:
        store.close()


def test_non_genuine_chip_with_a_copied_certificate(world: World) -> None:
    """A device that is not a genuine card (its chip key is certified by nobody we trust)
    carries the victim's certificate: the tap refuses it, and so does strict enrolment."""
    victim = world.issue()
    enrolled = enrol(world, victim)
    clone = world.issue(persona_with("kokutou-mikiya", **{"card.serial": "400000088888881"}),
                        cvca=SimulatorCVCA(None))
    _carrying(clone, auth_certificate_der(victim))
    refused = refusal(lambda: tap(world, clone))
    assert refused.reason is RefusalReason.NOT_GENUINE
    assert "genuine" in refused.message
    assert refusal(lambda: enrol(world, clone)).reason is RefusalReason.BAD_SIGNATURE
    assert enrolled.link_key  # the victim's own card is untouched
    require_link(tap(world, victim), enrolled)


def test_genuine_chip_with_another_cards_certificate(world: World) -> None:
    """Nothing on the card binds the 共通AP key to the JPKI certificate, so a genuine chip
    carrying a copy passes the chip check itself; the card serial recorded at enrolment tells
    it apart, and strict enrolment refuses it outright (it cannot sign with the victim's key)."""
    victim = world.issue()
    enrolled = enrol(world, victim)
    clone = world.issue(persona_with("kokutou-mikiya", **{"card.serial": "400000077777771"}))
    _carrying(clone, auth_certificate_der(victim))
    tapped = tap(world, clone)
    assert tapped.link_key == enrolled.link_key  # what the tap alone cannot tell
    refused = refusal(lambda: require_link(tapped, enrolled))
    assert refused.reason is RefusalReason.NOT_GENUINE
    bad = refusal(lambda: enrol(world, clone))
    assert bad.reason is RefusalReason.BAD_SIGNATURE and "copied" in bad.message


# --- revocation sources, caching and failing closed -----------------------------------------

def _counting(fetch=http_fetch):
    calls: list[str] = []

    def counted(url: str, body: bytes | None) -> bytes:
        calls.append(url)
        return fetch(url, body)

    return counted, calls


def test_crl_index_is_cached_until_the_cache_time(world: World) -> None:
    card = world.issue()
    fetch, calls = _counting()
    config = world.config(fetch=fetch, crl_cache_seconds=60)
    the_id = card_id(card)
    with inserted(card) as connection:
        tap_check(connection, config, cv_anchors=world.cv_anchors)
        fetched = len(calls)
        assert fetched >= 1
        lifecycle.report_loss(world.pki, the_id, world.clock())
        world.publish()
        # Within the cache time the cached lists answer: no fetch, the hold not yet seen.
        tap_check(connection, config, cv_anchors=world.cv_anchors)
        assert len(calls) == fetched
        world.clock.advance(dt.timedelta(seconds=61))
        refused = refusal(lambda: tap_check(connection, config, cv_anchors=world.cv_anchors))
    assert refused.reason is RefusalReason.ON_HOLD
    assert len(calls) == 2 * fetched


def test_network_down_fails_closed(world: World) -> None:
    card = world.issue()

    def unreachable(url: str, body: bytes | None) -> bytes:
        return http_fetch(url.replace(world.server.url, "http://127.0.0.1:9"), body, timeout=2)

    for method in ("crl", "ocsp"):
        refused = refusal(lambda m=method: tap(world, card, fetch=unreachable, method=m))
        assert refused.reason is RefusalReason.NO_REVOCATION_INFO
        assert "try again later" in refused.message.lower()


def test_a_dead_crl_endpoint_is_not_retried_on_every_tap(world: World) -> None:
    card = world.issue()

    def unreachable(url: str, body: bytes | None) -> bytes:
        return http_fetch(url.replace(world.server.url, "http://127.0.0.1:9"), body, timeout=2)

    fetch, calls = _counting(unreachable)
    config = world.config(fetch=fetch)
    with inserted(card) as connection:
        def attempt() -> Refused:
            return refusal(lambda: tap_check(connection, config, cv_anchors=world.cv_anchors))

        first = attempt()
        tried = len(calls)
        second = attempt()  # within the back-off: same refusal, no new attempt
        assert len(calls) == tried
        world.clock.advance(dt.timedelta(seconds=FETCH_RETRY_SECONDS + 1))
        attempt()
        assert len(calls) == 2 * tried
    assert first.reason is second.reason is RefusalReason.NO_REVOCATION_INFO
    assert "cannot get" in second.message


def test_stale_crl_fails_closed(world: World) -> None:
    card = world.issue()
    next_update = x509.load_der_x509_crl(
        (world.crl_dir / "auth-g1.crl").read_bytes()).next_update_utc
    world.clock.freeze(next_update + dt.timedelta(minutes=1))
    refused = refusal(lambda: tap(world, card))
    assert refused.reason is RefusalReason.NO_REVOCATION_INFO
    assert "stale" in refused.message


def test_ocsp_gives_the_same_verdicts(world: World) -> None:
    good, lost, dead = world.issue(), world.issue(), world.issue()
    lifecycle.report_loss(world.pki, card_id(lost), world.clock())
    lifecycle.death(world.pki, card_id(dead), world.clock())
    fetch, calls = _counting()
    assert tap(world, good, method="ocsp", fetch=fetch).serial
    assert all(url.endswith("/ocsp") for url in calls)
    assert refusal(lambda: tap(world, lost, method="ocsp")).reason is RefusalReason.ON_HOLD
    assert refusal(lambda: enrol(world, dead, method="ocsp")).reason is RefusalReason.REVOKED


def test_removed_card_is_a_card_error(world: World) -> None:
    card = world.issue()
    reader = SimulatorReader.for_image(card)
    connection = reader.connect()
    try:
        reader.remove()
        refused = refusal(lambda: tap_check(connection, world.config(),
                                            cv_anchors=world.cv_anchors))
    finally:
        connection.disconnect()
    assert refused.reason is RefusalReason.CARD_ERROR
    assert "Place the card" in refused.message
