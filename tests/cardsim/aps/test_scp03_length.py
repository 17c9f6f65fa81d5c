"""C-MAC length limits of the card-management channel (issue 9, hardening item 4): a field
too long to carry a C-MAC answers 6700 and closes the channel; so does any failure of the
secure-messaging layer or an unforeseen fault of a secured command."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mynacard.cardsim.card import VirtualCard
from mynacard.cardsim.perso.issuer_keys import load_or_create_master
from mynacard.client.applets import CardManager
from mynacard.client.commands import CardCommandError
from mynacard.gp import scp03
from mynacard.readers.simulator import SimulatorReader

COUNTER = bytes.fromhex("F06D796E61636F756E74")
AID_A = COUNTER + b"\x01"


@pytest.fixture
def master(pki_dir: Path, card_templates) -> bytes:
    card_templates("kokutou-mikiya")
    return load_or_create_master(pki_dir, create=False)


def opened(card: VirtualCard, master: bytes) -> CardManager:
    m = CardManager(SimulatorReader(card=card).connect(), master)
    m.open()
    return m


def extended(header: str, field: bytes) -> bytes:
    """An extended-length case-3 APDU: the only way to send more than 255 bytes."""
    return bytes.fromhex(header) + b"\x00" + len(field).to_bytes(2, "big") + field


def sw(answer: bytes) -> int:
    return int.from_bytes(answer[-2:], "big")


def assert_channel_closed(m: CardManager) -> None:
    with pytest.raises(CardCommandError) as refused:
        m.list()  # a correctly MACed command: refused only because the card closed the channel
    assert refused.value.sw == 0x6982


@pytest.mark.parametrize("data_length", [248, 249, 300, 4096, 65535 - 8])
@pytest.mark.parametrize("header", ["84E60C00", "84E40000", "84F24002"])
def test_a_field_too_long_for_a_cmac_answers_6700_and_closes_the_channel(
        card: VirtualCard, master: bytes, caplog: pytest.LogCaptureFixture,
        data_length: int, header: str) -> None:
    m = opened(card, master)
    assert m.list() == []
    with caplog.at_level(logging.DEBUG):
        answer = card.transmit(extended(header, bytes(data_length + 8)))
    assert sw(answer) == 0x6700 and answer == b"\x67\x00"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert_channel_closed(m)
    m.open()  # a new channel works
    assert m.list() == []


def test_external_authenticate_with_a_long_field_answers_6700(card: VirtualCard,
                                                             master: bytes) -> None:
    m = opened(card, master)
    m.open()  # INITIALIZE UPDATE + EXTERNAL AUTHENTICATE; now the long one instead:
    assert m.session is not None
    card.transmit(bytes.fromhex("8050000008") + bytes(8) + b"\x00")
    assert sw(card.transmit(extended("84820100", bytes(256)))) == 0x6700
    assert card.applications[0].session is None  # the half-open session is gone too
    assert_channel_closed(m)


def test_the_longest_field_with_a_cmac_still_works(card: VirtualCard, master: bytes) -> None:
    """247 data bytes + 8 MAC = 255: the limit itself is fine on both sides."""
    keys = scp03.StaticKeys(bytes(16), bytes(range(16)), bytes(16))
    host = scp03.Session.derive(keys, bytes(8), bytes(range(8)))
    card_side = scp03.Session.derive(keys, bytes(8), bytes(range(8)))
    header = bytes.fromhex("84E60C00")
    assert card_side.unwrap(header, host.wrap(header, bytes(247))) == bytes(247)
    with pytest.raises(scp03.SCPLengthError):
        host.wrap(header, bytes(248))
    with pytest.raises(scp03.SCPLengthError):
        card_side.unwrap(header, bytes(256))


def test_a_bad_mac_still_answers_6982_and_closes_the_channel(card: VirtualCard,
                                                            master: bytes) -> None:
    m = opened(card, master)
    assert sw(card.transmit(bytes.fromhex("84F240020A4F00") + bytes(8))) == 0x6982
    assert_channel_closed(m)


def test_an_unforeseen_fault_of_a_secured_command_closes_the_channel(
        card: VirtualCard, master: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    m = opened(card, master)

    def broken(*args: object) -> None:
        raise RuntimeError("simulated internal fault")

    monkeypatch.setattr(card.freespace, "install", broken)
    with pytest.raises(CardCommandError) as fault:
        m.install(COUNTER, AID_A, 512, b"4321")
    assert fault.value.sw == 0x6F00
    assert_channel_closed(m)


def test_a_refusal_on_the_merits_keeps_the_channel(card: VirtualCard, master: bytes) -> None:
    """GlobalPlatform: a command whose MAC verified and that is refused (here 6A84, no room)
    leaves the session open."""
    m = opened(card, master)
    with pytest.raises(CardCommandError) as full:
        m.install(COUNTER, AID_A, 60000, b"4321")
    assert full.value.sw == 0x6A84
    assert m.list() == []
