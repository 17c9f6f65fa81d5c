"""The マイタク card application: installed and personalised over the issuer channel, debited
only by a terminal key, caps and clock on the card, receipts the tablet cannot forge, and a
power loss at every write of a debit leaving the old state or the new with its receipt."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from helpers import apdu

from mynacard.apps.taxi.card import Reason, Refusal, TaxiCard, install
from mynacard.apps.taxi.keys import CityKeys, record_signed_by
from mynacard.cardsim.card import VirtualCard
from mynacard.cardsim.freespace import PowerLoss
from mynacard.cardsim.perso.issuer_keys import load_or_create_master
from mynacard.client.applets import CardManager
from mynacard.client.commands import CardCommandError
from mynacard.facts import taxi
from mynacard.readers.simulator import SimulatorReader

RIDER = b"R0000001"
TERMINAL = b"TAXI0001"
RECORD = taxi.Eligibility("10201", RIDER, 1, "20260401", "20280331", 70, 2, 1000, 500)


@pytest.fixture(scope="module")
def city() -> CityKeys:
    return CityKeys.generate()


@pytest.fixture
def master(pki_dir: Path, card_templates) -> bytes:
    card_templates("kokutou-mikiya")
    return load_or_create_master(pki_dir, create=False)


def enrol(card: VirtualCard, master: bytes, city: CityKeys,
          record: taxi.Eligibility = RECORD) -> TaxiCard:
    connection = SimulatorReader(card=card).connect()
    manager = CardManager(connection, master)
    manager.open()
    install(manager, city.admin_key(record.rider_id), city.terminal_master,
            city.receipt_key(record.rider_id))
    taxi_card = TaxiCard(connection)
    taxi_card.select()
    taxi_card.personalise(city.sign(record), city.admin_key(record.rider_id))
    return taxi_card


def ride(time: str, fare: int = 3000, riders: int = 1, sequence: int = 1
         ) -> taxi.RideRequest:
    return taxi.RideRequest(TERMINAL, sequence, time.encode(), fare, riders)


def receipt_genuine(city: CityKeys, receipt: taxi.Receipt) -> bool:
    return taxi.macs_equal(receipt.mac, taxi.receipt_mac(city.receipt_key(RIDER), RIDER,
                                                         receipt.body()))


def test_enrol_read_debit_and_receipt(card: VirtualCard, master: bytes, city: CityKeys) -> None:
    taxi_card = enrol(card, master, city)
    signed = taxi_card.record()
    assert taxi.Eligibility.decode(signed[:taxi.Eligibility.LENGTH]) == RECORD
    assert record_signed_by(city.signing_key.public_key(), signed)
    key = city.terminal_key(TERMINAL)
    receipt = taxi_card.debit(ride("202605011000", fare=3000), key)
    assert (receipt.sequence, receipt.subsidy) == (1, 1000)  # half of 3000, capped at 1000
    assert receipt_genuine(city, receipt)
    assert taxi_card.counters() == taxi.Counters(1, 2026, 1, b"202605011000", 1)
    assert taxi_card.log() == [receipt]
    # The tablet cannot alter a receipt: any changed field breaks the card's MAC.
    assert not receipt_genuine(city, replace(receipt, subsidy=2000))
    # Keys never leave the card.
    for fid in (taxi.EF_ADMIN_KEY, taxi.EF_TERMINAL_MASTER, taxi.EF_RECEIPT_KEY):
        apdu(card, f"00A4020C02{fid:04X}")
        assert apdu(card, "00B0000010")[1] == 0x6982


@pytest.mark.parametrize(("fare", "riders", "subsidy"), [
    (1500, 1, 750), (3000, 1, 1000), (1, 1, 0), (3000, 2, 500), (900, 2, 450), (901, 3, 300),
])
def test_the_card_computes_the_subsidy(card: VirtualCard, master: bytes, city: CityKeys,
                                       fare: int, riders: int, subsidy: int) -> None:
    receipt = enrol(card, master, city).debit(ride("202605011000", fare, riders),
                                              city.terminal_key(TERMINAL))
    assert receipt.subsidy == subsidy and receipt.subsidy * riders <= fare


def test_debit_needs_the_terminal_key_and_a_fresh_challenge(card: VirtualCard, master: bytes,
                                                            city: CityKeys) -> None:
    taxi_card = enrol(card, master, city)
    with pytest.raises(Refusal) as forged:
        taxi_card.debit(ride("202605011000"), bytes(16))  # a random reader's key
    assert forged.value.reason is Reason.TERMINAL_REFUSED
    # Another terminal's key does not work under this terminal's id either.
    with pytest.raises(Refusal):
        taxi_card.debit(ride("202605011000"), city.terminal_key(b"TAXI0002"))
    # Without GET CHALLENGE, and replaying a captured DEBIT after a new challenge: 6982.
    body = ride("202605011000").encode()
    challenge = taxi_card.challenge()
    command = "80200000" + f"{len(body) + 16:02X}" + (
        body + taxi.debit_mac(city.terminal_key(TERMINAL), challenge, body)).hex() + "00"
    assert apdu(card, command)[1] == 0x9000
    assert apdu(card, command)[1] == 0x6982  # the challenge was used up
    taxi_card.challenge()
    assert apdu(card, command)[1] == 0x6982  # bound to the old challenge
    assert taxi_card.counters().sequence == 1


def test_caps_clock_and_validity(card: VirtualCard, master: bytes, city: CityKeys) -> None:
    taxi_card = enrol(card, master, city, replace(RECORD, yearly_quota=3))
    key = city.terminal_key(TERMINAL)
    for time in ("202605011000", "202605011400"):
        taxi_card.debit(ride(time), key)
    with pytest.raises(Refusal) as daily:
        taxi_card.debit(ride("202605011500"), key)
    assert daily.value.reason is Reason.DAILY_CAP
    with pytest.raises(Refusal) as clock:
        taxi_card.debit(ride("202605011300"), key)
    assert clock.value.reason is Reason.CLOCK
    taxi_card.debit(ride("202605021000"), key)  # a new day: third ride of FY2026
    with pytest.raises(Refusal) as yearly:
        taxi_card.debit(ride("202605031000"), key)
    assert yearly.value.reason is Reason.YEARLY_CAP
    # The new fiscal year (April) starts from zero on the card.
    assert taxi_card.debit(ride("202704011000"), key).sequence == 4
    assert taxi_card.counters() == taxi.Counters(4, 2027, 1, b"202704011000", 1)
    with pytest.raises(Refusal) as expired:
        taxi_card.debit(ride("202804011000"), key)  # after valid_to
    assert expired.value.reason is Reason.NOT_VALID


def test_personalise_needs_the_admin_key_and_keeps_the_rider(card: VirtualCard, master: bytes,
                                                             city: CityKeys) -> None:
    taxi_card = enrol(card, master, city)
    with pytest.raises(CardCommandError) as wrong_key:
        taxi_card.personalise(city.sign(RECORD), bytes(16))
    assert wrong_key.value.sw == 0x6982
    with pytest.raises(CardCommandError) as other_rider:
        taxi_card.personalise(city.sign(replace(RECORD, rider_id=b"R0000002")),
                              city.admin_key(RIDER))
    assert other_rider.value.sw == 0x6985
    taxi_card.debit(ride("202605011000"), city.terminal_key(TERMINAL))
    # A renewal (new validity) keeps the counters and the log.
    taxi_card.personalise(city.sign(replace(RECORD, valid_to="20290331")),
                          city.admin_key(RIDER))
    assert taxi_card.counters().sequence == 1 and len(taxi_card.log()) == 1


def test_not_personalised_card_refuses_debit(card: VirtualCard, master: bytes,
                                             city: CityKeys) -> None:
    connection = SimulatorReader(card=card).connect()
    manager = CardManager(connection, master)
    manager.open()
    install(manager, city.admin_key(RIDER), city.terminal_master, city.receipt_key(RIDER))
    taxi_card = TaxiCard(connection)
    taxi_card.select()
    with pytest.raises(Refusal) as blank:
        taxi_card.record()
    assert blank.value.reason is Reason.NOT_REGISTERED
    with pytest.raises(Refusal) as refused:
        taxi_card.debit(ride("202605011000"), city.terminal_key(TERMINAL))
    assert refused.value.reason is Reason.NOT_REGISTERED


def _state(card_dir: Path) -> tuple[taxi.Counters, list[taxi.Receipt]]:
    card = VirtualCard.open(card_dir, sync=False)
    card.power_on()
    try:
        taxi_card = TaxiCard(SimulatorReader(card=card).connect())
        taxi_card.select()
        return taxi_card.counters(), taxi_card.log()
    finally:
        card.close()


def test_power_loss_at_every_write_of_a_debit(card_dir: Path, master: bytes,
                                              city: CityKeys) -> None:
    card = VirtualCard.open(card_dir, sync=False)
    card.power_on()
    enrol(card, master, city).debit(ride("202605010900"), city.terminal_key(TERMINAL))
    card.close()
    old = _state(card_dir)
    position, outcomes = 1, []
    while True:
        card = VirtualCard.open(card_dir, sync=False)
        card.power_on()
        taxi_card = TaxiCard(SimulatorReader(card=card).connect())
        taxi_card.select()
        card.freespace.inject_power_loss(position)
        try:
            # A new day per attempt: a torn debit that committed must not hit the daily cap.
            taxi_card.debit(ride(f"202605{position + 1:02d}1000", sequence=position + 1),
                            city.terminal_key(TERMINAL))
        except PowerLoss:
            card.store.close()
            counters, log = _state(card_dir)
            if (counters, log) == old:
                outcomes.append("old")
            else:
                # The new state: the counters moved by one ride and the receipt for exactly
                # that sequence number is in the log, with a MAC the city accepts.
                outcomes.append("new")
                assert counters.sequence == old[0].sequence + 1
                assert counters.year_rides == old[0].year_rides + 1
                assert log[0].sequence == counters.sequence and log[1:] == old[1][:7]
                assert log[0].ride.terminal_sequence == position + 1
                assert receipt_genuine(city, log[0])
                old = (counters, log)
            position += 1
            continue
        card.close()
        break
    # A debit is three physical writes (the journal, the instance's file, the journal's
    # removal), each torn once: before the journal is sealed the old state survives, after
    # it the new one, rolled forward on the next power-up.
    assert outcomes == ["old", "new", "new"]
    assert _state(card_dir)[0].sequence == 2 + outcomes.count("new")
