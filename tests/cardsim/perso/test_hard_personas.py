"""Personas for every hard case (vectors/personas/): each issued on one PKI frozen at the tests'
reference day, read back through the reader layer with the host clients, checked against the
validator with CRLs published by ``jpki.publish`` (and OCSP where it matters), and shown by
``mynacard card show``."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509 import ocsp
from helpers import PERSONAS, TEST_TODAY, load_test_persona

from mynacard.cardsim.perso.issue import issue_card, persona_code_b
from mynacard.cardsim.perso.persona import PersonError, parse_persona
from mynacard.cardsim.perso.reissue import card_id
from mynacard.cli import main
from mynacard.client.cardinfo import CardInfoClient
from mynacard.client.commands import PinBlockedError, read_binary, select_ef
from mynacard.client.jpki import JPKIClient, JPKIKey
from mynacard.client.records import TamperedError, load_trust_anchors
from mynacard.client.text import TextClient
from mynacard.clock import VirtualClock
from mynacard.facts.text import EF_ATTRIBUTES, TAG_ATTRIBUTES
from mynacard.jpki.ca import SimulatorPKI
from mynacard.jpki.lifecycle import ROLE_KIND
from mynacard.jpki.ocsp import OCSPResponder
from mynacard.jpki.publish import publish
from mynacard.jpki.store import CertificateRecord, Role, Status
from mynacard.jpki.validate import Policy, RevocationMethod, ValidationResult, Validator, Verdict
from mynacard.readers.base import CardConnection
from mynacard.readers.simulator import SimulatorReader

NOW = dt.datetime.combine(TEST_TODAY, dt.time(3, 0), dt.UTC)  # 12:00 JST on the reference day
CRL_ONLY = Policy(methods=(RevocationMethod.CRL,))
OCSP_ONLY = Policy(methods=(RevocationMethod.OCSP,))


class World:
    """One PKI on a frozen clock, the hard personas issued on it, CRLs published after."""

    def __init__(self, root: Path) -> None:
        self.clock = VirtualClock(NOW)
        self.pki_dir = root / "pki"
        self.pki = SimulatorPKI.open(self.pki_dir, clock=self.clock)
        self.root = root
        self.cards: dict[str, Path] = {}
        self.crl_dir = root / "crl"

    def card(self, name: str) -> Path:
        if name not in self.cards:
            self.cards[name] = issue_card(load_test_persona(name), self.root / name, self.pki)
            publish(self.pki, self.crl_dir)
        return self.cards[name]

    def anchors(self) -> dict:
        return load_trust_anchors(self.pki_dir / "cvc")

    def validate(self, cert: x509.Certificate, policy: Policy = CRL_ONLY,
                 ocsp_answers: tuple[bytes, ...] = ()) -> ValidationResult:
        crls = [p.read_bytes() for p in sorted(self.crl_dir.glob("*.crl"))]
        return Validator(self.pki.trust_anchors(), self.pki.link_certificates(), crls,
                         ocsp_answers, policy=policy, clock=self.clock).validate(cert)

    def ocsp_answer(self, cert: x509.Certificate) -> bytes:
        record = self.pki.store.certificate(cert.serial_number)
        issuer = self.pki.ca(ROLE_KIND[record.role], record.generation).certificate
        request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256()).build()
        return OCSPResponder(self.pki).respond(request.public_bytes(serialization.Encoding.DER))

    def records(self, card_dir: Path, role: Role) -> list[CertificateRecord]:
        """The card's certificates of one role in issuance order (first issued first)."""
        return sorted((r for r in self.pki.store.card_certificates(card_id(card_dir))
                       if r.role is role), key=lambda r: r.certificate.not_valid_before_utc)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World(tmp_path_factory.mktemp("hard-personas"))


@pytest.fixture
def world_clock(world: World) -> Iterator[VirtualClock]:
    """The world's clock, put back to the reference instant after a test moves it."""
    yield world.clock
    world.clock.freeze(NOW)


@pytest.fixture
def copy_card(world: World, tmp_path: Path) -> Callable[[str], Path]:
    """A private copy of an issued card, for tests that spend PIN tries."""
    def make(name: str) -> Path:
        return Path(shutil.copytree(world.card(name), tmp_path / name))
    return make


def connect(card_dir: Path) -> CardConnection:
    return SimulatorReader.for_image(card_dir).connect()


def read_auth(card_dir: Path) -> x509.Certificate:
    conn = connect(card_dir)
    try:
        return JPKIClient(conn).read_certificate(JPKIKey.AUTH)
    finally:
        conn.disconnect()


def card_show(card_dir: Path) -> dict:
    result = CliRunner().invoke(main, ["card", "show", "--card", str(card_dir), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


# --- 顔認証マイナンバーカード ---------------------------------------------------------------

def test_face_auth_card_has_no_pin_and_no_signing_certificate(world: World) -> None:
    card_dir = world.card("face-auth")
    persona = load_test_persona("face-auth")
    conn = connect(card_dir)
    try:
        client = JPKIClient(conn)
        assert not client.has_sign_certificate()
        assert client.tries_left(JPKIKey.AUTH) == client.tries_left(JPKIKey.SIGN) == 0
        # Any PIN at all is refused as blocked (6984): MyKey enrolment is impossible.
        for guess in ("1234", "0000"):
            with pytest.raises(PinBlockedError):
                client.verify(JPKIKey.AUTH, guess)
        auth = client.read_certificate(JPKIKey.AUTH)
        # Shelter intake without a PIN still works: 照合番号B, chip authenticated.
        data = TextClient(conn, world.anchors()).read(code_b=persona_code_b(persona))
        assert data.basic_four is not None and data.basic_four.name == "高橋\u3000和子"
        with pytest.raises(PinBlockedError):
            TextClient(conn, world.anchors()).read(pin="1234")
    finally:
        conn.disconnect()
    assert world.validate(auth).verdict is Verdict.VALID
    shown = card_show(card_dir)
    assert shown["signing_certificate_present"] is False
    assert set(shown["pin_tries_left"].values()) == {0}


# --- blocked PIN ---------------------------------------------------------------------------

def test_blocked_auth_pin_refuses_even_the_right_pin(world: World,
                                                     copy_card: Callable[[str], Path]) -> None:
    card_dir = copy_card("blocked-auth-pin")
    conn = connect(card_dir)
    try:
        client = JPKIClient(conn)
        assert client.tries_left(JPKIKey.AUTH) == 0
        with pytest.raises(PinBlockedError):
            client.verify(JPKIKey.AUTH, "4711")
        # Only the auth PIN is blocked: the signing password still opens the signing certificate.
        assert client.tries_left(JPKIKey.SIGN) == 5
        client.verify(JPKIKey.SIGN, "ITO1958")
        assert client.read_certificate(JPKIKey.SIGN).serial_number
    finally:
        conn.disconnect()
    assert card_show(card_dir)["pin_tries_left"][JPKIKey.AUTH.value.name] == 0


# --- renewed, moved, lost, dead: PKI history built through the lifecycle -------------------

def test_renewed_card_carries_new_serials_and_the_old_ones_are_superseded(world: World) -> None:
    card_dir = world.card("renewed")
    first, current = world.records(card_dir, Role.AUTH)
    on_card = read_auth(card_dir)
    assert on_card.serial_number == current.serial != first.serial
    assert on_card.not_valid_before_utc == dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)
    assert world.validate(on_card).verdict is Verdict.VALID
    old = world.validate(first.certificate)
    assert old.verdict is Verdict.REVOKED and old.reason is x509.ReasonFlags.superseded
    old_sign, new_sign = world.records(card_dir, Role.SIGN)
    assert old_sign.status is Status.REVOKED and new_sign.status is Status.GOOD
    card_show(card_dir)


def test_moved_resident_has_signing_revoked_and_authentication_untouched(world: World) -> None:
    card_dir = world.card("moved")
    (auth,) = world.records(card_dir, Role.AUTH)
    old_sign, new_sign = world.records(card_dir, Role.SIGN)
    assert read_auth(card_dir).serial_number == auth.serial
    assert world.validate(auth.certificate).verdict is Verdict.VALID
    moved = world.validate(old_sign.certificate)
    assert moved.verdict is Verdict.REVOKED
    assert moved.reason is x509.ReasonFlags.affiliation_changed
    conn = connect(card_dir)
    try:
        client = JPKIClient(conn)
        client.verify(JPKIKey.SIGN, "KENTA83")
        assert client.read_certificate(JPKIKey.SIGN).serial_number == new_sign.serial
        four = TextClient(conn, world.anchors()).read(pin="8080").basic_four
        assert four is not None and four.address == "神奈川県横浜市中区日本大通１"
    finally:
        conn.disconnect()
    assert world.validate(new_sign.certificate).verdict is Verdict.VALID
    card_show(card_dir)


def test_lost_card_is_on_hold_by_crl_and_by_ocsp(world: World) -> None:
    card_dir = world.card("lost-card")
    auth = read_auth(card_dir)
    by_crl = world.validate(auth)
    assert by_crl.verdict is Verdict.ON_HOLD
    assert by_crl.revocation_date == dt.datetime(2026, 10, 5, 9, 0, tzinfo=dt.UTC)
    by_ocsp = world.validate(auth, OCSP_ONLY, (world.ocsp_answer(auth),))
    assert by_ocsp.verdict is Verdict.ON_HOLD
    (sign,) = world.records(card_dir, Role.SIGN)
    assert world.validate(sign.certificate).verdict is Verdict.ON_HOLD
    # Whoever holds the lost card can still talk to it.
    card_show(card_dir)


def test_dead_holders_certificates_are_revoked(world: World) -> None:
    card_dir = world.card("deceased")
    for role in (Role.AUTH, Role.SIGN):
        (record,) = world.records(card_dir, role)
        result = world.validate(record.certificate)
        assert result.verdict is Verdict.REVOKED
        assert result.reason is x509.ReasonFlags.cessation_of_operation
    assert read_auth(card_dir).serial_number == world.records(card_dir, Role.AUTH)[0].serial
    card_show(card_dir)


# --- child ---------------------------------------------------------------------------------

def test_child_has_no_signing_certificate(world: World) -> None:
    card_dir = world.card("sato-sora-child")
    assert world.records(card_dir, Role.SIGN) == []
    assert world.validate(read_auth(card_dir)).verdict is Verdict.VALID
    assert card_show(card_dir)["signing_certificate_present"] is False


# --- cloned certificate --------------------------------------------------------------------

def test_cloned_certificate_passes_a_serial_check_and_fails_every_chip_check(
        world: World, copy_card: Callable[[str], Path]) -> None:
    card_dir = copy_card("cloned-certificate")
    persona = load_test_persona("cloned-certificate")
    conn = connect(card_dir)
    try:
        client = JPKIClient(conn)
        auth = client.read_certificate(JPKIKey.AUTH)
        # The PIN-less path: the certificate is genuine and good.
        assert world.validate(auth).verdict is Verdict.VALID
        assert not client.has_sign_certificate()
        # The strict path: the card answers like a card (9000, 256 bytes), but the signature
        # over a fresh challenge does not verify under the certified key.
        challenge = b"server challenge 2026-11-23"
        signature = client.sign(JPKIKey.AUTH, challenge, "1111")
        assert len(signature) == 256
        with pytest.raises(InvalidSignature):
            auth.public_key().verify(signature, challenge, padding.PKCS1v15(), hashes.SHA256())
        # The copied 券面 records verify, the chip behind them does not.
        code_b = persona_code_b(persona)
        copied = TextClient(conn, world.anchors()).read(code_b=code_b, authenticate_chip=False)
        assert copied.basic_four is not None and copied.basic_four.name == "吉田\u3000直樹"
        with pytest.raises(TamperedError, match="券面事項入力補助AP key"):
            TextClient(conn, world.anchors()).read(code_b=code_b)
        with pytest.raises(TamperedError, match="INTERNAL AUTHENTICATE"):
            CardInfoClient(conn, world.anchors()).read()
    finally:
        conn.disconnect()
    card_show(card_dir)


# --- long address --------------------------------------------------------------------------

def test_long_address_record_uses_a_long_form_length(world: World) -> None:
    card_dir = world.card("long-address")
    persona = load_test_persona("long-address")
    conn = connect(card_dir)
    try:
        four = TextClient(conn, world.anchors()).read(pin="6708").basic_four
        assert four is not None and four.address == persona.resident.address
        select_ef(conn, EF_ATTRIBUTES)
        head = read_binary(conn, 0, 5)
    finally:
        conn.disconnect()
    assert head[:3] == TAG_ATTRIBUTES.to_bytes(2, "big") + b"\x82"
    assert int.from_bytes(head[3:5], "big") > 127
    card_show(card_dir)


# --- about to expire -----------------------------------------------------------------------

def test_card_about_to_expire_turns_expired_when_the_clock_passes(
        world: World, world_clock: VirtualClock) -> None:
    card_dir = world.card("expiring-soon")
    auth = read_auth(card_dir)
    jst_end = dt.datetime(2026, 12, 20, 23, 59, 59, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    assert auth.not_valid_after_utc == jst_end
    assert world.validate(auth, Policy(require_revocation_info=False)).verdict is Verdict.VALID
    world_clock.freeze(jst_end + dt.timedelta(seconds=1))
    assert world.validate(auth).verdict is Verdict.EXPIRED
    card_show(card_dir)  # an expired card still answers APDUs


# --- persona validation --------------------------------------------------------------------

def _base(name: str = "renewed") -> dict:
    return yaml.safe_load((PERSONAS / f"{name}.yaml").read_text(encoding="utf-8"))


def _with(path: str, value) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        *parents, leaf = path.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return change


@pytest.mark.parametrize(("change", "field", "rule"), [
    (_with("card.kind", "paper"), "card.kind", "must be one of standard, face-auth"),
    (_with("card.genuine", "no"), "card.genuine", "must be true or false"),
    (_with("pins.blocked", ["auth", "pin"]), "pins.blocked", "'pin' is not one of"),
    (_with("pins.blocked", "auth"), "pins.blocked", "must be a list"),
    (_with("history", {"event": "renew"}), "history", "must be a list"),
    (_with("history", [{"event": "marry", "at": "2026-05-01"}]), "history[0].event",
     "must be one of renew, move"),
    (_with("history", [{"event": "renew", "at": "May"}]), "history[0].at",
     "must be a date YYYY-MM-DD"),
    (_with("history", [{"event": "renew", "at": "2023-01-01"}]), "history[0].at",
     "must not be before card.issued"),
    (_with("history", [{"event": "renew", "at": "2027-01-01"}]), "history[0].at",
     "must not be in the future"),
    (_with("history", [{"event": "move", "at": "2026-05-01"}]), "history[0].address",
     "is required for a move"),
    (_with("history", [{"event": "renew", "at": "2026-05-01", "address": "x"}]),
     "history[0].address", "is only for a move"),
    (_with("history", [{"event": "loss", "at": "2026-05-01"}, {"event": "renew",
                                                              "at": "2026-06-01"}]),
     "history[1].event", "renew cannot happen to a lost card"),
    (_with("history", [{"event": "death", "at": "2026-05-01"}, {"event": "loss",
                                                               "at": "2026-06-01"}]),
     "history[1].event", "loss cannot happen to a closed card"),
    (_with("history", [{"event": "renew", "at": "2026-05-01", "when": "now"}]),
     "history[0].when", "is not a field of a history entry"),
])
def test_bad_persona_fields_name_the_field_and_the_rule(change, field: str, rule: str) -> None:
    data = _base()
    change(data)
    with pytest.raises(PersonError) as caught:
        parse_persona(data, today=TEST_TODAY)
    assert caught.value.field == field and rule in caught.value.rule


def test_face_auth_and_counterfeit_rules() -> None:
    face = _base("face-auth")
    face["pins"] = {"auth": "1234"}
    with pytest.raises(PersonError, match="pins: must be absent: a face-auth card has no PIN"):
        parse_persona(face, today=TEST_TODAY)
    fake = _base("cloned-certificate")
    fake["history"] = [{"event": "loss", "at": "2026-05-01"}]
    with pytest.raises(PersonError, match="history: must be empty on a counterfeit"):
        parse_persona(fake, today=TEST_TODAY)
