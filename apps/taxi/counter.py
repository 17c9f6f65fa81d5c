"""The city counter of マイタク: a resident registers, and leaves with the applet on the card.

``Counter.enrol`` runs, in this order, so nothing is written before every check passed:

1. the eligibility decision from the city's records (``eligibility.decide``): an ineligible
   resident is refused before any PIN try is spent;
2. the identity check, strict (``client.recipes.enrol_strict``: certificate chain, validity
   and revocation — a lost card on hold is refused here —, the 利用者証明用 PIN, a challenge
   signature, the genuine chip), then the card's 基本4情報 (read with the same PIN, never the
   My Number) must name the resident of the records: name and birth date. A 顔認証 card has
   no PIN (the recipes refuse ``NO_PIN``): staff check the face and an identity document and
   take the staff path — the card is still checked PIN-less (``tap_check``: certificate,
   revocation, genuine chip) and the registration is flagged with the document's kind;
3. the card must not hold an active registration already;
4. applet install over the issuer channel and personalisation with the city-signed record;
5. registration in the ledger (a new card of the same resident stops the old one).

A card personalised but not registered (the ledger unreachable at step 5) has no ride
counted: the ledger rejects its receipts as an unknown rider.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...client import recipes
from ...client.applets import CardManager
from ...client.commands import CardCommandError
from ...client.records import CardDataError
from ...client.text import TextClient
from ...clock import Clock, system_clock
from ...errors import MynacardError
from ...facts import taxi
from ...readers.base import CardConnection, ReaderError
from .card import TaxiCard, install
from .eligibility import Decision, RecordsError, ResidentRecord, decide
from .keys import CityKeys
from .ledger import Ledger
from .terminal import JST

DEFAULT_YEARLY_QUOTA = 70
"""前橋市's yearly quota by 2022 (120 in 2016): municipal-apps.md §3.1."""
DAILY_QUOTA, SOLO_CAP, SHARED_CAP = 2, 1000, 500


class CounterError(MynacardError):
    """The counter cannot enrol this card (identity mismatch, card already registered, card
    write failed); the message says what staff should do."""


@dataclass(frozen=True)
class IdentityChecks:
    """How the counter checks a card: trusted CA certificates and revocation method
    (``config``), the CV roots proving the chip genuine, this counter's terminal id."""

    config: recipes.RevocationConfig
    cv_anchors: dict[Any, Any]
    terminal_id: str = "taxi-counter"


@dataclass(frozen=True)
class Enrolment:
    rider_id: str
    """Hex of the opaque 8-byte rider id written on the card."""
    resident: str
    category: int
    rule: str
    valid_from: dt.date
    valid_to: dt.date
    yearly_quota: int
    link_key: str
    staff_document: str | None
    """Set on the staff path (顔認証 card): the kind of document staff checked."""


class Counter:
    def __init__(self, city: CityKeys, ledger: Ledger, records: Mapping[str, ResidentRecord],
                 checks: IdentityChecks, issuer_master: bytes, municipality: str, *,
                 clock: Clock = system_clock,
                 yearly_quota: int = DEFAULT_YEARLY_QUOTA) -> None:
        if len(municipality) != 5 or not municipality.isdigit():
            raise CounterError("the municipality code must be 5 digits")
        self.city, self.ledger, self.records = city, ledger, records
        self.checks, self.issuer_master = checks, issuer_master
        self.municipality, self.clock, self.yearly_quota = municipality, clock, yearly_quota

    def enrol(self, connection: CardConnection, resident: str, *, pin: str | None = None,
              staff_document: str | None = None) -> Enrolment:
        """Register ``resident`` on the card: strictly with ``pin``, or on the staff path
        with ``staff_document`` (the kind staff checked, e.g. 運転免許証; never its number)."""
        if (pin is None) == (staff_document is None):
            raise CounterError("give the PIN, or the staff path's document for a 顔認証 card")
        if staff_document is not None and not staff_document.strip():
            raise CounterError("say which identity document staff checked (e.g. 運転免許証)")
        record = self.records.get(resident)
        if record is None:
            raise RecordsError(f"no resident {resident} in the city's records")
        now = self.clock()
        decision = decide(record, now.astimezone(JST).date())
        if pin is not None:
            identity = self._strict(connection, pin, record)
            document = None
        else:
            identity = self._staffed(connection)
            document = staff_document.strip() if staff_document else None
        active = self.ledger.riders_by_link().get(identity.link_key)
        if active is not None:
            raise CounterError(f"this card is already registered (rider {active}); a new "
                               "registration needs a new card or the old one stopped")
        rider_id = secrets.token_bytes(taxi.RIDER_ID_LENGTH)
        self._personalise(connection, rider_id, decision)
        self.ledger.register(rider_id, resident, decision.category, self.yearly_quota, now,
                             link_key=identity.link_key,
                             enrolment=f"staff: {document}" if document else "pin")
        return Enrolment(rider_id.hex(), resident, decision.category, decision.rule,
                         decision.valid_from, decision.valid_to, self.yearly_quota,
                         identity.link_key, document)

    def _strict(self, connection: CardConnection, pin: str,
                record: ResidentRecord) -> recipes.CardIdentity:
        try:
            identity = recipes.enrol_strict(connection, pin, self.checks.config,
                                            terminal_id=self.checks.terminal_id,
                                            cv_anchors=self.checks.cv_anchors)
        except recipes.Refused as refused:
            if refused.reason is not recipes.RefusalReason.NO_PIN:
                raise
            raise recipes.Refused(refused.reason, f"{refused.message} Staff path: check the "
                                  "face and an identity document, then --staff-document KIND."
                                  ) from None
        try:
            # The chip was proven genuine by enrol_strict; the PIN opens the 4 facts.
            four = TextClient(connection, self.checks.cv_anchors).read(
                pin=pin, read_my_number=False, authenticate_chip=False).basic_four
        except (CardCommandError, CardDataError, ReaderError) as exc:
            raise CounterError(f"cannot read the card's 基本4情報: {exc}") from None
        if four is None or (four.name, four.birth_date) != (record.name, record.birth_date):
            raise CounterError(f"the card holder is not resident {record.resident} of the "
                               "records (name or birth date differ): check the records")
        return identity

    def _staffed(self, connection: CardConnection) -> recipes.CardIdentity:
        return recipes.tap_check(connection, self.checks.config,
                                 cv_anchors=self.checks.cv_anchors)

    def _personalise(self, connection: CardConnection, rider_id: bytes,
                     decision: Decision) -> None:
        record = taxi.Eligibility(self.municipality, rider_id, decision.category,
                                  decision.valid_from.strftime("%Y%m%d"),
                                  decision.valid_to.strftime("%Y%m%d"), self.yearly_quota,
                                  DAILY_QUOTA, SOLO_CAP, SHARED_CAP)
        admin_key = self.city.admin_key(rider_id)
        try:
            manager = CardManager(connection, self.issuer_master)
            manager.open()
            install(manager, admin_key, self.city.terminal_master,
                    self.city.receipt_key(rider_id))
            taxi_card = TaxiCard(connection)
            taxi_card.select()
            taxi_card.personalise(self.city.sign(record), admin_key)
        except (CardCommandError, ReaderError, taxi.LayoutError) as exc:
            raise CounterError(f"writing マイタク on the card failed: {exc}") from None
