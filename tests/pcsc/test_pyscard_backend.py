"""The pyscard reader back end against the simulator served through pcscd + vpcd."""

from __future__ import annotations

import pytest

from mynacard.cardsim.card import VirtualCard
from mynacard.iso7816.apdu import CommandAPDU
from mynacard.iso7816.sw import SW
from mynacard.readers import open_reader
from mynacard.readers.base import CardRemovedError, NoCardError, NoReaderError, TransmitError
from mynacard.readers.pcsc import PcscReader, list_pcsc_readers, pcsc_reader

from .conftest import AUTH_PIN, CARD_WAIT, PcscSandbox

pytestmark = pytest.mark.xdist_group("pcscd")

JPKI_AID = bytes.fromhex("D392F000260100000001")
SELECT_JPKI = CommandAPDU(0x00, 0xA4, 0x04, 0x0C, JPKI_AID)
DIGEST_INFO_SHA256 = bytes.fromhex("3031300d060960864801650304020105000420") + bytes(32)


def select_ef(fid: int) -> CommandAPDU:
    return CommandAPDU(0x00, 0xA4, 0x02, 0x0C, fid.to_bytes(2, "big"))


def verify(pin: str) -> CommandAPDU:
    return CommandAPDU(0x00, 0x20, 0x00, 0x80, pin.encode())


SIGN = CommandAPDU(0x80, 0x2A, 0x00, 0x80, DIGEST_INFO_SHA256, le=256)


def test_lists_both_vpcd_readers(pcsc: PcscSandbox):
    assert set(pcsc.pcscd.reader_names) <= set(list_pcsc_readers())


def test_first_reader_with_a_card_is_slot_0(pcsc: PcscSandbox):
    assert pcsc_reader().name == pcsc.slots[0].reader
    assert open_reader("pcsc").name == pcsc.slots[0].reader


def test_named_reader(pcsc: PcscSandbox):
    name = pcsc.slots[1].reader
    reader = open_reader(f"pcsc:{name}")
    with reader.connect() as connection:
        assert connection.atr == pcsc.slots[1].card.atr


def test_unknown_reader_name_lists_the_readers(pcsc: PcscSandbox):
    with pytest.raises(NoReaderError, match="no PC/SC reader named 'Nope'.*Virtual PCD 00 00"):
        pcsc_reader("Nope")


def test_connect_transmit_and_atr(pcsc: PcscSandbox):
    card = pcsc.slots[0].card
    with PcscReader(pcsc.slots[0].reader).connect() as connection:
        assert connection.atr == card.atr
        assert connection.transmit(SELECT_JPKI).sw == SW.OK
        assert connection.transmit(select_ef(0x000A)).sw == SW.OK
        header = connection.transmit(CommandAPDU(0x00, 0xB0, 0x00, 0x00, le=4))
        assert header.ok and header.data[:2] == b"\x30\x82"
        # A foreign AID gets 6A82 through the whole PC/SC stack, as from the card itself.
        assert connection.transmit(CommandAPDU(0, 0xA4, 4, 0x0C, bytes(7))).sw == SW.FILE_NOT_FOUND


def test_sign_after_verify_then_reset_clears_the_pin(pcsc: PcscSandbox, fresh_card: VirtualCard):
    with PcscReader(pcsc.slots[0].reader).connect() as connection:
        for command in (SELECT_JPKI, select_ef(0x0018), verify(AUTH_PIN), select_ef(0x0017)):
            assert connection.transmit(command).sw == SW.OK
        signature = connection.transmit(SIGN)
        assert signature.ok and len(signature.data) == 256
        assert connection.reset() == fresh_card.atr
        for command in (SELECT_JPKI, select_ef(0x0017)):
            assert connection.transmit(command).sw == SW.OK
        assert connection.transmit(SIGN).sw == SW.SECURITY_STATUS_NOT_SATISFIED


def test_disconnect_powers_the_card_down(pcsc: PcscSandbox, fresh_card: VirtualCard):
    reader = PcscReader(pcsc.slots[0].reader)
    with reader.connect() as connection:
        for command in (SELECT_JPKI, select_ef(0x0018), verify(AUTH_PIN)):
            assert connection.transmit(command).sw == SW.OK
    with reader.connect() as connection:
        for command in (SELECT_JPKI, select_ef(0x0017)):
            assert connection.transmit(command).sw == SW.OK
        assert connection.transmit(SIGN).sw == SW.SECURITY_STATUS_NOT_SATISFIED


class ScriptedCard:
    """A card that answers READ BINARY the awkward ways ISO 7816 allows: 6Cxx and 61xx."""

    atr = bytes.fromhex("3B00")
    DATA = bytes(range(40))

    def power_on(self) -> bytes:
        return self.atr

    def power_off(self) -> None:
        pass

    def reset(self) -> bytes:
        return self.atr

    def transmit(self, apdu: bytes) -> bytes:
        if apdu[1] == 0xB0:
            if apdu[4] != len(self.DATA):
                return bytes((0x6C, len(self.DATA)))
            return self.DATA + b"\x90\x00"
        if apdu[1] == 0xCA:
            return self.DATA[:16] + b"\x61\x10"
        if apdu[1] == 0xC0:
            return self.DATA[16:32] + b"\x90\x00"
        return b"\x6d\x00"


def test_6cxx_and_61xx_are_handled_by_the_reader_layer(pcsc: PcscSandbox):
    slot = pcsc.slots[1]
    slot.remove()
    slot.bridge.insert(ScriptedCard())
    reader = PcscReader(slot.reader)
    try:
        assert reader.wait_for_card(present=True, timeout=CARD_WAIT)
        with reader.connect() as connection:
            wrong_le = connection.transmit(CommandAPDU(0x00, 0xB0, 0x00, 0x00, le=0x10))
            assert wrong_le.ok and wrong_le.data == ScriptedCard.DATA
            chained = connection.transmit(CommandAPDU(0x00, 0xCA, 0x01, 0x01, le=0x20))
            assert chained.ok and chained.data == ScriptedCard.DATA[:32]
    finally:
        slot.bridge.remove()
        assert reader.wait_for_card(present=False, timeout=CARD_WAIT)
        slot.insert(pcsc.fresh_image(1))


def test_empty_slot_is_no_card(pcsc: PcscSandbox):
    slot = pcsc.slots[1]
    slot.remove()
    try:
        with pytest.raises(NoCardError, match="Virtual PCD 00 01"):
            PcscReader(slot.reader).connect()
    finally:
        slot.insert(pcsc.fresh_image(1))


def test_removal_while_connected(pcsc: PcscSandbox):
    slot = pcsc.slots[1]
    connection = PcscReader(slot.reader).connect()
    try:
        assert connection.transmit(SELECT_JPKI).ok
        slot.bridge.remove()
        # Before pcscd's presence poll notices, vpcd cannot reach the card. Depending on
        # where the exchange meets the closed socket, vpcd reports "not transacted" or an
        # empty answer; either way it is a transmission error, never a response.
        with pytest.raises(TransmitError, match="not transacted|answered nothing"):
            connection.transmit(SELECT_JPKI)
        assert PcscReader(slot.reader).wait_for_card(present=False, timeout=CARD_WAIT)
        with pytest.raises(CardRemovedError, match="removed or reset"):
            connection.transmit(SELECT_JPKI)
    finally:
        connection.disconnect()
        slot.insert(pcsc.fresh_image(1))


def test_pcscd_restart_is_survived(pcsc: PcscSandbox):
    pcsc.pcscd.stop()
    try:
        with pytest.raises(NoReaderError, match="pcscd is not running"):
            list_pcsc_readers()
    finally:
        pcsc.pcscd.start()
    # The bridges reconnect by themselves, with backoff.
    for slot in pcsc.slots:
        assert PcscReader(slot.reader).wait_for_card(present=True, timeout=CARD_WAIT)
    with PcscReader(pcsc.slots[0].reader).connect() as connection:
        assert connection.transmit(SELECT_JPKI).ok
