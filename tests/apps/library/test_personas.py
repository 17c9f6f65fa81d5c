"""Every hard persona of the toolkit at the library counter, through the REAL recipes
(``RecipeChecks``: strict enrolment, staffed tap with chip authentication) and revocation
fetched over HTTP from a loopback CRL/OCSP server.

The personas' history dates are fixed in their YAML, so they are issued on one PKI frozen at
the tests' reference day (12:00 JST, 2026-11-23), and the recipes and the library run on the
same clock. For each persona, two visits:

* **enrolment**: a strict enrolment with the persona's PIN at a library that does not know it;
* **tap**: a lending tap at a library where the card's FIRST authentication certificate was
  linked (enrolled before the card's history happened, e.g. before its renewal).

docs/library.md carries the same table.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from helpers import PERSONAS, TEST_TODAY, load_test_persona

from mynacard.apps.library.model import EnrolMethod, Link, Loan
from mynacard.apps.library.service import OTHER_CHIP, RE_ENROL, Library, RecipeChecks
from mynacard.apps.library.store import LibraryStore
from mynacard.cardsim import jpki_ap
from mynacard.cardsim.jpki_ap import JPKIApplication, certificate_ef
from mynacard.cardsim.perso.issue import issue_card
from mynacard.cardsim.perso.persona import Persona, parse_persona
from mynacard.cardsim.perso.reissue import card_id
from mynacard.cardsim.storage import CardImageError, CardStore, image_key
from mynacard.client.jpki import JPKIClient, JPKIKey
from mynacard.client.recipes import CardIdentity, RefusalReason, Refused, RevocationConfig
from mynacard.client.records import load_trust_anchors
from mynacard.clock import VirtualClock
from mynacard.jpki.ca import SimulatorPKI
from mynacard.jpki.ocsp import OCSPResponder
from mynacard.jpki.profile import AUTH_CA
from mynacard.jpki.publish import publish
from mynacard.jpki.server import RevocationServer
from mynacard.jpki.store import Role
from mynacard.readers.base import CardConnection
from mynacard.readers.simulator import SimulatorReader

NOW = dt.datetime.combine(TEST_TODAY, dt.time(3, 0), dt.UTC)   # 12:00 JST
FACE_AUTH_GUESS = "0000"   # the holder of a 顔認証 card has no PIN; whatever they type
FOUND_AT = "2026-10-20"


def found_persona() -> Persona:
    """The lost-card persona whose card turned up again (its certificates are then revoked)."""
    data = yaml.safe_load((PERSONAS / "lost-card.yaml").read_text(encoding="utf-8"))
    data["history"].append({"event": "found", "at": FOUND_AT})
    return parse_persona(data, today=TEST_TODAY)


class World:
    """One PKI on a frozen clock, served over loopback HTTP, with the personas issued on it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.clock = VirtualClock(NOW)
        self.pki = SimulatorPKI.open(root / "pki", clock=self.clock)
        self.crl_dir = root / "crl"
        self.crl_dir.mkdir()
        self.server = RevocationServer("127.0.0.1", 0, self.crl_dir, OCSPResponder(self.pki))
        with self.pki.store.transaction() as db:   # before issuance: the certificates name it
            self.pki.store.set_meta(db, "base_url", self.server.url)
        self.server.start_background()
        self.cards: dict[str, Path] = {}
        self.config = RevocationConfig(
            trust_anchors=tuple(ca.certificate for ca in self.pki.generations(AUTH_CA)),
            clock=self.clock)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.pki.store.close()

    def issue(self, names: list[str]) -> None:
        """Every card first, then the CRLs once: the recipes cache a fetched list for as
        long as the frozen clock stands still."""
        for name in names:
            persona = found_persona() if name == "found" else load_test_persona(name)
            self.cards[name] = issue_card(persona, self.root / name, self.pki)
        publish(self.pki, self.crl_dir)

    def first_auth_identity(self, card_dir: Path) -> CardIdentity:
        """The card's first authentication certificate as the library would have linked it
        (a counterfeit has no PKI card of its own: the certificate it carries)."""
        try:
            records = sorted((r for r in self.pki.store.card_certificates(card_id(card_dir))
                              if r.role is Role.AUTH),
                             key=lambda r: r.certificate.not_valid_before_utc)
            certificate = records[0].certificate
        except CardImageError:
            read = on_card(card_dir, lambda c: JPKIClient(c).read_certificate(JPKIKey.AUTH))
            assert isinstance(read, x509.Certificate)
            certificate = read
        aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        assert aki.key_identifier is not None
        return CardIdentity(aki.key_identifier, certificate.serial_number,
                            certificate.not_valid_after_utc)

    def library(self, db: Path) -> Library:
        store = LibraryStore(db)
        store.add_item("B1", "吾輩は猫である")
        # The CV roots exist once the first card is issued (the PKI's cvc/ directory).
        checks = RecipeChecks(self.config, load_trust_anchors(self.pki.path / "cvc"),
                              "counter-1")
        return Library(store, checks, self.clock)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    built = World(tmp_path_factory.mktemp("library-personas"))
    built.issue(list(CASES))
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def libraries() -> Iterator[list[Library]]:
    opened: list[Library] = []
    yield opened
    for library in opened:
        library.store.close()


def on_card(card_dir: Path, action: Callable[[CardConnection], object]) -> object:
    """The outcome of one visit: what the library answered, or the refusal."""
    connection = SimulatorReader.for_image(card_dir).connect()
    try:
        return action(connection)
    except Refused as refused:
        return refused
    finally:
        connection.disconnect()


@dataclass(frozen=True)
class Expect:
    reason: RefusalReason | None       # None: enrolled / lent
    message: str = ""                  # a fragment the holder or staff must read


OK = Expect(None)
ON_HOLD = Expect(RefusalReason.ON_HOLD, "reported lost (一時停止中のカードです)")
FOUND = Expect(RefusalReason.REVOKED, "revoked (superseded; このカードは利用停止中です): the "
               "certificate was replaced (renewal or a new card)")
DEAD = Expect(RefusalReason.REVOKED, "revoked (cessation_of_operation; このカードは利用停止中です"
              "): the card can no longer be used")
CLONE = Expect(RefusalReason.NOT_GENUINE, "could not prove it is a genuine My Number card")

CASES = {
    # persona: (strict enrolment, tap on the link of its first certificate)
    "renewed": (OK, Expect(RefusalReason.NOT_ENROLLED, RE_ENROL)),
    "moved": (OK, OK),
    "lost-card": (ON_HOLD, ON_HOLD),
    "found": (FOUND, FOUND),
    "deceased": (DEAD, DEAD),
    "blocked-auth-pin": (Expect(RefusalReason.PIN_BLOCKED, "暗証番号がロックされています"), OK),
    "sato-sora-child": (OK, OK),
    "face-auth": (Expect(RefusalReason.NO_PIN, "顔認証マイナンバーカードでは登録できません"), OK),
    "cloned-certificate": (CLONE, CLONE),
}


def assert_outcome(outcome: object, expected: Expect, success: type) -> None:
    if expected.reason is None:
        assert isinstance(outcome, success), outcome
    else:
        assert isinstance(outcome, Refused), outcome
        assert outcome.reason is expected.reason, outcome.message
        assert expected.message in outcome.message


@pytest.mark.parametrize(("name", "enrolment", "tap"),
                         [(name, *expected) for name, expected in CASES.items()],
                         ids=list(CASES))
def test_persona_at_the_counter(world: World, tmp_path: Path, libraries: list[Library],
                                name: str, enrolment: Expect, tap: Expect) -> None:
    card = Path(shutil.copytree(world.cards[name], tmp_path / "card"))
    persona = found_persona() if name == "found" else load_test_persona(name)
    pin = persona.pins.auth if persona.pins is not None else FACE_AUTH_GUESS

    fresh = world.library(tmp_path / "fresh.db")
    libraries.append(fresh)
    enrolled = on_card(card, lambda c: fresh.enrol(c, pin))
    assert_outcome(enrolled, enrolment, Link)
    if isinstance(enrolled, Link):
        # The chip-authenticated card serial is kept beside the link, for every later tap.
        assert enrolled.method is EnrolMethod.PIN and enrolled.card_serial
    if enrolment.reason is RefusalReason.NO_PIN:
        # The staff path: an identity document checked by staff, the card checked PIN-less.
        staff = on_card(card, lambda c: fresh.enrol_by_staff(c, "運転免許証"))
        assert isinstance(staff, Link) and staff.method is EnrolMethod.STAFF, staff

    known = world.library(tmp_path / "known.db")
    libraries.append(known)
    first = world.first_auth_identity(card)
    method = EnrolMethod.STAFF if persona.pins is None else EnrolMethod.PIN
    member = known.store.link(first.link_key, first.not_after, NOW - dt.timedelta(days=400),
                              method=method, document="運転免許証" if persona.pins is None
                              else None).user_number
    lent = on_card(card, lambda c: known.lend(c, "B1"))
    assert_outcome(lent, tap, Loan)
    if tap.reason is RefusalReason.NOT_ENROLLED:
        # Renewed certificate: strict enrolment moves the membership, then the tap works.
        moved = on_card(card, lambda c: known.enrol(c, pin, user_number=member))
        assert isinstance(moved, Link) and moved.user_number == member, moved
        assert known.store.active_link(first.link_key) is None
        lent = on_card(card, lambda c: known.lend(c, "B1"))
        assert isinstance(lent, Loan) and lent.user_number == member, lent


def _carrying(card_dir: Path, certificate: x509.Certificate) -> None:
    """Put another card's authentication certificate into this (genuine) card's EF 000A."""
    store = CardStore.open(card_dir)
    try:
        store.update_content(files={image_key(JPKIApplication.NAME, jpki_ap.EF_AUTH_CERT):
                                    certificate_ef(certificate.public_bytes(
                                        serialization.Encoding.DER))})
    finally:
        store.close()


def test_a_genuine_chip_carrying_the_enrolled_cards_certificate_is_refused(
        world: World, tmp_path: Path, libraries: list[Library]) -> None:
    """The chip check passes (the chip IS genuine) and the certificate is valid and linked:
    only the card serial recorded at enrolment tells the two chips apart."""
    victim = Path(shutil.copytree(world.cards["sato-sora-child"], tmp_path / "victim"))
    other = Path(shutil.copytree(world.cards["moved"], tmp_path / "other"))
    library = world.library(tmp_path / "library.db")
    libraries.append(library)
    link = on_card(victim, lambda c: library.enrol(c, "2468"))
    assert isinstance(link, Link), link
    certificate = on_card(victim, lambda c: JPKIClient(c).read_certificate(JPKIKey.AUTH))
    assert isinstance(certificate, x509.Certificate)
    _carrying(other, certificate)
    refused = on_card(other, lambda c: library.lend(c, "B1"))
    assert isinstance(refused, Refused) and refused.reason is RefusalReason.NOT_GENUINE
    assert refused.message == OTHER_CHIP
    assert isinstance(on_card(victim, lambda c: library.lend(c, "B1")), Loan)
