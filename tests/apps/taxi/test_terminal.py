"""The offline terminal: subsidy rules, every refusal named, receipts queued, a torn debit's
receipt recovered from the card's log."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from conftest import NOW

from mynacard.apps.taxi.card import Reason, Refusal
from mynacard.apps.taxi.keys import CityKeys
from mynacard.apps.taxi.terminal import Terminal
from mynacard.clock import VirtualClock
from mynacard.facts import taxi
from mynacard.readers.base import TransmitError
from mynacard.readers.simulator import SimulatorReader


def tap(*images: Path) -> list:
    return [SimulatorReader.for_image(i).connect() for i in images]


def ride(terminal: Terminal, fare: int, *images: Path):
    connections = tap(*images)
    try:
        return terminal.ride(connections, fare)
    finally:
        for connection in connections:
            connection.disconnect()


def reasons(result) -> list[Reason | None]:
    return [o.refusal.reason if o.refusal else None for o in result.outcomes]


def test_one_rider_half_the_fare_up_to_1000(terminal: Terminal, enrolled, city: CityKeys,
                                            clock: VirtualClock) -> None:
    card = enrolled(b"R0000001")
    first = ride(terminal, 1500, card)
    assert (first.subsidy, first.to_pay) == (750, 750)
    clock.advance(dt.timedelta(hours=2))
    second = ride(terminal, 3000, card)
    assert (second.subsidy, second.to_pay) == (1000, 2000)
    queued = terminal.queued()
    assert [(r, q.sequence, q.subsidy) for r, q in queued] == [
        (b"R0000001".hex(), 1, 750), (b"R0000001".hex(), 2, 1000)]
    receipt = queued[1][1]
    assert taxi.macs_equal(receipt.mac, taxi.receipt_mac(
        city.receipt_key(b"R0000001"), b"R0000001", receipt.body()))
    assert receipt.ride.time == b"202605011200" and receipt.ride.terminal_id == b"TAXI0001"


@pytest.mark.parametrize(("fare", "riders", "each"), [(3000, 2, 500), (900, 2, 450),
                                                      (3000, 4, 500), (1000, 3, 333)])
def test_shared_ride_500_each_never_above_the_fare(terminal: Terminal, enrolled, fare: int,
                                                   riders: int, each: int) -> None:
    result = ride(terminal, fare, *(enrolled() for _ in range(riders)))
    assert [o.receipt.subsidy for o in result.outcomes] == [each] * riders
    assert result.subsidy == each * riders <= fare


def test_daily_and_yearly_caps_are_named(terminal: Terminal, enrolled,
                                         clock: VirtualClock) -> None:
    card = enrolled(yearly_quota=3)
    for _ in range(2):
        assert ride(terminal, 2000, card).subsidy == 1000
        clock.advance(dt.timedelta(hours=1))
    third = ride(terminal, 2000, card)
    assert reasons(third) == [Reason.DAILY_CAP] and third.subsidy == 0
    assert "本日の利用上限（2回）に達しています" in str(third.outcomes[0].refusal)
    clock.advance(dt.timedelta(days=1))
    assert ride(terminal, 2000, card).subsidy == 1000
    clock.advance(dt.timedelta(days=1))
    fourth = ride(terminal, 2000, card)
    assert reasons(fourth) == [Reason.YEARLY_CAP]
    assert "今年度の利用可能回数が残っていません" in str(fourth.outcomes[0].refusal)


def test_stopped_registration_and_others_still_ride(terminal: Terminal, enrolled) -> None:
    stopped, fine = enrolled(b"R0000009"), enrolled()
    terminal.install_deny_list([b"R0000009".hex()], NOW)
    result = ride(terminal, 3000, stopped, fine)
    assert reasons(result) == [Reason.STOPPED, None]
    assert "登録が停止されています" in str(result.outcomes[0].refusal)
    assert result.subsidy == 1000  # the one registered rider rides alone: half, up to 1,000


def test_stale_or_missing_deny_list_stops_the_terminal(terminal: Terminal, enrolled,
                                                       clock: VirtualClock) -> None:
    card = enrolled()
    clock.advance(dt.timedelta(days=8))
    with pytest.raises(Refusal) as stale:
        ride(terminal, 1000, card)
    assert stale.value.reason is Reason.STALE_DENY_LIST
    terminal.install_deny_list([], clock())
    assert ride(terminal, 1000, card).subsidy == 500


def test_forged_eligibility_and_double_tap(terminal: Terminal, enrolled) -> None:
    forged = enrolled(keys=CityKeys.generate())  # a card "personalised" by someone else
    result = ride(terminal, 3000, forged)
    assert reasons(result) == [Reason.FORGED] and result.subsidy == 0
    card = enrolled()
    connection = SimulatorReader.for_image(card).connect()
    try:
        double = terminal.ride([connection, connection], 3000)
    finally:
        connection.disconnect()
    assert reasons(double) == [Reason.DOUBLE_TAP, None]
    assert double.outcomes[1].receipt.subsidy == 1000  # one registered rider, not two


def test_clock_rolled_back_is_refused(terminal: Terminal, enrolled,
                                      clock: VirtualClock) -> None:
    card = enrolled()
    ride(terminal, 2000, card)
    clock.freeze(NOW - dt.timedelta(hours=3))
    assert reasons(ride(terminal, 2000, card)) == [Reason.CLOCK]


def test_unreadable_and_unregistered_cards(terminal: Terminal, enrolled,
                                           make_card_dir) -> None:
    reader = SimulatorReader.for_image(enrolled())
    plain = make_card_dir()  # a My Number card without マイタク
    assert reasons(ride(terminal, 2000, plain)) == [Reason.NOT_REGISTERED]
    connection = reader.connect()
    reader.remove()
    try:
        result = terminal.ride([connection], 2000)
    finally:
        connection.disconnect()
    assert reasons(result) == [Reason.UNREADABLE]
    assert "カードを読み取れません" in str(result.outcomes[0].refusal)


class AnswerLost:
    """A connection whose DEBIT reaches the card but whose answer never comes back."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def transmit(self, command):
        response = self.inner.transmit(command)
        if command.ins == taxi.INS_DEBIT:
            raise TransmitError("card pulled out before the answer")
        return response


def test_a_torn_debit_keeps_its_receipt(terminal: Terminal, enrolled,
                                        clock: VirtualClock) -> None:
    card = enrolled(b"R0000001")
    connection = SimulatorReader.for_image(card).connect()
    try:
        lost = terminal.ride([AnswerLost(connection)], 2000)
    finally:
        connection.disconnect()
    assert reasons(lost) == [Reason.UNREADABLE] and terminal.queued() == []
    clock.advance(dt.timedelta(minutes=1))
    # The card committed the debit; the next tap files its receipt, then rides again.
    again = ride(terminal, 2000, card)
    assert reasons(again) == [None]
    assert [q.sequence for _, q in terminal.queued()] == [1, 2]
    assert terminal.queued()[0][1].ride.terminal_sequence == 1
