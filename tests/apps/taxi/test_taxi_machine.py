"""A hypothesis state machine over マイタク: riders, rides, tears, syncs, deny-list pushes and
clock changes, against a small model.

Three enrolled cards (yearly quota 3, 2 a day) ride in one offline terminal; the city ledger
(SQLite) receives the terminal's queue in any order, any number of times. A tear cuts the
card's power at the 1st, 2nd or 3rd non-volatile write of its DEBIT (the journal, the
instance file, the journal's removal); the card itself, read afterwards, says whether the
debit committed, and the model then expects the terminal to file that receipt at the card's
next tap. After every step:

* the ledger holds exactly the model's rides (rider, sequence, subsidy): none lost, none twice;
* the terminal's queue (and which of it is synced) equals the model's;
* no rider has more than 2 rides on a day or more than the yearly quota in the ledger, and
  each card's counters equal the model's after every ride;
* every subsidy is the rule's (alone: half the fare up to ¥1,000; shared: ¥500 each, never
  above an equal share of the fare) and a ride's subsidies never exceed its fare.
"""

from __future__ import annotations

import datetime as dt
import itertools
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from conftest import NOW, TERMINAL_ID
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy import select

from mynacard.apps.taxi.card import Reason, Refusal, TaxiCard
from mynacard.apps.taxi.keys import CityKeys
from mynacard.apps.taxi.ledger import Ledger, StopReason, ride_datetime, ride_table
from mynacard.apps.taxi.terminal import Terminal, TerminalConfig, ride_time
from mynacard.cardsim.card import VirtualCard
from mynacard.cardsim.freespace import PowerLoss
from mynacard.clock import VirtualClock
from mynacard.facts import taxi
from mynacard.iso7816.apdu import CommandAPDU, ResponseAPDU
from mynacard.readers.base import CardRemovedError
from mynacard.readers.simulator import SimulatorReader

RIDERS = [b"R0000001", b"R0000002", b"R0000003"]
QUOTA, DAILY = 3, 2
COMPANY = "前橋タクシー"
FARES = [700, 1000, 1500, 2500, 3000]
CLOCK_STEPS = [dt.timedelta(minutes=10), dt.timedelta(hours=3), dt.timedelta(days=1),
               dt.timedelta(days=3), dt.timedelta(days=8)]   # 8 days: the deny list goes stale
MAX_DENY_AGE = dt.timedelta(days=7)


def rule_subsidy(fare: int, riders: int) -> int:
    """The subsidy rule written out again, independently of ``facts.taxi.subsidy``."""
    if riders == 1:
        return min(fare // 2, 1000)
    return min(500, fare // riders)


class Torn:
    """A connection whose card loses power at the ``position``-th write of its DEBIT."""

    def __init__(self, inner, card: VirtualCard, position: int) -> None:
        self.inner, self.card, self.position = inner, card, position
        self.dead = False

    def transmit(self, command: CommandAPDU) -> ResponseAPDU:
        if self.dead:
            raise CardRemovedError("the card was pulled out")
        if command.ins == taxi.INS_DEBIT:
            self.card.freespace.inject_power_loss(self.position)
        try:
            return self.inner.transmit(command)
        except PowerLoss:
            # What reached the card's memory stays; the card is gone from the reader.
            self.dead = True
            self.card.store.close()
            raise CardRemovedError("card pulled out in the middle of its DEBIT") from None


@dataclass
class CardModel:
    times: list[bytes] = field(default_factory=list)   # committed rides, in order
    pending: taxi.Receipt | None = None                # committed, not yet filed (torn)

    def rides_on(self, day: bytes) -> int:
        return sum(1 for t in self.times if t[:8] == day)


def card_state(image: Path) -> tuple[taxi.Counters, list[taxi.Receipt]]:
    card = VirtualCard.open(image, sync=False)
    try:
        taxi_card = TaxiCard(SimulatorReader(card=card).connect())
        taxi_card.select()
        return taxi_card.counters(), taxi_card.log()
    finally:
        card.close()


class TaxiMachine(RuleBasedStateMachine):
    templates: dict[bytes, Path]
    workdir: Path
    city: CityKeys
    config: TerminalConfig
    examples: itertools.count

    @initialize()
    def start(self) -> None:
        here = self.workdir / f"example-{next(self.examples)}"
        here.mkdir()
        self.images = {r: Path(shutil.copytree(t, here / r.decode(), symlinks=True))
                       for r, t in self.templates.items()}
        self.clock = VirtualClock(NOW)
        self.terminal = Terminal(here / "terminal.db", self.config, clock=self.clock,
                                 max_deny_age=MAX_DENY_AGE)
        self.ledger = Ledger(here / "ledger.db", self.city)
        for n, rider in enumerate(RIDERS, 1):
            self.ledger.register(rider, f"resident-{n}", 1, QUOTA, NOW - dt.timedelta(days=30))
        self.terminal.install_deny_list([], NOW)
        self.deny_issued = NOW
        self.pushed: set[str] = set()
        self.stopped: dict[str, dt.datetime] = {}
        self.cards = {r.hex(): CardModel() for r in RIDERS}
        self.queued: dict[tuple[str, int], tuple[taxi.Receipt, bool]] = {}
        self.counted: dict[tuple[str, int], int] = {}

    def teardown(self) -> None:
        if hasattr(self, "terminal"):
            self.terminal.close()
            self.ledger.close()

    # -- rides -------------------------------------------------------------------------------

    @rule(riders=st.lists(st.sampled_from(RIDERS), min_size=1, max_size=3, unique=True),
          fare=st.sampled_from(FARES),
          tear=st.none() | st.tuples(st.integers(0, 2), st.integers(1, 3)))
    def ride(self, riders: list[bytes], fare: int,
             tear: tuple[int, int] | None) -> None:
        now = self.clock()
        cards, connections = [], []
        for index, rider in enumerate(riders):
            card = VirtualCard.open(self.images[rider], sync=False)
            connection = SimulatorReader(card=card).connect()
            if tear is not None and tear[0] == index:
                connection = Torn(connection, card, tear[1])
            cards.append(card)
            connections.append(connection)
        try:
            if now - self.deny_issued > MAX_DENY_AGE:
                try:
                    self.terminal.ride(connections, fare)
                except Refusal as refusal:
                    assert refusal.reason is Reason.STALE_DENY_LIST
                    return
                raise AssertionError("a terminal with a stale deny list ran a ride")
            result = self.terminal.ride(connections, fare)
        finally:
            for connection, card in zip(connections, cards, strict=True):
                if not getattr(connection, "dead", False):
                    card.close()
        self._expect(riders, fare, now, tear, result)

    def _expect(self, riders: list[bytes], fare: int, now: dt.datetime,
                tear: tuple[int, int] | None, result) -> None:
        time = ride_time(now)
        expected: list[Reason | None] = []
        for rider in riders:
            model = self.cards[rider.hex()]
            if model.pending is not None:     # the terminal files the torn debit's receipt
                self.queued[(rider.hex(), model.pending.sequence)] = (model.pending, False)
                model.pending = None
            if rider.hex() in self.pushed:
                expected.append(Reason.STOPPED)
            elif model.times and time < model.times[-1]:
                expected.append(Reason.CLOCK)
            elif len(model.times) >= QUOTA:
                expected.append(Reason.YEARLY_CAP)
            elif model.rides_on(time[:8]) >= DAILY:
                expected.append(Reason.DAILY_CAP)
            else:
                expected.append(None)
        accepted = [r for r, why in zip(riders, expected, strict=True) if why is None]
        # The terminal lists refusals first, then the debits of the accepted cards in order.
        outcomes = {o.rider_id: o for o in result.outcomes if o.rider_id is not None}
        refused = [o.refusal.reason for o in result.outcomes if o.rider_id is None]
        assert refused == [why for why in expected if why is not None]
        torn = riders[tear[0]] if tear is not None and tear[0] < len(riders) else None
        each = rule_subsidy(fare, len(accepted)) if accepted else 0
        for rider in accepted:
            outcome, model = outcomes[rider.hex()], self.cards[rider.hex()]
            if rider == torn:
                assert outcome.refusal is not None and outcome.refusal.reason is Reason.UNREADABLE
                counters, log = card_state(self.images[rider])
                if counters.sequence == len(model.times) + 1:   # the debit committed
                    assert (log[0].ride.time, log[0].ride.fare, log[0].ride.riders,
                            log[0].subsidy) == (time, fare, len(accepted), each)
                    model.times.append(time)
                    model.pending = log[0]
                else:
                    assert counters.sequence == len(model.times)
                continue
            receipt = outcome.receipt
            assert receipt is not None and receipt.subsidy == each
            model.times.append(time)
            assert receipt.sequence == len(model.times)
            self.queued[(rider.hex(), receipt.sequence)] = (receipt, False)
        assert each * len(accepted) <= fare
        for rider in riders:   # the card's own counters follow the model
            counters, _ = card_state(self.images[rider])
            model = self.cards[rider.hex()]
            assert counters.sequence == len(model.times)
            if model.times:
                day, year = counters.rides_on(model.times[-1])
                assert (day, year) == (model.rides_on(model.times[-1][:8]), len(model.times))
                assert day <= DAILY and year <= QUOTA

    # -- the city ----------------------------------------------------------------------------

    @rule(data=st.data(), everything=st.booleans())
    def sync(self, data: st.DataObject, everything: bool) -> None:
        """Upload the queue (all of it, or the unsynced part) in an order hypothesis picks."""
        keys = sorted(k for k, (_, synced) in self.queued.items() if everything or not synced)
        order = data.draw(st.permutations(keys))
        now = self.clock()
        outcome = self.ledger.sync(TERMINAL_ID, COMPANY,
                                   [(r, self.queued[(r, s)][0].encode()) for r, s in order],
                                   now)
        accepted, duplicates, stopped = [], [], []
        for key in order:
            receipt = self.queued[key][0]
            stop = self.stopped.get(key[0])
            if key in self.counted:
                duplicates.append(key)
            elif stop is not None and ride_datetime(receipt.ride.time) >= stop:
                stopped.append(key)
            else:
                accepted.append(key)
                self.counted[key] = receipt.subsidy
        assert outcome.accepted == accepted and outcome.duplicates == duplicates
        assert [(r, s) for r, s, _ in outcome.rejected] == stopped
        self.terminal.mark_synced(accepted + duplicates)
        for key in accepted + duplicates:
            self.queued[key] = (self.queued[key][0], True)

    @rule(rider=st.sampled_from(RIDERS))
    def stop(self, rider: bytes) -> None:
        """A lost card reported: the ledger stops the registration now."""
        now = self.clock()
        assert self.ledger.stop_rider(rider.hex(), StopReason.CARD_LOST, now) \
            == (rider.hex() not in self.stopped)
        self.stopped.setdefault(rider.hex(), now)

    @rule()
    def push_deny_list(self) -> None:
        assert self.ledger.deny_list() == sorted(self.stopped)
        self.terminal.install_deny_list(self.ledger.deny_list(), self.clock())
        self.pushed, self.deny_issued = set(self.stopped), self.clock()

    @rule(step=st.sampled_from(CLOCK_STEPS))
    def advance(self, step: dt.timedelta) -> None:
        self.clock.advance(step)

    @rule()
    def roll_back(self) -> None:
        """The tablet's clock set two hours back."""
        self.clock.freeze(self.clock() - dt.timedelta(hours=2))

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def ledger_equals_model(self) -> None:
        rows = self.ledger.db.transact(lambda db: list(db.execute(select(
            ride_table.c.rider_id, ride_table.c.sequence, ride_table.c.subsidy,
            ride_table.c.fare, ride_table.c.riders, ride_table.c.month))))
        assert {(r.rider_id, r.sequence): r.subsidy for r in rows} == self.counted
        for row in rows:
            assert row.subsidy == rule_subsidy(row.fare, row.riders)
        per_rider: dict[str, int] = {}
        for row in rows:
            per_rider[row.rider_id] = per_rider.get(row.rider_id, 0) + 1
        assert all(n <= QUOTA for n in per_rider.values())
        for rider, model in self.cards.items():
            counted_days = [t[:8] for (r, s), _ in self.counted.items() if r == rider
                            for t in [model.times[s - 1]]]
            assert all(counted_days.count(d) <= DAILY for d in counted_days)

    @invariant()
    def terminal_queue_equals_model(self) -> None:
        assert {(r, q.sequence) for r, q in self.terminal.queued()} == set(self.queued)
        assert {(r, q.sequence) for r, q in self.terminal.queued(unsynced_only=True)} == {
            k for k, (_, synced) in self.queued.items() if not synced}


def test_taxi_equals_model(enrolled: Callable[..., Path], city: CityKeys,
                           config: TerminalConfig, tmp_path: Path) -> None:
    templates = {r: enrolled(r, yearly_quota=QUOTA) for r in RIDERS}
    machine = type("Machine", (TaxiMachine,), {
        "templates": templates, "workdir": tmp_path, "city": city, "config": config,
        "examples": itertools.count()})
    machine.TestCase.settings = settings(
        max_examples=25, stateful_step_count=40, derandomize=True, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    machine.TestCase().runTest()
