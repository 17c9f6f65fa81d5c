"""The card side of vsmartcard's vpcd protocol: a simulated card in a PC/SC reader.

pcscd's vpcd driver listens on a TCP port per slot (35963 for slot 0, 35964 for
slot 1); a card "inserts" itself by connecting to it. Every message, in both
directions, is a 2-byte big-endian length and then that many bytes. A 1-byte
message from vpcd is a control code (power off / power on / reset, which get no
reply, and get-ATR, answered with the raw ATR); anything longer is a command
APDU, answered with the response APDU.

Latency matters: Debian's vpcd writes length and payload in two sends, so with
delayed ACK on our side every message would stall about 40 ms. We re-arm
``TCP_QUICKACK`` (not sticky on Linux) before every receive and send each reply
as one write.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)

VPCD_PORT = 0x8C7B
"""vpcd's port for slot 0; slot *n* listens on ``VPCD_PORT + n``."""

POWER_OFF = 0x00
POWER_ON = 0x01
RESET = 0x02
GET_ATR = 0x04

SELF_DIAGNOSIS_FAILURE = bytes.fromhex("6F00")
MUTE = b""

_MAX_FRAME = 0xFFFF
_RECV_CHUNK = 0x10000 + 2


class SimulatedCard(Protocol):
    """What the bridge needs of a card (``cardsim.card.VirtualCard`` is one)."""

    @property
    def atr(self) -> bytes: ...

    def power_on(self) -> bytes: ...

    def power_off(self) -> None: ...

    def reset(self) -> bytes: ...

    def transmit(self, apdu: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class BridgeStats:
    """Counters of what vpcd asked; tests use them to see the protocol at work."""

    connections: int
    power_offs: int
    power_ons: int
    resets: int
    atr_requests: int
    apdus: int


ApduTrace = Callable[[bytes, bytes], None]
"""Called with (command, response) for every APDU the bridge answers."""


class _ConnectionLost(Exception):
    """vpcd closed the connection, or the socket failed."""


class _FrameReader:
    """Splits the byte stream from vpcd into length-prefixed messages."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()
        # Linux only; elsewhere delayed ACK is not re-armable and we do without.
        self._quickack = getattr(socket, "TCP_QUICKACK", None)

    def _fill(self, wanted: int) -> None:
        while len(self._buffer) < wanted:
            try:
                if self._quickack is not None:
                    self._sock.setsockopt(socket.IPPROTO_TCP, self._quickack, 1)
                chunk = self._sock.recv(_RECV_CHUNK)
            except OSError as exc:
                raise _ConnectionLost(str(exc)) from exc
            if not chunk:
                raise _ConnectionLost("connection closed")
            self._buffer += chunk

    def next_message(self) -> bytes:
        self._fill(2)
        length = int.from_bytes(self._buffer[:2], "big")
        self._fill(2 + length)
        message = bytes(self._buffer[2 : 2 + length])
        del self._buffer[: 2 + length]
        return message


def frame(payload: bytes) -> bytes:
    """One vpcd message: 2-byte big-endian length, then the payload."""
    if len(payload) > _MAX_FRAME:
        raise ValueError(f"a vpcd message holds at most {_MAX_FRAME} bytes, not {len(payload)}")
    return len(payload).to_bytes(2, "big") + payload


class VpcdBridge:
    """Serves one card on one vpcd slot from a background thread.

    ``start()`` connects to vpcd (retrying with backoff while pcscd is down or
    restarting) and answers it until ``stop()``. ``remove()`` takes the card out
    of the slot (the connection is closed, which vpcd reports as a removal) and
    ``insert()`` puts a card in. The bridge never closes the card: its owner does.
    """

    def __init__(
        self,
        card: SimulatedCard | None,
        host: str = "127.0.0.1",
        port: int = VPCD_PORT,
        *,
        max_backoff: float = 1.0,
        trace: ApduTrace | None = None,
    ) -> None:
        self.host = host
        self.trace = trace
        self.port = port
        self._max_backoff = max_backoff
        self._card = card
        # Bumped by remove(): a connection opened for an earlier card must not serve a later one.
        self._insertion = 0
        # What vpcd last did to the card's contacts; a new connection starts unpowered.
        self._powered = False
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._stopping = False
        self._sock: socket.socket | None = None
        self._connected = threading.Event()
        self._thread: threading.Thread | None = None
        self._counts = dict.fromkeys(BridgeStats.__slots__, 0)

    # -- public API --------------------------------------------------------

    @property
    def card(self) -> SimulatedCard | None:
        return self._card

    @property
    def connected(self) -> bool:
        """True while a card is in the slot and vpcd's connection is open."""
        return self._connected.is_set()

    @property
    def stats(self) -> BridgeStats:
        with self._lock:
            return BridgeStats(**self._counts)

    def start(self) -> VpcdBridge:
        if self._thread is not None:
            raise RuntimeError("the bridge is already started")
        self._thread = threading.Thread(
            target=self._run, name=f"vpcd-bridge:{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Disconnect from vpcd and end the thread; the card is powered off."""
        with self._lock:
            self._stopping = True
            self._wake.notify_all()
            self._shutdown_socket()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError(f"vpcd bridge on port {self.port} did not stop in {timeout} s")
            self._thread = None

    def wait_connected(self, timeout: float) -> bool:
        """Wait until vpcd's socket accepted us (pcscd may see the card up to 0.4 s later)."""
        return self._connected.wait(timeout)

    def insert(self, card: SimulatedCard) -> None:
        """Put ``card`` in the slot; vpcd sees it on pcscd's next presence poll."""
        with self._lock:
            if self._card is not None:
                raise RuntimeError("the slot already holds a card: remove() it first")
            self._card = card
            self._wake.notify_all()

    def remove(self) -> SimulatedCard | None:
        """Take the card out (it loses power, so its security state is cleared)."""
        with self._lock:
            card, self._card = self._card, None
            self._insertion += 1
            self._shutdown_socket()
            if card is not None:
                card.power_off()
            return card

    def __enter__(self) -> VpcdBridge:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the serving thread ------------------------------------------------

    def _shutdown_socket(self) -> None:
        # Called with the lock held; shutdown() wakes the serving thread's recv().
        self._connected.clear()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)

    def _run(self) -> None:
        backoff = 0.0
        while True:
            with self._lock:
                while self._card is None and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    return
                if backoff:
                    # Woken early by stop() or by remove()+insert().
                    self._wake.wait(backoff)
                    if self._stopping:
                        return
            sock = self._connect()
            if sock is None:
                backoff = min(max(backoff * 2, 0.05), self._max_backoff)
                continue
            backoff = 0.0
            try:
                self._serve(sock)
            finally:
                with self._lock:
                    self._connected.clear()
                    self._sock = None
                    # Losing the reader's contacts is a power loss for the card.
                    if self._card is not None:
                        self._card.power_off()
                sock.close()

    def _connect(self) -> socket.socket | None:
        with self._lock:
            insertion = self._insertion
        try:
            sock = socket.create_connection((self.host, self.port), timeout=2.0)
        except OSError as exc:
            log.debug("vpcd at %s:%d not reachable: %s", self.host, self.port, exc)
            return None
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            if self._stopping or self._card is None or insertion != self._insertion:
                sock.close()
                return None
            self._sock = sock
            self._powered = False
            self._counts["connections"] += 1
            self._connected.set()
        log.info("card connected to vpcd at %s:%d", self.host, self.port)
        return sock

    def _serve(self, sock: socket.socket) -> None:
        reader = _FrameReader(sock)
        while True:
            try:
                message = reader.next_message()
            except _ConnectionLost as exc:
                log.info("vpcd connection on port %d ended: %s", self.port, exc)
                return
            reply = self._answer(message)
            if reply is None:
                continue
            try:
                sock.sendall(frame(reply))
            except OSError as exc:
                log.info("vpcd connection on port %d ended while sending: %s", self.port, exc)
                return

    def _answer(self, message: bytes) -> bytes | None:
        with self._lock:
            card = self._card
            if card is None:
                return None
            if len(message) == 1:
                return self._control(card, message[0])
            if not message:
                # vpcd never sends an empty message; answering would desynchronise it.
                log.warning("ignoring an empty vpcd message")
                return None
            self._counts["apdus"] += 1
            if not self._powered:
                # vpcd powers the card before any APDU. A card without power does not
                # answer: an empty reply makes vpcd report a transmission error.
                log.warning("APDU %s sent to an unpowered card; no answer", message.hex())
                return MUTE
            try:
                response = card.transmit(message)
            except Exception:
                # A card model bug must not pull the card out of the reader: answer as a
                # real chip does on an internal fault, and keep the trace for the developer.
                log.exception("the card failed on APDU %s", message.hex())
                response = SELF_DIAGNOSIS_FAILURE
            if self.trace is not None:
                self.trace(message, response)
            return response

    def _control(self, card: SimulatedCard, code: int) -> bytes | None:
        if code == GET_ATR:
            self._counts["atr_requests"] += 1
            return card.atr
        if code == POWER_OFF:
            self._counts["power_offs"] += 1
            self._powered = False
            card.power_off()
        elif code == POWER_ON:
            self._counts["power_ons"] += 1
            self._powered = True
            card.power_on()
        elif code == RESET:
            self._counts["resets"] += 1
            self._powered = True
            card.reset()
        else:
            log.warning("ignoring unknown vpcd control code %02X", code)
        return None
