"""The shelter desk: one device's roster, the card paths and the clock, bound together.

The default path reads the 4 facts with 照合番号B (``card.read_code_b``) and never the My
Number. A :class:`DisasterMode` (a municipality running the shelter under its 災害対策 duties,
with the legal basis named) is the only way the PIN path also reads the number, which the
roster then keeps in its own table, out of every export and bundle.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ...clock import Clock, system_clock
from ...readers.base import CardConnection
from . import card
from .model import CheckInResult, Facts, Person, ShelterError
from .store import RosterStore


@dataclass(frozen=True, slots=True)
class DisasterMode:
    """Configured only by a municipality: ``basis`` names the law or 条例 (e.g. 番号法
    第9条 別表 災害対策 被災者台帳); without it nothing reads the My Number."""

    basis: str

    def __post_init__(self) -> None:
        if not self.basis.strip():
            raise ShelterError("municipal disaster mode needs its legal basis (--basis)")


class ShelterDesk:
    """One reception desk of one shelter."""

    def __init__(self, store: RosterStore, shelter_id: str, anchors: dict[Any, Any], *,
                 clock: Clock = system_clock, disaster: DisasterMode | None = None,
                 taps: card.TapChecks | None = None) -> None:
        self.store = store
        self.shelter_id = shelter_id
        self.anchors = anchors
        self.clock = clock
        self.disaster = disaster
        self.taps = taps
        self.guard = card.CodeBGuard()

    def today(self) -> dt.date:
        return self.clock().astimezone(dt.timezone(dt.timedelta(hours=9))).date()

    def code_b_from_face(self, era: str, year: int, month: int, day: int, expiry_year: int,
                         security_code: str) -> str:
        return card.code_b_from_face(era, year, month, day, expiry_year, security_code,
                                     self.today())

    def read_code_b(self, connection: CardConnection, code_b: str) -> Facts:
        """Validated locally, guarded against blind retries, then read from the card."""
        code = card.check_code_b(code_b, self.today())
        self.guard.allow(code)
        try:
            facts = card.read_code_b(connection, code, self.anchors)
        except card.CardRefused as refused:
            if refused.reason == "wrong-code-b":
                self.guard.failed_with(code)
            raise
        self.guard.next_card()
        return facts

    def read_pin(self, connection: CardConnection, pin: str) -> tuple[Facts, str | None]:
        """The PIN path; in disaster mode also the My Number (returned for ``check_in``)."""
        if self.disaster is None:
            return card.read_pin(connection, pin, self.anchors), None
        return card.read_with_my_number(connection, pin, self.anchors)

    def tap(self, connection: CardConnection) -> Person:
        if self.taps is None:
            raise ShelterError("the tap path is not configured (give the CA certificates)")
        person = self.store.linked_person(self.taps.tap(connection))
        if person is None:
            raise card.CardRefused("not-enrolled", "このカードは登録されていません: 照合番号Bで"
                                   "受付してください (not enrolled: use the card face).")
        return person

    def enrol_for_tap(self, connection: CardConnection, pin: str, person_id: str) -> None:
        """First use with the PIN (§38の4), so later visits need only a tap."""
        if self.taps is None:
            raise ShelterError("the tap path is not configured (give the CA certificates)")
        self.store.person(person_id)
        self.store.link(self.taps.enrol(connection, pin), person_id, self.clock())

    def check_in(self, facts: Facts, *, household_id: str | None = None, name_kana: str = "",
                 address_current: str = "", needs: tuple[str, ...] = (),
                 consent: tuple[str, ...] = (), my_number: str | None = None,
                 staff: str = "") -> CheckInResult:
        now = self.clock()
        person = self.store.register(facts, self.shelter_id, now, household_id=household_id,
                                     name_kana=name_kana, address_current=address_current,
                                     needs=needs, consent=consent)
        if my_number is not None:
            if self.disaster is None:
                raise ShelterError("the My Number may be kept only in municipal disaster mode")
            self.store.keep_my_number(person.id, my_number, self.disaster.basis, now)
        return self.store.check_in(person.id, self.shelter_id, now, staff)

    def check_in_person(self, person_id: str, staff: str = "") -> CheckInResult:
        return self.store.check_in(person_id, self.shelter_id, self.clock(), staff)

    def check_out(self, person_id: str, staff: str = "") -> None:
        self.store.check_out(person_id, self.shelter_id, self.clock(), staff)
