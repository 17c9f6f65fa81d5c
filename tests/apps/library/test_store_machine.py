"""A hypothesis state machine over the library store, on SQLite and on PostgreSQL.

The model is plain dicts (members, items, loans, holds) applying the same rules; after every
step the store must equal the model, including after the store is reopened and after a
process is killed (SIGKILL) in the middle of a write transaction: its change must vanish.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import signal
from collections.abc import Callable

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from sqlalchemy import insert

from mynacard.apps.common.db import naive_utc
from mynacard.apps.library.model import CirculationRefused, EnrolMethod, LoanRules, Refusal
from mynacard.apps.library.store import LibraryStore, loan_table

T0 = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
RULES = LoanRules(max_loans=3, max_av_loans=1, max_holds=2)   # small, so limits are reached
BARCODES = ["B1", "B2", "B3", "AV1", "AV2"]
KEYS = ["k:1", "k:2", "k:3"]


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
        self.members: dict[str, str] = {}                 # link key → user number
        self.items: dict[str, str] = {}                   # barcode → type
        self.loans: dict[str, tuple[str, dt.datetime, int]] = {}   # barcode → (member, due, n)
        self.holds: dict[str, list[str]] = {}             # barcode → queue of members

    def teardown(self) -> None:
        self.store.close()

    def expect(self, action: Callable[[], object], refusal: Refusal | None) -> bool:
        try:
            action()
        except CirculationRefused as refused:
            assert refused.reason is refusal, (refused.reason, refusal)
            return False
        assert refusal is None, f"expected {refusal}"
        return True

    def _late(self, number: str, days: int) -> bool:
        return any(m == number and (self.now - due).days >= days
                   for m, due, _ in self.loans.values())

    @rule(key=st.sampled_from(KEYS))
    def enrol(self, key: str) -> None:
        link = self.store.link(key, T0 + 900 * DAY, self.now, method=EnrolMethod.PIN)
        assert self.members.setdefault(key, link.user_number) == link.user_number

    @rule(barcode=st.sampled_from(BARCODES))
    def add_item(self, barcode: str) -> None:
        if barcode not in self.items:
            kind = "av" if barcode.startswith("AV") else "book"
            self.store.add_item(barcode, barcode, kind)
            self.items[barcode] = kind

    @rule(key=st.sampled_from(KEYS), barcode=st.sampled_from(BARCODES))
    def lend(self, key: str, barcode: str) -> None:
        if key not in self.members or barcode not in self.items:
            return
        number = self.members[key]
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
        if self.expect(lambda: self.store.lend(number, barcode, self.now), refusal):
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

    @rule(key=st.sampled_from(KEYS), barcode=st.sampled_from(BARCODES))
    def renew(self, key: str, barcode: str) -> None:
        if key not in self.members or barcode not in self.items:
            return
        number = self.members[key]
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
        if self.expect(lambda: self.store.renew(number, barcode, self.now), refusal):
            self.loans[barcode] = (number, self.now + RULES.renewal_days * DAY, loan[2] + 1)

    @rule(key=st.sampled_from(KEYS), barcode=st.sampled_from(BARCODES))
    def hold(self, key: str, barcode: str) -> None:
        if key not in self.members or barcode not in self.items:
            return
        number = self.members[key]
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
        if self.expect(lambda: self.store.hold(number, barcode, self.now), refusal):
            self.holds.setdefault(barcode, []).append(number)

    @rule(days=st.sampled_from([1, 7, 14, 15]))
    def advance(self, days: int) -> None:
        self.now += days * DAY

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = LibraryStore(self.url, RULES)

    @rule(barcode=st.sampled_from(BARCODES))
    def kill_mid_transaction(self, barcode: str) -> None:
        if not self.members or barcode not in self.items or barcode in self.loans:
            return
        context = multiprocessing.get_context("fork")
        ready = context.Event()
        writer = context.Process(target=_write_then_hang,
                                 args=(self.url, next(iter(self.members.values())), barcode,
                                       ready))
        writer.start()
        assert ready.wait(30), "the writer never reached its transaction"
        os.kill(writer.pid, signal.SIGKILL)
        writer.join()
        self.reopen()

    @invariant()
    def store_equals_model(self) -> None:
        by_number = {number: key for key, number in self.members.items()}
        assert sorted(self.store.member_numbers()) == sorted(by_number)
        for number in by_number:
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
        max_examples=12, stateful_step_count=20, derandomize=True, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    machine.TestCase().runTest()
