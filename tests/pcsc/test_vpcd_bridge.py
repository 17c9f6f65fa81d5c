"""The vpcd bridge at the protocol level: the test plays vpcd on a plain socket.

No pcscd is needed. ``FakeVpcd`` listens like vpcd does; the bridge connects to it.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from mynacard.cardsim.vpcd import GET_ATR, POWER_OFF, POWER_ON, RESET, VpcdBridge, frame

from .fake_vpcd import FakeVpcd

ATR = bytes.fromhex("3BE000FF8131FE4514")


class RecordingCard:
    """A stand-in card that logs the bridge's calls and keeps a 'verified' flag."""

    def __init__(self, atr: bytes = ATR) -> None:
        self._atr = atr
        self.calls: list[str] = []
        self.verified = False

    @property
    def atr(self) -> bytes:
        return self._atr

    def power_on(self) -> bytes:
        self.calls.append("power_on")
        self.verified = False
        return self._atr

    def power_off(self) -> None:
        self.calls.append("power_off")
        self.verified = False

    def reset(self) -> bytes:
        self.calls.append("reset")
        self.verified = False
        return self._atr

    def transmit(self, apdu: bytes) -> bytes:
        self.calls.append("transmit:" + apdu.hex())
        if apdu[:2] == b"\x00\x20" and len(apdu) > 5:
            self.verified = True
            return b"\x90\x00"
        if apdu[:2] == b"\x80\x2a":
            return b"\x90\x00" if self.verified else b"\x69\x82"
        if apdu[:2] == b"\x00\xb0" and len(apdu) == 5:
            return bytes(range(apdu[4] or 256)) + b"\x90\x00"
        return b"\x6d\x00"


@pytest.fixture
def vpcd():
    fake = FakeVpcd()
    yield fake
    fake.close()


@pytest.fixture
def card() -> RecordingCard:
    return RecordingCard()


@pytest.fixture
def bridge(vpcd: FakeVpcd, card: RecordingCard):
    b = VpcdBridge(card, "127.0.0.1", vpcd.port).start()
    vpcd.accept()
    assert b.wait_connected(5.0)
    # As pcscd does when it sees the card: power on, then read the ATR.
    vpcd.send(bytes((POWER_ON,)))
    assert vpcd.exchange(bytes((GET_ATR,))) == ATR
    card.calls.clear()
    yield b
    b.stop()


def test_get_atr_is_answered_with_the_raw_atr(vpcd, bridge, card):
    assert vpcd.exchange(bytes((GET_ATR,))) == ATR


def test_get_atr_has_no_side_effects(vpcd, bridge, card):
    vpcd.exchange(bytes.fromhex("002000800431323334"))
    for _ in range(5):
        assert vpcd.exchange(bytes((GET_ATR,))) == ATR
    assert card.verified, "get-ATR must not touch the card's security state"
    assert [c for c in card.calls if not c.startswith("transmit")] == []


@pytest.mark.parametrize("code", [POWER_OFF, POWER_ON, RESET])
def test_power_messages_get_no_reply_and_clear_security_state(vpcd, bridge, card, code):
    vpcd.exchange(bytes.fromhex("002000800431323334"))
    assert card.verified
    vpcd.send(bytes((code,)))
    vpcd.assert_silent()
    assert not card.verified
    assert card.calls[-1] == {POWER_OFF: "power_off", POWER_ON: "power_on", RESET: "reset"}[code]
    # The stream is still in step: the next request gets its own answer.
    assert vpcd.exchange(bytes((GET_ATR,))) == ATR


def test_unpowered_card_does_not_answer_apdus(vpcd, bridge, card):
    vpcd.send(bytes((POWER_OFF,)))
    assert vpcd.exchange(bytes.fromhex("00B0000004")) == b""
    assert not any(c.startswith("transmit") for c in card.calls)
    vpcd.send(bytes((RESET,)))
    assert vpcd.exchange(bytes.fromhex("00B0000004")) == bytes.fromhex("000102039000")


def test_power_on_then_get_atr_as_vpcd_sends_them(vpcd, bridge, card):
    vpcd.send(bytes((POWER_ON,)))
    assert vpcd.exchange(bytes((GET_ATR,))) == ATR
    assert vpcd.exchange(bytes.fromhex("802A00800100")) == bytes.fromhex("6982")


def test_apdu_is_answered_with_the_response_apdu(vpcd, bridge, card):
    assert vpcd.exchange(bytes.fromhex("00B0000004")) == bytes.fromhex("000102039000")
    assert card.calls == ["transmit:00b0000004"]


def test_long_response_is_framed_by_its_length(vpcd, bridge):
    response = vpcd.exchange(bytes.fromhex("00B0000000"))
    assert len(response) == 258
    assert response[-2:] == b"\x90\x00"


def test_reply_is_one_write_with_length_and_payload(vpcd, bridge):
    # Both parts must be in the first segment; a separate 2-byte write is the 44 ms trap.
    vpcd.send(bytes.fromhex("00B0000010"))
    assert vpcd.conn is not None
    time.sleep(0.05)
    first = vpcd.conn.recv(4096)
    assert first == frame(bytes(range(16)) + b"\x90\x00")


def test_message_split_across_writes_is_reassembled(vpcd, bridge):
    assert vpcd.conn is not None
    message = frame(bytes.fromhex("00B0000008"))
    for byte in message:
        vpcd.conn.sendall(bytes((byte,)))
        time.sleep(0.005)
    assert vpcd.recv() == bytes(range(8)) + b"\x90\x00"


def test_two_messages_in_one_write_get_two_replies(vpcd, bridge):
    assert vpcd.conn is not None
    vpcd.conn.sendall(frame(bytes((GET_ATR,))) + frame(bytes.fromhex("00B0000002")))
    assert vpcd.recv() == ATR
    assert vpcd.recv() == bytes.fromhex("00019000")


def test_malformed_frames_do_not_desynchronise_the_stream(vpcd, bridge, card):
    # An empty message and an unknown control code get no reply ...
    vpcd.send(b"")
    vpcd.send(b"\x07")
    vpcd.assert_silent()
    # ... a too-short "APDU" goes to the card, which answers it (the card owns that SW) ...
    assert vpcd.exchange(b"\x00\xb0") == bytes.fromhex("6D00")
    # ... and the next request is still answered in step.
    assert vpcd.exchange(bytes((GET_ATR,))) == ATR


def test_remove_closes_the_connection_and_powers_the_card_off(vpcd, bridge, card):
    vpcd.exchange(bytes.fromhex("002000800431323334"))
    removed = bridge.remove()
    assert removed is card
    assert not card.verified
    with pytest.raises(EOFError):
        vpcd.recv()
    assert not bridge.connected


def test_insert_reconnects_with_the_new_card(vpcd, bridge, card):
    bridge.remove()
    other = RecordingCard(atr=bytes.fromhex("3B00"))
    bridge.insert(other)
    vpcd.accept()
    assert vpcd.exchange(bytes((GET_ATR,))) == bytes.fromhex("3B00")
    # A newly inserted card starts without power.
    assert vpcd.exchange(bytes.fromhex("00B0000004")) == b""
    assert bridge.stats.connections == 2


def test_insert_into_an_occupied_slot_is_refused(bridge):
    with pytest.raises(RuntimeError, match="already holds a card"):
        bridge.insert(RecordingCard())


def test_reconnects_after_vpcd_goes_away(vpcd, bridge, card):
    # pcscd restarting: the connection drops and the listening port vanishes for a while.
    port = vpcd.port
    vpcd.close()
    time.sleep(0.3)
    restarted = socket.create_server(("127.0.0.1", port))
    try:
        restarted.settimeout(5.0)
        conn, _ = restarted.accept()
        with conn:
            conn.settimeout(5.0)
            conn.sendall(frame(bytes((GET_ATR,))))
            assert conn.recv(64) == frame(ATR)
    finally:
        restarted.close()
    assert "power_off" in card.calls, "losing the reader must power the card off"


def test_stop_ends_the_thread_and_closes_the_connection(vpcd, card):
    b = VpcdBridge(card, "127.0.0.1", vpcd.port).start()
    vpcd.accept()
    b.stop()
    with pytest.raises(EOFError):
        vpcd.recv()
    assert not any(t.name == f"vpcd-bridge:{vpcd.port}" for t in threading.enumerate())


def test_stop_while_retrying_returns_promptly(card):
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    # Nothing listens on ``port``: the bridge is in its backoff loop.
    b = VpcdBridge(card, "127.0.0.1", port).start()
    time.sleep(0.2)
    started = time.monotonic()
    b.stop(timeout=2.0)
    assert time.monotonic() - started < 1.0


def test_frame_refuses_oversized_payload():
    with pytest.raises(ValueError, match="at most 65535"):
        frame(bytes(0x10000))


class TestWithTheSimulatedCard:
    """The same protocol with the real card model: PIN state really is what gets cleared."""

    SELECT_JPKI = bytes.fromhex("00A4040C0AD392F000260100000001")
    VERIFY_AUTH = (bytes.fromhex("00A4020C020018"), bytes.fromhex("0020008004") + b"1234")
    SIGN_AUTH = (bytes.fromhex("00A4020C020017"),
                 bytes.fromhex("802A008033") + bytes.fromhex(
                     "3031300d060960864801650304020105000420") + bytes(32) + b"\x00")

    @pytest.fixture
    def served(self, vpcd: FakeVpcd, card_dir):
        from mynacard.cardsim.card import VirtualCard

        card = VirtualCard.open(card_dir)
        b = VpcdBridge(card, "127.0.0.1", vpcd.port).start()
        vpcd.accept()
        assert b.wait_connected(5.0)
        vpcd.send(bytes((POWER_ON,)))
        yield card
        b.stop()
        card.close()

    def sign_sw(self, vpcd: FakeVpcd) -> bytes:
        select, sign = self.SIGN_AUTH
        assert vpcd.exchange(select) == bytes.fromhex("9000")
        return vpcd.exchange(sign)[-2:]

    def verify(self, vpcd: FakeVpcd) -> None:
        assert vpcd.exchange(self.SELECT_JPKI) == bytes.fromhex("9000")
        for command in self.VERIFY_AUTH:
            assert vpcd.exchange(command) == bytes.fromhex("9000")

    def test_get_atr_keeps_the_verified_pin(self, vpcd, served):
        self.verify(vpcd)
        for _ in range(5):
            assert vpcd.exchange(bytes((GET_ATR,))) == served.atr
        assert self.sign_sw(vpcd) == bytes.fromhex("9000")

    @pytest.mark.parametrize("code", [POWER_OFF, RESET])
    def test_power_off_and_reset_clear_the_verified_pin(self, vpcd, served, code):
        self.verify(vpcd)
        vpcd.send(bytes((code,)))
        if code == POWER_OFF:
            vpcd.send(bytes((POWER_ON,)))
        assert vpcd.exchange(self.SELECT_JPKI) == bytes.fromhex("9000")
        assert self.sign_sw(vpcd) == bytes.fromhex("6982")
