"""Fault injection (readers.faults): one test per fault kind, and the seed reproduces the run."""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from mynacard.client.commands import CardCommandError, select_ef, verify
from mynacard.client.jpki import JPKIClient, JPKIKey
from mynacard.readers.base import CardRemovedError, NoReaderError, TransmitError
from mynacard.readers.faults import (
    FaultEvent,
    FaultNotPossibleError,
    FaultPlan,
    FaultyConnection,
    FaultyReader,
)
from mynacard.readers.registry import open_reader
from mynacard.readers.simulator import SimulatorReader

AUTH_PIN, SIGN_PASSWORD = "1234", "ABC123"
SECURITY_STATUS_NOT_SATISFIED = 0x6982
EF_TOKEN_INFO = 0x0006
READ_ALL = bytes.fromhex("00B0000000")


@pytest.fixture
def fresh_card(tmp_path: Path, card_templates: Callable[[str], Path]) -> Callable[[], Path]:
    """A new copy of the test card on every call (make_card_dir gives one per test)."""
    numbers = itertools.count()

    def make() -> Path:
        target = tmp_path / f"card-{next(numbers)}"
        shutil.copytree(card_templates("kokutou-mikiya"), target)
        return target
    return make


def tries_left(card_dir: Path, key: JPKIKey = JPKIKey.AUTH) -> int:
    with open_reader(f"sim:{card_dir}").connect() as connection:
        return JPKIClient(connection).tries_left(key)


def test_remove_after_n_apdus_pulls_the_card_and_its_security_state(card_dir: Path) -> None:
    reader = open_reader(f"faults:remove-after=3:sim:{card_dir}")
    assert isinstance(reader, FaultyReader)
    connection = reader.connect()
    client = JPKIClient(connection)          # APDU 1
    client.verify(JPKIKey.AUTH, AUTH_PIN)    # APDUs 2, 3
    with pytest.raises(CardRemovedError, match="before APDU #4"):
        client.sign_digest_info(JPKIKey.AUTH, bytes(51))
    with pytest.raises(CardRemovedError):  # the connection stays dead
        connection.transmit(bytes.fromhex("0084000008"))
    assert [(e.apdu, e.kind) for e in reader.events] == [(4, "removed")]
    # Reinserted: the card works again but has forgotten the verified PIN, and the
    # removal does not fire a second time.
    with reader.connect() as again:
        with pytest.raises(CardCommandError) as refused:
            JPKIClient(again).sign_digest_info(JPKIKey.AUTH, bytes(51))
        assert refused.value.sw == SECURITY_STATUS_NOT_SATISFIED
    assert tries_left(card_dir) == 3


@pytest.mark.parametrize("tear", [1, 2])
def test_power_loss_mid_write_leaves_the_old_or_the_new_counter(
        fresh_card: Callable[..., Path], tear: int) -> None:
    """A right VERIFY writes twice: the decrement (write 1), then the reset to 3 (write 2).
    Whether the torn write landed is the seed's choice; the image must reopen either way
    and hold exactly the counter of the landed writes."""
    landed_counters = {1: 2, 2: 3}   # tries left if the torn write landed
    lost_counters = {1: 3, 2: 2}     # … if it did not
    outcomes = set()
    for seed in range(6):
        card_dir = fresh_card()
        reader = open_reader(f"faults:tear={tear},seed={seed}:sim:{card_dir}")
        with pytest.raises(CardRemovedError, match="lost power in the middle of a write"), \
                reader.connect() as connection:
            JPKIClient(connection).verify(JPKIKey.AUTH, AUTH_PIN)
        assert [e.kind for e in reader.events] == ["power-loss"]
        left = tries_left(card_dir)
        assert left in (landed_counters[tear], lost_counters[tear])
        outcomes.add(left == landed_counters[tear])
        with open_reader(f"sim:{card_dir}").connect() as connection:  # still a working card
            JPKIClient(connection).verify(JPKIKey.AUTH, AUTH_PIN)
    assert outcomes == {True, False}


def test_power_loss_while_changing_a_pin_keeps_the_old_pin_or_the_new(
        fresh_card: Callable[..., Path]) -> None:
    outcomes = set()
    for seed in range(6):
        card_dir = fresh_card()
        # Writes: VERIFY's decrement (1) and reset (2), then card.json with the new PIN (3).
        reader = open_reader(f"faults:tear=3,seed={seed}:sim:{card_dir}")
        with pytest.raises(CardRemovedError), reader.connect() as connection:
            JPKIClient(connection).change_pin(JPKIKey.AUTH, AUTH_PIN, "5678")
        with open_reader(f"sim:{card_dir}").connect() as connection:
            client = JPKIClient(connection)
            for pin in (AUTH_PIN, "5678"):
                try:
                    client.verify(JPKIKey.AUTH, pin)
                except CardCommandError:
                    continue
                outcomes.add(pin)
                break
            else:
                pytest.fail("neither the old PIN nor the new one opens the card")
    assert outcomes == {AUTH_PIN, "5678"}


def test_power_loss_is_refused_where_it_cannot_happen(tmp_path: Path, card) -> None:
    trace = tmp_path / "t.jsonl"
    trace.write_text(json.dumps({"type": "session", "format": "mynacard-apdu-trace",
                                 "version": 1, "reader": "r", "atr": "3B00"}) + "\n")
    with pytest.raises(FaultNotPossibleError, match="only the in-process simulator"):
        open_reader(f"faults:tear=1:replay:{trace}")
    from test_reader_layer import ScriptedConnection

    with pytest.raises(FaultNotPossibleError, match="not possible on ScriptedConnection"):
        FaultyConnection(ScriptedConnection([]), FaultPlan(tear=1))


def test_transmission_errors_lose_the_command_or_the_answer(fresh_card) -> None:
    """With error-rate=1 every APDU fails; a lost answer to a wrong VERIFY has still cost a
    try, a lost command has not."""
    seen = set()
    for seed in range(6):
        card_dir = fresh_card()
        reader = SimulatorReader.for_image(card_dir)
        with reader.connect() as inner:
            JPKIClient(inner).tries_left(JPKIKey.AUTH)  # JPKI-AP and EF 0018 selected
            faulty = FaultyConnection(inner, FaultPlan(error_rate=1.0, seed=seed))
            with pytest.raises(TransmitError, match="injected fault"):
                verify(faulty, b"9999")
            kind = faulty.events[0].kind
        spent = 3 - tries_left(card_dir)
        assert spent == {"answer-lost": 1, "command-lost": 0}[kind]
        seen.add(kind)
    assert seen == {"answer-lost", "command-lost"}


def test_delays_are_seeded_and_bounded(card) -> None:
    slept: list[float] = []
    connection = FaultyConnection(SimulatorReader(card=card).connect(),
                                  FaultPlan(delay=0.5, seed=3), sleep=slept.append)
    for _ in range(5):
        assert connection.transmit(bytes.fromhex("0084000008")).ok
    assert len(slept) == 5 and all(0 <= s <= 0.5 for s in slept) and len(set(slept)) == 5
    assert [float(e.detail) for e in connection.events] == pytest.approx(slept, abs=1e-6)
    again: list[float] = []
    replay = FaultyConnection(SimulatorReader(card=card).connect(),
                              FaultPlan(delay=0.5, seed=3), sleep=again.append)
    for _ in range(5):
        replay.transmit(bytes.fromhex("0084000008"))
    assert again == slept


def test_t0_answers_61xx_and_6cxx_and_the_host_copes(fresh_card: Callable[[], Path],
                                                     card) -> None:
    card_dir = fresh_card()
    with open_reader(f"sim:{card_dir}").connect() as plain:
        client = JPKIClient(plain)
        expected_cert = client.read_certificate_der(JPKIKey.AUTH)
        client.verify(JPKIKey.AUTH, AUTH_PIN)
        expected_signature = client.sign_digest_info(JPKIKey.AUTH, bytes(51))
        select_ef(plain, EF_TOKEN_INFO)
        expected_token_info = plain.transmit(READ_ALL).data
        assert 0 < len(expected_token_info) < 256
    reader = open_reader(f"faults:t0,t0-chunk=100:sim:{card_dir}")
    with reader.connect() as connection:
        client = JPKIClient(connection)
        assert client.read_certificate_der(JPKIKey.AUTH) == expected_cert
        client.verify(JPKIKey.AUTH, AUTH_PIN)
        # Case 4: 256 signature bytes come as 61 64, then GET RESPONSE chunks of 100.
        assert client.sign_digest_info(JPKIKey.AUTH, bytes(51)) == expected_signature
        select_ef(connection, JPKIKey.AUTH.value.certificate_ef)
        raw = connection.transmit_raw(bytes.fromhex("00B0000020"))  # a right Le passes as is
        assert raw[-2:] == b"\x90\x00" and len(raw) == 34
        # Le 256 on a shorter EF: the card answers 6Cxx with the length, the host resends.
        select_ef(connection, EF_TOKEN_INFO)
        assert connection.transmit(READ_ALL).data == expected_token_info
    kinds = [e.kind for e in reader.events]
    assert kinds.count("61xx") == 3  # 256 bytes in chunks of 100: announced three times
    assert kinds[-1] == "6Cxx"
    with FaultyConnection(SimulatorReader(card=card).connect(), FaultPlan(t0=True)) as raw_t0:
        raw_t0.transmit_raw(bytes.fromhex("00A4040C0AD392F000260100000001"))
        raw_t0.transmit_raw(bytes.fromhex(f"00A4020C02{EF_TOKEN_INFO:04X}"))
        length = len(expected_token_info)
        assert raw_t0.transmit_raw(READ_ALL) == bytes((0x6C, length))
        assert raw_t0.transmit_raw(READ_ALL[:-1] + bytes((length,)))[:-2] == expected_token_info


def test_reset_between_two_apdus_drops_the_security_state(card_dir: Path) -> None:
    reader = open_reader(f"faults:reset-after=3:sim:{card_dir}")
    with reader.connect() as connection:
        client = JPKIClient(connection)
        client.verify(JPKIKey.AUTH, AUTH_PIN)
        with pytest.raises(CardCommandError) as refused:
            client.sign_digest_info(JPKIKey.AUTH, bytes(51))
    # After the reset nothing is selected: the SELECT EF goes to the MF and fails.
    assert refused.value.sw != 0x9000
    assert [(e.apdu, e.kind) for e in reader.events] == [(4, "reset")]


def session_events(card_dir: Path, plan: FaultPlan) -> list[FaultEvent]:
    reader = FaultyReader(SimulatorReader.for_image(card_dir), plan, sleep=lambda _s: None)
    for _ in range(8):
        try:
            with reader.connect() as connection:
                client = JPKIClient(connection)
                client.verify(JPKIKey.SIGN, SIGN_PASSWORD)
                client.sign(JPKIKey.SIGN, b"message", SIGN_PASSWORD)
                client.read_certificate_der(JPKIKey.AUTH)
        except (TransmitError, CardRemovedError, CardCommandError):
            continue
    return reader.events


def test_the_same_seed_reproduces_the_same_failures(fresh_card) -> None:
    plan = FaultPlan(seed=11, error_rate=0.1, reset_rate=0.05, delay=0.01, t0=True)
    first = session_events(fresh_card(), plan)
    second = session_events(fresh_card(), plan)
    other = session_events(fresh_card(), FaultPlan(**{**plan.__dict__, "seed": 12}))
    assert {e.kind for e in first} >= {"answer-lost", "command-lost", "reset", "61xx"}
    assert first == second
    assert first != other


@pytest.mark.parametrize("spec, message", [
    ("faults:sim:x", "unknown fault 'sim'"),
    ("faults:remove-after=5", "needs options and a reader"),
    ("faults:error-rate=2:sim:x", "between 0 and 1"),
    ("faults:remove-after:sim:x", "needs a value"),
    ("faults:delay=soon:sim:x", "delay=soon"),
])
def test_bad_fault_specs_are_named(spec: str, message: str) -> None:
    with pytest.raises(NoReaderError, match=message):
        open_reader(spec)
