"""A hypothesis state machine over the library store, on SQLite and on PostgreSQL.

The model is plain dicts (members, items, loans, holds) applying the same rules; after every
step the store must equal the model, including after the store is reopened and after a
process is killed (SIGKILL) in the middle of a write transaction: its change must vanish.

Card events of the toolkit's card-holder machine (renewal, loss, found, reissue) are modelled
as what they do to the card's link: each card presents the link key of its current
certificate generation, and its certificate's state decides the recipes' verdict. Circulation
goes through ``Library`` (the tap, then the store) with checks that answer from that model: a
renewed card's new key matches no link until strict enrolment moves the membership; a lost
card (on hold) and a found one (revoked) are refused before the store is asked.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy import insert

from mynacard.apps.common.db import naive_utc
from mynacard.apps.library.model import CirculationRefused, LoanRules, Refusal
from mynacard.apps.library.service import Library
from mynacard.apps.library.store import LibraryStore, loan_table
from mynacard.errors import MynacardError

T0 = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
RULES = LoanRules(max_loans=3, max_av_loans=1, max_holds=2)   # small, so limits are reached
BARCODES = ["B1", "B2", "B3", "AV1", "AV2"]
CARDS = ["c1", "c2", "c3"]


class CardRefused(MynacardError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Identity:
    link_key: str
    not_after: dt.datetime
    card_serial: str


@dataclass
class Card:
    generation: int = 1          # bumped by a renewal or a reissue: a new certificate serial
    state: str = "active"        # active | lost (on hold) | revoked (found: superseded)

    def key(self, name: str) -> str:
        return f"{name}:{self.generation}"


@dataclass
class ModelChecks:
    """The recipes' verdicts as the card-holder model says; the 'connection' is a card name."""

    cards: dict[str, Card]

    def tap(self, connection: str) -> Identity:
        card = self.cards[connection]
        if card.state == "lost":
            raise CardRefused("on-hold")
        if card.state == "revoked":
            raise CardRefused("revoked")
        return Identity(card.key(connection), T0 + 900 * DAY, connection)

    def enrol(self, connection: str, pin: str) -> Identity:
        return self.tap(connection)

    def not_enrolled(self, message: str) -> CardRefused:
        return CardRefused("not-enrolled")

    def not_genuine(self, message: str) -> CardRefused:
        return CardRefused("not-genuine")


def _write_then_hang(url: str, user_number: str, barcode: str, ready) -> None:  # noqa: ANN001
    """Start a write transaction, insert a loan, say so, and wait to be killed."""
    store = LibraryStore(url, RULES)
    with store.db.engine.begin() as db:
        db.execute(insert(loan_table).values(barcode=barcode, user_number=user_number,
                                             issued_at=naive_utc(T0), due_at=naive_utc(T0),
                                             renewals=0))
        ready.set()
        signal.pause()


class LibraryMachine(RuleBasedStateMachine):
    new_url: Callable[[], str]

    def __init__(self) -> None:
        super().__init__()
        self.url = self.new_url()
        self.store = LibraryStore(self.url, RULES)
        self.now = T0
        self.cards = {name: Card() for name in CARDS}
        self.library = Library(self.store, ModelChecks(self.cards), lambda: self.now)
        self.links: dict[str, str] = {}                   # active link key → user number
        self.linked: set[str] = set()                     # every key ever linked
        self.owner: dict[str, str] = {}                   # card → its member (last linked)
        self.numbers: set[str] = set()                    # every member
        self.items: dict[str, str] = {}                   # barcode → type
        self.loans: dict[str, tuple[str, dt.datetime, int]] = {}   # barcode → (member, due, n)
        self.holds: dict[str, list[str]] = {}             # barcode → queue of members

    def teardown(self) -> None:
        self.store.close()

    def expect(self, action: Callable[[], object], refusal: Refusal | str | None) -> bool:
        try:
            action()
        except (CirculationRefused, CardRefused) as refused:
            assert refused.reason == refusal, (refused.reason, refusal)
            return False
        assert refusal is None, f"expected {refusal}"
        return True

    def tap(self, card: str) -> tuple[str | None, str | None]:
        """The member the tap finds, or the card refusal the model predicts."""
        state = self.cards[card].state
        if state != "active":
            return None, {"lost": "on-hold", "revoked": "revoked"}[state]
        number = self.links.get(self.cards[card].key(card))
        return (number, None) if number is not None else (None, "not-enrolled")

    def _late(self, number: str, days: int) -> bool:
        return any(m == number and (self.now - due).days >= days
                   for m, due, _ in self.loans.values())

    @initialize()
    def open_the_counter(self) -> None:
        """Every card enrolled and two items on the shelf, so the card events have loans
        and links to act on from the first step."""
        for card in CARDS:
            self.enrol(card, move=False)
        for barcode in ("B1", "AV1"):
            self.add_item(barcode)

    @rule(card=st.sampled_from(CARDS), move=st.booleans())
    def enrol(self, card: str, move: bool) -> None:
        """Strict enrolment; ``move``: of the card's member (after a renewal or a reissue)."""
        key = self.cards[card].key(card)
        member = self.owner.get(card) if move else None
        _, refusal = self.tap(card)
        if refusal == "not-enrolled":
            refusal = None
        if refusal is None and key in self.links and member not in (None, self.links[key]):
            return                        # the store refuses linking a card to two members
        if not self.expect(lambda: self.library.enrol(card, "1234", user_number=member),
                           refusal):
            return
        link = self.store.active_link(key)
        assert link is not None
        if key in self.links:
            assert link.user_number == self.links[key]
            return
        if member is None:
            assert link.user_number not in self.numbers
            self.numbers.add(link.user_number)
        else:
            assert link.user_number == member
            self.links = {k: n for k, n in self.links.items() if n != member}
        self.links[key] = link.user_number
        self.linked.add(key)
        self.owner[card] = link.user_number

    @rule(card=st.sampled_from(CARDS))
    def renew_certificate(self, card: str) -> None:
        if self.cards[card].state == "active":
            self.cards[card].generation += 1

    @rule(card=st.sampled_from(CARDS))
    def lose(self, card: str) -> None:
        if self.cards[card].state == "active":
            self.cards[card].state = "lost"

    @rule(card=st.sampled_from(CARDS))
    def found(self, card: str) -> None:
        if self.cards[card].state == "lost":
            self.cards[card].state = "revoked"

    @rule(card=st.sampled_from(CARDS))
    def reissue(self, card: str) -> None:
        if self.cards[card].state != "active":
            self.cards[card] = Card(self.cards[card].generation + 1)

    @rule(barcode=st.sampled_from(BARCODES))
    def add_item(self, barcode: str) -> None:
        if barcode not in self.items:
            kind = "av" if barcode.startswith("AV") else "book"
            self.store.add_item(barcode, barcode, kind)
            self.items[barcode] = kind

    @rule(card=st.sampled_from(CARDS), barcode=st.sampled_from(BARCODES))
    def lend(self, card: str, barcode: str) -> None:
        if barcode not in self.items:
            return
        number, card_refusal = self.tap(card)
        if number is None:
            self.expect(lambda: self.library.lend(card, barcode), card_refusal)
            return
        mine = [b for b, (m, _, _) in self.loans.items() if m == number]
        queue = self.holds.get(barcode, [])
        if barcode in self.loans:
            refusal = (Refusal.ALREADY_BORROWED if self.loans[barcode][0] == number
                       else Refusal.ON_LOAN)
        elif self._late(number, RULES.long_overdue_days):
            refusal = Refusal.LONG_OVERDUE
        elif len(mine) >= RULES.max_loans:
            refusal = Refusal.TOO_MANY_LOANS
        elif self.items[barcode] == "av" and sum(self.items[b] == "av" for b in mine) >= 1:
            refusal = Refusal.TOO_MANY_AV
        elif queue and queue[0] != number:
            refusal = Refusal.HELD_FOR_ANOTHER
        else:
            refusal = None
        if self.expect(lambda: self.library.lend(card, barcode), refusal):
            self.loans[barcode] = (number, self.now + RULES.loan_days * DAY, 0)
            if number in queue:
                queue.remove(number)

    @rule(barcode=st.sampled_from(BARCODES))
    def give_back(self, barcode: str) -> None:
        if barcode not in self.items:
            return
        refusal = None if barcode in self.loans else Refusal.NOT_ON_LOAN
        if self.expect(lambda: self.store.give_back(barcode), refusal):
            del self.loans[barcode]

    @rule(card=st.sampled_from(CARDS), barcode=st.sampled_from(BARCODES))
    def renew(self, card: str, barcode: str) -> None:
        if barcode not in self.items:
            return
        number, card_refusal = self.tap(card)
        if number is None:
            self.expect(lambda: self.library.renew(card, barcode), card_refusal)
            return
        loan = self.loans.get(barcode)
        if loan is None:
            refusal = Refusal.NOT_ON_LOAN
        elif loan[0] != number:
            refusal = Refusal.NOT_YOUR_LOAN
        elif loan[2] >= RULES.max_renewals:
            refusal = Refusal.RENEWAL_LIMIT
        elif self.holds.get(barcode):
            refusal = Refusal.RENEWAL_HELD
        elif any(m == number and due < self.now for m, due, _ in self.loans.values()):
            refusal = Refusal.RENEWAL_OVERDUE
        else:
            refusal = None
        if self.expect(lambda: self.library.renew(card, barcode), refusal):
            self.loans[barcode] = (number, self.now + RULES.renewal_days * DAY, loan[2] + 1)

    @rule(card=st.sampled_from(CARDS), barcode=st.sampled_from(BARCODES))
    def hold(self, card: str, barcode: str) -> None:
        if barcode not in self.items:
            return
        number, card_refusal = self.tap(card)
        if number is None:
            self.expect(lambda: self.library.hold(card, barcode), card_refusal)
            return
        held = [b for b, queue in self.holds.items() if number in queue]
        if barcode in self.loans and self.loans[barcode][0] == number:
            refusal = Refusal.ALREADY_BORROWED
        elif self._late(number, RULES.long_overdue_days):
            refusal = Refusal.LONG_OVERDUE
        elif barcode in held:
            refusal = Refusal.ALREADY_HELD
        elif len(held) >= RULES.max_holds:
            refusal = Refusal.TOO_MANY_HOLDS
        else:
            refusal = None
        if self.expect(lambda: self.library.hold(card, barcode), refusal):
            self.holds.setdefault(barcode, []).append(number)

    @rule(days=st.sampled_from([1, 7, 14, 15]))
    def advance(self, days: int) -> None:
        self.now += days * DAY

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = LibraryStore(self.url, RULES)
        self.library.store = self.store

    @rule(barcode=st.sampled_from(BARCODES))
    def kill_mid_transaction(self, barcode: str) -> None:
        if not self.numbers or barcode not in self.items or barcode in self.loans:
            return
        context = multiprocessing.get_context("fork")
        ready = context.Event()
        writer = context.Process(target=_write_then_hang,
                                 args=(self.url, next(iter(self.numbers)), barcode,
                                       ready))
        writer.start()
        assert ready.wait(30), "the writer never reached its transaction"
        os.kill(writer.pid, signal.SIGKILL)
        writer.join()
        self.reopen()

    @invariant()
    def store_equals_model(self) -> None:
        assert sorted(self.store.member_numbers()) == sorted(self.numbers)
        for key in self.linked:           # a moved membership leaves its old link unmatched
            link = self.store.active_link(key)
            assert (link.user_number if link else None) == self.links.get(key), key
        for number in self.numbers:
            member = self.store.member(number)
            assert {(loan.barcode, loan.due_at, loan.renewals) for loan in member.loans} == {
                (b, due, n) for b, (m, due, n) in self.loans.items() if m == number}
            assert {hold.barcode for hold in member.holds} == {
                b for b, queue in self.holds.items() if number in queue}
        assert {item.barcode: (loan is not None, holds) for item, loan, holds
                in self.store.items()} == {
            b: (b in self.loans, len(self.holds.get(b, []))) for b in self.items}


def test_store_equals_model(new_db_url: Callable[[], str]) -> None:
    machine = type("Machine", (LibraryMachine,), {"new_url": staticmethod(new_db_url)})
    machine.TestCase.settings = settings(
        max_examples=15, stateful_step_count=30, derandomize=True, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    machine.TestCase().runTest()
