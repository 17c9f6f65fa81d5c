"""``CardHolderMachine``: a hypothesis state machine whose rules are what happens to a My Number
card in real life, with a model of the card and the PKI that invariants compare with the real
card (through APDUs, via the reader layer) and with the PKI (validator verdicts).

Subclass it, add your application's rules and invariants, and run it with the harness::

    class KioskMachine(CardHolderMachine):
        @rule()
        def holder_borrows_a_book(self):
            pin = self.right_pin("auth")
            admitted = my_kiosk.check_in(self.connection, pin)
            self.presented("auth", pin)
            assert admitted == self.auth_certificate_usable()

    def test_kiosk(mynacard_harness):
        KioskMachine.run(mynacard_harness, settings(max_examples=30))

Time is the harness's virtual clock, frozen for a run at the day after the card's issuance
(or left where the test froze it). The CA publishes its CRLs (into
the directory the revocation server serves) whenever a lifecycle event happens; advancing the
clock does not, so a relying party then holds stale CRLs until ``ca_publishes_crls``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import settings as Settings  # noqa: N812 - the type, not a settings object
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ..cardsim.card import VirtualCard
from ..client.commands import CardCommandError, select_ef
from ..client.jpki import JPKIClient, JPKIKey, digest_info
from ..facts import jpki
from ..facts.pins import AUTH_PIN, SIGN_PASSWORD
from ..iso7816.apdu import CommandAPDU
from ..jpki import lifecycle
from ..jpki.ca import SimulatorPKI
from ..jpki.profile import CA_KINDS
from ..jpki.publish import CRL_VALIDITY, issue_crl
from ..jpki.validate import Verdict
from ..readers.base import CardConnection, CardRemovedError
from ..readers.simulator import SimulatorReader
from .harness import DEFAULT_PERSONA, Harness, PersonaSpec

KEYS = {"auth": JPKIKey.AUTH, "sign": JPKIKey.SIGN}
MAX_TRIES = {"auth": AUTH_PIN.max_tries, "sign": SIGN_PASSWORD.max_tries}
WRONG_PINS = {"auth": st.sampled_from(["0000", "9999", "1111"]),
              "sign": st.sampled_from(["WRONG1", "ZZZ999", "A1B2C3D"])}
_DER = serialization.Encoding.DER
STATUS_VERDICTS = {"good": Verdict.VALID, "hold": Verdict.ON_HOLD, "revoked": Verdict.REVOKED}


@dataclass
class CertificateModel:
    role: str
    serial: int
    kind: str
    generation: int
    not_after: dt.datetime
    status: str = "good"
    """good, hold or revoked (expiry is the clock's business, not a status)."""


@dataclass
class CardModel:
    """What the card and the PKI should be, by the model."""

    pins: dict[str, str]
    tries: dict[str, int]
    state: str = "active"
    """active, lost, found (a lost card that turned up: revoked), dead."""
    current: dict[str, CertificateModel | None] = field(default_factory=dict)
    """The certificates on the card, per role (``sign`` None for a child)."""
    history: list[CertificateModel] = field(default_factory=list)
    """Every certificate the card ever had, current ones included."""
    published_at: dt.datetime | None = None
    published: dict[int, str] = field(default_factory=dict)
    """serial → status in the CRLs the revocation server serves (absent: not listed)."""


class CardHolderMachine(RuleBasedStateMachine):
    """A card holder's life; ``persona`` (a shipped persona's name, a YAML file or a mapping)
    with ``persona_overrides`` says whose card it is."""

    persona: ClassVar[PersonaSpec] = DEFAULT_PERSONA
    persona_overrides: ClassVar[dict[str, Any]] = {}

    def __init__(self, harness: Harness) -> None:
        super().__init__()
        self.harness = harness
        self.clock = harness.clock
        self.card_dir: Path = harness.card(self.persona, **self.persona_overrides)
        self.card_id = harness.card_id(self.card_dir)
        """The card's id in the PKI store (lifecycle events keep it)."""
        persona = harness.persona(self.persona, **self.persona_overrides)
        pins = persona.pins
        # A clock the test froze stays where it was. Otherwise life starts the day after the
        # card was issued, whatever today's date: runs replay identically, and a shipped
        # persona's certificates have not expired yet.
        self._frozen_before = self.clock() if self.clock.frozen else None
        if self._frozen_before is None:
            self.clock.freeze(dt.datetime.combine(persona.issued + dt.timedelta(days=1),
                                                  dt.time(9, 0), dt.UTC))
        self.model = CardModel(pins={"auth": pins.auth, "sign": pins.sign},
                               tries=dict(MAX_TRIES))
        self._card = VirtualCard.open(self.card_dir)
        self.reader = SimulatorReader(f"card holder ({self.card_dir.name})", card=self._card)
        self.connection: CardConnection = self.reader.connect()
        self._load_certificates()
        self._ca_publishes()

    @classmethod
    def run(cls, harness: Harness, settings: Settings | None = None) -> None:
        """Run the machine as a test (hypothesis explores, shrinks and reports)."""
        run_state_machine_as_test(lambda: cls(harness), settings=settings)

    def teardown(self) -> None:
        self.connection.disconnect()
        self._card.close()
        if self._frozen_before is None:
            self.clock.unfreeze()
        else:
            self.clock.freeze(self._frozen_before)

    # -- helpers for subclasses ----------------------------------------------------------------

    @property
    def pki(self) -> SimulatorPKI:
        return self.harness.pki

    def right_pin(self, key: str) -> str:
        return self.model.pins[key]

    def presented(self, key: str, pin: str) -> None:
        """Tell the model a VERIFY of ``pin`` reached the card (your app sent one)."""
        if self.model.tries[key] == 0:
            return
        self.model.tries[key] = (MAX_TRIES[key] if pin == self.model.pins[key]
                                 else self.model.tries[key] - 1)

    def certificate(self, role: str) -> x509.Certificate | None:
        """The certificate the card currently holds for ``role``, from the PKI store."""
        model = self.model.current.get(role)
        if model is None:
            return None
        return self.pki.store.certificate(model.serial, model.kind).certificate

    def expected_verdict(self, role: str) -> Verdict | None:
        """What a relying party validating the card's ``role`` certificate now, with the CRLs
        the revocation server serves, must conclude (None: the card has no such certificate)."""
        model = self.model.current.get(role)
        if model is None:
            return None
        return self._verdict_from_served(model)

    def auth_certificate_usable(self) -> bool:
        """Should an application that checks PIN and certificate accept this card now?"""
        return self.model.tries["auth"] > 0 and self.expected_verdict("auth") is Verdict.VALID

    # -- the card in the holder's hands --------------------------------------------------------

    def _verify(self, key: str, pin: str) -> int:
        client = JPKIClient(self.connection)
        select_ef(client.connection, KEYS[key].value.pin_ef)
        sw = self.connection.transmit(CommandAPDU(0x00, 0x20, 0x00, 0x80, pin.encode())).sw
        expected_before = self.model.tries[key]
        self.presented(key, pin)
        if expected_before == 0:
            assert sw == 0x6984, f"VERIFY on a blocked {key} PIN answered {sw:04X}, not 6984"
        elif pin == self.model.pins[key]:
            assert sw == 0x9000, f"VERIFY of the right {key} PIN answered {sw:04X}"
        else:
            assert sw == 0x63C0 | self.model.tries[key], (
                f"wrong {key} PIN answered {sw:04X}; the model has "
                f"{self.model.tries[key]} tries left")
        return sw

    @rule(key=st.sampled_from(sorted(KEYS)), data=st.data())
    def wrong_pin(self, key: str, data: st.DataObject) -> None:
        """The holder mistypes a PIN."""
        self._verify(key, data.draw(WRONG_PINS[key].filter(lambda p: p != self.model.pins[key])))

    @rule(key=st.sampled_from(sorted(KEYS)))
    def right_pin_entered(self, key: str) -> None:
        """The holder types the right PIN (refused once blocked)."""
        self._verify(key, self.model.pins[key])

    @rule()
    def power_cycle(self) -> None:
        """The reader powers the card off and on: every verified PIN is forgotten."""
        self.connection.disconnect()
        self.connection = self.reader.connect()
        self._assert_signing_needs_pin()

    @rule()
    def removed_mid_transaction(self) -> None:
        """The holder pulls the card out between VERIFY and the signature it was for."""
        if self.model.tries["auth"] > 0:
            self._verify("auth", self.model.pins["auth"])
        select_ef(self.connection, jpki.EF_AUTH_KEY)
        self.reader.remove()
        try:
            self.connection.transmit(CommandAPDU(0x80, 0x2A, 0x00, 0x80,
                                                 digest_info(b"torn"), le=256))
            raise AssertionError("a removed card answered a command")
        except CardRemovedError:
            pass
        self.reader.insert(self._card)
        self.connection = self.reader.connect()
        self._assert_signing_needs_pin()

    def _assert_signing_needs_pin(self) -> None:
        client = JPKIClient(self.connection)
        try:
            client.sign_digest_info(JPKIKey.AUTH, digest_info(b"after reset"))
            raise AssertionError("the card signed with no PIN verified since power-up")
        except CardCommandError as exc:
            assert exc.sw == 0x6982, f"signing without a PIN answered {exc.sw:04X}, not 6982"

    # -- life events at the municipal office ---------------------------------------------------

    def _at_the_office(self, event) -> Any:
        """The card leaves the holder's reader for the event and comes back (PINs forgotten)."""
        self.connection.disconnect()
        self.reader.remove()
        self._card.close()
        try:
            return event(self.card_dir)
        finally:
            self._card = VirtualCard.open(self.card_dir)
            self.reader.insert(self._card)
            self.connection = self.reader.connect()

    def _usable_for_events(self) -> bool:
        return self.model.state == "active" and not self._expired()

    @precondition(lambda self: self._usable_for_events())
    @rule(address=st.sampled_from(["東京都清瀬市中清戸２－１０", "大阪府大阪市北区梅田１－１－１",
                                   "北海道札幌市中央区北一条西２－１"]))
    def move(self, address: str) -> None:
        """転居: the signing certificate is revoked (affiliationChanged) and replaced."""
        self._at_the_office(lambda d: self.harness.move(d, address))
        self._replace({"sign"})

    @precondition(lambda self: self._usable_for_events())
    @rule()
    def renewal(self) -> None:
        """更新: new keys and certificates; the old ones revoked as superseded."""
        self._at_the_office(self.harness.renew)
        self._replace({"auth", "sign"})

    @precondition(lambda self: self.model.state == "active")
    @rule()
    def report_loss(self) -> None:
        """紛失届: both certificates on hold. The card stays in the reader: a finder has it."""
        self.harness.report_loss(self.card_dir)
        self.model.state = "lost"
        self._set_status(self._live(), "hold")
        self._ca_publishes()

    @precondition(lambda self: self.model.state == "lost")
    @rule()
    def card_found(self) -> None:
        """The lost card turns up: its held certificates are revoked, never released."""
        self.harness.report_found(self.card_dir)
        self.model.state = "found"
        self._set_status(self._live(), "revoked")
        self._ca_publishes()

    @precondition(lambda self: self.model.state != "dead")
    @rule()
    def death(self) -> None:
        """死亡: every live certificate revoked."""
        self.harness.report_death(self.card_dir)
        self.model.state = "dead"
        self._set_status(self._live(), "revoked")
        self._ca_publishes()

    # -- time and the CA's publication ---------------------------------------------------------

    @rule(step=st.sampled_from(["an hour", "past CRL nextUpdate", "past certificate expiry"]))
    def advance_clock(self, step: str) -> None:
        now = self.clock()
        if step == "an hour":
            target = now + dt.timedelta(hours=1)
        elif step == "past CRL nextUpdate":
            assert self.model.published_at is not None
            target = max(now, self.model.published_at + CRL_VALIDITY) + dt.timedelta(minutes=1)
        else:
            ends = [c.not_after for c in self.model.current.values() if c is not None]
            target = max(now, min(ends)) + dt.timedelta(days=1)
        self.clock.freeze(target)

    @rule()
    def ca_publishes_crls(self) -> None:
        """The CA publishes its CRLs (as it does on schedule)."""
        self._ca_publishes()

    # -- invariants ----------------------------------------------------------------------------

    @invariant()
    def card_agrees_with_model(self) -> None:
        client = JPKIClient(self.connection)
        for key, jpki_key in KEYS.items():
            assert client.tries_left(jpki_key) == self.model.tries[key], (
                f"{key} PIN: the card has {client.tries_left(jpki_key)} tries left, the model "
                f"{self.model.tries[key]}")
        auth = self.model.current["auth"]
        assert auth is not None
        on_card = client.read_certificate(JPKIKey.AUTH).serial_number
        assert on_card == auth.serial, (
            f"the card holds authentication certificate {on_card:#x}, the model {auth.serial:#x}")

    @invariant()
    def pki_agrees_with_model(self) -> None:
        """Every certificate the card ever had, validated now against freshly issued CRLs."""
        now = self.clock()
        crls = [issue_crl(self.pki, kind, ca.generation, now).public_bytes(_DER)
                for kind in CA_KINDS.values() for ca in self.pki.generations(kind)]
        validator = self.harness.validator(crls)
        for model in self.model.history:
            cert = self.pki.store.certificate(model.serial, model.kind).certificate
            verdict = validator.validate(cert).verdict
            expected = (Verdict.EXPIRED if now > model.not_after
                        else STATUS_VERDICTS[model.status])
            assert verdict is expected, (
                f"{model.role} certificate {model.serial:#x} ({model.status} by the model): the "
                f"validator says {verdict.value}, the model {expected.value}")

    # -- the model's bookkeeping ---------------------------------------------------------------

    def _expired(self) -> bool:
        return any(self.clock() > c.not_after for c in self.model.current.values()
                   if c is not None)

    def _live(self) -> list[CertificateModel]:
        # As the PKI store sees it: a certificate past its notAfter is still live until it is
        # revoked (validators say "expired" first anyway).
        return [c for c in self.model.history if c.status != "revoked"]

    @staticmethod
    def _set_status(models: list[CertificateModel], status: str) -> None:
        for model in models:
            model.status = status

    def _load_certificates(self) -> None:
        """The card's current certificates: its live ones in the PKI store (after issuance,
        renewal or a move there is exactly one per role)."""
        by_serial = {c.serial: c for c in self.model.history}
        current: dict[str, CertificateModel | None] = dict.fromkeys(KEYS)
        for record in lifecycle.live_certificates(self.pki, self.card_id):
            model = by_serial.get(record.serial)
            if model is None:
                model = CertificateModel(record.role.value, record.serial, record.kind,
                                         record.generation, record.certificate.not_valid_after_utc)
                self.model.history.append(model)
            assert current[model.role] is None, f"two live {model.role} certificates"
            current[model.role] = model
        self.model.current = current

    def _replace(self, roles: set[str]) -> None:
        for role in roles:
            old = self.model.current.get(role)
            if old is not None:
                old.status = "revoked"
        self._load_certificates()
        self._ca_publishes()

    def _ca_publishes(self) -> None:
        self.harness.publish()
        self.model.published_at = self.clock().replace(microsecond=0)
        self.model.published = {c.serial: c.status for c in self.model.history
                                if c.status != "good"}

    def _verdict_from_served(self, model: CertificateModel) -> Verdict:
        now = self.clock()
        if now > model.not_after:
            return Verdict.EXPIRED
        assert self.model.published_at is not None
        if now > self.model.published_at + CRL_VALIDITY:
            return Verdict.STALE_REVOCATION_INFO
        return STATUS_VERDICTS[self.model.published.get(model.serial, "good")]
