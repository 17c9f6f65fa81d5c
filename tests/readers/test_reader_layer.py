"""The reader layer's own duties: 61xx and 6Cxx handling, removal, reader specs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mynacard.readers.base import CardConnection, CardRemovedError, NoCardError, NoReaderError
from mynacard.readers.registry import open_reader
from mynacard.readers.simulator import SimulatorReader


class ScriptedConnection(CardConnection):
    """Answers from a script and records what was sent."""

    def __init__(self, answers: list[str]) -> None:
        self.answers: Iterator[str] = iter(answers)
        self.sent: list[str] = []

    @property
    def atr(self) -> bytes:
        return b"\x3b\x00"

    def transmit_raw(self, command: bytes) -> bytes:
        self.sent.append(command.hex().upper())
        return bytes.fromhex(next(self.answers))

    def reset(self) -> bytes:
        return self.atr

    def disconnect(self) -> None:
        pass


def test_get_response_chains_61xx() -> None:
    connection = ScriptedConnection(["AABB6102", "CCDD6101", "EE9000"])
    response = connection.transmit(bytes.fromhex("00B0000000"))
    assert (response.data, response.sw) == (bytes.fromhex("AABBCCDDEE"), 0x9000)
    assert connection.sent[1:] == ["00C0000002", "00C0000001"]


def test_wrong_le_is_resent_with_the_card_s_le() -> None:
    connection = ScriptedConnection(["6C10", "00" * 16 + "9000"])
    response = connection.transmit(bytes.fromhex("00B0000000"))
    assert response.ok and len(response.data) == 16
    assert connection.sent == ["00B0000000", "00B0000010"]


def test_plain_answers_pass_through() -> None:
    connection = ScriptedConnection(["6A82"])
    assert connection.transmit(bytes.fromhex("00A4040C0101")).sw == 0x6A82


def test_removed_card_fails_the_open_connection(card) -> None:
    reader = SimulatorReader(card=card)
    connection = reader.connect()
    assert reader.card_present()
    reader.remove()
    with pytest.raises(CardRemovedError):
        connection.transmit(bytes.fromhex("0084000008"))
    with pytest.raises(NoCardError):
        reader.connect()
    reader.insert(card)
    assert reader.connect().transmit(bytes.fromhex("0084000008")).ok


def test_image_reader_releases_the_card_on_disconnect(card_dir: Path) -> None:
    reader = open_reader(f"sim:{card_dir}")
    with reader.connect() as connection:
        assert connection.atr == bytes.fromhex("3BE000FF8131FE4514")
    with reader.connect() as again:  # the lock was released
        assert again.transmit(bytes.fromhex("0084000004")).ok


@pytest.mark.parametrize("spec", ["sim:", "nfc", "usb:0"])
def test_bad_reader_specs(spec: str) -> None:
    with pytest.raises(NoReaderError):
        open_reader(spec)


def test_6cxx_to_a_command_without_le_is_not_resent() -> None:
    """Resending with ``raw[:-1] + Le`` would overwrite the last PIN byte of a VERIFY."""
    connection = ScriptedConnection(["6C04"])
    assert connection.transmit(bytes.fromhex("002000800431323334")).sw == 0x6C04
    assert connection.sent == ["002000800431323334"]
